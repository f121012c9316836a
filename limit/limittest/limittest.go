// Package limittest holds the conformance suites of limit.Limiter and
// limit.Quota. Every implementation runs them: the in-memory ones in the
// limit package, the Redis one in redislimit.
//
// The suites run on the implementation's own clock (Redis's, for one), so
// they wait in real time, in windows of a fraction of a second.
package limittest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatgate/chatgate/limit"
)

// TestLimiter checks a Limiter: newLimiter returns a fresh one (its keys
// unseen by any other) for each subtest.
func TestLimiter(t *testing.T, newLimiter func(t *testing.T) limit.Limiter) {
	ctx := context.Background()
	t.Run("WindowFillsThenWaits", func(t *testing.T) {
		l := newLimiter(t)
		r := limit.Rate{N: 5, Per: 400 * time.Millisecond}
		start := time.Now()
		for i := range 5 {
			if w, err := l.Take(ctx, "k", r); err != nil || w != 0 {
				t.Fatalf("take %d: wait %v, err %v; want admitted", i, w, err)
			}
		}
		w, err := l.Take(ctx, "k", r)
		if err != nil {
			t.Fatal(err)
		}
		if w <= 0 || w > r.Per {
			t.Fatalf("sixth take: wait %v, want in (0, %v]", w, r.Per)
		}
		if elapsed := time.Since(start); w < r.Per-elapsed-50*time.Millisecond {
			t.Fatalf("wait %v is short: the first take is %v old in a %v window", w, elapsed, r.Per)
		}
		time.Sleep(w + 20*time.Millisecond)
		if w, err := l.Take(ctx, "k", r); err != nil || w != 0 {
			t.Fatalf("after the wait: wait %v, err %v; want admitted", w, err)
		}
	})
	t.Run("KeysAreApart", func(t *testing.T) {
		l := newLimiter(t)
		r := limit.Rate{N: 1, Per: time.Minute}
		for _, k := range []string{"a", "b", "c"} {
			if w, err := l.Take(ctx, k, r); err != nil || w != 0 {
				t.Fatalf("%s: wait %v, err %v", k, w, err)
			}
		}
		if w, _ := l.Take(ctx, "a", r); w == 0 {
			t.Fatal("a second take of a is admitted")
		}
	})
	t.Run("Unlimited", func(t *testing.T) {
		l := newLimiter(t)
		for i := range 100 {
			if w, err := l.Take(ctx, "u", limit.Rate{}); err != nil || w != 0 {
				t.Fatalf("take %d of an unlimited rate: wait %v, err %v", i, w, err)
			}
		}
	})
	t.Run("ConcurrentTakesAdmitExactlyN", func(t *testing.T) {
		l := newLimiter(t)
		r := limit.PerMinute(37)
		var admitted atomic.Int64
		var wg sync.WaitGroup
		for range 40 {
			wg.Go(func() {
				for range 5 {
					w, err := l.Take(ctx, "c", r)
					if err != nil {
						t.Error(err)
						return
					}
					if w == 0 {
						admitted.Add(1)
					}
				}
			})
		}
		wg.Wait()
		if got := admitted.Load(); got != 37 {
			t.Fatalf("200 concurrent takes against 37 a minute admitted %d", got)
		}
	})
	t.Run("LoweredLimitKeepsTheWindow", func(t *testing.T) {
		l := newLimiter(t)
		for range 3 {
			if w, _ := l.Take(ctx, "l", limit.PerMinute(10)); w != 0 {
				t.Fatal("refused under the limit")
			}
		}
		if w, _ := l.Take(ctx, "l", limit.PerMinute(3)); w == 0 {
			t.Fatal("three events in the window, and a limit lowered to 3 admits a fourth")
		}
	})
}

// Source is a limit.Source in memory that a test charges, as the ledger
// would be charged before the Quota is told. It is safe for concurrent use.
type Source struct {
	mu    sync.Mutex
	spent map[string]float64
	err   error
	delay time.Duration
	reads atomic.Int64
}

// NewSource returns an empty Source.
func NewSource() *Source { return &Source{spent: map[string]float64{}} }

