package auth_test

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/auth"
)

// failedEvents returns the stored auth.failed events, newest first.
func failedEvents(t *testing.T, s auth.Store) []auth.AuditEvent {
	t.Helper()
	evs, err := s.Audit(ctx, auth.AuditQuery{Action: auth.AuditAuthFailed, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// byGroup indexes aggregated events by reason and address.
func byGroup(evs []auth.AuditEvent) map[string]auth.AuditEvent {
	m := map[string]auth.AuditEvent{}
	for _, e := range evs {
		m[e.Reason+" "+e.RemoteIP+" "+e.KeyID] = e
	}
	return m
}

// Failures are counted in memory and written as one event per reason,
// address and key when their minute is over: a flood costs one write.
func TestFailuresAggregated(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs := newCountingStore()
		a := auth.NewAuthenticator(cs, auth.Options{FlushInterval: 5 * time.Second, FailureLimitPerMinute: -1})
		defer a.Close(ctx)
		m := auth.NewManager(cs, a)
		k, secret, err := m.Create(ctx, auth.KeySpec{Name: "off", TeamID: "team-x"})
		if err != nil {
			t.Fatal(err)
		}
		yes := true
		if _, err := m.Update(ctx, "", k.ID, auth.KeyUpdate{Disabled: &yes}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		cs.writes.Store(0)
		start := time.Now()

		ipA, ipB := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::7")
		for range 300 {
			_, _ = a.Authenticate(ctx, "never-issued-key", ipA)
		}
		for range 200 {
			_, _ = a.Authenticate(ctx, "x", ipB) // too short to be a key
		}
		time.Sleep(10 * time.Second)
		for range 7 {
			_, _ = a.Authenticate(ctx, secret, ipA)
		}
		synctest.Wait()
		// Two ticks have passed inside the minute: nothing is written yet.
		if evs := failedEvents(t, cs); len(evs) != 0 || cs.writes.Load() != 0 {
			t.Fatalf("%d writes, %d events inside the minute: %+v", cs.writes.Load(), len(evs), evs)
		}

		time.Sleep(time.Minute) // the minute ends; the next tick writes it
		synctest.Wait()
		evs := failedEvents(t, cs)
		if n := cs.writes.Load(); n != 1 {
			t.Fatalf("507 failures cost %d store writes, want 1", n)
		}
		g := byGroup(evs)
		if len(evs) != 3 {
			t.Fatalf("%d events, want 3: %+v", len(evs), evs)
		}
		if e := g["invalid_api_key 192.0.2.1 "]; e.Count != 300 || !e.Time.Equal(start.UTC()) {
			t.Fatalf("unknown keys from A: %+v", e)
		}
		if e := g["invalid_api_key 2001:db8::7 "]; e.Count != 200 {
			t.Fatalf("garbage from B: %+v", e)
		}
		if e := g["api_key_disabled 192.0.2.1 "+k.ID]; e.Count != 7 || e.Hint != k.Hint || e.TeamID != "team-x" ||
			!e.Time.Equal(start.Add(10*time.Second).UTC()) {
			t.Fatalf("the disabled key: %+v", e)
		}

		// Failures of the next minute make new events, not changes to old ones.
		_, _ = a.Authenticate(ctx, "never-issued-key", ipA)
		if err := a.Close(ctx); err != nil { // Close writes the open minute
			t.Fatal(err)
		}
		if evs := failedEvents(t, cs); len(evs) != 4 || evs[0].Count != 1 || evs[0].RemoteIP != "192.0.2.1" {
			t.Fatalf("after Close: %+v", evs)
		}
	})
}

// Manager.Audit writes what is pending first, so the trail it shows is
// current; the rest of the minute then makes another event.
func TestAuditQueryIsCurrent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := auth.NewMemoryStore()
		a := auth.NewAuthenticator(store, auth.Options{FailureLimitPerMinute: -1})
		defer a.Close(ctx)
		m := auth.NewManager(store, a)
		ip := netip.MustParseAddr("192.0.2.9")
		for range 5 {
			_, _ = a.Authenticate(ctx, "never-issued-key", ip)
		}
		evs, err := m.Audit(ctx, auth.AuditQuery{Action: auth.AuditAuthFailed})
		if err != nil || len(evs) != 1 || evs[0].Count != 5 {
			t.Fatalf("Audit = %+v, %v; want one event of 5", evs, err)
		}
		for range 3 {
			_, _ = a.Authenticate(ctx, "never-issued-key", ip)
		}
		evs, _ = m.Audit(ctx, auth.AuditQuery{Action: auth.AuditAuthFailed})
		if len(evs) != 2 || evs[0].Count != 3 || evs[1].Count != 5 {
			t.Fatalf("second Audit = %+v", evs)
		}
	})
}

