package redislimit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/chatgate/chatgate/internal/redistest"
	"github.com/chatgate/chatgate/limit"
	"github.com/chatgate/chatgate/limit/limittest"
)

// liveHold reports whether Redis holds id as running work in holds.
func liveHold(t *testing.T, c *Client, holds, id string) bool {
	t.Helper()
	ctx := context.Background()
	v, err := c.rdb.HGet(ctx, holds, id).Float64()
	if err != nil {
		return false
	}
	now, err := c.rdb.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	return v > float64(now.UnixMilli())
}

// onlyHold returns the id of the one hold of this process.
func onlyHold(t *testing.T, c *Client) string {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.holds) != 1 {
		t.Fatalf("%d holds, want 1", len(c.holds))
	}
	for id := range c.holds {
		return id
	}
	return ""
}

// A renewal that read a hold before its end and reaches Redis after it
// must not bring the ended work back.
func TestRenewalAfterTheEndDoesNotBringItBack(t *testing.T) {
	rdb, prefix := redistest.Client(t)
	c := New(rdb, Options{Prefix: prefix, Grace: 50 * time.Millisecond})
	t.Cleanup(func() { c.Close() })
	q := c.Quota("keys", limittest.NewSource())
	ctx := context.Background()
	end, err := q.Reserve(ctx, "k", 10)
	if err != nil {
		t.Fatal(err)
	}
	id := onlyHold(t, c)
	c.mu.Lock()
	h := *c.holds[id]
	c.mu.Unlock()
	end()
	// the renewal's call, late
	if err := renewScript.Run(ctx, rdb, h.keys.list(c.epoch), append(c.quotaArgs(), h.epoch, id)...).Err(); err != nil {
		t.Fatal(err)
	}
	if liveHold(t, c, h.keys.holds, id) {
		t.Fatal("a late renewal brought an ended hold back")
	}
}

// A source slower than the rebuild's lease: each rebuild is taken over
// before it finishes, and still one of them must finish, or no caller is
// ever answered.
func TestSlowSourceRebuildFinishes(t *testing.T) {
	rdb, prefix := redistest.Client(t)
	c := New(rdb, Options{Prefix: prefix, Grace: 50 * time.Millisecond})
	t.Cleanup(func() { c.Close() })
	src := limittest.NewSource()
	src.Add("k", 1)
	src.Slow(300 * time.Millisecond)
	q := c.Quota("keys", src)
	q.rebuildLease = 100 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			end, err := q.Reserve(ctx, "k", 10)
			if err == nil {
				end()
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatalf("Reserve on a counter whose source takes 3 rebuild leases: %v", err)
		}
	}
	if got, err := q.Spent(ctx, "k"); err != nil || got != 1 {
		t.Fatalf("Spent = %v, %v; want 1", got, err)
	}
}

// slowProxy forwards TCP to a Redis, holding its answers back for delay
// while delay is set: the commands run, their answers come late.
type slowProxy struct {
	addr  string
	delay atomic.Int64 // ns
}

