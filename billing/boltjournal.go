package billing

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"

	"github.com/chatgate/chatgate/internal/boltx"
	"github.com/chatgate/chatgate/internal/panics"
)

// BoltLedgerOptions tune a BoltLedger. The zero value is NewBoltLedger's:
// no journal, each batch committed to bbolt before its callers return.
type BoltLedgerOptions struct {
	// Journal names the file a journaled ledger appends records to (and
	// syncs) before Record returns; "": no journal. Records move from it
	// into the database in batches, so that one bbolt commit covers many
	// records even when they come one at a time. The journal belongs to
	// the database the ledger is opened on: open one ledger per journal
	// and keep the two files together.
	Journal string
	// ApplyAfter bounds how long a journaled record waits before it is
	// moved into the database; 0: one second. Reads that list records or
	// bills move what waits first, so they never miss a record; totals
	// add what waits to what the database holds.
	ApplyAfter time.Duration
	// ApplyRecords is how many waiting records make the ledger move them
	// at once; 0: 256 (larger batches cost less CPU a record, and hold
	// up the writers longer while they commit).
	ApplyRecords int
	// Logger reports records the database refused to take from the
	// journal; slog.Default() when nil.
	Logger *slog.Logger
}

// ErrLedgerClosed answers a Record on a ledger after its Close.
var ErrLedgerClosed = errors.New("billing: ledger is closed")

var errRecordIDTooLong = fmt.Errorf("billing: record id longer than %d bytes", bbolt.MaxKeySize-8)

// journaled is what a BoltLedger with a journal keeps besides bbolt.
//
// A record is journaled (synced in the journal, and acknowledged), then
// applied (committed to bbolt with its totals) by an apply that runs
// beside the rounds journaling newer records. Totals are read as bbolt's
// plus the journaled records bbolt does not have yet, and those must count
// exactly once whichever side of an apply's commit a read falls on: each
// journaled record gets a sequence number, an apply commits the last one
// it covers in bucketJournal with its records, and a read counts only the
// waiting records past the number its own transaction sees. A record bbolt
// refused to apply (a panic, a failing disk) is stuck: it stays in the
// journal and in the totals, and each apply tries it again alone.
//
// Locks, taken in this order: applyRun, held by the one apply that runs;
// journalMu, held by a round while it journals and by an apply while it
// resets the journal; pmu, over what waits.
type journaled struct {
	j            *journal // nil: the ledger has no journal
	after        time.Duration
	applyRecords int
	journalLimit int64 // maxJournalBytes; tests' to lower
	log          *slog.Logger

	applyRun    sync.Mutex
	applyQueued atomic.Bool // an apply goroutine is on its way

	journalMu sync.Mutex
	timer     *time.Timer // armed while records wait; guarded by journalMu
	shut      bool        // Close ran; guarded by journalMu
	buf       []byte      // frames of a round; guarded by journalMu

	// pmu guards what waits, which totals read and a round checks ids
	// against. seq only grows: it is the number of the last journaled
	// record, carried over from bbolt's applied number when the ledger
	// opens.
	pmu     sync.RWMutex
	seq     uint64
	openSeq uint64           // the last seq of the records read back at open
	pending []*journalRecord // journaled, not applied, in seq order
	stuck   []*journalRecord
	ids     map[string]bool // the ids of pending and stuck
}

type journalRecord struct {
	seq uint64
	r   *Record // the ledger's own copy
	raw []byte  // r in JSON, as journaled
}

var appliedKey = []byte("applied")

