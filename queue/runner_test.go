package queue_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/chatgate/chatgate/queue"
	"github.com/chatgate/chatgate/queue/queuetest"
)

// The suite's own reference store passes it, so a failure elsewhere is the
// other store's.
func TestMemStoreConformance(t *testing.T) {
	queuetest.TestStore(t, func(t *testing.T) queuetest.Harness[job] { return newMemStore().harness() })
}

type panicLog struct {
	mu  sync.Mutex
	got []string
}

func (p *panicLog) on(c string) { p.mu.Lock(); p.got = append(p.got, c); p.mu.Unlock() }
func (p *panicLog) list() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.got)
}

// inBubble runs fn in a synctest bubble with a fresh store.
func inBubble(t *testing.T, fn func(t *testing.T, ctx context.Context, st *memStore)) {
	synctest.Test(t, func(t *testing.T) { fn(t, context.Background(), newMemStore()) })
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestDoneJobsAreCompleted(t *testing.T) {
	inBubble(t, func(t *testing.T, ctx context.Context, st *memStore) {
		var worked sync.Map
		r := queue.Start[job](st, queue.HandlerFunc[job](func(_ context.Context, batch []job) []error {
			for _, j := range batch {
				worked.Store(j.id, true)
			}
			return nil
		}), queue.Options{BatchSize: 2, PollEvery: time.Hour, Logger: quiet()})
		defer r.Close(ctx)
		for i := range 5 {
			_ = st.add(ctx, fmt.Sprint(i), time.Now())
		}
		r.Wake()
		synctest.Wait()
		for i := range 5 {
			if _, ok := worked.Load(fmt.Sprint(i)); !ok {
				t.Errorf("job %d not worked", i)
			}
			if _, ok, _ := st.state(ctx, fmt.Sprint(i)); ok {
				t.Errorf("job %d still queued after it was done", i)
			}
		}
	})
}

func TestRetryBacksOffThenFails(t *testing.T) {
	inBubble(t, func(t *testing.T, ctx context.Context, st *memStore) {
		var tries []time.Duration
		start := time.Now()
		r := queue.Start[job](st, queue.HandlerFunc[job](func(_ context.Context, batch []job) []error {
			tries = append(tries, time.Since(start))
			return []error{errors.New("upstream down")}
		}), queue.Options{MaxAttempts: 4, RetryBase: time.Second, RetryMax: 3 * time.Second, PollEvery: 100 * time.Millisecond, Logger: quiet()})
		defer r.Close(ctx)
		_ = st.add(ctx, "j", start)
		r.Wake()
		time.Sleep(time.Minute)
		synctest.Wait()
		// attempts at 0, +1 s, +2 s more (3 s), +3 s more (capped: 6 s), then failed
		want := []time.Duration{0, time.Second, 3 * time.Second, 6 * time.Second}
		if len(tries) != len(want) {
			t.Fatalf("tried at %v, want %v", tries, want)
		}
		for i := range want {
			if d := tries[i] - want[i]; d < 0 || d > 100*time.Millisecond {
				t.Fatalf("tried at %v, want %v (each within a poll)", tries, want)
			}
		}
		a, ok, _ := st.state(ctx, "j")
		if !ok || !a.Failed || a.Attempts != 4 || a.Err != "upstream down" {
			t.Fatalf("after the last attempt: %+v ok=%v", a, ok)
		}
	})
}

func TestPermanentFailsAtOnceAndForeverRetries(t *testing.T) {
	inBubble(t, func(t *testing.T, ctx context.Context, st *memStore) {
		var n atomic.Int32
		r := queue.Start[job](st, queue.HandlerFunc[job](func(_ context.Context, batch []job) []error {
			errs := make([]error, len(batch))
			for i, j := range batch {
				if j.id == "bad" {
					errs[i] = fmt.Errorf("parsing: %w", queue.Permanent(errors.New("no pairs")))
				} else {
					n.Add(1)
					errs[i] = errors.New("again")
				}
			}
			return errs
		}), queue.Options{BatchSize: 8, RetryBase: time.Second, RetryMax: time.Minute, Logger: quiet()})
		defer r.Close(ctx)
		_ = st.add(ctx, "bad", time.Now())
		_ = st.add(ctx, "flaky", time.Now())
		r.Wake()
		time.Sleep(24 * time.Hour)
		synctest.Wait()
		if a, _, _ := st.state(ctx, "bad"); !a.Failed || a.Attempts != 1 || a.Err != "parsing: no pairs" {
			t.Fatalf("permanent failure: %+v", a)
		}
		// no MaxAttempts: tried forever, at most every RetryMax
		if a, _, _ := st.state(ctx, "flaky"); a.Failed || n.Load() < 24*60-10 || n.Load() > 24*60+10 {
			t.Fatalf("flaky after a day: %+v, %d attempts (want about one a minute)", a, n.Load())
		}
	})
}

func TestHandlerPanicFailsTheBatchNotTheProcess(t *testing.T) {
	inBubble(t, func(t *testing.T, ctx context.Context, st *memStore) {
		var logs bytes.Buffer
		var mu sync.Mutex
		pl := &panicLog{}
		h := queue.HandlerFunc[job](func(_ context.Context, batch []job) []error {
			for _, j := range batch {
				if j.id == "poison" {
					panic("boom: a poisoned job")
				}
			}
			return nil
		})
		opts := queue.Options{Name: "training", BatchSize: 1, RetryBase: time.Second, OnPanic: pl.on,
			Logger: slog.New(slog.NewTextHandler(&syncWriter{mu: &mu, w: &logs}, nil))}
		r := queue.Start[job](st, h, opts)
		defer r.Close(ctx)
		_ = st.add(ctx, "poison", time.Now())
		_ = st.add(ctx, "good", time.Now())
		r.Wake()
		time.Sleep(time.Second / 2)
		synctest.Wait()
		if a, _, _ := st.state(ctx, "poison"); a.Attempts != 1 || !strings.Contains(a.Err, "boom: a poisoned job") {
			t.Fatalf("the poisoned job: %+v", a)
		}
		if _, ok, _ := st.state(ctx, "good"); ok {
			t.Fatal("the job after the poisoned one was not worked")
		}
		if got := pl.list(); !slices.Equal(got, []string{"training"}) {
			t.Fatalf("OnPanic heard %v", got)
		}
		mu.Lock()
		l := logs.String()
		mu.Unlock()
		if !strings.Contains(l, "level=ERROR") || !strings.Contains(l, "goroutine") {
			t.Fatalf("no error log with the stack:\n%s", l)
		}
		_ = r.Close(ctx)

		// a restart meets the poisoned job again: it spends one more attempt
		r2 := queue.Start[job](st, h, opts)
		defer r2.Close(ctx)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if a, _, _ := st.state(ctx, "poison"); a.Attempts != 2 {
			t.Fatalf("after the restart: %+v", a)
		}
	})
}

func TestStorePanicEndsATurnNotTheRunner(t *testing.T) {
	inBubble(t, func(t *testing.T, ctx context.Context, st *memStore) {
		st.claimPanics = 1
		pl := &panicLog{}
		var worked atomic.Bool
		r := queue.Start[job](st, queue.HandlerFunc[job](func(context.Context, []job) []error {
			worked.Store(true)
			return nil
		}), queue.Options{Name: "training", StoreComponent: "training-queue", PollEvery: time.Second, OnPanic: pl.on, Logger: quiet()})
		defer r.Close(ctx)
		_ = st.add(ctx, "j", time.Now())
		synctest.Wait()
		if worked.Load() || !slices.Equal(pl.list(), []string{"training-queue"}) {
			t.Fatalf("the panicking turn: worked=%v, panics %v", worked.Load(), pl.list())
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if !worked.Load() {
			t.Fatal("the runner did not carry on after the store's panic")
		}
	})
}

func TestCloseInterruptsWithoutSpendingAnAttempt(t *testing.T) {
	inBubble(t, func(t *testing.T, ctx context.Context, st *memStore) {
		started := make(chan struct{})
		r := queue.Start[job](st, queue.HandlerFunc[job](func(ctx context.Context, batch []job) []error {
			close(started)
			<-ctx.Done()
			return []error{ctx.Err()}
		}), queue.Options{Logger: quiet()})
		_ = st.add(ctx, "j", time.Now())
		r.Wake()
		<-started
		if err := r.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if a, ok, _ := st.state(ctx, "j"); !ok || a.Attempts != 0 || a.Failed {
			t.Fatalf("after Close: %+v ok=%v; want still due, no attempt", a, ok)
		}
		if !slices.Equal(st.released, []string{"j"}) {
			t.Fatalf("released %v, want [j]: a store with leases gets the interrupted job back", st.released)
		}
	})
}

func TestWorkersNeverShareAJob(t *testing.T) {
	inBubble(t, func(t *testing.T, ctx context.Context, st *memStore) {
		var mu sync.Mutex
		running := map[string]bool{}
		count := map[string]int{}
		r := queue.Start[job](st, queue.HandlerFunc[job](func(_ context.Context, batch []job) []error {
			mu.Lock()
			for _, j := range batch {
				if running[j.id] {
					t.Errorf("%s worked twice at once", j.id)
				}
				running[j.id] = true
				count[j.id]++
			}
			mu.Unlock()
			time.Sleep(time.Second)
			mu.Lock()
			for _, j := range batch {
				running[j.id] = false
			}
			mu.Unlock()
			return nil
		}), queue.Options{Workers: 4, BatchSize: 3, Logger: quiet()})
		defer r.Close(ctx)
		for i := range 30 {
			_ = st.add(ctx, fmt.Sprintf("j%02d", i), time.Now())
		}
		r.Wake()
		time.Sleep(time.Minute)
		synctest.Wait()
		if len(count) != 30 {
			t.Fatalf("%d of 30 jobs worked", len(count))
		}
		for id, n := range count {
			if n != 1 {
				t.Errorf("%s worked %d times", id, n)
			}
		}
	})
}

func TestBackoff(t *testing.T) {
	for _, c := range []struct {
		attempts    int
		base, limit time.Duration
		want        time.Duration
	}{
		{1, time.Second, time.Minute, time.Second},
		{2, time.Second, time.Minute, 2 * time.Second},
		{7, time.Second, time.Minute, time.Minute},
		{200, time.Second, 10 * time.Minute, 10 * time.Minute},
		{40, time.Hour, 24 * time.Hour, 24 * time.Hour}, // would overflow a shift
		{0, time.Second, time.Minute, time.Second},
	} {
		if got := queue.Backoff(c.attempts, c.base, c.limit); got != c.want {
			t.Errorf("Backoff(%d, %v, %v) = %v, want %v", c.attempts, c.base, c.limit, got, c.want)
		}
	}
}

type syncWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
