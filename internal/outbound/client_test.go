package outbound_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chatgate/chatgate/internal/outbound"
	"github.com/chatgate/chatgate/internal/outbound/outboundtest"
)

func TestGuardedClient(t *testing.T) {
	outboundtest.TestClient(t, func(al outbound.AllowList) *http.Client {
		return outbound.New(outbound.Options{Allow: al}).HTTP()
	})
}

func TestFetchLimits(t *testing.T) {
	release := make(chan struct{})
	srv, _, _ := outboundtest.CountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.Write([]byte(strings.Repeat("a", 100)))
		case "/declared": // Content-Length over the limit: refused before reading
			w.Header().Set("Content-Length", "101")
			w.Write([]byte(strings.Repeat("a", 101)))
		case "/streamed": // no Content-Length: refused once the limit is passed
			for range 3 {
				w.Write([]byte(strings.Repeat("a", 40)))
				w.(http.Flusher).Flush()
			}
		case "/missing":
			http.NotFound(w, r)
		case "/hang":
			w.(http.Flusher).Flush()
			<-release
		}
	})
	t.Cleanup(func() { close(release) }) // runs before srv.Close, which waits for /hang
	c := outbound.New(outbound.Options{Allow: outbound.MustParseAllowList("127.0.0.1/32"), MaxBodyBytes: 100, Timeout: 200 * time.Millisecond})
	ctx := context.Background()
	resp, err := c.Fetch(ctx, srv.URL+"/ok", "text/html")
	if err != nil || len(resp.Body) != 100 || resp.URL != srv.URL+"/ok" {
		t.Fatalf("ok: %v %v", resp, err)
	}
	for _, p := range []string{"/declared", "/streamed"} {
		if _, err := c.Fetch(ctx, srv.URL+p, ""); !errors.Is(err, outbound.ErrTooLarge) {
			t.Errorf("%s: %v", p, err)
		}
	}
	var se *outbound.StatusError
	if _, err := c.Fetch(ctx, srv.URL+"/missing", ""); !errors.As(err, &se) || se.Code != 404 {
		t.Errorf("missing: %v", err)
	}
	if _, err := c.Fetch(ctx, srv.URL+"/hang", ""); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("hang: %v", err)
	}
	if _, err := outbound.New(outbound.Options{}).Fetch(ctx, srv.URL+"/ok", ""); !errors.Is(err, outbound.ErrBlocked) {
		t.Errorf("not allow-listed: %v", err)
	}
}

func TestFetchRedirectsThroughTheGuard(t *testing.T) {
	target, _, targetReqs := outboundtest.CountingServer(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("here")) })
	hop, _, _ := outboundtest.CountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/page", http.StatusFound)
	})
	hopByName := "http://localhost:" + strconv.Itoa(hop.Listener.Addr().(*net.TCPAddr).Port)
	ctx := context.Background()
	// the first hop is allowed by its name; the redirect goes to an address that is not
	byName := outbound.New(outbound.Options{Allow: outbound.MustParseAllowList("localhost"), MaxRedirects: 3})
	if _, err := byName.Fetch(ctx, hopByName, ""); !errors.Is(err, outbound.ErrBlocked) || targetReqs.Load() != 0 {
		t.Fatalf("redirect to a blocked address: %v, target got %d", err, targetReqs.Load())
	}
	both := outbound.New(outbound.Options{Allow: outbound.MustParseAllowList("127.0.0.1/32"), MaxRedirects: 3})
	resp, err := both.Fetch(ctx, hop.URL, "")
	if err != nil || string(resp.Body) != "here" || resp.URL != target.URL+"/page" {
		t.Fatalf("allowed redirect: %v %v", resp, err)
	}
	none := outbound.New(outbound.Options{Allow: outbound.MustParseAllowList("127.0.0.1/32")})
	var se *outbound.StatusError
	if _, err := none.Fetch(ctx, hop.URL, ""); !errors.As(err, &se) || se.Code != http.StatusFound {
		t.Fatalf("no redirects: %v", err)
	}
}