func startSlowProxy(t *testing.T, target string) *slowProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &slowProxy{addr: ln.Addr().String()}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			cl, err := ln.Accept()
			if err != nil {
				return
			}
			sv, err := net.Dial("tcp", target)
			if err != nil {
				cl.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, cl, sv)
			mu.Unlock()
			go func() {
				_, _ = io.Copy(sv, cl)
				sv.Close()
			}()
			go func() {
				defer cl.Close()
				buf := make([]byte, 32<<10)
				for {
					n, err := sv.Read(buf)
					if n > 0 {
						time.Sleep(time.Duration(p.delay.Load()))
						if _, werr := cl.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return p
}

// liveHolds counts the running work Redis holds in holds.
func liveHolds(t *testing.T, rdb *redis.Client, holds string) int {
	t.Helper()
	ctx := context.Background()
	all, err := rdb.HGetAll(ctx, holds).Result()
	if err != nil {
		t.Fatal(err)
	}
	now, err := rdb.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, v := range all {
		if f, _ := strconv.ParseFloat(v, 64); f > float64(now.UnixMilli()) {
			n++
		}
	}
	return n
}

// A Reserve whose answer is lost after its script ran (its context ended,
// the read timed out) leaves no hold behind to keep budget for a lease.
func TestFailedReserveLeavesNoHold(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     redis.Options
		deadline time.Duration
	}{
		{"ContextEnds", redis.Options{ContextTimeoutEnabled: true}, 200 * time.Millisecond},
		{"ReadTimesOut", redis.Options{ReadTimeout: 200 * time.Millisecond}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rdb, prefix := redistest.Client(t)
			p := startSlowProxy(t, redistest.Addr(t))
			opts := tc.opts
			opts.Addr, opts.MaxRetries = p.addr, -1
			prdb := redis.NewClient(&opts)
			t.Cleanup(func() { prdb.Close() })
			c := New(prdb, Options{Prefix: prefix, Grace: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
			t.Cleanup(func() { c.Close() })
			q := c.Quota("keys", limittest.NewSource())
			ctx := context.Background()
			end, err := q.Reserve(ctx, "k", 10)
			if err != nil {
				t.Fatal(err)
			}
			end()
			p.delay.Store(int64(time.Second))
			cctx, cancel := ctx, context.CancelFunc(func() {})
			if tc.deadline > 0 {
				cctx, cancel = context.WithTimeout(ctx, tc.deadline)
			}
			_, err = q.Reserve(cctx, "k", 10)
			cancel()
			if err == nil {
				t.Fatal("Reserve answered though its answer came too late")
			}
			p.delay.Store(0)
			holds := q.keys("k").holds
			for deadline := time.Now().Add(3 * time.Second); liveHolds(t, rdb, holds) > 0; time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("a failed Reserve (%v) left its hold for 3s", err)
				}
			}
		})
	}
}

// lostAnswers loses the answer of every Reserve's script after it ran, and
// fails the first failDrops drops before they reach Redis (sent alone or
// in a pipeline), as a Redis slow for a moment would.
type lostAnswers struct {
	failDrops int
	mu        sync.Mutex
	drops     int // drops that reached the hook
	piped     int // of them, those sent in a pipeline
}

var errLostAnswer = &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}

// failDrop counts a drop and reports whether it is to fail.
func (h *lostAnswers) failDrop(piped bool) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.drops++
	if piped {
		h.piped++
	}
	return h.drops <= h.failDrops
}

func (h *lostAnswers) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *lostAnswers) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		fail := false
		for _, cmd := range cmds {
			if args := cmd.Args(); len(args) > 1 && args[1] == dropScript.Hash() && h.failDrop(true) {
				fail = true
			}
		}
		if fail {
			for _, cmd := range cmds {
				cmd.SetErr(errLostAnswer)
			}
			return errLostAnswer
		}
		return next(ctx, cmds)
	}
}
func (h *lostAnswers) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		args := cmd.Args()
		if len(args) < 2 {
			return next(ctx, cmd)
		}
		switch args[1] {
		case reserveScript.Hash():
			if err := next(ctx, cmd); err != nil {
				return err
			}
			cmd.SetErr(errLostAnswer)
			return errLostAnswer
		case dropScript.Hash():
			if h.failDrop(false) {
				cmd.SetErr(errLostAnswer)
				return errLostAnswer
			}
		}
		return next(ctx, cmd)
	}
}

// builtCounter is a Client with grace and lease on a Redis of its own, its
// Quota "keys", whose counter of account "k" is built, and the drop script
// loaded: the drop tests' hooks fail tries before they reach Redis, so
// Script.Run would never load it.
func builtCounter(t *testing.T, grace, lease time.Duration) (*redis.Client, *Client, *Quota) {
	t.Helper()
	rdb, prefix := redistest.Client(t)
	c := New(rdb, Options{Prefix: prefix, Grace: grace, Lease: lease, Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(func() { c.Close() })
	q := c.Quota("keys", limittest.NewSource())
	ctx := context.Background()
	end, err := q.Reserve(ctx, "k", 10)
	if err != nil {
		t.Fatal(err)
	}
	end()
	if err := dropScript.Load(ctx, rdb).Err(); err != nil {
		t.Fatal(err)
	}
	return rdb, c, q
}

// A drop that fails is tried again, so that the hold it was to end does
// not keep the account's budget for a whole lease; the tries after the
// first go with the renewals, in one pipeline a tick.
func TestFailedDropIsTriedAgain(t *testing.T) {
	rdb, c, q := builtCounter(t, 50*time.Millisecond, time.Minute)
	lost := &lostAnswers{failDrops: 2}
	rdb.AddHook(lost)
	if _, err := q.Reserve(context.Background(), "k", 10); err == nil {
		t.Fatal("Reserve answered though its answer was lost")
	}
	holds := q.keys("k").holds
	waitFor(t, "the hold to be dropped", func() bool { return liveHolds(t, rdb, holds) == 0 })
	waitFor(t, "the drop to be forgotten", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.drops) == 0
	})
	lost.mu.Lock()
	defer lost.mu.Unlock()
	if lost.drops != 3 || lost.piped != 2 {
		t.Fatalf("the drop was tried %d times, %d of them in a pipeline; want 3, 2 (the first alone, two failed)", lost.drops, lost.piped)
	}
}

