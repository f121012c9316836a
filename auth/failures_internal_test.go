package auth

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/chatgate/chatgate/apierror"
)

func addrN(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
}

// A flood from many addresses costs bounded memory: the throttle tracks at
// most MaxTrackedAddrs of them, forgetting those whose minute is over first,
// and the audit groups fold into one overflow event per reason past
// maxAuditGroups, so every failure is still counted.
func TestFailureMemoryBounded(t *testing.T) {
	synctest.Test(t, testFailureMemoryBounded)
}

// testFailureMemoryBounded runs in a bubble, whose clock moves only when the
// test sleeps.
func testFailureMemoryBounded(t *testing.T) {
	store := NewMemoryStore()
	a := NewAuthenticator(store, Options{MaxTrackedAddrs: 100, FlushInterval: time.Hour})
	defer a.Close(context.Background())
	ctx := context.Background()
	const n = 10_000
	peak := 0
	for i := range n {
		_, _ = a.Authenticate(ctx, "never-issued-key", addrN(i))
		peak = max(peak, a.failures.tracked())
		a.failures.mu.Lock()
		groups := len(a.failures.groups)
		a.failures.mu.Unlock()
		if groups > maxAuditGroups+1 {
			t.Fatalf("%d audit groups held after %d addresses", groups, i+1)
		}
	}
	if peak > 100 {
		t.Fatalf("the throttle tracked %d addresses at once, cap 100", peak)
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	evs, _ := store.Audit(ctx, AuditQuery{Limit: 2 * maxAuditGroups})
	total, overflow := 0, 0
	for _, e := range evs {
		total += e.Count
		if e.RemoteIP == OverflowAddr {
			overflow = e.Count
		}
	}
	if len(evs) != maxAuditGroups+1 || total != n || overflow != n-maxAuditGroups {
		t.Fatalf("%d events counting %d failures (%d in the overflow); want %d counting %d", len(evs), total, overflow, maxAuditGroups+1, n)
	}

	// Addresses whose minute is over are forgotten before any other: after
	// a minute, one new address makes room by dropping them all.
	time.Sleep(time.Minute)
	_, _ = a.Authenticate(ctx, "never-issued-key", addrN(n+1))
	if got := a.failures.tracked(); got != 1 {
		t.Fatalf("after a quiet minute %d addresses are tracked, want 1", got)
	}
	// And an address over its limit stays throttled while the map has room.
	for range DefaultFailureLimitPerMinute {
		_, _ = a.Authenticate(ctx, "never-issued-key", addrN(1))
	}
	for i := range 90 {
		_, _ = a.Authenticate(ctx, "never-issued-key", addrN(20_000+i))
	}
	if _, err := a.Authenticate(ctx, "never-issued-key", addrN(1)); err == nil || apierror.Reason(err) != "too_many_auth_failures" {
		t.Fatalf("a throttled address among 91 others: %v", err)
	}
	// When the cap forces evictions, throttled addresses are kept first.
	for i := range 300 {
		_, _ = a.Authenticate(ctx, "never-issued-key", addrN(30_000+i))
		if got := a.failures.tracked(); got > 100 {
			t.Fatalf("%d addresses tracked, cap 100", got)
		}
	}
	if _, err := a.Authenticate(ctx, "never-issued-key", addrN(1)); err == nil || apierror.Reason(err) != "too_many_auth_failures" {
		t.Fatalf("a throttled address after evictions: %v", err)
	}
	// The loop's sweep forgets ended windows even with no new address.
	time.Sleep(time.Minute)
	a.failures.sweep(time.Now())
	if got := a.failures.tracked(); got != 0 {
		t.Fatalf("after the sweep %d addresses are tracked", got)
	}
}

// While the store refuses audit writes, every failed write puts its
// groups back: new groups keep coming meanwhile, and the map must stay
// bounded however long the outage lasts, nothing counted lost.
func TestFailureGroupsBoundedWhileWritesFail(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	f := newFailures(DefaultFailureLimitPerMinute, 100)
	total := 0
	for minute := range 30 {
		// a write takes the minutes that ended, and fails...
		evs := f.take(now, false)
		// ...while failures of new addresses keep coming...
		for i := range 2 * maxAuditGroups {
			f.add(AuditEvent{Action: AuditAuthFailed, Reason: "invalid_api_key", RemoteIP: fmt.Sprintf("192.0.2.%d/%d/%d", minute, i, i), Time: now})
			total++
		}
		// ...and it puts what it took back
		f.putBack(evs)
		now = now.Add(time.Minute)
		f.mu.Lock()
		n := len(f.groups)
		f.mu.Unlock()
		if n > maxAuditGroups+1+minute+1 {
			t.Fatalf("after %d failing minutes %d groups are held", minute+1, n)
		}
	}
	counted := 0
	for _, ev := range f.take(now, true) {
		counted += ev.Count
	}
	if counted != total {
		t.Fatalf("groups count %d failures; %d happened", counted, total)
	}
}
