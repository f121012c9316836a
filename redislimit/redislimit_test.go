package redislimit_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/internal/redistest"
	"github.com/chatgate/chatgate/limit"
	"github.com/chatgate/chatgate/limit/limittest"
	"github.com/chatgate/chatgate/redislimit"
)

func newClient(t *testing.T, opts redislimit.Options) *redislimit.Client {
	rdb, prefix := redistest.Client(t)
	opts.Prefix = prefix
	if opts.Grace == 0 {
		opts.Grace = 50 * time.Millisecond // each test's prefix is a new epoch
	}
	c := redislimit.New(rdb, opts)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestLimiterConformance(t *testing.T) {
	limittest.TestLimiter(t, func(t *testing.T) limit.Limiter {
		return newClient(t, redislimit.Options{}).Limiter("test")
	})
}

func TestQuotaConformance(t *testing.T) {
	limittest.TestQuota(t, func(t *testing.T, src limit.Source) limit.Quota {
		return newClient(t, redislimit.Options{Grace: 50 * time.Millisecond}).Quota("test", src)
	})
}

// Two Clients on one Redis are two replicas: they count as one.
func TestReplicasShareOneWindow(t *testing.T) {
	rdb, prefix := redistest.Client(t)
	var ls []limit.Limiter
	for range 3 {
		c := redislimit.New(rdb, redislimit.Options{Prefix: prefix, Grace: 50 * time.Millisecond})
		t.Cleanup(func() { c.Close() })
		ls = append(ls, c.Limiter("keys"))
	}
	ctx := context.Background()
	admitted := 0
	for i := range 30 {
		if w, err := ls[i%3].Take(ctx, "k", limit.PerMinute(10)); err != nil {
			t.Fatal(err)
		} else if w == 0 {
			admitted++
		}
	}
	if admitted != 10 {
		t.Fatalf("three replicas admitted %d of a key limited to 10 a minute", admitted)
	}
}

func TestReplicasShareOneQuota(t *testing.T) {
	rdb, prefix := redistest.Client(t)
	src := limittest.NewSource()
	var qs []limit.Quota
	for range 3 {
		c := redislimit.New(rdb, redislimit.Options{Prefix: prefix, Grace: 50 * time.Millisecond})
		t.Cleanup(func() { c.Close() })
		qs = append(qs, c.Quota("keys", src))
	}
	ctx := context.Background()
	end, err := qs[0].Reserve(ctx, "k", 5.5)
	if err != nil {
		t.Fatal(err)
	}
	src.Add("k", 1)
	qs[0].Charge(ctx, "k", 1)
	end()
	var answered, refused int
	var ends []func()
	for i := range 30 {
		end, err := qs[i%3].Reserve(ctx, "k", 5.5)
		switch {
		case errors.Is(err, limit.ErrSpent):
			refused++
		case err != nil:
			t.Fatal(err)
		default:
			answered++
			ends = append(ends, end)
		}
	}
	for _, e := range ends {
		e()
	}
	// spent 1, mean 1: 1 + running < 5.5 admits five more, whatever replica asks.
	if answered != 5 || refused != 25 {
		t.Fatalf("across three replicas: %d admitted, %d refused; want 5 and 25", answered, refused)
	}
}

// countingHandler counts log records by level.
type countingHandler struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	errs int
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r.Level >= slog.LevelError {
		h.errs++
	}
	h.buf.WriteString(r.Message + "\n")
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }
func (h *countingHandler) errors() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.errs
}

