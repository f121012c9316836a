package outbound

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestBlockedAddresses(t *testing.T) {
	for _, s := range []string{
		"127.0.0.1", "127.255.255.254", "::1", "::ffff:127.0.0.1", // loopback, also IPv4-mapped
		"10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1", "fc00::1", "fd12:3456::1", // private
		"169.254.169.254", "::ffff:169.254.169.254", "fe80::1", "fe80::1%eth0", // link-local, cloud metadata
		"224.0.0.1", "239.255.255.250", "ff02::1", "ff05::2", // multicast
		"0.0.0.0", "::", "0.1.2.3", // unspecified, "this network"
		"100.64.0.1", "100.127.255.255", // CGNAT
		"255.255.255.255", "240.0.0.1", // broadcast, reserved
		"198.18.0.1", "192.0.0.8", "fec0::1", // benchmarking, IETF, site-local
		"::127.0.0.1",                                            // IPv4-compatible
		"64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "2002:a00:1::1", // NAT64 and 6to4 carrying internal IPv4
		"64:ff9b:1::1", // local-use NAT64
	} {
		if !Blocked(netip.MustParseAddr(s)) {
			t.Errorf("%s is not blocked", s)
		}
	}
	for _, s := range []string{
		"8.8.8.8", "1.1.1.1", "100.63.255.255", "100.128.0.0", "172.32.0.1", "11.0.0.1", "169.253.255.255",
		"2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1",
	} {
		if Blocked(netip.MustParseAddr(s)) {
			t.Errorf("%s is blocked", s)
		}
	}
}

