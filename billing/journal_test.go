package billing_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.etcd.io/bbolt"

	"github.com/chatgate/chatgate/billing"
	"github.com/chatgate/chatgate/billing/billingtest"
)

func TestJournaledBoltLedgerConformance(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    billing.BoltLedgerOptions
	}{
		// Records wait until a read lists them: totals are bbolt's plus
		// the journal's.
		{"waiting", billing.BoltLedgerOptions{ApplyAfter: time.Hour}},
		// Applies run all through the suite, beside writers and readers.
		{"applying", billing.BoltLedgerOptions{ApplyRecords: 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			billingtest.TestLedger(t, func(t *testing.T) billing.Ledger {
				l, _ := openJournaled(t, t.TempDir(), tc.o)
				return l
			})
		})
	}
}

// openJournaled opens a journaled BoltLedger on ledger.db and
// ledger.journal in dir, with o's Journal set to the latter; the ledger and
// its database are closed at cleanup.
func openJournaled(t testing.TB, dir string, o billing.BoltLedgerOptions) (*billing.BoltLedger, *bbolt.DB) {
	t.Helper()
	return openJournaledWith(t, dir, &bbolt.Options{Timeout: time.Second}, o)
}

// openJournaledWith is openJournaled with the database opened with opts.
func openJournaledWith(t testing.TB, dir string, opts *bbolt.Options, o billing.BoltLedgerOptions) (*billing.BoltLedger, *bbolt.DB) {
	t.Helper()
	db, err := bbolt.Open(filepath.Join(dir, "ledger.db"), 0o600, opts)
	if err != nil {
		t.Fatal(err)
	}
	o.Journal = filepath.Join(dir, "ledger.journal")
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	l, err := billing.OpenBoltLedger(db, o)
	if err != nil {
		_ = db.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = l.Close()
		_ = db.Close()
	})
	return l, db
}

// reopen crashes l (its journal as it is, nothing applied), closes db and
// opens the ledger in dir again.
func reopen(t *testing.T, dir string, l *billing.BoltLedger, db *bbolt.DB, o billing.BoltLedgerOptions) (*billing.BoltLedger, *bbolt.DB) {
	t.Helper()
	billing.Crash(l)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return openJournaled(t, dir, o)
}