// Redis stops and starts again, losing every key: while it is down quotas
// refuse with a 503 and rates follow their policy, the incident is logged
// once, and afterwards the counters are rebuilt from the source, the work
// still running is counted again before anything new is admitted, and
// service resumes without a new Client.
func TestRedisRestart(t *testing.T) {
	srv := redistest.StartServer(t)
	for _, open := range []bool{false, true} {
		rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
		t.Cleanup(func() { rdb.Close() })
		logs := &countingHandler{}
		var unavailable []string
		var mu sync.Mutex
		// the grace outlasts go-redis's pause of a second between dials
		c := redislimit.New(rdb, redislimit.Options{RateFailOpen: open, Grace: 1200 * time.Millisecond, Logger: slog.New(logs),
			OnUnavailable: func(kind string, allowed bool) {
				mu.Lock()
				defer mu.Unlock()
				unavailable = append(unavailable, kind)
			}})
		t.Cleanup(func() { c.Close() })
		src := limittest.NewSource()
		q, l := c.Quota("keys", src), c.Limiter("keys")
		ctx := context.Background()

		src.Add("k", 2)
		end, err := q.Reserve(ctx, "k", 10)
		if err != nil {
			t.Fatal(err)
		}
		src.Add("k", 1)
		q.Charge(ctx, "k", 1)
		end() // spent 3, mean 1
		running, err := q.Reserve(ctx, "k", 10)
		if err != nil {
			t.Fatal(err)
		}

		srv.Stop()
		for range 5 {
			_, err := q.Reserve(ctx, "k", 10)
			var ae *apierror.Error
			if !errors.Is(err, limit.ErrUnavailable) || !errors.As(err, &ae) || ae.Status != 503 {
				t.Fatalf("Reserve with Redis down: %v, want ErrUnavailable (503)", err)
			}
			w, err := l.Take(ctx, "k", limit.PerMinute(100))
			if open && (err != nil || w != 0) {
				t.Fatalf("fail-open rate with Redis down: %v, %v", w, err)
			}
			if !open && !errors.Is(err, limit.ErrUnavailable) {
				t.Fatalf("fail-closed rate with Redis down: %v", err)
			}
		}
		// A charge made while Redis is down reaches the source only.
		src.Add("k", 4)
		if err := q.Charge(ctx, "k", 4); !errors.Is(err, limit.ErrUnavailable) {
			t.Fatalf("Charge with Redis down: %v", err)
		}
		if n := logs.errors(); n != 1 {
			t.Fatalf("%d error logs for one incident, want 1:\n%s", n, logs.buf.String())
		}
		mu.Lock()
		if len(unavailable) != 10 {
			t.Fatalf("OnUnavailable called %d times for 10 unchecked limits", len(unavailable))
		}
		mu.Unlock()

		srv.Start()
		// go-redis dials again at most once a second after a run of
		// failed dials; the renewal then tells the new Redis of the hold
		var got float64
		for deadline := time.Now().Add(5 * time.Second); ; {
			if got, err = q.Spent(ctx, "k"); err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("Spent after the restart: %v", err)
		}
		if got != 7 {
			t.Fatalf("Spent after the restart = %v, want 7 rebuilt from the source", got)
		}
		// 7 spent; the hold that ran through the restart is counted, at an
		// unknown cost (the new counter has seen no work end): wait for it.
		cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		_, err = q.Reserve(cctx, "k", 10)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("RateFailOpen %v: Reserve while the hold from before the restart runs: %v, want it to wait", open, err)
		}
		src.Add("k", 1)
		q.Charge(ctx, "k", 1)
		running()
		end, err = q.Reserve(ctx, "k", 10)
		if err != nil {
			t.Fatalf("Reserve once the running work ended: %v", err)
		}
		end()
		if w, err := l.Take(ctx, "k", limit.PerMinute(100)); err != nil || w != 0 {
			t.Fatalf("rate after the restart: %v, %v", w, err)
		}
		if !strings.Contains(logs.buf.String(), "answers again") {
			t.Fatalf("no recovery logged:\n%s", logs.buf.String())
		}
	}
}

// Redis that stays up but misses a charge (too slow to answer for a
// moment) drops the counter once it answers again, and rebuilds it from
// the source, which has the points.
func TestMissedChargeRebuildsTheCounter(t *testing.T) {
	srv := redistest.StartServer(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1, ReadTimeout: 100 * time.Millisecond})
	t.Cleanup(func() { rdb.Close() })
	src := limittest.NewSource()
	c := redislimit.New(rdb, redislimit.Options{Grace: 300 * time.Millisecond, Logger: slog.New(&countingHandler{})})
	t.Cleanup(func() { c.Close() })
	q := c.Quota("keys", src)
	ctx := context.Background()
	if got, err := q.Spent(ctx, "k"); err != nil || got != 0 {
		t.Fatal(got, err)
	}
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer admin.Close()
	if err := admin.Do(ctx, "CLIENT", "PAUSE", "500", "WRITE").Err(); err != nil {
		t.Fatal(err)
	}
	src.Add("k", 3)
	if err := q.Charge(ctx, "k", 3); !errors.Is(err, limit.ErrUnavailable) {
		t.Fatalf("a charge Redis is too slow for: %v, want ErrUnavailable", err)
	}
	if c.Up() {
		t.Fatal("the client does not know of the incident")
	}
	time.Sleep(600 * time.Millisecond) // the pause ends
	got, err := q.Spent(ctx, "k")
	if err != nil || got != 3 {
		t.Fatalf("Spent once Redis answers again = %v, %v; want 3, rebuilt from the source", got, err)
	}
}

