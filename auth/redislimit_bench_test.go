package auth_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/internal/redistest"
	"github.com/chatgate/chatgate/limit"
	"github.com/chatgate/chatgate/redislimit"
)

// noopConcurrency is how many clients BenchmarkNoopRoute runs at once.
const noopConcurrency = 16

// noopRPM is the rate of the limited variants: far above what the machine
// serves, so that nothing is refused, and yet a real sliding window. Both
// limiters keep one entry per request of the last minute (limit.Local an
// int64 in a ring it sizes to N, redislimit a ZSET member), so N is kept
// at 10M rather than 1e9: the ring is 80 MB of address space, touched only
// as it fills, and Redis holds 60 s worth of this benchmark's requests.
const noopRPM = 10_000_000

// noopRoute is a no-op route behind Require over loopback HTTP (or without
// it, when open), on an Authenticator with opts, and the Authorization of
// a key of spec.
func noopRoute(b *testing.B, opts auth.Options, spec auth.KeySpec, open bool) (url, authz string, key *auth.Key) {
	b.Helper()
	e := newEnv(b, nil, opts)
	spec.AppID = "app-1"
	key, secret := e.create(b, spec)
	if _, err := e.authn.Authenticate(ctx, secret, loopback); err != nil { // warm the cache
		b.Fatal(err)
	}
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	if !open {
		h = e.authn.Require(auth.ScopeChat, h)
	}
	srv := httptest.NewServer(h)
	b.Cleanup(srv.Close)
	return srv.URL + "/noop", "Bearer " + secret, key
}

// runNoop sends b.N requests from noopConcurrency keep-alive clients and
// reports req/s and the median latency of one request.
func runNoop(b *testing.B, url, authz string) {
	tr := &http.Transport{MaxIdleConns: noopConcurrency, MaxIdleConnsPerHost: noopConcurrency}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	get(b, client, url, authz) // open a connection before the clock starts
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		mu    sync.Mutex
		times = make([]time.Duration, 0, b.N)
	)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range noopConcurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, b.N/noopConcurrency+1)
			for next.Add(1) <= int64(b.N) {
				t := time.Now()
				get(b, client, url, authz)
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			times = append(times, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(times)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(times[len(times)/2].Nanoseconds())/1e3, "p50-us")
}

// BenchmarkNoopRoute compares, in one run, a no-op route over loopback
// HTTP with 16 concurrent keep-alive clients: (a) unauthenticated, (b)
// behind Require with a key without a rate, (c) with a rate (noopRPM, none
// refused) counted by limit.Local, (d) the same counted in Redis by
// redislimit (CHATGATE_TEST_REDIS; skipped when unset).
func BenchmarkNoopRoute(b *testing.B) {
	limited := auth.KeySpec{Limit: auth.Limit{RPM: noopRPM}}
	b.Run("a-unauthenticated", func(b *testing.B) {
		url, authz, _ := noopRoute(b, auth.Options{}, auth.KeySpec{}, true)
		runNoop(b, url, authz) // the header is sent, and ignored
	})
	b.Run("b-authenticated", func(b *testing.B) {
		url, authz, _ := noopRoute(b, auth.Options{}, auth.KeySpec{}, false)
		runNoop(b, url, authz)
	})
	b.Run("c-rpm-local", func(b *testing.B) {
		url, authz, _ := noopRoute(b, auth.Options{Limiter: new(limit.Local)}, limited, false)
		runNoop(b, url, authz)
	})
	b.Run("d-rpm-redis", func(b *testing.B) {
		rdb, prefix := redistest.Client(b)
		rl := redislimit.New(rdb, redislimit.Options{Prefix: prefix})
		b.Cleanup(func() { _ = rl.Close() })
		url, authz, key := noopRoute(b, auth.Options{Limiter: rl.Limiter("keys")}, limited, false)
		runNoop(b, url, authz)
		// What the key's sliding log holds in Redis: every admitted request
		// of the last minute (each round makes its own key, so this round's).
		c := context.Background()
		rk := prefix + "rate:keys:" + key.ID
		n, err := rdb.ZCard(c, rk).Result()
		if err != nil || n == 0 {
			b.Fatalf("rate log %s: %d members, %v", rk, n, err)
		}
		bytes, _ := rdb.MemoryUsage(c, rk).Result()
		b.ReportMetric(float64(n), "log-members")
		b.ReportMetric(float64(bytes)/float64(n), "log-B/member")
	})
}
