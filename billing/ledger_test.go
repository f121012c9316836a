package billing_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/chatgate/chatgate/billing"
	"github.com/chatgate/chatgate/billing/billingtest"
	"github.com/chatgate/chatgate/internal/panics"
)

func TestMemoryLedgerConformance(t *testing.T) {
	t.Run("NewMemoryLedger", func(t *testing.T) {
		billingtest.TestLedger(t, func(t *testing.T) billing.Ledger { return billing.NewMemoryLedger() })
	})
	t.Run("ZeroValue", func(t *testing.T) {
		billingtest.TestLedger(t, func(t *testing.T) billing.Ledger { return new(billing.MemoryLedger) })
	})
}

func TestBoltLedgerConformance(t *testing.T) {
	billingtest.TestLedger(t, func(t *testing.T) billing.Ledger {
		l, _ := openBoltLedger(t, filepath.Join(t.TempDir(), "ledger.db"))
		return l
	})
}

// openBoltLedger opens a BoltLedger on the file at path, closed at cleanup.
func openBoltLedger(t testing.TB, path string) (*billing.BoltLedger, *bbolt.DB) {
	t.Helper()
	return openBoltLedgerWith(t, path, &bbolt.Options{Timeout: time.Second})
}

// openBoltLedgerWith opens a BoltLedger on the file at path with opts.
func openBoltLedgerWith(t testing.TB, path string, opts *bbolt.Options) (*billing.BoltLedger, *bbolt.DB) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	l, err := billing.NewBoltLedger(db)
	if err != nil {
		t.Fatal(err)
	}
	return l, db
}

// What Record acknowledged is in the file: a ledger opened on it again has
// the records, the bills and the totals.
func TestBoltLedgerReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ledger.db")
	l, db := openBoltLedger(t, path)
	bill := &billing.Bill{TeamID: "t", Name: "nightly", DatasetID: "ds"}
	if err := l.CreateBill(ctx, bill); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 25 {
				r := &billing.Record{TeamID: "t", KeyID: fmt.Sprintf("k%d", g%2), AppID: "a", Module: "embedding", Model: "local",
					InputTokens: 4, Points: 0.5}
				if i%5 == 0 {
					r.BillID = bill.ID
				}
				if err := l.Record(ctx, r); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	// NewBoltLedger on a file that has the buckets keeps what they hold
	if _, err := billing.NewBoltLedger(db); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	l2, _ := openBoltLedger(t, path)
	_, total, err := l2.List(ctx, billing.Filter{TeamID: "t"})
	if err != nil || total != 200 {
		t.Fatalf("after reopening: %d records, %v; want 200", total, err)
	}
	kp, _ := l2.KeyPoints(ctx)
	ap, _ := l2.AppPoints(ctx, "t", "a")
	if kp["k0"] != 50 || kp["k1"] != 50 || ap != 100 {
		t.Fatalf("after reopening: keys %v, app %v", kp, ap)
	}
	b, err := l2.Bill(ctx, bill.ID)
	if err != nil || b.Name != "nightly" || b.DatasetID != "ds" || b.TotalTokens != 160 || b.TotalPoints != 20 {
		t.Fatalf("bill after reopening: %+v, %v", b, err)
	}
	// and it goes on counting where it stopped
	if err := l2.Record(ctx, &billing.Record{TeamID: "t", KeyID: "k0", AppID: "a", Module: "AI Chat", Model: "m", Points: 1}); err != nil {
		t.Fatal(err)
	}
	if kp, _ := l2.KeyPoints(ctx); kp["k0"] != 51 {
		t.Fatalf("k0 = %v; want 51", kp["k0"])
	}
}

