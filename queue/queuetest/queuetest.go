// Package queuetest checks that a queue.Store keeps the contract the
// queue.Runner relies on. A domain that stores its own jobs runs it on
// every implementation, as net/http's users run x/net/nettest on a
// net.Conn:
//
//	func TestTrainingQueue(t *testing.T) {
//		queuetest.TestStore(t, func(t *testing.T) queuetest.Harness[*Item] { ... })
//	}
package queuetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chatgate/chatgate/queue"
)

// Harness is a fresh, empty store under test with what the suite needs
// beyond queue.Store: putting a job in, and reading one back.
type Harness[J queue.Job] struct {
	Store queue.Store[J]
	// Add queues a new job with id, due at next, with no attempts.
	Add func(ctx context.Context, id string, next time.Time) error
	// State reads a job back; ok is false when it is no longer queued.
	State func(ctx context.Context, id string) (a queue.Attempt, ok bool, err error)
	// Exclusive says the store keeps the jobs one Claim returned from
	// every other Claim, as a store that several processes share must.
	Exclusive bool
}

// TestStore runs the suite; open returns a fresh, empty store each call.
func TestStore[J queue.Job](t *testing.T, open func(t *testing.T) Harness[J]) {
	ctx := context.Background()
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	add := func(t *testing.T, h Harness[J], id string, next time.Time) {
		t.Helper()
		if err := h.Add(ctx, id, next); err != nil {
			t.Fatalf("Add(%s): %v", id, err)
		}
	}
	claim := func(t *testing.T, h Harness[J], now time.Time, n int, skip func(string) bool) []string {
		t.Helper()
		if skip == nil {
			skip = func(string) bool { return false }
		}
		jobs, err := h.Store.Claim(ctx, now, n, skip)
		if err != nil {
			t.Fatalf("Claim: %v", err)
		}
		ids := make([]string, len(jobs))
		for i, j := range jobs {
			ids[i] = j.JobID()
		}
		return ids
	}

	t.Run("ClaimDueEarliestFirst", func(t *testing.T) {
		h := open(t)
		add(t, h, "late", base.Add(2*time.Minute))
		add(t, h, "b", base.Add(-time.Minute))
		add(t, h, "a", base.Add(-2*time.Minute))
		add(t, h, "c", base)
		// the earlier claim first: a store shared by several processes
		// keeps what a claim returned from the claims after it
		if got := claim(t, h, base.Add(-90*time.Second), 10, nil); !slices.Equal(got, []string{"a"}) {
			t.Fatalf("due 90 s earlier: %v, want [a]", got)
		}
		want := []string{"a", "b", "c"}
		if h.Exclusive {
			want = want[1:]
		}
		if got := claim(t, h, base, 10, nil); !slices.Equal(got, want) {
			t.Fatalf("due at base: %v, want %v", got, want)
		}
	})

	t.Run("ClaimHonoursNAndSkip", func(t *testing.T) {
		h := open(t)
		for i := range 5 {
			add(t, h, fmt.Sprintf("j%d", i), base.Add(time.Duration(i)*time.Second))
		}
		if got := claim(t, h, base.Add(time.Hour), 2, func(id string) bool { return id == "j0" }); !slices.Equal(got, []string{"j1", "j2"}) {
			t.Fatalf("n=2 skipping j0: %v, want [j1 j2]", got)
		}
		if got := claim(t, h, base.Add(time.Hour), 0, nil); len(got) != 0 {
			t.Fatalf("n=0: %v", got)
		}
	})

	t.Run("RescheduleDelaysAndCounts", func(t *testing.T) {
		h := open(t)
		add(t, h, "j", base)
		next := base.Add(time.Minute)
		if err := h.Store.Reschedule(ctx, "j", queue.Attempt{Attempts: 1, Next: next, Err: "boom"}); err != nil {
			t.Fatal(err)
		}
		a, ok, err := h.State(ctx, "j")
		if err != nil || !ok || a.Attempts != 1 || !a.Next.Equal(next) || a.Failed || a.Err != "boom" {
			t.Fatalf("after Reschedule: %+v ok=%v err=%v", a, ok, err)
		}
		if got := claim(t, h, base.Add(59*time.Second), 10, nil); len(got) != 0 {
			t.Fatalf("claimed before its next attempt: %v", got)
		}
		jobs, err := h.Store.Claim(ctx, next, 10, func(string) bool { return false })
		if err != nil || len(jobs) != 1 || jobs[0].JobAttempts() != 1 {
			t.Fatalf("at its next attempt: %d jobs, err %v", len(jobs), err)
		}
	})

	t.Run("FailedIsKeptNotClaimed", func(t *testing.T) {
		h := open(t)
		add(t, h, "j", base)
		if err := h.Store.Reschedule(ctx, "j", queue.Attempt{Attempts: 3, Failed: true, Err: "no pairs"}); err != nil {
			t.Fatal(err)
		}
		if got := claim(t, h, base.AddDate(1, 0, 0), 10, nil); len(got) != 0 {
			t.Fatalf("a failed job was claimed: %v", got)
		}
		a, ok, err := h.State(ctx, "j")
		if err != nil || !ok || !a.Failed || a.Attempts != 3 || a.Err != "no pairs" {
			t.Fatalf("failed job: %+v ok=%v err=%v", a, ok, err)
		}
	})

	t.Run("RescheduleGone", func(t *testing.T) {
		h := open(t)
		if err := h.Store.Reschedule(ctx, "nope", queue.Attempt{Attempts: 1, Next: base}); !errors.Is(err, queue.ErrGone) {
			t.Fatalf("Reschedule of an unknown job: %v, want ErrGone", err)
		}
		if _, ok, err := h.State(ctx, "nope"); err != nil || ok {
			t.Fatalf("Reschedule created a job: ok=%v err=%v", ok, err)
		}
	})

	t.Run("Complete", func(t *testing.T) {
		h := open(t)
		c, ok := h.Store.(queue.Completer)
		if !ok {
			t.Skip("the store is not a queue.Completer: its jobs leave with their results")
		}
		add(t, h, "a", base)
		add(t, h, "b", base)
		if err := c.Complete(ctx, []string{"a", "unknown"}); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := h.State(ctx, "a"); ok {
			t.Fatal("a completed job is still queued")
		}
		if got := claim(t, h, base, 10, nil); !slices.Equal(got, []string{"b"}) {
			t.Fatalf("after Complete: %v, want [b]", got)
		}
		if err := c.Complete(ctx, nil); err != nil {
			t.Fatalf("Complete(nil): %v", err)
		}
	})

	t.Run("ConcurrentClaimsAreExclusive", func(t *testing.T) {
		h := open(t)
		if !h.Exclusive {
			t.Skip("the store serves one process, whose Runner keeps its own claims apart")
		}
		const n = 40
		for i := range n {
			add(t, h, fmt.Sprintf("j%02d", i), base)
		}
		var (
			mu   sync.Mutex
			seen = map[string]int{}
			wg   sync.WaitGroup
		)
		for range 8 {
			wg.Go(func() {
				for {
					jobs, err := h.Store.Claim(ctx, base, 3, func(string) bool { return false })
					if err != nil {
						t.Error(err)
						return
					}
					if len(jobs) == 0 {
						return
					}
					mu.Lock()
					for _, j := range jobs {
						seen[j.JobID()]++
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(seen) != n {
			t.Fatalf("%d of %d jobs claimed", len(seen), n)
		}
		for id, k := range seen {
			if k != 1 {
				t.Errorf("%s claimed %d times", id, k)
			}
		}
	})
}