// A Redis that restarts while work runs gets its counter back from the
// renewal, in its rebuilding state; charges made before anyone rebuilds it
// are in the source already and must not count twice once it is rebuilt.
func TestChargesBeforeTheRebuildCountOnce(t *testing.T) {
	srv := redistest.StartServer(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { rdb.Close() })
	src := limittest.NewSource()
	c := redislimit.New(rdb, redislimit.Options{Grace: 150 * time.Millisecond, Logger: slog.New(&countingHandler{})})
	t.Cleanup(func() { c.Close() })
	q := c.Quota("keys", src)
	ctx := context.Background()
	end, err := q.Reserve(ctx, "k", 100)
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	srv.Start()
	time.Sleep(200 * time.Millisecond) // the renewal makes the counter again
	for range 5 {
		src.Add("k", 1)
		if err := q.Charge(ctx, "k", 1); err != nil {
			t.Fatal(err)
		}
	}
	end()
	if got, err := q.Spent(ctx, "k"); err != nil || got != 5 {
		t.Fatalf("Spent = %v, %v; want 5: each charge once", got, err)
	}
	src.Add("k", 2)
	q.Charge(ctx, "k", 2)
	if got, _ := q.Spent(ctx, "k"); got != 7 {
		t.Fatalf("Spent after a charge on the rebuilt counter = %v, want 7", got)
	}
}

// takeUntilRefused takes from l until refused ten times in a row and
// returns how many were admitted.
func takeUntilRefused(t *testing.T, l limit.Limiter, key string, r limit.Rate) int {
	t.Helper()
	admitted, refusals := 0, 0
	for refusals < 10 {
		w, err := l.Take(context.Background(), key, r)
		if err != nil {
			t.Error(err)
			return admitted
		}
		if w == 0 {
			admitted++
			refusals = 0
		} else {
			refusals++
		}
	}
	return admitted
}

// Far from its limit a key is taken from in leases; three replicas with
// four callers each, racing to the limit, get exactly N, never more.
func TestLeasesAdmitExactlyN(t *testing.T) {
	rdb, prefix := redistest.Client(t)
	const n = 3000
	r := limit.PerMinute(n)
	var total sync.WaitGroup
	var mu sync.Mutex
	admitted := 0
	for range 3 {
		c := redislimit.New(rdb, redislimit.Options{Prefix: prefix, Grace: 50 * time.Millisecond})
		t.Cleanup(func() { c.Close() })
		l := c.Limiter("keys")
		for range 4 {
			total.Go(func() {
				a := takeUntilRefused(t, l, "k", r)
				mu.Lock()
				admitted += a
				mu.Unlock()
			})
		}
	}
	total.Wait()
	if admitted != n {
		t.Fatalf("12 callers on 3 replicas admitted %d of a key limited to %d a minute", admitted, n)
	}
	members, _ := rdb.ZCard(context.Background(), prefix+"rate:keys:k").Result()
	t.Logf("%d admitted; the log holds %d members", admitted, members)
}