// A drop that keeps failing is given up once its hold would have lapsed.
func TestFailedDropIsGivenUpWithItsHold(t *testing.T) {
	rdb, c, q := builtCounter(t, 50*time.Millisecond, 300*time.Millisecond)
	lost := &lostAnswers{failDrops: math.MaxInt}
	rdb.AddHook(lost)
	if _, err := q.Reserve(context.Background(), "k", 10); err == nil {
		t.Fatal("Reserve answered though its answer was lost")
	}
	waitFor(t, "the drop to be kept", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.drops) == 1
	})
	waitFor(t, "the drop to be given up", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.drops) == 0
	})
	lost.mu.Lock()
	defer lost.mu.Unlock()
	// about Lease / (Grace/3) ticks: bounded, one call each
	if lost.drops < 3 || lost.drops > 30 {
		t.Fatalf("the drop was tried %d times in a 300ms lease at a 17ms tick", lost.drops)
	}
}

// dropPipes records the drops of each pipeline, and with hang holds every
// pipeline of drops until its context ends, noting how it ended.
type dropPipes struct {
	hang  bool
	mu    sync.Mutex
	sizes []int
	ended []error
}

func (h *dropPipes) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *dropPipes) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return next
}
func (h *dropPipes) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		n := 0
		for _, cmd := range cmds {
			if args := cmd.Args(); len(args) > 1 && args[1] == dropScript.Hash() {
				n++
			}
		}
		if n == 0 {
			return next(ctx, cmds)
		}
		h.mu.Lock()
		h.sizes = append(h.sizes, n)
		h.mu.Unlock()
		if !h.hang {
			return next(ctx, cmds)
		}
		<-ctx.Done()
		h.mu.Lock()
		h.ended = append(h.ended, context.Cause(ctx))
		h.mu.Unlock()
		for _, cmd := range cmds {
			cmd.SetErr(ctx.Err())
		}
		return ctx.Err()
	}
}

// A backlog of failed drops is tried a tick's share at a time, so that a
// Redis that answers pipelines all or nothing is never sent one too big to
// finish, and all of it is done in the end.
func TestDropBacklogIsTriedInParts(t *testing.T) {
	rdb, c, q := builtCounter(t, 50*time.Millisecond, time.Minute)
	pipes := &dropPipes{}
	rdb.AddHook(pipes)
	const backlog = 3*dropsPerTick + 10
	until := time.Now().Add(time.Minute)
	for i := range backlog {
		c.keepDrop(fmt.Sprintf("gone-%d", i), q.keys("k"), until)
	}
	waitFor(t, "the backlog to be done", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.drops) == 0
	})
	pipes.mu.Lock()
	defer pipes.mu.Unlock()
	sum := 0
	for _, n := range pipes.sizes {
		if n > dropsPerTick {
			t.Fatalf("a pipeline of %d drops; want at most %d", n, dropsPerTick)
		}
		sum += n
	}
	if sum != backlog || len(pipes.sizes) < 4 {
		t.Fatalf("%d drops sent in %d pipelines; want %d in at least 4", sum, len(pipes.sizes), backlog)
	}
}

// Drops that hang neither hold up the renewals of running work nor
// Close, which ends them.
func TestHangingDropsHoldUpNothing(t *testing.T) {
	rdb, c, q := builtCounter(t, 300*time.Millisecond, time.Second)
	ctx := context.Background()
	end, err := q.Reserve(ctx, "k", 10)
	if err != nil {
		t.Fatal(err)
	}
	defer end()
	id := onlyHold(t, c)
	pipes := &dropPipes{hang: true}
	rdb.AddHook(pipes)
	c.keepDrop("gone", q.keys("k"), time.Now().Add(time.Minute))
	// past two leases: a hold not renewed would have lapsed
	for deadline := time.Now().Add(2500 * time.Millisecond); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if !liveHold(t, c, q.keys("k").holds, id) {
			t.Fatal("running work's hold lapsed while a drop hung")
		}
	}
	c.Close()
	pipes.mu.Lock()
	defer pipes.mu.Unlock()
	if len(pipes.sizes) == 0 {
		t.Fatal("the drop was never tried")
	}
	if last := pipes.ended[len(pipes.ended)-1]; !errors.Is(last, context.Canceled) {
		t.Fatalf("the hanging drop ended with %v; want Close to cancel it", last)
	}
}