// A client address that fails too often is answered 429 with Retry-After
// until its minute is over, whatever the bad key; a valid key, or a real
// key refused for its own reason, is answered as ever.
func TestFailureThrottle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var (
			mu      sync.Mutex
			reasons []string
		)
		store := auth.NewMemoryStore()
		a := auth.NewAuthenticator(store, auth.Options{FailureLimitPerMinute: 5, OnFailure: func(r string) {
			mu.Lock()
			reasons = append(reasons, r)
			mu.Unlock()
		}})
		defer a.Close(ctx)
		m := auth.NewManager(store, a)
		_, good, err := m.Create(ctx, auth.KeySpec{Name: "good", AppID: "app-1"})
		if err != nil {
			t.Fatal(err)
		}
		off, offKey, _ := m.Create(ctx, auth.KeySpec{Name: "off", AppID: "app-1"})
		yes := true
		if _, err := m.Update(ctx, "", off.ID, auth.KeyUpdate{Disabled: &yes}); err != nil {
			t.Fatal(err)
		}
		ipA := netip.MustParseAddr("192.0.2.1")
		start := time.Now()
		bad := []string{"never-issued-key", "x", "cg-" + strings.Repeat("A", 49), good[:len(good)-1], "never-issued-key"}
		for i, tok := range bad {
			_, err := a.Authenticate(ctx, tok, ipA)
			if !errors.Is(err, auth.ErrInvalidKey) || errors.Is(err, auth.ErrTooManyFailures) {
				t.Fatalf("failure %d of 5: %v", i+1, err)
			}
			time.Sleep(time.Second)
		}
		time.Sleep(15 * time.Second)
		_, err = a.Authenticate(ctx, "never-issued-key", ipA)
		var ae *apierror.Error
		if !errors.Is(err, auth.ErrTooManyFailures) || errors.Is(err, auth.ErrInvalidKey) || !errors.As(err, &ae) ||
			ae.HTTPStatus() != 429 || ae.StatusText() != "too_many_auth_failures" {
			t.Fatalf("failure 6: %v", err)
		}
		// The window opened with the first failure, 20 s ago.
		if want := time.Minute - time.Since(start); ae.RetryAfter != want || ae.RetryAfterSeconds() != 40 {
			t.Fatalf("Retry-After %v (%d s), want %v", ae.RetryAfter, ae.RetryAfterSeconds(), want)
		}
		// A valid key from the throttled address passes, every time.
		for range 10 {
			if p, err := a.Authenticate(ctx, good, ipA); err != nil || p.AppID != "app-1" {
				t.Fatalf("a valid key from a throttled address: %v", err)
			}
		}
		// A disabled key is a real key: its own answer, not the throttle's.
		if _, err := a.Authenticate(ctx, offKey, ipA); !errors.Is(err, auth.ErrKeyDisabled) {
			t.Fatalf("a disabled key from a throttled address: %v", err)
		}
		// Other addresses are not affected; an IPv6 client counts by its /64.
		if _, err := a.Authenticate(ctx, "never-issued-key", netip.MustParseAddr("192.0.2.2")); !errors.Is(err, auth.ErrInvalidKey) {
			t.Fatalf("another address: %v", err)
		}
		for i := range 6 {
			_, _ = a.Authenticate(ctx, "never-issued-key", netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i + 1)}))
		}
		if _, err := a.Authenticate(ctx, "never-issued-key", netip.MustParseAddr("2001:db8::ff")); !errors.Is(err, auth.ErrTooManyFailures) {
			t.Fatalf("the seventh address of one /64: %v", err)
		}
		if _, err := a.Authenticate(ctx, "never-issued-key", netip.MustParseAddr("2001:db8:0:1::1")); !errors.Is(err, auth.ErrInvalidKey) {
			t.Fatalf("another /64: %v", err)
		}
		// An IPv4 client seen as IPv4-mapped IPv6 is the same client.
		if _, err := a.Authenticate(ctx, "x", netip.MustParseAddr("::ffff:192.0.2.1")); !errors.Is(err, auth.ErrTooManyFailures) {
			t.Fatalf("A as an IPv4-mapped address: %v", err)
		}

		time.Sleep(40 * time.Second) // A's minute is over
		if _, err := a.Authenticate(ctx, "never-issued-key", ipA); !errors.Is(err, auth.ErrInvalidKey) || errors.Is(err, auth.ErrTooManyFailures) {
			t.Fatalf("after the minute: %v", err)
		}

		mu.Lock()
		got := slices.Clone(reasons)
		mu.Unlock()
		want := []string{"invalid_api_key", "invalid_api_key", "invalid_api_key", "invalid_api_key", "invalid_api_key",
			"too_many_auth_failures", "api_key_disabled", "invalid_api_key",
			"invalid_api_key", "invalid_api_key", "invalid_api_key", "invalid_api_key", "invalid_api_key", "too_many_auth_failures",
			"too_many_auth_failures", "invalid_api_key", "too_many_auth_failures", "invalid_api_key"}
		if !slices.Equal(got, want) {
			t.Fatalf("OnFailure reasons\n got %v\nwant %v", got, want)
		}
		if err := a.Close(ctx); err != nil {
			t.Fatal(err)
		}
		g := byGroup(failedEvents(t, store))
		if e := g["invalid_api_key 192.0.2.1 "]; e.Count != 5 {
			t.Fatalf("A's first minute: %+v", e)
		}
		if e := g["too_many_auth_failures 192.0.2.1 "]; e.Count != 1 {
			t.Fatalf("A's throttled requests: %+v (%v)", e, g)
		}
		if e := g["too_many_auth_failures ::ffff:192.0.2.1 "]; e.Count != 1 {
			t.Fatalf("A's throttled request over IPv6: %+v (%v)", e, g)
		}
	})
}