// A lease that ends with slots unused gives them back, so that another
// replica may use them: A takes one event and stops, B then gets the rest.
func TestUnusedLeaseIsGivenBack(t *testing.T) {
	rdb, prefix := redistest.Client(t)
	const n = 1000
	r := limit.PerMinute(n)
	a := redislimit.New(rdb, redislimit.Options{Prefix: prefix, Grace: 50 * time.Millisecond})
	t.Cleanup(func() { a.Close() })
	b := redislimit.New(rdb, redislimit.Options{Prefix: prefix, Grace: 50 * time.Millisecond})
	t.Cleanup(func() { b.Close() })
	if w, err := a.Limiter("keys").Take(context.Background(), "k", r); err != nil || w != 0 {
		t.Fatalf("first take: %v, %v", w, err)
	}
	key := prefix + "rate:keys:k"
	leased, _ := rdb.ZCard(context.Background(), key).Result()
	if leased < 2 {
		t.Fatalf("the first take of a key far from its limit leased %d slots; want a lease", leased)
	}
	// the lease ends after 100 ms; the renewal loop (every 500 ms) gives it back
	deadline := time.Now().Add(5 * time.Second)
	for {
		m, _ := rdb.ZCard(context.Background(), key).Result()
		if m == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the log still holds %d members (leased %d, used 1)", m, leased)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := takeUntilRefused(t, b.Limiter("keys"), "k", r); got != n-1 {
		t.Fatalf("after A used 1 of its lease of %d, B got %d; want %d", leased, got, n-1)
	}
}

// A counter Redis makes again between a charge and the end of its work
// (evicted, dropped after a missed charge) must not learn of the work
// without its cost: a mean of 0 would let every request in.
func TestCounterMadeAgainBeforeTheEndKeepsTheCost(t *testing.T) {
	rdb, prefix := redistest.Client(t)
	c := redislimit.New(rdb, redislimit.Options{Prefix: prefix, Grace: 50 * time.Millisecond})
	t.Cleanup(func() { c.Close() })
	src := limittest.NewSource()
	q := c.Quota("keys", src)
	ctx := context.Background()
	end, err := q.Reserve(ctx, "k", 10)
	if err != nil {
		t.Fatal(err)
	}
	src.Add("k", 2)
	if err := q.Charge(ctx, "k", 2); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Del(ctx, prefix+"quota:keys:k").Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := q.Spent(ctx, "k"); err != nil || got != 2 {
		t.Fatalf("Spent of the counter made again = %v, %v; want 2 from the source", got, err)
	}
	end()
	// spent 2, mean 2: 2 + 0,1,2,3 running x 2 < 10 admits four
	var ends []func()
	defer func() {
		for _, e := range ends {
			e()
		}
	}()
	for i := range 4 {
		e, err := q.Reserve(ctx, "k", 10)
		if err != nil {
			t.Fatalf("reserve %d: %v", i, err)
		}
		ends = append(ends, e)
	}
	if _, err := q.Reserve(ctx, "k", 10); !errors.Is(err, limit.ErrSpent) {
		t.Fatalf("2 spent + 4 running at a mean of 2 against 10: %v, want ErrSpent", err)
	}
}

// A hold Redis let lapse (its replica cut off for longer than the lease)
// while its work still runs is held again at the next renewal.
func TestLapsedHoldIsHeldAgain(t *testing.T) {
	rdb, prefix := redistest.Client(t)
	c := redislimit.New(rdb, redislimit.Options{Prefix: prefix, Grace: 150 * time.Millisecond})
	t.Cleanup(func() { c.Close() })
	q := c.Quota("keys", limittest.NewSource())
	ctx := context.Background()
	end, err := q.Reserve(ctx, "k", 10)
	if err != nil {
		t.Fatal(err)
	}
	defer end()
	holds := prefix + "quota:keys:k:holds"
	ids, err := rdb.HKeys(ctx, holds).Result()
	if err != nil || len(ids) != 1 {
		t.Fatalf("holds %v, %v; want one", ids, err)
	}
	if err := rdb.HDel(ctx, holds, ids[0]).Err(); err != nil { // lapsed
		t.Fatal(err)
	}
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if ok, _ := rdb.HExists(ctx, holds, ids[0]).Result(); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the lapsed hold of running work is not held again after 2s of renewals every 50ms")
		}
	}
}

