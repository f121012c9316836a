package shareauth

import (
	"strconv"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

func TestBucketsRefillAndWait(t *testing.T) {
	b := newBuckets(0)
	now := time.Unix(1_800_000_000, 0)
	perSec := rate.Limit(1) // 60 a minute
	for i := range 3 {
		if _, ok := b.take("a", perSec, 3, now); !ok {
			t.Fatalf("take %d of a burst of 3 refused", i)
		}
	}
	wait, ok := b.take("a", perSec, 3, now)
	if ok || wait <= 0 || wait > time.Second {
		t.Fatalf("4th take: ok %v, wait %v (want refused, ≤ 1 s)", ok, wait)
	}
	if _, ok := b.take("b", perSec, 3, now); !ok {
		t.Fatal("another key was refused")
	}
	if _, ok := b.take("a", perSec, 3, now.Add(wait)); !ok {
		t.Fatalf("refused again after the wait it gave (%v)", wait)
	}
	// a changed limit starts afresh
	if _, ok := b.take("a", perSec, 5, now.Add(wait)); !ok {
		t.Fatal("a new burst did not start a new bucket")
	}
	b.drop("a")
	if b.size() != 1 {
		t.Fatalf("size after drop: %d", b.size())
	}
}

func TestBucketsStayBounded(t *testing.T) {
	b := newBuckets(100)
	now := time.Unix(1_800_000_000, 0)
	for i := range 1000 {
		b.take("k"+strconv.Itoa(i), rate.Limit(1), 2, now)
		if n := b.size(); n > 100 {
			t.Fatalf("%d buckets after %d keys, max 100", n, i+1)
		}
	}
	// Full buckets (idle keys) go before one that is spent: an eviction
	// that ignored this would drop the busy key's in about a quarter of
	// the rounds.
	for round := range 20 {
		b := newBuckets(100)
		for i := range 99 {
			b.take("idle"+strconv.Itoa(i), rate.Limit(1), 2, now)
		}
		later := now.Add(5 * time.Second) // the idle buckets are full again
		for range 2 {
			b.take("busy", rate.Limit(1), 2, later)
		}
		for i := range 30 {
			b.take("new"+strconv.Itoa(i), rate.Limit(1), 2, later)
		}
		if _, ok := b.take("busy", rate.Limit(1), 2, later); ok {
			t.Fatalf("round %d: the busy key's spent bucket was evicted while full ones stayed", round)
		}
	}
}
