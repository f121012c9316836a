package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/billing"
	"github.com/chatgate/chatgate/billing/billingtest"
	"github.com/chatgate/chatgate/billing/pgstore"
	"github.com/chatgate/chatgate/internal/postgres/pgtest"
)

var ctx = context.Background()

func TestLedger(t *testing.T) {
	billingtest.TestLedger(t, func(t *testing.T) billing.Ledger {
		s, err := pgstore.New(ctx, pgtest.Pool(t))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// onReplicas opens n ledgers at once on one fresh schema, each with its
// own pool, as n replicas of a server start on one database.
func onReplicas(t *testing.T, n int) []*pgstore.Store {
	t.Helper()
	dsn := pgtest.DSN(t)
	stores := make([]*pgstore.Store, n)
	opened := make(chan error, n)
	for i := range stores {
		pool, err := pgxpool.New(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		go func() {
			var err error
			stores[i], err = pgstore.New(ctx, pool)
			opened <- err
		}()
	}
	for range n {
		if err := <-opened; err != nil {
			t.Fatal(err)
		}
	}
	return stores
}

// Replicas delivering the same records at once (an outbox retried on two
// of them) store each once: one call per id succeeds, every other is
// ErrDuplicate, and the totals count each record once.
func TestDuplicatesAcrossReplicas(t *testing.T) {
	stores := onReplicas(t, 4)
	bill := &billing.Bill{TeamID: "t", Name: "b"}
	if err := stores[0].CreateBill(ctx, bill); err != nil {
		t.Fatal(err)
	}
	const ids, writers = 60, 8 // writers per replica
	var (
		stored [ids]atomic.Int32
		wg     sync.WaitGroup
	)
	start := make(chan struct{})
	for _, s := range stores {
		for w := range writers {
			wg.Go(func() {
				<-start
				for k := range ids {
					i := (k + w*7) % ids // each writer starts elsewhere
					r := &billing.Record{ID: fmt.Sprintf("rec-%02d", i), TeamID: "t", KeyID: "k", AppID: "a", BillID: bill.ID,
						Module: "embedding", Model: "local", InputTokens: 4, Points: 0.5, Time: time.Now()}
					switch err := s.Record(ctx, r); {
					case err == nil:
						stored[i].Add(1)
					case !errors.Is(err, billing.ErrDuplicate):
						t.Errorf("record %s: %v", r.ID, err)
					}
				}
			})
		}
	}
	close(start)
	wg.Wait()
	for i := range stored {
		if n := stored[i].Load(); n != 1 {
			t.Errorf("rec-%02d stored by %d calls; want 1", i, n)
		}
	}
	checkTotals(t, stores[3], bill.ID, map[string]float64{"k": ids * 0.5}, ids, ids*0.5)
}

// Records written at once through several replicas onto the same rows
// (one key, one app, one bill item, as a training run's workers write)
// and onto rows of their own all add up: no update is lost.
func TestConcurrentReplicasExact(t *testing.T) {
	stores := onReplicas(t, 4)
	bill := &billing.Bill{TeamID: "t", Name: "b"}
	if err := stores[1].CreateBill(ctx, bill); err != nil {
		t.Fatal(err)
	}
	const writers, each = 8, 40 // per replica, per writer
	var wg sync.WaitGroup
	for r, s := range stores {
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					rec := &billing.Record{TeamID: "t", KeyID: "hot", AppID: "a", BillID: bill.ID, Module: "embedding", Model: "local",
						InputTokens: 3, OutputTokens: 1, Points: 0.25}
					if i%2 == 1 { // every other record is its writer's own key's
						rec.KeyID = fmt.Sprintf("k%d-%d", r, w)
					}
					if err := s.Record(ctx, rec); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	const n = 4 * writers * each
	want := map[string]float64{"hot": n / 2 * 0.25}
	for r := range stores {
		for w := range writers {
			want[fmt.Sprintf("k%d-%d", r, w)] = each / 2 * 0.25
		}
	}
	checkTotals(t, stores[0], bill.ID, want, n, n*0.25)
	if b, err := stores[2].Bill(ctx, bill.ID); err != nil || b.TotalTokens != 4*n || len(b.Items) != 1 || b.Items[0].Tokens != 4*n {
		t.Errorf("bill = %+v, %v; want %d tokens on one item", b, err, 4*n)
	}
}

// checkTotals checks, through s, that team t holds records records of
// points points in all, all on bill and app a, and the keys' totals.
func checkTotals(t *testing.T, s *pgstore.Store, bill string, keys map[string]float64, records int, points float64) {
	t.Helper()
	if _, total, err := s.List(ctx, billing.Filter{TeamID: "t"}); err != nil || total != records {
		t.Errorf("List: %d records, %v; want %d", total, err, records)
	}
	if sum, err := s.Summary(ctx, billing.Filter{TeamID: "t"}); err != nil || sum.Total.Records != records || sum.Total.Points != points {
		t.Errorf("Summary: %+v, %v; want %d records, %v points", sum, err, records, points)
	}
	if p, err := s.AppPoints(ctx, "t", "a"); err != nil || p != points {
		t.Errorf("AppPoints: %v, %v; want %v", p, err, points)
	}
	if b, err := s.Bill(ctx, bill); err != nil || b.TotalPoints != points {
		t.Errorf("bill: %+v, %v; want %v points", b, err, points)
	}
	kp, err := s.KeyPoints(ctx)
	if err != nil || len(kp) != len(keys) {
		t.Fatalf("KeyPoints: %d keys, %v; want %d", len(kp), err, len(keys))
	}
	for k, want := range keys {
		if kp[k] != want {
			t.Errorf("key %s: %v points; want %v", k, kp[k], want)
		}
	}
}

// When Postgres cannot be reached, every call fails at once as
// storage_unavailable, acknowledging nothing, and works again when it is
// back, on the same pool.
func TestUnavailable(t *testing.T) {
	cfg, err := pgxpool.ParseConfig(pgtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	var down atomic.Bool
	cfg.ConnConfig.ConnectTimeout = time.Second
	cfg.BeforeConnect = func(_ context.Context, cc *pgx.ConnConfig) error {
		if down.Load() { // a port nothing listens on: Postgres is gone
			cc.Host, cc.Port, cc.Fallbacks = "127.0.0.1", 1, nil
		}
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	s, bill := ledgerOn(t, pool, err)

	down.Store(true)
	pool.Reset() // the open connections go, as a restarted server drops them
	start := time.Now()
	lost := &billing.Record{TeamID: "t", KeyID: "k", AppID: "a", BillID: bill.ID, Module: "qa", Model: "m", Points: 1}
	for name, call := range map[string]func() error{
		"New":        func() error { _, err := pgstore.New(ctx, pool); return err },
		"Record":     func() error { return s.Record(ctx, lost) },
		"CreateBill": func() error { return s.CreateBill(ctx, &billing.Bill{TeamID: "t"}) },
		"Bill":       func() error { _, err := s.Bill(ctx, bill.ID); return err },
		"List":       func() error { _, _, err := s.List(ctx, billing.Filter{TeamID: "t"}); return err },
		"Summary":    func() error { _, err := s.Summary(ctx, billing.Filter{TeamID: "t"}); return err },
		"KeyPoints":  func() error { _, err := s.KeyPoints(ctx); return err },
		"AppPoints":  func() error { _, err := s.AppPoints(ctx, "t", "a"); return err },
	} {
		if err := call(); !errors.Is(err, apierror.ErrStorageUnavailable) {
			t.Errorf("%s with Postgres gone: %v; want storage_unavailable", name, err)
		}
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the failing calls took %v", d)
	}

	down.Store(false)
	if err := s.Record(ctx, lost); err != nil { // delivered again under the id it was given
		t.Fatalf("once Postgres is back: %v", err)
	}
	checkTotals(t, s, bill.ID, map[string]float64{"k": 1}, 1, 1)
}

// ledgerOn is a ledger on the pool pgxpool returned with err, closed when
// tb ends, and a bill of team t on it.
func ledgerOn(tb testing.TB, pool *pgxpool.Pool, err error) (*pgstore.Store, *billing.Bill) {
	tb.Helper()
	var s *pgstore.Store
	if err == nil {
		tb.Cleanup(pool.Close)
		s, err = pgstore.New(ctx, pool)
	}
	bill := &billing.Bill{TeamID: "t", Name: "test"}
	if err == nil {
		err = s.CreateBill(ctx, bill)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return s, bill
}

// The Example, which has no Output to be run by go test, runs here on a
// schema of its own.
func TestExample(t *testing.T) {
	t.Setenv(pgtest.Env, pgtest.DSN(t))
	Example()
}