// The throttle's defaults: 60 a minute, and off when negative.
func TestFailureThrottleDefaults(t *testing.T) {
	for _, tc := range []struct {
		limit, passes int
	}{{0, auth.DefaultFailureLimitPerMinute}, {-1, 500}} {
		a := auth.NewAuthenticator(auth.NewMemoryStore(), auth.Options{FailureLimitPerMinute: tc.limit, FlushInterval: time.Hour})
		ip := netip.MustParseAddr("192.0.2.1")
		n := 0
		for range 500 {
			_, err := a.Authenticate(ctx, "never-issued-key", ip)
			if errors.Is(err, auth.ErrTooManyFailures) {
				break
			}
			n++
		}
		if n != tc.passes {
			t.Errorf("limit %d: %d failures answered 401 before the throttle, want %d", tc.limit, n, tc.passes)
		}
		// Direct callers that know no client address are never throttled.
		for range 100 {
			if _, err := a.Authenticate(ctx, "never-issued-key", netip.Addr{}); !errors.Is(err, auth.ErrInvalidKey) {
				t.Fatalf("no address: %v", err)
			}
		}
		_ = a.Close(ctx)
	}
}

// The audit trail is trimmed by age and count at start and hourly.
func TestAuditTrimmed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := auth.NewMemoryStore()
		now := time.Now()
		var old []auth.AuditEvent
		for i := range 20 { // 100 days old: past the default 90
			old = append(old, auth.AuditEvent{Time: now.Add(-100*24*time.Hour + time.Duration(i)*time.Second), Action: auth.AuditKeyCreated})
		}
		for i := range 30 {
			old = append(old, auth.AuditEvent{Time: now.Add(-time.Hour + time.Duration(i)*time.Second), Action: auth.AuditAuthFailed})
		}
		if err := store.AppendAudit(ctx, old); err != nil {
			t.Fatal(err)
		}
		a := auth.NewAuthenticator(store, auth.Options{AuditMaxEvents: 25, FlushInterval: 5 * time.Second})
		defer a.Close(ctx)
		synctest.Wait()
		evs, _ := store.Audit(ctx, auth.AuditQuery{Limit: 1000})
		if len(evs) != 25 || evs[24].Time.Before(now.Add(-time.Hour)) || evs[0].Seq != 50 {
			t.Fatalf("after the start-up trim: %d events, oldest %v", len(evs), evs[len(evs)-1])
		}
		more := make([]auth.AuditEvent, 10)
		for i := range more {
			more[i] = auth.AuditEvent{Time: now, Action: auth.AuditAuthFailed}
		}
		if err := store.AppendAudit(ctx, more); err != nil {
			t.Fatal(err)
		}
		time.Sleep(59 * time.Minute)
		synctest.Wait()
		if evs, _ := store.Audit(ctx, auth.AuditQuery{Limit: 1000}); len(evs) != 35 {
			t.Fatalf("trimmed before the hour: %d events", len(evs))
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if evs, _ := store.Audit(ctx, auth.AuditQuery{Limit: 1000}); len(evs) != 25 || evs[0].Seq != 60 {
			t.Fatalf("after the hourly trim: %d events", len(evs))
		}
	})
	// Negative bounds keep everything.
	synctest.Test(t, func(t *testing.T) {
		store := auth.NewMemoryStore()
		evs := []auth.AuditEvent{{Time: time.Now().Add(-1000 * 24 * time.Hour), Action: auth.AuditKeyCreated}, {Time: time.Now(), Action: auth.AuditKeyCreated}}
		if err := store.AppendAudit(ctx, evs); err != nil {
			t.Fatal(err)
		}
		a := auth.NewAuthenticator(store, auth.Options{AuditMaxEvents: -1, AuditRetention: -1})
		synctest.Wait()
		_ = a.Close(ctx)
		if got, _ := store.Audit(ctx, auth.AuditQuery{}); len(got) != 2 {
			t.Fatalf("with no bounds: %d events left", len(got))
		}
	})
}

