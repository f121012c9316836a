package auth_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/chatgate/chatgate/auth"
)

// Goals (reported, not asserted): a warm Authenticate in at most 2 µs and 2
// allocations; an authenticated no-op route at least 90% as fast as the
// same route unauthenticated.

func benchEnv(b *testing.B, spec auth.KeySpec) (*env, string) {
	b.Helper()
	e := newEnv(b, nil, auth.Options{})
	spec.AppID = "app-1"
	_, secret := e.create(b, spec)
	if _, err := e.authn.Authenticate(ctx, secret, loopback); err != nil { // warm the cache
		b.Fatal(err)
	}
	return e, secret
}

func BenchmarkAuthenticate(b *testing.B) {
	e, secret := benchEnv(b, auth.KeySpec{})
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := e.authn.Authenticate(ctx, secret, loopback); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthenticateWithLimits checks a key that has every limit set, so
// that each check runs (and passes): expiry, allow-list, quota and rate.
func BenchmarkAuthenticateWithLimits(b *testing.B) {
	e, secret := benchEnv(b, auth.KeySpec{Limit: auth.Limit{
		ExpiredTime: time.Now().Add(24 * time.Hour), MaxUsagePoints: 1e12, RPM: 1 << 30,
	}, AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.0/8")}})
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := e.authn.Authenticate(ctx, secret, loopback); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthenticateImported checks a non-prefixed (imported) key, which
// skips the checksum.
func BenchmarkAuthenticateImported(b *testing.B) {
	e := newEnv(b, nil, auth.Options{})
	const secret = "imported-key-0123456789abcdef"
	if _, err := e.mgr.Import(ctx, auth.KeySpec{Name: "imported", AppID: "app-1"}, secret); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.authn.Authenticate(ctx, secret, loopback); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAuthenticateParallel(b *testing.B) {
	e, secret := benchEnv(b, auth.KeySpec{})
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.authn.Authenticate(ctx, secret, loopback); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// routeServer serves the same no-op handler twice over real loopback HTTP:
// /open without authentication and /authed behind Require.
func routeServer(b *testing.B) (srv *httptest.Server, client *http.Client, secret string) {
	b.Helper()
	e, secret := benchEnv(b, auth.KeySpec{})
	noop := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	mux := http.NewServeMux()
	mux.Handle("GET /open", noop)
	mux.Handle("GET /authed", e.authn.Require(auth.ScopeChat, noop))
	srv = httptest.NewServer(mux)
	b.Cleanup(srv.Close)
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256}
	b.Cleanup(tr.CloseIdleConnections)
	return srv, &http.Client{Transport: tr}, secret
}

func get(b *testing.B, client *http.Client, url, authz string) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		b.Fatal(err)
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := client.Do(req)
	if err != nil {
		b.Error(err)
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Errorf("%s: status %d", url, resp.StatusCode)
	}
}

// BenchmarkRoute compares one client's request rate on the same no-op
// route with and without authentication, over a keep-alive connection.
func BenchmarkRoute(b *testing.B) {
	srv, client, secret := routeServer(b)
	authz := "Bearer " + secret
	b.Run("unauthenticated", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			get(b, client, srv.URL+"/open", authz) // same header, ignored
		}
	})
	b.Run("authenticated", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			get(b, client, srv.URL+"/authed", authz)
		}
	})
}

// BenchmarkRouteParallel is BenchmarkRoute with GOMAXPROCS clients at once,
// so the server's CPU, not the round trip, bounds the rate.
func BenchmarkRouteParallel(b *testing.B) {
	srv, client, secret := routeServer(b)
	authz := "Bearer " + secret
	for _, c := range []struct{ name, path string }{{"unauthenticated", "/open"}, {"authenticated", "/authed"}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					get(b, client, srv.URL+c.path, authz)
				}
			})
		})
	}
}

// BenchmarkRequire measures the middleware alone, without a network, on a
// prebuilt request.
func BenchmarkRequire(b *testing.B) {
	e, secret := benchEnv(b, auth.KeySpec{})
	noop := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	for _, c := range []struct {
		name string
		h    http.Handler
	}{{"unauthenticated", noop}, {"authenticated", e.authn.Require(auth.ScopeChat, noop)}} {
		b.Run(c.name, func(b *testing.B) {
			r := httptest.NewRequest(http.MethodGet, "/x", nil)
			r.Header.Set("Authorization", "Bearer "+secret)
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				c.h.ServeHTTP(w, r)
			}
			if w.Code != http.StatusOK {
				b.Fatalf("status %d", w.Code)
			}
		})
	}
}
