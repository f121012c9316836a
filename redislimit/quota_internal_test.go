package redislimit

import (
	"context"
	"testing"
	"time"

	"github.com/chatgate/chatgate/internal/redistest"
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
