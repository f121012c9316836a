package limit_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/chatgate/chatgate/limit"
	"github.com/chatgate/chatgate/limit/limittest"
)

func TestLocalConformance(t *testing.T) {
	limittest.TestLimiter(t, func(*testing.T) limit.Limiter { return new(limit.Local) })
}

func TestLocalQuotaConformance(t *testing.T) {
	limittest.TestQuota(t, func(_ *testing.T, src limit.Source) limit.Quota { return limit.NewLocalQuota(src) })
}

// A key limited to N a minute gets N in any minute, however its requests
// are spread: a sliding window, not a bucket that refills while it drains.
func TestLocalNeverMoreThanNInAnyWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var l limit.Local
		ctx := context.Background()
		r := limit.PerMinute(60)
		var admitted []time.Time
		start := time.Now()
		for time.Since(start) < 5*time.Minute {
			if w, _ := l.Take(ctx, "k", r); w == 0 {
				admitted = append(admitted, time.Now())
			}
			time.Sleep(250 * time.Millisecond)
		}
		for i := range admitted {
			j := i
			for j < len(admitted) && admitted[j].Sub(admitted[i]) < time.Minute {
				j++
			}
			if j-i > 60 {
				t.Fatalf("%d admitted in the minute from %v", j-i, admitted[i].Sub(start))
			}
		}
		// 4 a second offered: the first minute's 60, then one for each that left.
		if n := len(admitted); n < 299 || n > 301 {
			t.Fatalf("admitted %d in 5 minutes at 60 a minute", n)
		}
	})
}

func TestLocalWaitIsExact(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var l limit.Local
		ctx := context.Background()
		r := limit.PerMinute(2)
		l.Take(ctx, "k", r)
		time.Sleep(20 * time.Second)
		l.Take(ctx, "k", r)
		if w, _ := l.Take(ctx, "k", r); w != 40*time.Second {
			t.Fatalf("wait %v, want 40s: the first take leaves the window then", w)
		}
		time.Sleep(40 * time.Second)
		if w, _ := l.Take(ctx, "k", r); w != 0 {
			t.Fatalf("after the wait: %v", w)
		}
	})
}

func TestLocalStaysBounded(t *testing.T) {
	l := limit.Local{MaxKeys: 100}
	ctx := context.Background()
	for i := range 1000 {
		l.Take(ctx, string(rune('a'+i%26))+time.Duration(i).String(), limit.PerMinute(5))
	}
	if n := l.Len(); n > 100 {
		t.Fatalf("tracking %d keys, bound 100", n)
	}
}

// A key limited to millions a minute costs what it sends, not its limit.
func TestLocalWindowGrowsWithUse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var l limit.Local
		ctx := context.Background()
		r := limit.PerMinute(1 << 30)
		for i := range 1000 {
			if w, _ := l.Take(ctx, "k", r); w != 0 {
				t.Fatalf("take %d refused", i)
			}
		}
		if got := testing.AllocsPerRun(10, func() { l.Take(ctx, "other", r) }); got > 2 {
			t.Fatalf("%v allocations a take", got)
		}
		small := limit.PerMinute(40)
		for i := range 100 {
			w, _ := l.Take(ctx, "s", small)
			if (w == 0) != (i < 40) {
				t.Fatalf("take %d of 40 a minute: wait %v", i, w)
			}
		}
		time.Sleep(time.Minute)
		for i := range 40 {
			if w, _ := l.Take(ctx, "s", small); w != 0 {
				t.Fatalf("after a minute, take %d refused", i)
			}
		}
	})
}