// Spent implements limit.Source.
func (s *Source) Spent(ctx context.Context, account string) (float64, error) {
	s.reads.Add(1)
	s.mu.Lock()
	d := s.delay
	s.mu.Unlock()
	if d > 0 {
		// a ledger under load: the read sees what was spent when it began
		s.mu.Lock()
		spent, err := s.spent[account], s.err
		s.mu.Unlock()
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		return spent, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.spent[account], s.err
}

// Slow makes every Spent take d, as a loaded ledger does.
func (s *Source) Slow(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// Add adds points to account.
func (s *Source) Add(account string, points float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.spent[account] += points
}

// Fail makes Spent return err (nil: answer again).
func (s *Source) Fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

// Reads returns how many times Spent was called.
func (s *Source) Reads() int64 { return s.reads.Load() }

// TestQuota checks a Quota: newQuota returns a fresh one (its accounts
// unseen by any other) over src for each subtest.
func TestQuota(t *testing.T, newQuota func(t *testing.T, src limit.Source) limit.Quota) {
	ctx := context.Background()
	// charge spends points as the domains do: the source first, then the quota.
	charge := func(t *testing.T, q limit.Quota, src *Source, account string, points float64) {
		t.Helper()
		src.Add(account, points)
		if err := q.Charge(ctx, account, points); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("NoBudgetIsNeverHeld", func(t *testing.T) {
		src := NewSource()
		q := newQuota(t, src)
		src.Add("a", 1e9)
		for range 10 {
			end, err := q.Reserve(ctx, "a", 0)
			if err != nil {
				t.Fatal(err)
			}
			defer end()
		}
	})
	t.Run("SpentFromTheSource", func(t *testing.T) {
		src := NewSource()
		src.Add("a", 7)
		q := newQuota(t, src)
		if got, err := q.Spent(ctx, "a"); err != nil || got != 7 {
			t.Fatalf("Spent = %v, %v; want 7 from the source", got, err)
		}
		charge(t, q, src, "a", 2.5)
		if got, err := q.Spent(ctx, "a"); err != nil || got != 9.5 {
			t.Fatalf("Spent after a charge = %v, %v; want 9.5", got, err)
		}
		if _, err := q.Reserve(ctx, "a", 9.5); !errors.Is(err, limit.ErrSpent) {
			t.Fatalf("Reserve at a budget of what is spent: %v, want ErrSpent", err)
		}
		end, err := q.Reserve(ctx, "a", 10)
		if err != nil {
			t.Fatalf("Reserve under the budget: %v", err)
		}
		end()
		end() // twice is harmless
	})
	t.Run("UnknownCostRunsOneAtATime", func(t *testing.T) {
		src := NewSource()
		q := newQuota(t, src)
		end1, err := q.Reserve(ctx, "a", 100)
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan error, 1)
		go func() {
			end2, err := q.Reserve(ctx, "a", 100)
			if err == nil {
				end2()
			}
			got <- err
		}()
		select {
		case err := <-got:
			t.Fatalf("a second piece of work was let in (%v) while the first, of unknown cost, runs", err)
		case <-time.After(150 * time.Millisecond):
		}
		charge(t, q, src, "a", 1)
		end1()
		select {
		case err := <-got:
			if err != nil {
				t.Fatalf("second Reserve once the first ended: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the second Reserve still waits after the first ended")
		}
	})
	t.Run("WaitEndsWithTheContext", func(t *testing.T) {
		src := NewSource()
		q := newQuota(t, src)
		end, err := q.Reserve(ctx, "a", 100)
		if err != nil {
			t.Fatal(err)
		}
		defer end()
		cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		if _, err := q.Reserve(cctx, "a", 100); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("a wait past the deadline: %v", err)
		}
	})
	t.Run("RunningWorkCountsAtTheMeanCost", func(t *testing.T) {
		src := NewSource()
		q := newQuota(t, src)
		end, err := q.Reserve(ctx, "a", 10)
		if err != nil {
			t.Fatal(err)
		}
		charge(t, q, src, "a", 2)
		end() // mean 2, spent 2
		var ends []func()
		for i := range 4 { // 2 + 0,1,2,3 running x 2 < 10
			end, err := q.Reserve(ctx, "a", 10)
			if err != nil {
				t.Fatalf("reserve %d: %v", i, err)
			}
			ends = append(ends, end)
		}
		if _, err := q.Reserve(ctx, "a", 10); !errors.Is(err, limit.ErrSpent) {
			t.Fatalf("2 spent + 4 running at 2 against 10: %v, want ErrSpent", err)
		}
		ends[0]()
		end, err = q.Reserve(ctx, "a", 10)
		if err != nil {
			t.Fatalf("after one of the running ended: %v", err)
		}
		end()
		for _, e := range ends[1:] {
			e()
		}
	})
	t.Run("ConcurrentRequestsOverspendAtMostOne", func(t *testing.T) {
		src := NewSource()
		q := newQuota(t, src)
		const cost, budget = 1.0, 5.5
		var answered atomic.Int64
		var wg sync.WaitGroup
		for range 150 {
			wg.Go(func() {
				end, err := q.Reserve(ctx, "a", budget)
				if errors.Is(err, limit.ErrSpent) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				time.Sleep(5 * time.Millisecond) // the work
				src.Add("a", cost)
				if err := q.Charge(ctx, "a", cost); err != nil {
					t.Error(err)
				}
				answered.Add(1)
				end()
			})
		}
		wg.Wait()
		spent, _ := src.Spent(ctx, "a")
		if n := answered.Load(); n > 6 || n < 5 {
			t.Fatalf("150 concurrent requests of cost 1 against a budget of 5.5: %d answered, want 5 or 6", n)
		}
		if over := spent - budget; over > cost {
			t.Fatalf("overspent by %v, more than one request's cost", over)
		}
	})
	t.Run("CrowdOnAColdCounterWithASlowSource", func(t *testing.T) {
		// 150 requests meet an account no one has read yet, and its source
		// takes 30 ms a read: all of them are answered, none waits out its
		// deadline (a crowd of rebuilds must not keep restarting each other).
		src := NewSource()
		src.Add("a", 2)
		src.Slow(30 * time.Millisecond)
		q := newQuota(t, src)
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		var answered, refused atomic.Int64
		var wg sync.WaitGroup
		for range 150 {
			wg.Go(func() {
				end, err := q.Reserve(ctx, "a", 5.5)
				if errors.Is(err, limit.ErrSpent) {
					refused.Add(1)
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				src.Add("a", 1)
				if err := q.Charge(ctx, "a", 1); err != nil {
					t.Error(err)
				}
				answered.Add(1)
				end()
			})
		}
		wg.Wait()
		if a, r := answered.Load(), refused.Load(); a+r != 150 || a < 3 || a > 4 {
			t.Fatalf("150 requests of cost 1, 2 of 5.5 spent: %d answered, %d refused; want 3 or 4 answered, the rest refused", a, r)
		}
	})
	t.Run("SourceErrorRefuses", func(t *testing.T) {
		src := NewSource()
		boom := errors.New("ledger down")
		src.Fail(boom)
		q := newQuota(t, src)
		if _, err := q.Reserve(ctx, "a", 10); err == nil {
			t.Fatal("Reserve admitted work with its source failing")
		}
		src.Fail(nil)
		end, err := q.Reserve(ctx, "a", 10)
		if err != nil {
			t.Fatalf("Reserve once the source answers again: %v", err)
		}
		end()
	})
	t.Run("AccountsAreApart", func(t *testing.T) {
		src := NewSource()
		q := newQuota(t, src)
		charge(t, q, src, "a", 10)
		if _, err := q.Reserve(ctx, "a", 10); !errors.Is(err, limit.ErrSpent) {
			t.Fatalf("a: %v", err)
		}
		end, err := q.Reserve(ctx, "b", 10)
		if err != nil {
			t.Fatalf("b, which spent nothing: %v", err)
		}
		end()
		if got, _ := q.Spent(ctx, "b"); got != 0 {
			t.Fatalf("b spent %v", got)
		}
	})
}
