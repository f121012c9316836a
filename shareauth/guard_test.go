package shareauth

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

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/internal/outbound"
)

func TestCheckHookURL(t *testing.T) {
	allow := MustParseAllowList("127.0.0.1/32", "10.9.0.0/16")
	for _, ok := range []string{
		"https://auth.example.com", "http://auth.example.com:8443/base/path/", "http://localhost:9700", "http://127.0.0.1:9700",
		"http://[::ffff:127.0.0.1]:80", "http://10.9.3.4", "https://8.8.8.8", "http://[2606:4700::1]:8080/x",
	} {
		if err := checkHookURL(ok, allow); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{
		"ftp://auth.example.com", "auth.example.com", "http://", "http:opaque",
		"http://user:pw@auth.example.com", "http://user@auth.example.com",
		"http://auth.example.com/?a=b", "http://auth.example.com?", "http://auth.example.com/#frag", "http://auth.example.com#",
		"http://127.0.0.2", "http://[::1]", "http://[::ffff:169.254.169.254]", "http://169.254.169.254/latest/meta-data",
		"http://10.0.0.1", "http://0.0.0.0:80", "http://100.64.0.1", "http://224.0.0.1", "http://[fe80::1%25eth0]",
		"http://127.1", "http://2130706433", "http://0x7f.0.0.1", "http://auth.example.com:0", "http://exa mple.com",
	} {
		err := checkHookURL(bad, allow)
		var ae *apierror.Error
		if !errors.As(err, &ae) || ae.Status != 400 || !strings.Contains(ae.Message, "limit.hookUrl") {
			t.Errorf("%s: %v", bad, err)
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
	def := guardedClient(AllowList{})
	for _, u := range []string{byName, byAddr} {
		if err := get(def, u); !errors.Is(err, outbound.ErrBlocked) {
			t.Fatalf("%s with no allow-list: %v", u, err)
		}
	}
	if n := conns.Load(); n != 0 {
		t.Fatalf("the refused dials reached the server: %d connections", n)
	}
	// a CIDR permits the address, whatever name led there
	cidr := guardedClient(MustParseAllowList("127.0.0.1/32", "::1/128"))
	for _, u := range []string{byName, byAddr} {
		if err := get(cidr, u); err != nil {
			t.Fatalf("%s with 127.0.0.1/32 listed: %v", u, err)
		}
	}
	// a name permits that name only
	name := guardedClient(MustParseAllowList("localhost"))
	if err := get(name, byName); err != nil {
		t.Fatalf("localhost listed: %v", err)
	}
	if err := get(name, byAddr); !errors.Is(err, outbound.ErrBlocked) {
		t.Fatalf("127.0.0.1 with only localhost listed: %v", err)
	}
}

func TestGuardedClientNeverFollowsRedirects(t *testing.T) {
	target, _, targetReqs := countingServer(t, func(w http.ResponseWriter, r *http.Request) {})
	hop, _, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/steal", http.StatusTemporaryRedirect)
	})
	c := guardedClient(MustParseAllowList("127.0.0.1/32"))
	resp, err := c.Post(hop.URL, "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect || targetReqs.Load() != 0 {
		t.Fatalf("status %d, redirect target got %d requests", resp.StatusCode, targetReqs.Load())
	}
}

func TestParseAllowListNamesTheEntry(t *testing.T) {
	if _, err := ParseAllowList([]string{"127.0.0.1/32", "127.1"}); err == nil || !strings.Contains(err.Error(), "shareauth: allow-list entry 1") {
		t.Fatalf("err = %v", err)
	}
	al := MustParseAllowList("10.1.0.0/16", "auth.internal")
	if !al.Permits(netip.MustParseAddr("10.1.2.3")) || al.Permits(netip.MustParseAddr("10.2.0.1")) || !al.AllowsHost("Auth.Internal.") {
		t.Fatalf("allow-list %v", al)
	}
}