func TestParseAllowList(t *testing.T) {
	al, err := ParseAllowList([]string{" 127.0.0.1/32 ", "10.1.0.0/16", "::ffff:192.168.0.0/120", "fd00::5", "Auth.Internal.", "auth_svc"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"127.0.0.1", "::ffff:127.0.0.1", "10.1.200.3", "192.168.0.9", "fd00::5"} {
		if !al.Permits(netip.MustParseAddr(s)) {
			t.Errorf("%s not permitted", s)
		}
	}
	for _, s := range []string{"127.0.0.2", "10.2.0.1", "192.168.1.9", "fd00::6", "169.254.169.254"} {
		if al.Permits(netip.MustParseAddr(s)) {
			t.Errorf("%s permitted", s)
		}
	}
	if !al.AllowsHost("auth.internal") || !al.AllowsHost("AUTH.internal.") || !al.AllowsHost("auth_svc") || al.AllowsHost("internal") {
		t.Errorf("host names: %v", al.hosts)
	}
	for _, bad := range []string{"10.0.0.0/33", "http://auth.internal", "auth.internal:80", "127.1", "a b", "", "fe80::1%eth0", "-x.internal"} {
		if _, err := ParseAllowList([]string{"127.0.0.1/32", bad}); err == nil || !strings.Contains(err.Error(), "entry 1") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// countingServer is a loopback HTTP server that counts the connections it
// accepts and the requests it serves.
func countingServer(t *testing.T, h http.HandlerFunc) (srv *httptest.Server, conns, reqs *atomic.Int32) {
	conns, reqs = new(atomic.Int32), new(atomic.Int32)
	srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqs.Add(1)
		h(w, r)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, conns, reqs
}

func TestGuardedClientRefusesInternalAtConnect(t *testing.T) {
	srv, conns, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {})
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	byName := "http://localhost:" + strconv.Itoa(port) + "/x" // a name that resolves to loopback
	byAddr := srv.URL + "/x"
	get := func(c *http.Client, url string) error {
		req, _ := http.NewRequestWithContext(context.Background(), "POST", url, nil)
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	def := New(Options{}).HTTP()
	for _, u := range []string{byName, byAddr} {
		if err := get(def, u); !errors.Is(err, ErrBlocked) {
			t.Fatalf("%s with no allow-list: %v", u, err)
		}
	}
	if n := conns.Load(); n != 0 {
		t.Fatalf("the refused dials reached the server: %d connections", n)
	}
	// a CIDR permits the address, whatever name led there
	cidr := New(Options{Allow: MustParseAllowList("127.0.0.1/32", "::1/128")}).HTTP()
	for _, u := range []string{byName, byAddr} {
		if err := get(cidr, u); err != nil {
			t.Fatalf("%s with 127.0.0.1/32 listed: %v", u, err)
		}
	}
	// a name permits that name only
	name := New(Options{Allow: MustParseAllowList("localhost")}).HTTP()
	if err := get(name, byName); err != nil {
		t.Fatalf("localhost listed: %v", err)
	}
	if err := get(name, byAddr); !errors.Is(err, ErrBlocked) {
		t.Fatalf("127.0.0.1 with only localhost listed: %v", err)
	}
}

func TestGuardedClientNeverFollowsRedirects(t *testing.T) {
	target, _, targetReqs := countingServer(t, func(w http.ResponseWriter, r *http.Request) {})
	hop, _, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/steal", http.StatusTemporaryRedirect)
	})
	c := New(Options{Allow: MustParseAllowList("127.0.0.1/32")}).HTTP()
	resp, err := c.Post(hop.URL, "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect || targetReqs.Load() != 0 {
		t.Fatalf("status %d, redirect target got %d requests", resp.StatusCode, targetReqs.Load())
	}
}

func TestFetchLimits(t *testing.T) {
	release := make(chan struct{})
	srv, _, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
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
	c := New(Options{Allow: MustParseAllowList("127.0.0.1/32"), MaxBodyBytes: 100, Timeout: 200 * time.Millisecond})
	ctx := context.Background()
	resp, err := c.Fetch(ctx, srv.URL+"/ok", "text/html")
	if err != nil || len(resp.Body) != 100 || resp.URL != srv.URL+"/ok" {
		t.Fatalf("ok: %v %v", resp, err)
	}
	for _, p := range []string{"/declared", "/streamed"} {
		if _, err := c.Fetch(ctx, srv.URL+p, ""); !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: %v", p, err)
		}
	}
	var se *StatusError
	if _, err := c.Fetch(ctx, srv.URL+"/missing", ""); !errors.As(err, &se) || se.Code != 404 {
		t.Errorf("missing: %v", err)
	}
	if _, err := c.Fetch(ctx, srv.URL+"/hang", ""); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("hang: %v", err)
	}
	if _, err := New(Options{}).Fetch(ctx, srv.URL+"/ok", ""); !errors.Is(err, ErrBlocked) {
		t.Errorf("not allow-listed: %v", err)
	}
}

func TestFetchRedirectsThroughTheGuard(t *testing.T) {
	target, _, targetReqs := countingServer(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("here")) })
	hop, _, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/page", http.StatusFound)
	})
	hopByName := "http://localhost:" + strconv.Itoa(hop.Listener.Addr().(*net.TCPAddr).Port)
	ctx := context.Background()
	// the first hop is allowed by its name; the redirect goes to an address that is not
	byName := New(Options{Allow: MustParseAllowList("localhost"), MaxRedirects: 3})
	if _, err := byName.Fetch(ctx, hopByName, ""); !errors.Is(err, ErrBlocked) || targetReqs.Load() != 0 {
		t.Fatalf("redirect to a blocked address: %v, target got %d", err, targetReqs.Load())
	}
	both := New(Options{Allow: MustParseAllowList("127.0.0.1/32"), MaxRedirects: 3})
	resp, err := both.Fetch(ctx, hop.URL, "")
	if err != nil || string(resp.Body) != "here" || resp.URL != target.URL+"/page" {
		t.Fatalf("allowed redirect: %v %v", resp, err)
	}
	none := New(Options{Allow: MustParseAllowList("127.0.0.1/32")})
	var se *StatusError
	if _, err := none.Fetch(ctx, hop.URL, ""); !errors.As(err, &se) || se.Code != http.StatusFound {
		t.Fatalf("no redirects: %v", err)
	}
}