// panickyStore panics in the calls the background loop makes, a set
// number of times each.
type panickyStore struct {
	*auth.MemoryStore
	usage, audit, trim atomic.Int32
}

func (s *panickyStore) AddUsage(ctx context.Context, us []auth.Usage) error {
	if s.usage.Add(-1) >= 0 {
		panic("usage: disk on fire")
	}
	return s.MemoryStore.AddUsage(ctx, us)
}

func (s *panickyStore) AppendAudit(ctx context.Context, evs []auth.AuditEvent) error {
	if s.audit.Add(-1) >= 0 {
		var m map[string]int
		m["boom"]++ // a runtime error, as a real bug would be
	}
	return s.MemoryStore.AppendAudit(ctx, evs)
}

func (s *panickyStore) TrimAudit(ctx context.Context, before time.Time, keep int) (int, error) {
	if s.trim.Add(-1) >= 0 {
		panic(errors.New("trim: index out of range"))
	}
	return s.MemoryStore.TrimAudit(ctx, before, keep)
}

// records is a slog handler that keeps what it is given.
type records struct {
	mu  sync.Mutex
	got []slog.Record
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, rec.Clone())
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

// at returns the records of a level as "message attr=value ..." lines.
func (r *records) at(level slog.Level) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, rec := range r.got {
		if rec.Level != level {
			continue
		}
		line := rec.Message
		rec.Attrs(func(a slog.Attr) bool {
			line += " " + a.Key + "=" + a.Value.String()
			return true
		})
		out = append(out, line)
	}
	return out
}

// errors returns the error-level records.
func (r *records) errors() []string { return r.at(slog.LevelError) }

