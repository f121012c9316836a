// Package outboundtest holds what the tests of outbound and of the
// packages that wire it (shareauth's hook client) share: a loopback server
// that counts what reaches it, and the checks every guarded client passes.
package outboundtest

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/chatgate/chatgate/internal/outbound"
)

// CountingServer is a loopback HTTP server that counts the connections it
// accepts and the requests it serves. It is closed when t ends.
func CountingServer(t testing.TB, h http.HandlerFunc) (srv *httptest.Server, conns, reqs *atomic.Int32) {
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

// TestClient checks a guarded client as newClient builds it for an
// allow-list: internal addresses are refused when dialled (so a name that
// resolves to loopback is caught too) before any connection is made,
// allow-listed CIDRs and names open exactly what they list, and redirects
// are never followed. A package runs it on its own wiring, so that a
// client built without the guard fails there.
func TestClient(t *testing.T, newClient func(outbound.AllowList) *http.Client) {
	t.Run("RefusesInternalAtConnect", func(t *testing.T) {
		srv, conns, _ := CountingServer(t, func(w http.ResponseWriter, r *http.Request) {})
		port := srv.Listener.Addr().(*net.TCPAddr).Port
		byName := "http://localhost:" + strconv.Itoa(port) + "/x" // a name that resolves to loopback
		byAddr := srv.URL + "/x"
		post := func(c *http.Client, url string) error {
			req, _ := http.NewRequestWithContext(context.Background(), "POST", url, nil)
			resp, err := c.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			return err
		}
		def := newClient(outbound.AllowList{})
		for _, u := range []string{byName, byAddr} {
			if err := post(def, u); !errors.Is(err, outbound.ErrBlocked) {
				t.Fatalf("%s with no allow-list: %v", u, err)
			}
		}
		if n := conns.Load(); n != 0 {
			t.Fatalf("the refused dials reached the server: %d connections", n)
		}
		// a CIDR permits the address, whatever name led there
		cidr := newClient(outbound.MustParseAllowList("127.0.0.1/32", "::1/128"))
		for _, u := range []string{byName, byAddr} {
			if err := post(cidr, u); err != nil {
				t.Fatalf("%s with 127.0.0.1/32 listed: %v", u, err)
			}
		}
		// a name permits that name only
		name := newClient(outbound.MustParseAllowList("localhost"))
		if err := post(name, byName); err != nil {
			t.Fatalf("localhost listed: %v", err)
		}
		if err := post(name, byAddr); !errors.Is(err, outbound.ErrBlocked) {
			t.Fatalf("127.0.0.1 with only localhost listed: %v", err)
		}
	})
	t.Run("NeverFollowsRedirects", func(t *testing.T) {
		target, _, targetReqs := CountingServer(t, func(w http.ResponseWriter, r *http.Request) {})
		hop, _, _ := CountingServer(t, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL+"/steal", http.StatusTemporaryRedirect)
		})
		c := newClient(outbound.MustParseAllowList("127.0.0.1/32"))
		resp, err := c.Post(hop.URL, "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusTemporaryRedirect || targetReqs.Load() != 0 {
			t.Fatalf("status %d, redirect target got %d requests", resp.StatusCode, targetReqs.Load())
		}
	})
}
