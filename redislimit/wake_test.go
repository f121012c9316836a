package redislimit

import (
	"context"
	"testing"
	"time"

	"github.com/chatgate/chatgate/internal/redistest"
	"github.com/chatgate/chatgate/limit/limittest"
)

// A Reserve that waits for the first cost of an account is woken by the end
// of the work it waits for, published through Redis, not by its poll.
func TestFirstEndWakesTheWaiters(t *testing.T) {
	rdb, prefix := redistest.Client(t)
	a := New(rdb, Options{Prefix: prefix, Grace: 50 * time.Millisecond})
	t.Cleanup(func() { a.Close() })
	b := New(rdb, Options{Prefix: prefix, Grace: 50 * time.Millisecond})
	t.Cleanup(func() { b.Close() })
	src := limittest.NewSource()
	qa, qb := a.Quota("keys", src), b.Quota("keys", src)
	ctx := context.Background()

	end, err := qa.Reserve(ctx, "k", 10) // runs; its cost is unknown
	if err != nil {
		t.Fatal(err)
	}
	counter := qb.keys("k").counter
	woken, stop := b.wake.wait(counter)
	defer stop()
	// b's subscription is up once Redis counts it beside a's
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		n, err := rdb.PubSubNumSub(ctx, b.wake.channel).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n[b.wake.channel] >= 2 { // a's and b's
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the waker never subscribed")
		}
	}
	select {
	case <-woken:
		t.Fatal("woken before any work ended")
	default:
	}
	src.Add("k", 1)
	if err := qa.Charge(ctx, "k", 1); err != nil {
		t.Fatal(err)
	}
	end() // the first end of the counter: published
	select {
	case <-woken:
	case <-time.After(10 * time.Second):
		t.Fatal("the first end of the counter did not wake a waiter on another replica")
	}
	stop()
	b.wake.mu.Lock()
	left := len(b.wake.sets)
	b.wake.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d wait sets left after every waiter stopped", left)
	}
	// and the waiter is admitted: the cost is known now
	endB, err := qb.Reserve(ctx, "k", 10)
	if err != nil {
		t.Fatal(err)
	}
	endB()
}