func journalSize(t *testing.T, dir string) int64 {
	t.Helper()
	fi, err := os.Stat(filepath.Join(dir, "ledger.journal"))
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// inBolt counts the records bbolt itself holds, journal aside.
func inBolt(t *testing.T, db *bbolt.DB) int {
	t.Helper()
	n := 0
	if err := db.View(func(tx *bbolt.Tx) error {
		n = tx.Bucket([]byte("billing.records")).Stats().KeyN
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

type ledgerWant struct {
	records   int
	keyPoints float64
	appPoints float64
	billPts   float64
	billID    string
}

func checkLedger(t *testing.T, l *billing.BoltLedger, w ledgerWant) {
	t.Helper()
	ctx := context.Background()
	if p, err := l.KeyPointsOf(ctx, "k"); err != nil || p != w.keyPoints {
		t.Errorf("KeyPointsOf = %v, %v; want %v", p, err, w.keyPoints)
	}
	if kp, err := l.KeyPoints(ctx); err != nil || kp["k"] != w.keyPoints {
		t.Errorf("KeyPoints = %v, %v; want k: %v", kp, err, w.keyPoints)
	}
	if p, err := l.AppPoints(ctx, "t", "a"); err != nil || p != w.appPoints {
		t.Errorf("AppPoints = %v, %v; want %v", p, err, w.appPoints)
	}
	if _, n, err := l.List(ctx, billing.Filter{TeamID: "t"}); err != nil || n != w.records {
		t.Errorf("List = %d, %v; want %d", n, err, w.records)
	}
	if w.billID != "" {
		if b, err := l.Bill(ctx, w.billID); err != nil || b.TotalPoints != w.billPts {
			t.Errorf("Bill = %+v, %v; want %v points", b, err, w.billPts)
		}
	}
}

// A crash loses nothing Record acknowledged: the journal holds what bbolt
// does not have yet, totals count it before it is applied, and the ledger
// opened again applies it once and empties the journal.
func TestJournalCrashLosesNothing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	o := billing.BoltLedgerOptions{ApplyAfter: time.Hour}
	l, db := openJournaled(t, dir, o)
	bill := &billing.Bill{TeamID: "t", Name: "nightly"}
	if err := l.CreateBill(ctx, bill); err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		r := &billing.Record{TeamID: "t", KeyID: "k", AppID: "a", Module: "m", Model: "x", InputTokens: 1, Points: 0.25}
		if i%4 == 0 {
			r.BillID = bill.ID
		}
		if err := l.Record(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if p, s := billing.Waiting(l); p != 40 || s != 0 {
		t.Fatalf("waiting = %d, stuck = %d; want 40 waiting", p, s)
	}
	if n := inBolt(t, db); n != 0 {
		t.Fatalf("bbolt has %d records before any apply", n)
	}
	if p, _ := l.KeyPointsOf(ctx, "k"); p != 10 {
		t.Fatalf("KeyPointsOf before apply = %v; want 10", p)
	}
	if journalSize(t, dir) == 0 {
		t.Fatal("the journal is empty with 40 records acknowledged")
	}
	l, db = reopen(t, dir, l, db, o)
	if n := inBolt(t, db); n != 40 {
		t.Fatalf("bbolt has %d records after the restart; want 40", n)
	}
	if s := journalSize(t, dir); s != 0 {
		t.Fatalf("journal holds %d bytes after its records were applied", s)
	}
	checkLedger(t, l, ledgerWant{records: 40, keyPoints: 10, appPoints: 10, billPts: 2.5, billID: bill.ID})
	// Opening once more changes nothing.
	l, db = reopen(t, dir, l, db, o)
	checkLedger(t, l, ledgerWant{records: 40, keyPoints: 10, appPoints: 10, billPts: 2.5, billID: bill.ID})
}

// A crash after an apply committed but before the journal was emptied
// leaves records in both: read again, they count once.
func TestJournalReplayOfAppliedCountsOnce(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	o := billing.BoltLedgerOptions{ApplyAfter: time.Hour}
	l, db := openJournaled(t, dir, o)
	for range 10 {
		if err := l.Record(ctx, &billing.Record{TeamID: "t", KeyID: "k", AppID: "a", Points: 1}); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "ledger.journal")
	saved, err := os.ReadFile(path)
	if err != nil || len(saved) == 0 {
		t.Fatalf("journal: %d bytes, %v", len(saved), err)
	}
	checkLedger(t, l, ledgerWant{records: 10, keyPoints: 10, appPoints: 10}) // List applies them
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, saved, 0o600); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	l, _ = openJournaled(t, dir, o)
	checkLedger(t, l, ledgerWant{records: 10, keyPoints: 10, appPoints: 10})
}

func frame(payload []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(payload)))
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(payload, crc32.MakeTable(crc32.Castagnoli)))
	return append(b, payload...)
}

// A write a crash cut short (a torn tail) and a frame whose record does
// not decode (a poisoned one) are left out with a warning; the records
// around them are applied, the ledger opens every time, and the next
// records overwrite the tail.
func TestJournalTornAndPoisonedFrames(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		junk []byte
		warn string
	}{
		{"torn", frame([]byte(`{"id":"cut","teamId":"t","keyId":"k","points":100}`))[:20], "tornBytes=20"},
		{"badchecksum", append(frame([]byte(`{"id":"x","teamId":"t"}`))[:8], []byte(`{"id":"y","teamId":"t"}`)...), "tornBytes=31"},
		{"poisoned", frame([]byte(`{"id":7,"teamId":`)), "undecodable=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var logs bytes.Buffer
			o := billing.BoltLedgerOptions{ApplyAfter: time.Hour, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
			l, db := openJournaled(t, dir, o)
			for range 3 {
				if err := l.Record(ctx, &billing.Record{TeamID: "t", KeyID: "k", AppID: "a", Points: 1}); err != nil {
					t.Fatal(err)
				}
			}
			billing.Crash(l)
			f, err := os.OpenFile(filepath.Join(dir, "ledger.journal"), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = f.Write(tc.junk)
			_ = f.Close()
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			l, db = openJournaled(t, dir, o)
			if !bytes.Contains(logs.Bytes(), []byte(tc.warn)) {
				t.Errorf("log %q lacks %q", logs.String(), tc.warn)
			}
			checkLedger(t, l, ledgerWant{records: 3, keyPoints: 3, appPoints: 3})
			if err := l.Record(ctx, &billing.Record{TeamID: "t", KeyID: "k", AppID: "a", Points: 1}); err != nil {
				t.Fatal(err)
			}
			l, _ = reopen(t, dir, l, db, o)
			checkLedger(t, l, ledgerWant{records: 4, keyPoints: 4, appPoints: 4})
		})
	}
}

