package pgstore_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/auth/pgstore"
	"github.com/chatgate/chatgate/internal/postgres/pgtest"
)

// replica is what a server process holds of auth: a store on its pool,
// and an Authenticator whose cache Watch keeps in step with the others'.
type replica struct {
	store    *pgstore.Store
	authn    *auth.Authenticator
	mgr      *auth.Manager
	connects chan struct{} // one per changed("")
}

// startReplica starts a replica on pool, its cache trusted for an hour,
// so that only what Watch hears makes it read a key again. It returns
// once Watch listens.
func startReplica(t *testing.T, pool *pgxpool.Pool) *replica {
	t.Helper()
	r := &replica{store: newStore(t, pool), connects: make(chan struct{}, 100)}
	r.authn = auth.NewAuthenticator(r.store, auth.Options{CacheTTL: time.Hour, FlushInterval: time.Hour})
	r.mgr = auth.NewManager(r.store, r.authn)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- r.store.Watch(wctx, func(id string) {
			if id == "" {
				r.authn.InvalidateAll()
				r.connects <- struct{}{}
			} else {
				r.authn.Invalidate(id)
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Watch ended with %v, want context.Canceled", err)
		}
		_ = r.authn.Close(ctx)
	})
	r.waitConnect(t, 10*time.Second)
	return r
}

func (r *replica) waitConnect(t *testing.T, within time.Duration) {
	t.Helper()
	select {
	case <-r.connects:
	case <-time.After(within):
		t.Fatalf("Watch did not connect within %v", within)
	}
}