// A renewal whose rate part fails (here a rate log Redis will not take
// slots back from) still renews the quota holds.
func TestRateFailureDoesNotStopQuotaRenewal(t *testing.T) {
	rdb, prefix := redistest.Client(t)
	// the loop's own renewals every 10s stay out of the way; this test renews
	c := New(rdb, Options{Prefix: prefix, Grace: 30 * time.Second, Lease: time.Minute, Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(func() { c.Close() })
	ctx := context.Background()
	if err := rdb.Set(ctx, c.epoch, 1, 0).Err(); err != nil { // an old epoch: no grace
		t.Fatal(err)
	}
	q := c.Quota("keys", limittest.NewSource())
	end, err := q.Reserve(ctx, "k", 10)
	if err != nil {
		t.Fatal(err)
	}
	defer end()
	id := onlyHold(t, c)
	holds := q.keys("k").holds
	before, err := rdb.HGet(ctx, holds, id).Float64()
	if err != nil {
		t.Fatal(err)
	}
	l := c.Limiter("keys")
	if w, err := l.Take(ctx, "r", limit.PerMinute(1000)); err != nil || w != 0 {
		t.Fatalf("take: %v, %v", w, err)
	}
	if err := rdb.Set(ctx, l.prefix+"r", "not a log", 0).Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(leaseLife + 20*time.Millisecond) // the lease ends, with slots to give back
	_ = c.renew(ctx)
	after, err := rdb.HGet(ctx, holds, id).Float64()
	if err != nil {
		t.Fatal(err)
	}
	if after <= before {
		t.Fatalf("the hold expires at %v after the renewal, as before it: not renewed", after)
	}
}

// A Lease no longer than Grace would let holds lapse between renewals
// (and a Redis new from a restart admit before it has heard of them): New
// lengthens it.
func TestLeaseOutlivesGrace(t *testing.T) {
	for _, opts := range []Options{
		{Lease: time.Second}, // the default Grace is 1.5s
		{Lease: time.Second, Grace: time.Second},
		{Grace: time.Minute}, // the default Lease is 10s
	} {
		opts.Logger = slog.New(slog.DiscardHandler)
		c := New(redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}), opts)
		c.Close()
		if c.opts.Lease <= c.opts.Grace {
			t.Errorf("Options %+v: Lease %v, Grace %v; want Lease > Grace", opts, c.opts.Lease, c.opts.Grace)
		}
	}
}

// endOrder is a go-redis hook that sees the end scripts as they leave for
// Redis, and holds the first of them back until hold is closed.
type endOrder struct {
	hold    chan struct{}
	mu      sync.Mutex
	left    int       // ends that left for Redis
	charged []float64 // the points of each end, in the order Redis ran them
	ended   []int     // how many holds each end told of
}

func (h *endOrder) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *endOrder) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h *endOrder) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		// EVALSHA sha numkeys K H E lease grace ttl channel points ids...
		if args := cmd.Args(); len(args) > 10 && args[1] == endScript.Hash() {
			p, _ := strconv.ParseFloat(args[10].(string), 64)
			h.mu.Lock()
			h.left++
			first := h.left == 1
			h.mu.Unlock()
			if first {
				<-h.hold
			}
			// Redis runs one script at a time and answers when it is
			// done: the order of the answers is the order it ran them.
			err := next(ctx, cmd)
			h.mu.Lock()
			h.charged = append(h.charged, p)
			h.ended = append(h.ended, len(args)-11)
			h.mu.Unlock()
			return err
		}
		return next(ctx, cmd)
	}
}

func (h *endOrder) seen() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.left
}

// waitFor polls cond, which the goroutines under test make true soon.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for " + what)
		}
		runtime.Gosched()
	}
}