// A record bbolt refuses to take from the journal (here a panic while it
// is put) holds up no other: the rest are applied, it stays journaled
// and counted, the process lives on, and once bbolt takes it (the ledger
// opened again without the fault) it is applied once.
func TestJournalStuckRecord(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	o := billing.BoltLedgerOptions{ApplyAfter: time.Hour}
	l, db := openJournaled(t, dir, o)
	billing.PanicOn(l, "poisoned")
	for i := range 9 {
		r := &billing.Record{TeamID: "t", KeyID: "k", AppID: "a", Module: "chat", Points: 1}
		if i == 4 {
			r.Module, r.Points = "poisoned", 8
		}
		if err := l.Record(ctx, r); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	// List applies what waits; the poisoned record is not in bbolt, but
	// the totals have it.
	checkLedger(t, l, ledgerWant{records: 8, keyPoints: 16, appPoints: 16})
	if p, s := billing.Waiting(l); p != 0 || s != 1 {
		t.Fatalf("waiting = %d, stuck = %d; want 0 and 1", p, s)
	}
	if journalSize(t, dir) == 0 {
		t.Fatal("the stuck record is no longer journaled")
	}
	// Applies go on, trying it again, and it keeps counting once.
	if err := l.Record(ctx, &billing.Record{TeamID: "t", KeyID: "k", AppID: "a", Module: "chat", Points: 1}); err != nil {
		t.Fatal(err)
	}
	checkLedger(t, l, ledgerWant{records: 9, keyPoints: 17, appPoints: 17})
	l, _ = reopen(t, dir, l, db, o)
	checkLedger(t, l, ledgerWant{records: 10, keyPoints: 17, appPoints: 17})
	if p, s := billing.Waiting(l); p != 0 || s != 0 {
		t.Fatalf("waiting = %d, stuck = %d after the restart", p, s)
	}
}

// An id waiting in the journal is taken: the same record sent again before
// it is applied is ErrDuplicate, and after a crash it is still once.
func TestJournalDuplicateOfWaiting(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	o := billing.BoltLedgerOptions{ApplyAfter: time.Hour}
	l, db := openJournaled(t, dir, o)
	r := billing.Record{ID: "once", TeamID: "t", KeyID: "k", AppID: "a", Points: 2}
	if err := l.Record(ctx, &r); err != nil {
		t.Fatal(err)
	}
	again := r
	if err := l.Record(ctx, &again); !errors.Is(err, billing.ErrDuplicate) {
		t.Fatalf("again before apply: %v; want ErrDuplicate", err)
	}
	l, _ = reopen(t, dir, l, db, o)
	if err := l.Record(ctx, &again); !errors.Is(err, billing.ErrDuplicate) {
		t.Fatalf("again after restart: %v; want ErrDuplicate", err)
	}
	checkLedger(t, l, ledgerWant{records: 1, keyPoints: 2, appPoints: 2})
}

// A journal that cannot be written fails the record and changes nothing;
// a closed ledger takes no record.
func TestJournalWriteFailsChangesNothing(t *testing.T) {
	ctx := context.Background()
	l, _ := openJournaled(t, t.TempDir(), billing.BoltLedgerOptions{ApplyAfter: time.Hour})
	if err := l.Record(ctx, &billing.Record{TeamID: "t", KeyID: "k", AppID: "a", Points: 1}); err != nil {
		t.Fatal(err)
	}
	billing.BreakJournal(l)
	if err := l.Record(ctx, &billing.Record{TeamID: "t", KeyID: "k", AppID: "a", Points: 5}); err == nil {
		t.Fatal("a record was acknowledged on a journal that cannot be written")
	}
	if p, _ := billing.Waiting(l); p != 1 {
		t.Fatalf("waiting = %d; want the first record alone", p)
	}
	if p, _ := l.KeyPointsOf(ctx, "k"); p != 1 {
		t.Fatalf("KeyPointsOf = %v; want 1", p)
	}
	_ = l.Close()
	if err := l.Record(ctx, &billing.Record{TeamID: "t", Points: 1}); !errors.Is(err, billing.ErrLedgerClosed) {
		t.Fatalf("after Close: %v; want ErrLedgerClosed", err)
	}
}

// Records wait at most ApplyAfter.
func TestJournalAppliesAfterItsDelay(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		l, db := openJournaled(t, dir, billing.BoltLedgerOptions{ApplyAfter: 5 * time.Second})
		if err := l.Record(ctx, &billing.Record{TeamID: "t", KeyID: "k", Points: 1}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(4 * time.Second)
		synctest.Wait()
		if n := inBolt(t, db); n != 0 {
			t.Fatalf("applied after 4s of 5: %d", n)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if n := inBolt(t, db); n != 1 {
			t.Fatalf("bbolt has %d records 5s after; want 1", n)
		}
		if p, _ := billing.Waiting(l); p != 0 {
			t.Fatalf("%d still wait", p)
		}
	})
}

// Totals read while applies move records into bbolt count each record
// once: a reader never sees a key's points fall or pass what was recorded.
func TestJournalTotalsDuringApplies(t *testing.T) {
	ctx := context.Background()
	l, _ := openJournaled(t, t.TempDir(), billing.BoltLedgerOptions{ApplyRecords: 5})
	const writers, each = 4, 100
	var (
		wg, rg sync.WaitGroup
		done   atomic.Bool
	)
	for range 2 {
		rg.Go(func() {
			last := 0.0
			for !done.Load() {
				p, err := l.KeyPointsOf(ctx, "k")
				if err != nil {
					t.Error(err)
					return
				}
				if p < last {
					t.Errorf("key points fell from %v to %v", last, p)
					return
				}
				if p > writers*each {
					t.Errorf("key points %v passed the %d records sent", p, writers*each)
					return
				}
				last = p
			}
		})
	}
	for range writers {
		wg.Go(func() {
			for range each {
				if err := l.Record(ctx, &billing.Record{TeamID: "t", KeyID: "k", AppID: "a", Points: 1}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	done.Store(true)
	rg.Wait()
	checkLedger(t, l, ledgerWant{records: writers * each, keyPoints: writers * each, appPoints: writers * each})
}

// When bbolt refuses every record, an apply stops after a few instead of
// trying each: the records keep counting and stay journaled, and a start
// with bbolt well again applies each once.
func TestJournalFailingBoltStopsTrying(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	o := billing.BoltLedgerOptions{ApplyAfter: time.Hour}
	l, db := openJournaled(t, dir, o)
	billing.PanicOn(l, "m")
	for range 20 {
		if err := l.Record(ctx, &billing.Record{TeamID: "t", KeyID: "k", AppID: "a", Module: "m", Points: 1}); err != nil {
			t.Fatal(err)
		}
	}
	checkLedger(t, l, ledgerWant{records: 0, keyPoints: 20, appPoints: 20})
	if p, s := billing.Waiting(l); p+s != 20 || s == 0 || s > 8 {
		t.Fatalf("waiting = %d, stuck = %d; want 20 in all, at most 8 tried alone", p, s)
	}
	checkLedger(t, l, ledgerWant{records: 0, keyPoints: 20, appPoints: 20})
	l, _ = reopen(t, dir, l, db, o)
	checkLedger(t, l, ledgerWant{records: 20, keyPoints: 20, appPoints: 20})
}

// While records still wait after an apply (here one bbolt refuses), the
// journal keeps the applied ones too, up to its limit, past which an
// apply rewrites it with only those that wait; either way a start applies
// each record once.
func TestJournalKeepsAppliedUpToItsLimit(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		limit int64
	}{{"under", 1 << 20}, {"over", 1}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			o := billing.BoltLedgerOptions{ApplyAfter: time.Hour}
			l, db := openJournaled(t, dir, o)
			billing.PanicOn(l, "poisoned")
			billing.SetJournalLimit(l, tc.limit)
			if err := l.Record(ctx, &billing.Record{TeamID: "t", KeyID: "k", AppID: "a", Module: "poisoned", Points: 8}); err != nil {
				t.Fatal(err)
			}
			one := journalSize(t, dir)
			for range 5 {
				if err := l.Record(ctx, &billing.Record{TeamID: "t", KeyID: "k", AppID: "a", Module: "chat", Points: 1}); err != nil {
					t.Fatal(err)
				}
			}
			checkLedger(t, l, ledgerWant{records: 5, keyPoints: 13, appPoints: 13})
			size := journalSize(t, dir)
			switch {
			case tc.limit > size && size <= one:
				t.Fatalf("journal of %d bytes under its limit: the applied records went", size)
			case tc.limit < size && size != one:
				t.Fatalf("journal of %d bytes past its limit; want the stuck record's %d alone", size, one)
			}
			l, _ = reopen(t, dir, l, db, o)
			checkLedger(t, l, ledgerWant{records: 6, keyPoints: 13, appPoints: 13})
			if s := journalSize(t, dir); s != 0 {
				t.Fatalf("journal holds %d bytes after a start applied it all", s)
			}
		})
	}
}