func appliedSeq(tx *bbolt.Tx) uint64 {
	if v := tx.Bucket(bucketJournal).Get(appliedKey); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// openJournal opens o.Journal and applies what it holds from before.
func (l *BoltLedger) openJournal(o BoltLedgerOptions) error {
	l.after, l.applyRecords, l.log, l.journalLimit = o.ApplyAfter, o.ApplyRecords, o.Logger, maxJournalBytes
	if l.after <= 0 {
		l.after = time.Second
	}
	if l.applyRecords <= 0 {
		l.applyRecords = 256
	}
	if l.log == nil {
		l.log = slog.Default()
	}
	j, recs, bad, torn, err := openJournal(o.Journal)
	if err != nil {
		return err
	}
	if bad > 0 || torn > 0 {
		l.log.Warn("billing: journal had unreadable frames, left out", "path", o.Journal, "undecodable", bad, "tornBytes", torn)
	}
	if err := l.db.View(func(tx *bbolt.Tx) error { l.seq = appliedSeq(tx); return nil }); err != nil {
		_ = j.close()
		return fmt.Errorf("billing: %w", err)
	}
	l.j, l.ids = j, map[string]bool{}
	for _, p := range recs {
		if l.ids[p.r.ID] {
			continue // written twice: a crash hit a journal reset
		}
		l.seq++
		p.seq = l.seq
		l.pending = append(l.pending, p)
		l.ids[p.r.ID] = true
	}
	l.openSeq = l.seq
	l.drain()
	return nil
}

// journalRound journals batch in one write and answers its callers. It
// leaves applying to another goroutine, so that a large apply never holds
// up the next round.
func (l *BoltLedger) journalRound(batch []*pendingRecord) {
	errs, waiting := l.journalBatch(batch)
	for i, p := range batch {
		p.done <- errs[i]
	}
	if waiting >= l.applyRecords {
		l.applyLater()
	}
}

// journalBatch journals what of batch passes its checks and returns each
// record's answer and how many records now wait.
func (l *BoltLedger) journalBatch(batch []*pendingRecord) (errs []error, waiting int) {
	l.journalMu.Lock()
	defer l.journalMu.Unlock()
	errs = make([]error, len(batch))
	var took []*journalRecord
	err := panics.Catch(func() error {
		l.pmu.RLock()
		defer l.pmu.RUnlock()
		return l.db.View(func(tx *bbolt.Tx) error {
			var err error
			took, err = l.check(tx, batch, errs)
			return err
		})
	})
	l.buf = l.buf[:0]
	for _, p := range took {
		if err == nil {
			l.buf, err = appendFrame(l.buf, p.raw)
		}
	}
	if err == nil && len(took) > 0 {
		err = l.j.write(l.buf)
	}
	if err != nil {
		err = fmt.Errorf("billing: writing usage: %w", err)
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
		took = nil
	}
	l.pmu.Lock()
	for _, p := range took {
		l.seq++
		p.seq = l.seq
		l.pending = append(l.pending, p)
		l.ids[p.r.ID] = true
	}
	waiting = len(l.pending)
	l.pmu.Unlock()
	if waiting > 0 && l.timer == nil && !l.shut {
		l.timer = time.AfterFunc(l.after, l.applyLater)
	}
	return errs, waiting
}

// check answers what bbolt would answer for each record of batch (an
// unknown bill, a duplicate id, an id bbolt cannot key) into errs, and
// returns copies of the records that pass, under their final ids, with
// their JSON. The caller holds pmu, so that an id is either still among
// the waiting or already in tx.
func (l *BoltLedger) check(tx *bbolt.Tx, batch []*pendingRecord, errs []error) ([]*journalRecord, error) {
	ids, billsB := tx.Bucket(bucketRecordIDs), tx.Bucket(bucketBills)
	round := map[string]bool{}
	teams := map[string]string{} // bill id -> its team, "" for none
	taken := func(id string) bool { return round[id] || l.ids[id] || ids.Get([]byte(id)) != nil }
	var took []*journalRecord
	for i, p := range batch {
		r := p.r
		if r.BillID != "" {
			team, ok := teams[r.BillID]
			if !ok {
				var b BillDetail
				found, err := boltx.GetJSON(billsB, []byte(r.BillID), &b)
				if err != nil {
					errs[i] = fmt.Errorf("billing: reading bill %s: %w", r.BillID, err)
					continue
				}
				if found {
					team = b.TeamID
				}
				teams[r.BillID] = team
			}
			if team == "" || team != r.TeamID {
				errs[i] = ErrBillNotFound
				continue
			}
		}
		for taken(r.ID) && p.named {
			r.ID = newRecordID(time.Now())
		}
		switch {
		case taken(r.ID):
			errs[i] = ErrDuplicate
		case len(r.ID) > bbolt.MaxKeySize-8:
			errs[i] = errRecordIDTooLong
		default:
			c := *r
			raw, err := json.Marshal(&c)
			if err != nil {
				return nil, err
			}
			round[r.ID] = true
			took = append(took, &journalRecord{r: &c, raw: raw})
		}
	}
	return took, nil
}

// applyLater applies what waits on a goroutine of its own, unless one is
// already on its way.
func (l *BoltLedger) applyLater() {
	if l.applyQueued.Swap(true) {
		return
	}
	go func() {
		l.applyRun.Lock()
		defer l.applyRun.Unlock()
		l.applyQueued.Store(false)
		l.apply()
	}()
}

// drain applies what waits, for a read that must see every record, and
// returns once it is in bbolt.
func (l *BoltLedger) drain() {
	if l.j == nil {
		return
	}
	l.applyRun.Lock()
	defer l.applyRun.Unlock()
	l.apply()
}

// apply moves the records waiting when it starts into bbolt: all of them
// in one commit, or, should that fail, each in its own, so that a record
// bbolt refuses holds up no other. Then the journal is left holding only
// what still waits. The caller holds applyRun; rounds go on meanwhile. It
// never panics: it runs on goroutines nothing else watches.
func (l *BoltLedger) apply() {
	err := panics.Catch(func() error {
		l.journalMu.Lock()
		if l.timer != nil {
			l.timer.Stop()
			l.timer = nil
		}
		shut := l.shut
		l.journalMu.Unlock()
		if shut {
			return nil
		}
		l.pmu.RLock()
		batch, stuck := slices.Clone(l.pending), slices.Clone(l.stuck)
		l.pmu.RUnlock()
		if len(batch) == 0 && len(stuck) == 0 {
			return nil
		}
		l.applyStuck(stuck)
		l.applyBatch(batch)
		l.journalMu.Lock()
		defer l.journalMu.Unlock()
		// No round writes now: the journal holds the stuck, the records
		// just applied and those journaled since, which still wait.
		l.pmu.RLock()
		keep := append(slices.Clone(l.stuck), l.pending...)
		l.pmu.RUnlock()
		// Emptying the journal is a truncation; keeping some of it means
		// writing them to a new file and syncing it and its directory,
		// with every round waiting. Under steady load records always
		// come in during an apply, so the journal keeps the applied ones
		// until it reaches maxJournalBytes: read again after a crash,
		// their ids keep them from counting twice.
		if len(keep) > 0 && l.j.size < l.journalLimit {
			return nil
		}
		return l.j.reset(keep)
	})
	if err != nil {
		l.log.Error("billing: applying the journal", "err", err)
	}
}

// applyStuck tries the stuck records again, each alone, up to the first
// that fails still: when bbolt itself fails, trying each of many would
// only spin (a start applies them all again, as it does every record the
// journal holds).
func (l *BoltLedger) applyStuck(stuck []*journalRecord) {
	for _, p := range stuck {
		if err := l.applyTx([]*journalRecord{p}, 0, false); err != nil {
			return
		}
		l.pmu.Lock()
		l.stuck = slices.DeleteFunc(l.stuck, func(q *journalRecord) bool { return q == p })
		delete(l.ids, p.r.ID)
		l.pmu.Unlock()
	}
}

// applyBatch commits batch, records of fresh ids in seq order.
func (l *BoltLedger) applyBatch(batch []*journalRecord) {
	if len(batch) == 0 {
		return
	}
	last := batch[len(batch)-1].seq
	// Records read back from the journal at start may be in bbolt
	// already; those journaled since were checked against it.
	fresh := batch[0].seq > l.openSeq
	if err := l.applyTx(batch, last, fresh); err == nil {
		l.dropApplied(last)
		return
	}
	// Each record committing its own number: one that fails moves to
	// stuck before the next commit covers its number, so that it counts
	// once throughout. After a run of failures bbolt is taken to be
	// failing as a whole, and the rest wait for the next apply.
	failed := 0
	for _, p := range batch {
		if failed == maxApplyFailures {
			return
		}
		err := l.applyTx([]*journalRecord{p}, p.seq, p.seq > l.openSeq)
		if err == nil {
			failed = 0
			l.dropApplied(p.seq)
			continue
		}
		failed++
		l.log.Error("billing: a journaled record could not be applied; it stays in the journal", "id", p.r.ID, "err", err)
		l.pmu.Lock()
		l.pending = slices.DeleteFunc(l.pending, func(q *journalRecord) bool { return q == p })
		l.stuck = append(l.stuck, p)
		l.pmu.Unlock()
	}
}

// maxJournalBytes is how large a journal may grow holding records already
// applied before an apply rewrites it with only those that wait; a start
// after a crash reads it all.
const maxJournalBytes = 8 << 20

// maxApplyFailures is how many records in a row may fail to apply alone
// before an apply stops trying the rest.
const maxApplyFailures = 8

// applyTx commits recs to bbolt and, when seq is set, marks the journal
// applied up to it. fresh skips the check that an id is not in bbolt yet.
func (l *BoltLedger) applyTx(recs []*journalRecord, seq uint64, fresh bool) error {
	return panics.Catch(func() error {
		return l.db.Update(func(tx *bbolt.Tx) error {
			w := newBatchWriter(tx)
			w.poison = l.poison
			for _, p := range recs {
				refused, err := w.put(&pendingRecord{r: p.r, raw: p.raw, fresh: fresh})
				if err != nil {
					return err
				}
				// A duplicate is a record applied before a crash left
				// it in the journal; anything else was checked when it
				// was journaled and cannot happen.
				if refused != nil && !errors.Is(refused, ErrDuplicate) {
					l.log.Error("billing: a journaled record was refused; it is left out", "id", p.r.ID, "err", refused)
				}
			}
			if err := w.flush(); err != nil {
				return err
			}
			if seq == 0 {
				return nil
			}
			return tx.Bucket(bucketJournal).Put(appliedKey, binary.BigEndian.AppendUint64(nil, seq))
		})
	})
}

// dropApplied forgets the waiting records up to seq, now in bbolt.
func (l *BoltLedger) dropApplied(seq uint64) {
	l.pmu.Lock()
	defer l.pmu.Unlock()
	n := 0
	for n < len(l.pending) && l.pending[n].seq <= seq {
		delete(l.ids, l.pending[n].r.ID)
		n++
	}
	l.pending = slices.Delete(l.pending, 0, n)
}

// viewTotals calls fn in a read transaction with a way to visit the
// records the transaction's totals lack: those journaled and not applied
// by the time it began.
func (l *BoltLedger) viewTotals(fn func(tx *bbolt.Tx, unapplied func(func(*Record))) error) error {
	if l.j == nil {
		return l.db.View(func(tx *bbolt.Tx) error { return fn(tx, func(func(*Record)) {}) })
	}
	l.pmu.RLock()
	defer l.pmu.RUnlock()
	return l.db.View(func(tx *bbolt.Tx) error {
		applied := appliedSeq(tx)
		ids := tx.Bucket(bucketRecordIDs)
		return fn(tx, func(each func(*Record)) {
			for _, p := range l.pending {
				if p.seq > applied {
					each(p.r)
				}
			}
			for _, p := range l.stuck {
				if ids.Get([]byte(p.r.ID)) == nil {
					each(p.r)
				}
			}
		})
	})
}

// Close stops the ledger taking records, waits for those it has, and, on
// a journaled ledger, applies what waits and closes the journal. It does
// not close the database, which is the caller's.
func (l *BoltLedger) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.loops.Wait()
	if l.j == nil {
		return nil
	}
	l.drain()
	l.applyRun.Lock()
	defer l.applyRun.Unlock()
	l.journalMu.Lock()
	defer l.journalMu.Unlock()
	if l.shut {
		return nil
	}
	l.shut = true
	if l.timer != nil {
		l.timer.Stop()
	}
	return l.j.close()
}