// Two holds of one account end here, the first taking the points both
// charged: the second, which takes none, must not reach Redis before it,
// or the mean falls below every piece of work's cost and Redis admits more
// than the budget allows (as it did, once in a while, on a loaded CPU).
func TestEndsReachRedisInTheOrderTheyTookThePoints(t *testing.T) {
	rdb, prefix := redistest.Client(t)
	c := New(rdb, Options{Prefix: prefix, Grace: 50 * time.Millisecond})
	t.Cleanup(func() { c.Close() })
	q := c.Quota("keys", limittest.NewSource())
	ctx := context.Background()
	work := func() func() {
		t.Helper()
		end, err := q.Reserve(ctx, "k", 100)
		if err != nil {
			t.Fatal(err)
		}
		return end
	}
	charge := func() {
		t.Helper()
		if err := q.Charge(ctx, "k", 1); err != nil {
			t.Fatal(err)
		}
	}
	first := work() // a known cost, so that the two below run together
	charge()
	first()

	endA, endB := work(), work()
	charge()
	charge() // both of the points wait for an end to take them
	order := &endOrder{hold: make(chan struct{})}
	rdb.AddHook(order)
	var wg sync.WaitGroup
	wg.Go(endA)
	waitFor(t, "the first end to leave", func() bool { return order.seen() == 1 })
	wg.Go(endB)
	waitFor(t, "the second end to queue or leave", func() bool {
		if order.seen() > 1 {
			return true
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		cs := c.costs[q.keys("k").counter]
		return cs != nil && cs.queued == 2
	})
	close(order.hold)
	wg.Wait()

	sum, n := 1.0, 1 // the first piece of work's
	for i, p := range order.charged {
		sum += p
		n += order.ended[i]
		if mean := sum / float64(n); mean < 1 {
			t.Fatalf("ends reached Redis as %v points for %v holds: the mean fell to %v, below the cost of 1", order.charged, order.ended, mean)
		}
	}
	if n != 3 || sum != 3 {
		t.Fatalf("Redis was told of %d ends and %v points, want 3 and 3", n, sum)
	}
	h, err := rdb.HGetAll(ctx, q.keys("k").counter).Result()
	if err != nil {
		t.Fatal(err)
	}
	if h["n"] != "3" || h["sum"] != "3" {
		t.Fatalf("the counter holds n=%s sum=%s, want 3 and 3", h["n"], h["sum"])
	}
}

// countWarnings counts the records a slog.Logger writes at Warn.
type countWarnings struct {
	slog.Handler
	n atomic.Int64
}

func (h *countWarnings) Enabled(context.Context, slog.Level) bool { return true }

func (h *countWarnings) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelWarn {
		h.n.Add(1)
	}
	return nil
}

// Failed drops past maxDrops are not kept, and that is logged once each
// time they fill, not once for every drop refused.
func TestTooManyFailedDropsAreLoggedOnce(t *testing.T) {
	rdb, prefix := redistest.Client(t)
	warn := &countWarnings{Handler: slog.DiscardHandler}
	c := New(rdb, Options{Prefix: prefix, Grace: time.Minute, Lease: 2 * time.Minute, Logger: slog.New(warn)})
	t.Cleanup(func() { c.Close() })
	k := c.Quota("keys", limittest.NewSource()).keys("k")
	until := time.Now().Add(time.Minute)
	fill := func(from int) {
		for i := from; i < from+maxDrops+3; i++ {
			c.keepDrop(fmt.Sprintf("gone-%d", i), k, until)
		}
	}
	fill(0)
	c.mu.Lock()
	kept := len(c.drops)
	c.mu.Unlock()
	if kept != maxDrops || warn.n.Load() != 1 {
		t.Fatalf("%d drops kept, %d warnings; want %d and 1", kept, warn.n.Load(), maxDrops)
	}
	c.mu.Lock()
	for id := range c.drops {
		if len(c.drops) < maxDrops-10 {
			break
		}
		delete(c.drops, id)
	}
	c.drained() // not half yet: refusing again is not news
	c.mu.Unlock()
	fill(maxDrops + 3)
	if warn.n.Load() != 1 {
		t.Fatalf("%d warnings after the drops touched the bound again; want 1", warn.n.Load())
	}
	c.mu.Lock()
	clear(c.drops)
	c.drained()
	c.mu.Unlock()
	fill(2 * (maxDrops + 3))
	if warn.n.Load() != 2 {
		t.Fatalf("%d warnings after the drops drained and filled again; want 2", warn.n.Load())
	}
}