// A panic in the background loop (usage flush, audit write, trim) is
// recovered, logged at error with its stack, counted through OnPanic, and
// the loop carries on: the usage and the failures it was writing are
// written by a later tick, none lost.
func TestBackgroundPanicsRecovered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ps := &panickyStore{MemoryStore: auth.NewMemoryStore()}
		ps.usage.Store(1)
		ps.audit.Store(1)
		ps.trim.Store(1)
		var (
			mu    sync.Mutex
			comps []string
		)
		log := &records{}
		a := auth.NewAuthenticator(ps, auth.Options{FlushInterval: 5 * time.Second, Logger: slog.New(log),
			OnPanic: func(c string) { mu.Lock(); comps = append(comps, c); mu.Unlock() }})
		m := auth.NewManager(ps, a)
		k, secret, err := m.Create(ctx, auth.KeySpec{Name: "k", AppID: "app-1"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Authenticate(ctx, secret, loopback); err != nil {
			t.Fatal(err)
		}
		if err := a.Charge(ctx, k.ID, 2.5); err != nil {
			t.Fatal(err)
		}
		_, _ = a.Authenticate(ctx, "never-issued-key", loopback)
		used := time.Now()

		time.Sleep(70 * time.Second) // the first tick's flush panics, as does the write of the closed minute
		synctest.Wait()
		mu.Lock()
		got := slices.Clone(comps)
		mu.Unlock()
		if !slices.Equal(got, []string{"auth", "auth", "auth"}) {
			t.Fatalf("OnPanic calls %v, want three for auth", got)
		}
		errs := log.errors()
		if len(errs) != 3 {
			t.Fatalf("error logs: %q", errs)
		}
		for i, want := range []string{"trim: index out of range", "usage: disk on fire", "assignment to entry in nil map"} {
			if !strings.Contains(errs[i], want) || !strings.Contains(errs[i], "stack=goroutine") || !strings.Contains(errs[i], "panicked") {
				t.Fatalf("error log %d = %q; want the panic %q with its stack", i, errs[i], want)
			}
		}
		// Nothing was lost: later ticks wrote the usage and the failure.
		stored, err := ps.MemoryStore.Get(ctx, k.ID)
		if err != nil || stored.UsagePoints != 2.5 || !stored.LastUsedTime.Equal(used.UTC()) {
			t.Fatalf("usage after the panics: %+v, %v", stored, err)
		}
		if evs := failedEvents(t, ps.MemoryStore); len(evs) != 1 || evs[0].Count != 1 {
			t.Fatalf("audit after the panics: %+v", evs)
		}
		// The authenticator still works, and closes cleanly.
		if _, err := a.Authenticate(ctx, secret, loopback); err != nil {
			t.Fatal(err)
		}
		if err := a.Close(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// A store that panics while Close flushes makes Close fail, not the caller
// crash, and what could not be written is reported.
func TestClosePanicIsAnError(t *testing.T) {
	ps := &panickyStore{MemoryStore: auth.NewMemoryStore()}
	a := auth.NewAuthenticator(ps, auth.Options{FlushInterval: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	_, _ = a.Authenticate(ctx, "never-issued-key", loopback)
	ps.audit.Store(1)
	err := a.Close(ctx)
	if err == nil || !strings.Contains(err.Error(), "writing 1 audit events") || !strings.Contains(err.Error(), "nil map") {
		t.Fatalf("Close = %v", err)
	}
}

// slowTrimStore is a store whose audit trim lasts until it is cancelled,
// as the first trim after a flood of millions of events may.
type slowTrimStore struct {
	*auth.MemoryStore
	trimming chan struct{}
}

func (s *slowTrimStore) TrimAudit(ctx context.Context, before time.Time, keep int) (int, error) {
	close(s.trimming)
	<-ctx.Done()
	return 0, ctx.Err()
}

// A long audit trim holds up neither the usage flushes nor Close.
func TestLongTrimBlocksNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &slowTrimStore{MemoryStore: auth.NewMemoryStore(), trimming: make(chan struct{})}
		a := auth.NewAuthenticator(st, auth.Options{FlushInterval: time.Second, AuditRetention: time.Hour})
		m := auth.NewManager(st, a)
		k, _, err := m.Create(ctx, auth.KeySpec{Name: "k"})
		if err != nil {
			t.Fatal(err)
		}
		<-st.trimming
		if err := a.Charge(ctx, k.ID, 2); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second) // two flush ticks, the trim still running
		synctest.Wait()
		if got, err := st.Get(ctx, k.ID); err != nil || got.UsagePoints != 2 {
			t.Fatalf("usage in the store during the trim: %+v, %v; want 2 points flushed", got, err)
		}
		if _, err := m.Audit(ctx, auth.AuditQuery{}); err != nil {
			t.Fatalf("audit query during the trim: %v", err)
		}
		if err := a.Close(ctx); err != nil {
			t.Fatalf("Close during the trim: %v", err)
		}
	})
}