// Many goroutines, each with a few records, all at once: the group commit
// acknowledges each exactly once and loses none.
func TestBoltLedgerManyWriters(t *testing.T) {
	ctx := context.Background()
	l, _ := openBoltLedger(t, filepath.Join(t.TempDir(), "ledger.db"))
	const writers, each = 200, 5
	start := make(chan struct{})
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			<-start
			for range each {
				if err := l.Record(ctx, &billing.Record{TeamID: "t", KeyID: fmt.Sprintf("k%d", g%10), Module: "AI Chat",
					Model: "m", InputTokens: 1, Points: 0.125}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	_, total, _ := l.List(ctx, billing.Filter{TeamID: "t"})
	kp, _ := l.KeyPoints(ctx)
	if total != writers*each {
		t.Fatalf("%d records; want %d", total, writers*each)
	}
	for k := range 10 {
		if p := kp[fmt.Sprintf("k%d", k)]; p != writers/10*each*0.125 {
			t.Fatalf("k%d = %v; want %v", k, p, writers/10*each*0.125)
		}
	}
}

// A record is written whatever its context does once it is queued; a
// context already done stores nothing.
func TestBoltLedgerCancelledContext(t *testing.T) {
	l, _ := openBoltLedger(t, filepath.Join(t.TempDir(), "ledger.db"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := l.Record(ctx, &billing.Record{TeamID: "t", KeyID: "k", Module: "AI Chat", Model: "m", Points: 1})
	kp, _ := l.KeyPoints(context.Background())
	_, total, _ := l.List(context.Background(), billing.Filter{TeamID: "t"})
	if err == nil {
		// a ledger may also store it: then it must count it
		if total != 1 || kp["k"] != 1 {
			t.Fatalf("acknowledged but %d records, %v points", total, kp["k"])
		}
		return
	}
	if total != 0 || kp["k"] != 0 {
		t.Fatalf("failed (%v) but stored %d records, %v points", err, total, kp["k"])
	}
}

// waitFor polls cond until it holds, failing the test after 10s. The commit
// loop blocks on bbolt's writer lock, a mutex, so a synctest bubble could
// not tell when it is waiting; the test watches the queue instead.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// inOneCommit records recs concurrently such that they share one bbolt
// transaction: it holds the writer lock while a primer record starts the
// commit loop and the others queue behind it.
func inOneCommit(t *testing.T, db *bbolt.DB, l *billing.BoltLedger, recs []*billing.Record) []error {
	t.Helper()
	ctx := context.Background()
	tx, err := db.Begin(true)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer tx.Rollback() // first, should the test fail before the lock is let go
	wg.Go(func() {
		if err := l.Record(ctx, &billing.Record{TeamID: "primer", Module: "AI Chat", Model: "m"}); err != nil {
			t.Error(err)
		}
	})
	waitFor(t, "the loop to take the primer", func() bool { // and wait for the lock
		queued, running := billing.CommitState(l)
		return running && queued == 0
	})
	errs := make([]error, len(recs))
	var refused atomic.Int64 // records that fail before they are queued
	for i, r := range recs {
		wg.Go(func() {
			if errs[i] = l.Record(ctx, r); errs[i] != nil {
				refused.Add(1)
			}
		})
	}
	waitFor(t, "the others to queue", func() bool {
		queued, _ := billing.CommitState(l)
		return queued+int(refused.Load()) == len(recs)
	})
	_ = tx.Rollback()
	wg.Wait()
	return errs
}

func TestBoltLedgerOneCommit(t *testing.T) {
	ctx := context.Background()
	t.Run("duplicates", func(t *testing.T) {
		l, db := openBoltLedger(t, filepath.Join(t.TempDir(), "ledger.db"))
		var recs []*billing.Record
		for range 8 {
			recs = append(recs, &billing.Record{ID: "same", TeamID: "t", KeyID: "k", AppID: "a", Module: "AI Chat", Model: "m", Points: 1})
		}
		stored := 0
		for _, err := range inOneCommit(t, db, l, recs) {
			switch {
			case err == nil:
				stored++
			case !errors.Is(err, billing.ErrDuplicate):
				t.Fatal(err)
			}
		}
		if stored != 1 {
			t.Fatalf("%d of 8 calls with one id stored it; want 1, the others ErrDuplicate", stored)
		}
		kp, _ := l.KeyPoints(ctx)
		ap, _ := l.AppPoints(ctx, "t", "a")
		_, total, _ := l.List(ctx, billing.Filter{TeamID: "t"})
		if total != 1 || kp["k"] != 1 || ap != 1 {
			t.Fatalf("one record id written 8 times in one commit: %d records, key %v, app %v points; want 1, 1, 1", total, kp["k"], ap)
		}
	})
	t.Run("failures", func(t *testing.T) {
		l, db := openBoltLedger(t, filepath.Join(t.TempDir(), "ledger.db"))
		recs := []*billing.Record{
			{TeamID: "t", KeyID: "k", Module: "AI Chat", Model: "m", Points: 1},
			{TeamID: "t", KeyID: "k", BillID: "missing", Module: "embedding", Model: "local", Points: 1},
			{TeamID: "t", KeyID: "k", Module: "AI Chat", Model: "m", Points: 1},
			{TeamID: "t", KeyID: "k", Module: "AI Chat", Model: "m", Points: math.NaN()},
		}
		errs := inOneCommit(t, db, l, recs)
		if errs[0] != nil || errs[2] != nil || !errors.Is(errs[1], billing.ErrBillNotFound) || errs[3] == nil {
			t.Fatalf("errors %v; want nil, ErrBillNotFound, nil, an error", errs)
		}
		if kp, _ := l.KeyPoints(ctx); kp["k"] != 2 {
			t.Fatalf("key points %v; want 2", kp["k"])
		}
	})
	// Records bbolt itself refuses fail the transaction they are in; the
	// others in it are written again without them, and only they fail.
	t.Run("refused by bbolt", func(t *testing.T) {
		l, db := openBoltLedger(t, filepath.Join(t.TempDir(), "ledger.db"))
		bill := &billing.Bill{TeamID: "t", Name: "b"}
		if err := l.CreateBill(ctx, bill); err != nil {
			t.Fatal(err)
		}
		good := func() *billing.Record {
			return &billing.Record{TeamID: "t", KeyID: "k", AppID: "a", BillID: bill.ID, Module: "AI Chat", Model: "m",
				InputTokens: 3, Points: 1}
		}
		recs := []*billing.Record{good(), good(), good(), good(), good()}
		recs[1].ID = strings.Repeat("x", bbolt.MaxKeySize+1)        // too long a key
		recs[3].Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) // JSON cannot write the year
		errs := inOneCommit(t, db, l, recs)
		if errs[0] != nil || errs[2] != nil || errs[4] != nil || errs[1] == nil || errs[3] == nil {
			t.Fatalf("errors %v; want nil, an error, nil, an error, nil", errs)
		}
		_, total, _ := l.List(ctx, billing.Filter{TeamID: "t"})
		kp, _ := l.KeyPoints(ctx)
		ap, _ := l.AppPoints(ctx, "t", "a")
		b, _ := l.Bill(ctx, bill.ID)
		if total != 3 || kp["k"] != 3 || ap != 3 || b.TotalPoints != 3 || b.TotalTokens != 9 {
			t.Fatalf("%d records, key %v, app %v, bill %v points %d tokens; want the 3 good ones counted once",
				total, kp["k"], ap, b.TotalPoints, b.TotalTokens)
		}
	})
	// A panic while a batch is written fails the record it came from, not
	// the process nor the records beside it, and the ledger goes on.
	t.Run("panic", func(t *testing.T) {
		l, db := openBoltLedger(t, filepath.Join(t.TempDir(), "ledger.db"))
		billing.PanicOn(l, "poison")
		recs := []*billing.Record{
			{TeamID: "t", KeyID: "k", Module: "AI Chat", Model: "m", Points: 1},
			{TeamID: "t", KeyID: "k", Module: "poison", Model: "m", Points: 1},
			{TeamID: "t", KeyID: "k", Module: "AI Chat", Model: "m", Points: 1},
		}
		errs := inOneCommit(t, db, l, recs)
		var pe *panics.Error
		if errs[0] != nil || errs[2] != nil || !errors.As(errs[1], &pe) {
			t.Fatalf("errors %v; want nil, a panic, nil", errs)
		}
		if err := l.Record(ctx, &billing.Record{TeamID: "t", KeyID: "k", Module: "AI Chat", Model: "m", Points: 1}); err != nil {
			t.Fatal(err)
		}
		if kp, _ := l.KeyPoints(ctx); kp["k"] != 3 {
			t.Fatalf("key points %v; want 3", kp["k"])
		}
	})
}

// A price that is not a finite, non-negative number would make every
// record it prices fail; the table is refused instead.
func TestPricesValidateNonFinite(t *testing.T) {
	for _, pr := range []billing.Price{{Input: math.NaN()}, {Output: math.NaN()}, {Input: math.Inf(1)}, {Output: math.Inf(1)},
		{Input: -0.5}, {Output: -1}} {
		if err := (&billing.Prices{Models: map[string]billing.Price{"m": pr}}).Validate(); err == nil {
			t.Errorf("model price %+v accepted", pr)
		}
		if err := (&billing.Prices{Default: pr}).Validate(); err == nil {
			t.Errorf("default price %+v accepted", pr)
		}
	}
	ok := &billing.Prices{Models: map[string]billing.Price{"free": {}, "gpt": {Input: 2.5, Output: 10}}, Default: billing.Price{Input: 1}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
}

// A file written before app totals were kept per team holds them by app id
// alone, two teams' apps of one id summed together. Opening it rebuilds the
// totals per team from the records, and opening it again changes nothing.
func TestBoltLedgerMigratesAppTotalsToTeams(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ledger.db")
	l, db := openBoltLedger(t, path)
	for _, r := range []*billing.Record{
		{TeamID: "t1", KeyID: "k1", AppID: "a", Module: "AI Chat", Model: "m", Points: 1},
		{TeamID: "t2", KeyID: "k2", AppID: "a", Module: "AI Chat", Model: "m", Points: 2.5},
		{TeamID: "t2", KeyID: "k2", AppID: "b", Module: "AI Chat", Model: "m", Points: 0.25},
		{TeamID: "t2", KeyID: "k2", Module: "embedding", Model: "local", Points: 8}, // no app
	} {
		if err := l.Record(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	// Rewrite the totals as the old layout had them.
	err := db.Update(func(tx *bbolt.Tx) error {
		if err := tx.DeleteBucket([]byte("billing.apps")); err != nil {
			return err
		}
		b, err := tx.CreateBucket([]byte("billing.apps"))
		if err != nil {
			return err
		}
		for k, v := range map[string]float64{"a": 3.5, "b": 0.25} {
			if err := b.Put([]byte(k), binary.BigEndian.AppendUint64(nil, math.Float64bits(v))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	for round := range 2 {
		l, db := openBoltLedger(t, path)
		for _, tc := range []struct {
			team, app string
			want      float64
		}{{"t1", "a", 1}, {"t2", "a", 2.5}, {"t2", "b", 0.25}, {"t1", "b", 0}} {
			if p, err := l.AppPoints(ctx, tc.team, tc.app); err != nil || p != tc.want {
				t.Errorf("round %d: AppPoints(%s, %s) = %v, %v; want %v", round, tc.team, tc.app, p, err, tc.want)
			}
		}
		var keys []string
		_ = db.View(func(tx *bbolt.Tx) error {
			return tx.Bucket([]byte("billing.apps")).ForEach(func(k, _ []byte) error {
				keys = append(keys, string(k))
				return nil
			})
		})
		if want := []string{"t1\x00a", "t2\x00a", "t2\x00b"}; !slices.Equal(keys, want) {
			t.Errorf("round %d: app total keys %q; want %q", round, keys, want)
		}
		db.Close()
	}
}
