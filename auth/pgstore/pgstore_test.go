package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/auth/authtest"
	"github.com/chatgate/chatgate/auth/pgstore"
	"github.com/chatgate/chatgate/internal/postgres/pgtest"
)

var ctx = context.Background()

// newStore is a store on pool, whose migrations it applies.
func newStore(t testing.TB, pool *pgxpool.Pool) *pgstore.Store {
	t.Helper()
	s, err := pgstore.New(ctx, pool)
	if err != nil {
		t.Fatalf("pgstore.New: %v", err)
	}
	return s
}

// open is a store on a fresh schema, dropped when t ends.
func open(t testing.TB) *pgstore.Store {
	t.Helper()
	return newStore(t, pgtest.Pool(t))
}

// config is the pool config of dsn.
func config(t testing.TB, dsn string) *pgxpool.Config {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// newPool is a pool of cfg, closed when t ends.
func newPool(t testing.TB, cfg *pgxpool.Config) *pgxpool.Pool {
	t.Helper()
	p, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// sharedPools are n pools on one fresh schema, as replicas each have
// theirs on one database.
func sharedPools(t testing.TB, n int) []*pgxpool.Pool {
	t.Helper()
	cfg := config(t, pgtest.DSN(t))
	pools := make([]*pgxpool.Pool, n)
	for i := range pools {
		pools[i] = newPool(t, cfg.Copy())
	}
	return pools
}

// The conformance suite, each subtest on a schema of its own.
func TestStore(t *testing.T) {
	authtest.TestStore(t, func(t *testing.T) auth.Store { return open(t) })
}

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// key is a key of team "team" whose secret is "secret-"+id.
func key(id string) *auth.Key {
	return &auth.Key{ID: id, Name: id, TeamID: "team", Scopes: auth.Scopes{auth.ScopeChat}, Source: auth.SourceGenerated,
		Hash: auth.HashKey("secret-" + id), Hint: "hint", CreateTime: t0, UpdateTime: t0}
}

// Replicas flushing usage for the same keys at once, each batch naming
// them in another order: every point adds up, the last use is the latest
// whatever order the flushes commit in, and no flush deadlocks another.
func TestAddUsageAcrossReplicas(t *testing.T) {
	pools := sharedPools(t, 4)
	stores := make([]*pgstore.Store, len(pools))
	for i, p := range pools {
		stores[i] = newStore(t, p)
	}
	ids := []string{"k0", "k1", "k2", "k3"}
	for _, id := range ids {
		if err := stores[0].Create(ctx, key(id), nil); err != nil {
			t.Fatal(err)
		}
	}
	const writers, flushes = 6, 20 // per replica
	var wg sync.WaitGroup
	for w := range len(stores) * writers {
		s := stores[w%len(stores)]
		wg.Go(func() {
			for i := range flushes {
				n := w*flushes + i
				batch := make([]auth.Usage, 0, len(ids)+1)
				for j := range ids {
					// each writer's times go back and forth
					at := t0.Add(time.Duration(n*len(ids)+(j*3+i)%len(ids)) * time.Millisecond)
					batch = append(batch, auth.Usage{KeyID: ids[(n+j)%len(ids)], Points: 0.25, LastUsed: at})
				}
				batch = append(batch, auth.Usage{KeyID: "gone", Points: 1, LastUsed: t0.Add(time.Hour)})
				if err := s.AddUsage(ctx, batch); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	total := len(stores) * writers * flushes
	var latest time.Time
	for _, id := range ids {
		k, err := stores[1].Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if want := 0.25 * float64(total); k.UsagePoints != want {
			t.Errorf("%s: %v points after %d flushes of 0.25, want %v", id, k.UsagePoints, total, want)
		}
		if k.LastUsedTime.After(latest) {
			latest = k.LastUsedTime
		}
	}
	if want := t0.Add(time.Duration(total*len(ids)-1) * time.Millisecond); !latest.Equal(want) {
		t.Errorf("the latest last use is %v, want %v", latest, want)
	}
	if _, err := stores[2].Get(ctx, "gone"); !errors.Is(err, auth.ErrKeyNotFound) {
		t.Errorf("usage of a key that does not exist: Get = %v, want not found", err)
	}
}

// Events appended at once through several replicas, and with key changes,
// each get a seq of their own; the trail reads back in seq order, every
// event once, and a trim keeps the newest however many seqs were drawn
// and not used.
func TestAuditAcrossReplicas(t *testing.T) {
	pools := sharedPools(t, 3)
	stores := make([]*pgstore.Store, len(pools))
	for i, p := range pools {
		stores[i] = newStore(t, p)
	}
	const each = 40 // per replica
	var wg sync.WaitGroup
	for r, s := range stores {
		wg.Go(func() {
			for i := range each {
				var err error
				if i%4 == 0 {
					k := key(fmt.Sprintf("r%d-%d", r, i))
					err = s.Create(ctx, k, &auth.AuditEvent{Time: t0, Action: auth.AuditKeyCreated, KeyID: k.ID, TeamID: "team"})
				} else {
					err = s.AppendAudit(ctx, []auth.AuditEvent{
						{Time: t0, Action: auth.AuditAuthFailed, TeamID: "team", Reason: fmt.Sprintf("r%d-%d-a", r, i)},
						{Time: t0, Action: auth.AuditAuthFailed, Reason: fmt.Sprintf("r%d-%d-b", r, i)},
					})
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	evs, err := stores[0].Audit(ctx, auth.AuditQuery{Limit: 10_000})
	if err != nil {
		t.Fatal(err)
	}
	if want := len(stores) * (each/4 + 2*each*3/4); len(evs) != want {
		t.Fatalf("%d events, want %d", len(evs), want)
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].Seq >= evs[i-1].Seq {
			t.Fatalf("seq %d after %d: not newest first, or not unique", evs[i].Seq, evs[i-1].Seq)
		}
	}
	// seqs drawn and never used, as a rolled-back transaction leaves them
	if _, err := pools[1].Exec(ctx, `SELECT nextval(pg_get_serial_sequence('auth_audit', 'seq')) FROM generate_series(1, 50)`); err != nil {
		t.Fatal(err)
	}
	if err := stores[1].AppendAudit(ctx, []auth.AuditEvent{{Time: t0, Action: auth.AuditAuthFailed, Reason: "after the gap"}}); err != nil {
		t.Fatal(err)
	}
	if n, err := stores[2].TrimAudit(ctx, time.Time{}, 5); err != nil || n != len(evs)-4 {
		t.Fatalf("TrimAudit keeping 5: removed %d, %v; want %d", n, err, len(evs)-4)
	}
	kept, err := stores[0].Audit(ctx, auth.AuditQuery{Limit: 100})
	if err != nil || len(kept) != 5 || kept[0].Reason != "after the gap" || kept[1].Seq != evs[0].Seq || kept[4].Seq != evs[3].Seq {
		t.Fatalf("after keeping 5: %+v, %v", kept, err)
	}
}

// A seq is drawn when its event is inserted, so a transaction that drew
// an earlier one may commit after a later one: readers see the later one
// first, and then both in seq order. A trim in between leaves alone the
// event not yet committed.
func TestAuditSeqsCommittedOutOfOrder(t *testing.T) {
	pools := sharedPools(t, 2)
	a, b := newStore(t, pools[0]), newStore(t, pools[1])
	if err := a.AppendAudit(ctx, []auth.AuditEvent{{Time: t0, Action: auth.AuditAuthFailed, Reason: "first"}}); err != nil {
		t.Fatal(err)
	}
	// a replica's key change, its transaction still open
	tx, err := pools[0].Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `INSERT INTO auth_audit (time, action, key_id, hint, team_id, actor_key_id, reason, remote_ip, count)
		VALUES ($1, 'key.updated', 'k', '', 'team', '', 'slow', '', 0)`, t0); err != nil {
		t.Fatal(err)
	}
	if err := b.AppendAudit(ctx, []auth.AuditEvent{{Time: t0, Action: auth.AuditAuthFailed, Reason: "fast"}}); err != nil {
		t.Fatal(err)
	}
	if got := reasons(t, b); fmt.Sprint(got) != "[fast first]" {
		t.Fatalf("before the slow commit: %v", got)
	}
	if n, err := b.TrimAudit(ctx, t0.Add(time.Hour), 0); err != nil || n != 2 {
		t.Fatalf("TrimAudit of all that is old: removed %d, %v; want the 2 committed", n, err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.AppendAudit(ctx, []auth.AuditEvent{{Time: t0, Action: auth.AuditAuthFailed, Reason: "last"}}); err != nil {
		t.Fatal(err)
	}
	evs, err := a.Audit(ctx, auth.AuditQuery{})
	if err != nil || len(evs) != 2 || evs[0].Reason != "last" || evs[1].Reason != "slow" {
		t.Fatalf("after the slow commit: %+v, %v", evs, err)
	}
	if got, err := a.Audit(ctx, auth.AuditQuery{TeamID: "team", Limit: 1}); err != nil || len(got) != 1 || got[0].Reason != "slow" {
		t.Fatalf("the team's events: %+v, %v", got, err)
	}
}

func reasons(t *testing.T, s *pgstore.Store) []string {
	t.Helper()
	evs, err := s.Audit(ctx, auth.AuditQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Reason
	}
	return out
}

// Example has no Output, so go test only compiles it: run it here, on a
// fresh schema.
func TestExample(t *testing.T) {
	t.Setenv(pgtest.Env, pgtest.DSN(t))
	Example()
}