// A counter past its TTL is rebuilt from the source but keeps the mean
// cost: work admitted after the rebuild does not wait behind the work
// running through it, as if its cost were unknown.
func TestCounterTTLKeepsTheMean(t *testing.T) {
	rdb, prefix := redistest.Client(t)
	var mu sync.Mutex
	rebuilds := 0
	c := redislimit.New(rdb, redislimit.Options{Prefix: prefix, Grace: 50 * time.Millisecond, CounterTTL: time.Second,
		OnRebuild: func(string) {
			mu.Lock()
			defer mu.Unlock()
			rebuilds++
		}})
	t.Cleanup(func() { c.Close() })
	src := limittest.NewSource()
	q := c.Quota("keys", src)
	ctx := context.Background()
	end, err := q.Reserve(ctx, "k", 10)
	if err != nil {
		t.Fatal(err)
	}
	src.Add("k", 1)
	if err := q.Charge(ctx, "k", 1); err != nil {
		t.Fatal(err)
	}
	end() // mean 1
	running, err := q.Reserve(ctx, "k", 10)
	if err != nil {
		t.Fatal(err)
	}
	defer running()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := q.Spent(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		n := rebuilds
		mu.Unlock()
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the counter was not rebuilt within 5s of a 1s TTL")
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	e, err := q.Reserve(cctx, "k", 10)
	if err != nil {
		t.Fatalf("Reserve after the TTL's rebuild, 1 spent and 1 running at a mean of 1: %v", err)
	}
	e()
}

// A rebuild whose source failed lets the next caller rebuild at once,
// rather than keep every caller waiting out its lease.
func TestSourceErrorReleasesTheRebuild(t *testing.T) {
	src := limittest.NewSource()
	q := newClient(t, redislimit.Options{Grace: 50 * time.Millisecond}).Quota("keys", src)
	ctx := context.Background()
	boom := errors.New("ledger down")
	src.Fail(boom)
	if _, err := q.Reserve(ctx, "k", 10); !errors.Is(err, boom) {
		t.Fatalf("Reserve with its source failing: %v, want %v", err, boom)
	}
	src.Fail(nil)
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	end, err := q.Reserve(cctx, "k", 10)
	if err != nil {
		t.Fatalf("Reserve once the source answers again: %v", err)
	}
	end()
}

// A replica that missed a charge and then sits idle (no work of its own
// to renew, no calls) still drops the counter once Redis answers again,
// so that the other replicas do not go on counting without the charge.
func TestIdleReplicaRecoversAMissedCharge(t *testing.T) {
	srv := redistest.StartServer(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1, ReadTimeout: 100 * time.Millisecond})
	t.Cleanup(func() { rdb.Close() })
	src := limittest.NewSource()
	c := redislimit.New(rdb, redislimit.Options{Grace: 300 * time.Millisecond, Logger: slog.New(&countingHandler{})})
	t.Cleanup(func() { c.Close() })
	q := c.Quota("keys", src)
	ctx := context.Background()
	if _, err := q.Spent(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer admin.Close()
	if err := admin.Do(ctx, "CLIENT", "PAUSE", "300", "WRITE").Err(); err != nil {
		t.Fatal(err)
	}
	src.Add("k", 3)
	if err := q.Charge(ctx, "k", 3); !errors.Is(err, limit.ErrUnavailable) {
		t.Fatalf("a charge Redis is too slow for: %v, want ErrUnavailable", err)
	}
	counter := redislimit.DefaultPrefix + "quota:keys:k"
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if n, err := admin.Exists(ctx, counter).Result(); err == nil && n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the idle replica did not drop the counter that missed its charge within 3s")
		}
	}
}

// A charge that runs out the client's own deadline found Redis too slow:
// that is an incident, not a caller that went away.
func TestInternalTimeoutIsAnIncident(t *testing.T) {
	srv := redistest.StartServer(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1, ReadTimeout: 10 * time.Second, ContextTimeoutEnabled: true})
	t.Cleanup(func() { rdb.Close() })
	logs := &countingHandler{}
	c := redislimit.New(rdb, redislimit.Options{Grace: 300 * time.Millisecond, Logger: slog.New(logs)})
	t.Cleanup(func() { c.Close() })
	q := c.Quota("keys", limittest.NewSource())
	ctx := context.Background()
	if _, err := q.Spent(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer admin.Close()
	if err := admin.Do(ctx, "CLIENT", "PAUSE", "5000", "WRITE").Err(); err != nil {
		t.Fatal(err)
	}
	defer admin.Do(ctx, "CLIENT", "UNPAUSE")
	err := q.Charge(ctx, "k", 1) // runs out its own 2s
	if !errors.Is(err, limit.ErrUnavailable) {
		t.Fatalf("a charge Redis did not answer in time: %v, want ErrUnavailable", err)
	}
	if c.Up() || logs.errors() != 1 {
		t.Fatalf("up %v, %d error logs: the incident went unnoticed", c.Up(), logs.errors())
	}
}