// within polls check until it returns nil, failing t if that takes more
// than d.
func within(t *testing.T, d time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, d, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// refused is a check that secret is refused by r with want.
func (r *replica) refused(secret string, want error) func() error {
	return func() error {
		_, err := r.authn.Authenticate(ctx, secret, loopback)
		if errors.Is(err, want) {
			return nil
		}
		return fmt.Errorf("Authenticate: %v, want %v", err, want)
	}
}

// accepted is a check that secret passes r.
func (r *replica) accepted(secret string) func() error {
	return func() error {
		_, err := r.authn.Authenticate(ctx, secret, loopback)
		return err
	}
}

var loopback = netip.MustParseAddr("127.0.0.1")

// A disable, a limit change, a rotation and a revoke made through one
// replica's Manager apply on another replica within a second, though its
// cache would trust the key for an hour.
func TestChangesReachEveryReplica(t *testing.T) {
	pools := sharedPools(t, 2)
	a, b := startReplica(t, pools[0]), startReplica(t, pools[1])
	k, secret, err := a.mgr.Create(ctx, auth.KeySpec{Name: "shared", AppID: "app-1"})
	if err != nil {
		t.Fatal(err)
	}
	within(t, time.Second, "a key created on A, used on B", b.accepted(secret))

	yes, no := true, false
	if _, err := a.mgr.Update(ctx, "", k.ID, auth.KeyUpdate{Disabled: &yes}); err != nil {
		t.Fatal(err)
	}
	within(t, time.Second, "disabled on A, refused on B", b.refused(secret, auth.ErrKeyDisabled))
	if _, err := a.mgr.Update(ctx, "", k.ID, auth.KeyUpdate{Disabled: &no}); err != nil {
		t.Fatal(err)
	}
	within(t, time.Second, "enabled on A, accepted on B", b.accepted(secret))

	expired := auth.Limit{ExpiredTime: time.Now().Add(-time.Minute)}
	if _, err := a.mgr.Update(ctx, "", k.ID, auth.KeyUpdate{Limit: &expired}); err != nil {
		t.Fatal(err)
	}
	within(t, time.Second, "expired on A, refused on B", b.refused(secret, auth.ErrKeyExpired))
	if _, err := a.mgr.Update(ctx, "", k.ID, auth.KeyUpdate{Limit: &auth.Limit{}}); err != nil {
		t.Fatal(err)
	}
	within(t, time.Second, "unlimited on A, accepted on B", b.accepted(secret))

	_, rotated, err := a.mgr.Rotate(ctx, "", k.ID, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	within(t, time.Second, "rotated on A, the old secret refused on B", b.refused(secret, auth.ErrInvalidKey))
	within(t, time.Second, "rotated on A, the new secret accepted on B", b.accepted(rotated))

	if err := a.mgr.Revoke(ctx, "", k.ID, ""); err != nil {
		t.Fatal(err)
	}
	within(t, time.Second, "revoked on A, refused on B", b.refused(rotated, auth.ErrInvalidKey))
}

// When Watch's connection is lost, it connects again and asks for the
// whole cache to go, as what was notified meanwhile never reached it: a
// change made while it was away applies too.
func TestWatchReconnects(t *testing.T) {
	cfg := config(t, pgtest.DSN(t))
	aPool := newPool(t, cfg.Copy())
	name := "chatgate-watch-" + rand.Text()[:8] // B's connections, its listener among them
	cfg.ConnConfig.RuntimeParams["application_name"] = name
	bPool := newPool(t, cfg)
	a, b := startReplica(t, aPool), startReplica(t, bPool)
	k, secret, err := a.mgr.Create(ctx, auth.KeySpec{Name: "shared", AppID: "app-1"})
	if err != nil {
		t.Fatal(err)
	}
	within(t, time.Second, "a key created on A, used on B", b.accepted(secret))

	// B's listener goes, as with a cut network or a restarted Postgres
	const listener = `FROM pg_stat_activity WHERE application_name = $1 AND query ILIKE 'listen%'`
	var n int
	if err := aPool.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) `+listener, name).Scan(&n); err != nil || n != 1 {
		t.Fatalf("terminating B's listener: %d terminated, %v", n, err)
	}
	within(t, 5*time.Second, "B's listener gone", func() error {
		if err := aPool.QueryRow(ctx, `SELECT count(*) `+listener, name).Scan(&n); err != nil || n != 0 {
			return fmt.Errorf("%d listeners, %v", n, err)
		}
		return nil
	})
	yes, no := true, false
	if _, err := a.mgr.Update(ctx, "", k.ID, auth.KeyUpdate{Disabled: &yes}); err != nil { // B cannot hear it
		t.Fatal(err)
	}
	b.waitConnect(t, 5*time.Second)
	within(t, time.Second, "disabled while B was not listening, refused on B once it is", b.refused(secret, auth.ErrKeyDisabled))
	if _, err := a.mgr.Update(ctx, "", k.ID, auth.KeyUpdate{Disabled: &no}); err != nil {
		t.Fatal(err)
	}
	within(t, time.Second, "enabled on A after B's reconnection, accepted on B", b.accepted(secret))
}

// Writes that fail notify nothing; the others notify their key's id once
// they commit, in the order they commit.
func TestWatchHearsCommittedWrites(t *testing.T) {
	s := open(t)
	prefix := "w" + rand.Text()[:8] + "-" // other schemas' stores share the channel
	var (
		mu    sync.Mutex
		heard []string
	)
	connected := make(chan struct{}, 10)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- s.Watch(wctx, func(id string) {
			switch {
			case id == "":
				connected <- struct{}{}
			case strings.HasPrefix(id, prefix):
				mu.Lock()
				heard = append(heard, strings.TrimPrefix(id, prefix))
				mu.Unlock()
			}
		})
	}()
	defer func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Watch ended with %v, want context.Canceled", err)
		}
	}()
	select {
	case <-connected:
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not connect")
	}
	k := key(prefix + "a")
	steps := []struct {
		write func() error
		want  error
	}{
		{func() error { return s.Create(ctx, k, nil) }, nil},
		{func() error { return s.Create(ctx, k, nil) }, auth.ErrKeyExists},
		{func() error { return s.Create(ctx, key(prefix+"b"), nil) }, nil},
		{func() error { c := key(prefix + "c"); c.Hash = k.Hash; return s.Create(ctx, c, nil) }, auth.ErrHashInUse},
		{func() error { return s.Update(ctx, key(prefix+"nope"), nil) }, auth.ErrKeyNotFound},
		{func() error { k.Name = "renamed"; return s.Update(ctx, k, nil) }, nil},
		{func() error { return s.Delete(ctx, prefix+"nope", nil) }, auth.ErrKeyNotFound},
		{func() error { return s.Delete(ctx, prefix+"b", nil) }, nil},
	}
	for i, st := range steps {
		if err := st.write(); !errors.Is(err, st.want) {
			t.Fatalf("step %d: %v, want %v", i, err, st.want)
		}
	}
	want := "[a b a b]"
	within(t, 2*time.Second, "the notifications", func() error {
		mu.Lock()
		defer mu.Unlock()
		if got := fmt.Sprint(heard); got != want {
			return fmt.Errorf("heard %s, want %s", got, want)
		}
		return nil
	})
}

// A callback that panics ends Watch with the panic as its error, not the
// process.
func TestWatchPanic(t *testing.T) {
	s := open(t)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := s.Watch(wctx, func(string) { panic("poisoned cache") })
	if err == nil || errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "poisoned cache") {
		t.Fatalf("Watch with a panicking callback: %v", err)
	}
}
