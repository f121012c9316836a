package billing

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"time"

	"go.etcd.io/bbolt"

	"github.com/chatgate/chatgate/internal/boltx"
	"github.com/chatgate/chatgate/internal/id"
	"github.com/chatgate/chatgate/internal/panics"
)

var (
	bucketRecords   = []byte("billing.records")    // time(8)id -> Record
	bucketRecordIDs = []byte("billing.record_ids") // id -> 1
	bucketBills     = []byte("billing.bills")      // id -> BillDetail
	bucketKeys      = []byte("billing.keys")       // key id -> points, float64 bits
	bucketApps      = []byte("billing.apps")       // team\0app id -> points, float64 bits
	bucketJournal   = []byte("billing.journal")    // "applied" -> the last journal seq in bbolt, uint64
)

// BoltLedger is a Ledger in a bbolt database, in the billing.* buckets of
// the file the other domains share.
//
// Concurrent Record calls share commits: a call joins the next transaction
// and returns when it is on disk, so under load one fsync covers many
// records, without delaying a lone writer and without trading away
// durability. What a commit costs is mostly the pages it writes and syncs,
// so a record touches as few as it can: the ids the ledger makes sort by
// time (see newRecordID), records fill their pages, and each total a batch
// adds to is written once. A ledger opened with a journal
// ([BoltLedgerOptions].Journal) writes the records there first and moves
// them into bbolt in larger batches (see OpenBoltLedger).
type BoltLedger struct {
	db *bbolt.DB

	mu      sync.Mutex
	queue   []*pendingRecord
	running bool
	closed  bool
	loops   sync.WaitGroup // commit loops; Close waits for them

	poison func(*Record) // tests': called on each record a commit puts

	journaled // zero unless opened with a journal
}

type pendingRecord struct {
	r     *Record
	named bool // the id is the ledger's own (see prepare)
	done  chan error

	// A record applied from a journal: raw is its JSON, already made for
	// the journal, and fresh says its id was checked free when it was
	// journaled (a record read back from the journal at start may be in
	// bbolt already).
	raw   []byte
	fresh bool
}

// NewBoltLedger returns a ledger on db, creating its buckets if needed.
// Each batch of records is committed to db before Record returns; see
// OpenBoltLedger for the journaled ledger.
func NewBoltLedger(db *bbolt.DB) (*BoltLedger, error) {
	return OpenBoltLedger(db, BoltLedgerOptions{})
}

// OpenBoltLedger returns a ledger on db as o asks, creating its buckets
// (and its journal) if needed. With a journal, it first moves into db what
// the journal holds from before: records acknowledged before a crash.
func OpenBoltLedger(db *bbolt.DB, o BoltLedgerOptions) (*BoltLedger, error) {
	if err := boltx.EnsureBuckets(db, bucketRecords, bucketRecordIDs, bucketBills, bucketKeys, bucketApps, bucketJournal); err != nil {
		return nil, fmt.Errorf("billing: %w", err)
	}
	if err := db.Update(migrateAppTotals); err != nil {
		return nil, fmt.Errorf("billing: scoping app totals to teams: %w", err)
	}
	l := &BoltLedger{db: db}
	if o.Journal != "" {
		if err := l.openJournal(o); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// migrateAppTotals rebuilds the app totals from the records when any is
// still keyed by app id alone, as files written before app ids were
// scoped to teams hold them (two teams' apps of one id were summed
// together). Ids never hold NUL, so a key without one is of the old
// layout; once rebuilt, none is left and running it again changes nothing.
func migrateAppTotals(tx *bbolt.Tx) error {
	apps := tx.Bucket(bucketApps)
	stale := false
	c := apps.Cursor()
	for k, _ := c.First(); k != nil && !stale; k, _ = c.Next() {
		stale = !bytes.Contains(k, []byte{0})
	}
	if !stale {
		return nil
	}
	if err := tx.DeleteBucket(bucketApps); err != nil {
		return err
	}
	apps, err := tx.CreateBucket(bucketApps)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketRecords).ForEach(func(k, v []byte) error {
		var r Record
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("record %x: %w", k, err)
		}
		if r.AppID == "" {
			return nil
		}
		return addFloat(apps, appKey(r.TeamID, r.AppID), r.Points)
	})
}

func recordKey(r *Record) []byte {
	b := binary.BigEndian.AppendUint64(nil, uint64(r.Time.UnixNano()))
	return append(b, r.ID...)
}

func addFloat(b *bbolt.Bucket, key string, v float64) error {
	if key == "" || v == 0 {
		return nil
	}
	cur := 0.0
	if old := b.Get([]byte(key)); len(old) == 8 {
		cur = math.Float64frombits(binary.BigEndian.Uint64(old))
	}
	return b.Put([]byte(key), binary.BigEndian.AppendUint64(nil, math.Float64bits(cur+v)))
}

func getFloat(b *bbolt.Bucket, key string) float64 {
	if v := b.Get([]byte(key)); len(v) == 8 {
		return math.Float64frombits(binary.BigEndian.Uint64(v))
	}
	return 0
}

// Record implements RecordWriter.
func (l *BoltLedger) Record(ctx context.Context, r *Record) error {
	named, err := prepare(r)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	p := &pendingRecord{r: r, named: named, done: make(chan error, 1)}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrLedgerClosed
	}
	l.queue = append(l.queue, p)
	lead := !l.running
	if lead {
		l.running = true
		l.loops.Add(1)
	}
	l.mu.Unlock()
	if lead {
		// The caller that finds no round running commits one itself,
		// with its record and whatever queued meanwhile: a lone writer
		// then costs no goroutine, no hand-off and no wake-up. What
		// queues behind it goes to a goroutine, so that its caller waits
		// for its own record alone.
		l.round()
		l.mu.Lock()
		more := len(l.queue) > 0
		if !more {
			l.running = false
		}
		l.mu.Unlock()
		if more {
			go l.commitLoop()
		} else {
			l.loops.Done()
		}
	}
	// Once queued the record is committed whatever ctx does: waiting for it
	// is what makes the nil error mean durable.
	return <-p.done
}

// round commits everything queued in one transaction (or journal write);
// it reports false, and ends the running loop, when nothing was queued.
func (l *BoltLedger) round() bool {
	l.mu.Lock()
	batch := l.queue
	l.queue = nil
	if len(batch) == 0 {
		l.running = false
		l.mu.Unlock()
		l.loops.Done()
		return false
	}
	l.mu.Unlock()
	// Whatever goes wrong, every caller of the batch gets an answer and
	// the loop goes on: a round runs in a caller's goroutine or in one of
	// its own, and neither may be left hanging or take the process down.
	err := panics.Catch(func() error {
		if l.j != nil {
			l.journalRound(batch)
		} else {
			l.commit(batch)
		}
		return nil
	})
	if err != nil {
		for _, p := range batch {
			select {
			case p.done <- fmt.Errorf("billing: writing usage: %w", err):
			default: // answered before the panic
			}
		}
	}
	return true
}

// commitLoop runs rounds until the queue is empty.
func (l *BoltLedger) commitLoop() {
	for l.round() {
		// Let the goroutines ready to run (the callers just answered, and
		// whichever others are runnable) reach the queue before the next
		// round takes it: without it, writers that record again fall in
		// behind the round that starts at once, and split into two halves
		// each committing alone, twice the fsyncs for the same records. A
		// yield, not a wait: when nothing else is runnable it returns at
		// once.
		runtime.Gosched()
	}
}

// commit writes batch in one transaction and answers its callers. A
// record that fails on its own (an unknown bill) is left out of the
// transaction; should the transaction itself fail, for a record bbolt
// refuses, a panic or the disk, each record is written again in a
// transaction of its own, so that whatever sank the batch fails only the
// record it comes from. A panic must not end the process with every caller
// waiting: it fails its transaction instead.
func (l *BoltLedger) commit(batch []*pendingRecord) {
	errs := make([]error, len(batch))
	err := panics.Catch(func() error {
		return l.db.Update(func(tx *bbolt.Tx) error {
			w := newBatchWriter(tx)
			w.poison = l.poison
			for i, p := range batch {
				var err error
				if errs[i], err = w.put(p); err != nil {
					return err
				}
			}
			return w.flush()
		})
	})
	if err != nil && len(batch) > 1 {
		for _, p := range batch {
			l.commit([]*pendingRecord{p})
		}
		return
	}
	for i, p := range batch {
		if err != nil {
			p.done <- fmt.Errorf("billing: writing usage: %w", err)
		} else {
			p.done <- errs[i]
		}
	}
}

// batchWriter puts one commit's records. The records go in as they come;
// the totals they add to (keys, apps, bills) are summed in memory and
// written once each when the batch is flushed, so that a batch of one
// key's or one bill's records reads, decodes and writes its total once
// instead of once per record.
type batchWriter struct {
	ids, recs, keyTotals, appTotals, billsB *bbolt.Bucket
	keys, apps                              map[string]float64
	bills                                   map[string]*batchBill
	poison                                  func(*Record)
}

// batchBill is a bill as a batch has it so far.
type batchBill struct {
	b     *BillDetail // nil: no such bill
	spent bool        // a record of the batch was added to it
}

func newBatchWriter(tx *bbolt.Tx) *batchWriter {
	recs := tx.Bucket(bucketRecords)
	// Records are keyed by time and come in about in time order: splitting
	// a full page into full ones, not halves as bbolt does by default,
	// halves the pages a commit writes for them (and the file they fill).
	// A bucket's fill percent is not stored, so each transaction sets it.
	recs.FillPercent = 1
	return &batchWriter{
		ids: tx.Bucket(bucketRecordIDs), recs: recs, keyTotals: tx.Bucket(bucketKeys), appTotals: tx.Bucket(bucketApps),
		billsB: tx.Bucket(bucketBills), keys: map[string]float64{}, apps: map[string]float64{}, bills: map[string]*batchBill{},
	}
}

// bill returns the bill of id as this batch has it so far.
func (w *batchWriter) bill(id string) (*batchBill, error) {
	if b, ok := w.bills[id]; ok {
		return b, nil
	}
	b := &batchBill{b: new(BillDetail)}
	ok, err := boltx.GetJSON(w.billsB, []byte(id), b.b)
	if err != nil {
		return nil, err
	}
	if !ok {
		b.b = nil
	}
	w.bills[id] = b
	return b, nil
}

// put stores p's record and adds it to the batch's totals. refused is the
// record's own failure (an unknown bill, ErrDuplicate), which fails that
// record alone and changes nothing; err is bbolt's, which may have left
// the record half written, so the transaction must not commit.
func (w *batchWriter) put(p *pendingRecord) (refused, err error) {
	r := p.r
	if w.poison != nil {
		w.poison(r)
	}
	var b *batchBill
	if r.BillID != "" {
		if b, err = w.bill(r.BillID); err != nil {
			return nil, err
		}
		if b.b == nil || b.b.TeamID != r.TeamID {
			return ErrBillNotFound, nil
		}
	}
	for !p.fresh && w.ids.Get([]byte(r.ID)) != nil {
		if !p.named {
			return ErrDuplicate, nil
		}
		r.ID = newRecordID(time.Now())
	}
	// Not a nil value: bbolt reads a nil put back as nil within the same
	// transaction, so a duplicate in the same commit would count again.
	if err := w.ids.Put([]byte(r.ID), []byte{1}); err != nil {
		return nil, err
	}
	if p.raw != nil {
		err = w.recs.Put(recordKey(r), p.raw)
	} else {
		err = boltx.PutJSON(w.recs, recordKey(r), r)
	}
	if err != nil {
		return nil, err
	}
	if r.KeyID != "" {
		w.keys[r.KeyID] += r.Points
	}
	if r.AppID != "" {
		w.apps[appKey(r.TeamID, r.AppID)] += r.Points
	}
	if b != nil {
		b.b.addRecord(r)
		b.spent = true
	}
	return nil, nil
}

// flush adds the batch's totals to the stored ones.
func (w *batchWriter) flush() error {
	for k, v := range w.keys {
		if err := addFloat(w.keyTotals, k, v); err != nil {
			return err
		}
	}
	for k, v := range w.apps {
		if err := addFloat(w.appTotals, k, v); err != nil {
			return err
		}
	}
	for id, b := range w.bills {
		if b.spent {
			if err := boltx.PutJSON(w.billsB, []byte(id), b.b); err != nil {
				return err
			}
		}
	}
	return nil
}

// CreateBill implements BillStore.
func (l *BoltLedger) CreateBill(ctx context.Context, b *Bill) error {
	if b.ID == "" {
		b.ID = id.New()
	}
	return l.db.Update(func(tx *bbolt.Tx) error {
		return boltx.PutJSON(tx.Bucket(bucketBills), []byte(b.ID), &BillDetail{Bill: *b, Items: []BillItem{}})
	})
}

// Bill implements BillStore.
func (l *BoltLedger) Bill(ctx context.Context, id string) (*BillDetail, error) {
	l.drain()
	b := new(BillDetail)
	err := l.db.View(func(tx *bbolt.Tx) error {
		ok, err := boltx.GetJSON(tx.Bucket(bucketBills), []byte(id), b)
		if err == nil && !ok {
			err = ErrBillNotFound
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return b, nil
}

// Bills implements BillLister.
func (l *BoltLedger) Bills(ctx context.Context) ([]Bill, error) {
	l.drain()
	var out []Bill
	err := boltx.View(ctx, l.db, func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketBills).ForEach(func(k, v []byte) error {
			var b BillDetail
			if err := json.Unmarshal(v, &b); err != nil {
				return fmt.Errorf("billing: bill %s: %w", k, err)
			}
			out = append(out, b.Bill)
			return nil
		})
	})
	sortBills(out)
	return out, err
}

// EachRecord implements RecordSource. The records' keys are their time
// then id, so the bucket's order is the one promised.
func (l *BoltLedger) EachRecord(ctx context.Context, fn func(Record) error) error {
	l.drain()
	return boltx.View(ctx, l.db, func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketRecords).ForEach(func(k, v []byte) error {
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("billing: record %x: %w", k, err)
			}
			return fn(r)
		})
	})
}

// List implements UsageReader.
func (l *BoltLedger) List(ctx context.Context, f Filter) ([]Record, int, error) {
	var (
		out   []Record
		total int
	)
	err := l.scan(ctx, f, func(r *Record) {
		total++
		if total > f.Offset && (f.Limit <= 0 || len(out) < f.Limit) {
			out = append(out, *r)
		}
	})
	return out, total, err
}

// scan calls fn with the records f selects, newest first.
func (l *BoltLedger) scan(ctx context.Context, f Filter, fn func(*Record)) error {
	l.drain()
	return l.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketRecords).Cursor()
		var k, v []byte
		if f.To.IsZero() {
			k, v = c.Last()
		} else {
			k, v = c.Seek(binary.BigEndian.AppendUint64(nil, uint64(f.To.UnixNano())))
			if k == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev()
			}
		}
		from := []byte(nil)
		if !f.From.IsZero() {
			from = binary.BigEndian.AppendUint64(nil, uint64(f.From.UnixNano()))
		}
		for n := 0; k != nil; k, v = c.Prev() {
			if from != nil && bytes.Compare(k[:8], from) < 0 {
				break
			}
			if n++; n%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("billing: record %x: %w", k, err)
			}
			if f.match(&r) {
				fn(&r)
			}
		}
		return nil
	})
}

// Summary implements UsageReader.
func (l *BoltLedger) Summary(ctx context.Context, f Filter) (*Summary, error) {
	sum := newSummer()
	if err := l.scan(ctx, f, sum.add); err != nil {
		return nil, err
	}
	return sum.result(), nil
}

// KeyPoints implements SpendReader.
func (l *BoltLedger) KeyPoints(ctx context.Context) (map[string]float64, error) {
	out := map[string]float64{}
	err := l.viewTotals(func(tx *bbolt.Tx, unapplied func(func(*Record))) error {
		err := tx.Bucket(bucketKeys).ForEach(func(k, v []byte) error {
			out[string(k)] = math.Float64frombits(binary.BigEndian.Uint64(v))
			return nil
		})
		unapplied(func(r *Record) {
			if r.KeyID != "" && r.Points != 0 {
				out[r.KeyID] += r.Points
			}
		})
		return err
	})
	return out, err
}

// KeyPointsOf implements KeySpendReader.
func (l *BoltLedger) KeyPointsOf(ctx context.Context, keyID string) (float64, error) {
	var p float64
	err := l.viewTotals(func(tx *bbolt.Tx, unapplied func(func(*Record))) error {
		p = getFloat(tx.Bucket(bucketKeys), keyID)
		unapplied(func(r *Record) {
			if r.KeyID == keyID {
				p += r.Points
			}
		})
		return nil
	})
	return p, err
}

// AppPoints implements SpendReader.
func (l *BoltLedger) AppPoints(ctx context.Context, teamID, appID string) (float64, error) {
	var p float64
	err := l.viewTotals(func(tx *bbolt.Tx, unapplied func(func(*Record))) error {
		p = getFloat(tx.Bucket(bucketApps), appKey(teamID, appID))
		unapplied(func(r *Record) {
			if r.TeamID == teamID && r.AppID == appID {
				p += r.Points
			}
		})
		return nil
	})
	return p, err
}

// summer accumulates a Summary.
type summer struct {
	total Total
	days  map[string]*Total
	keys  map[string]*Total
}

func newSummer() *summer { return &summer{days: map[string]*Total{}, keys: map[string]*Total{}} }

func (s *summer) add(r *Record) {
	s.total.add(r)
	day := r.Time.UTC().Format("2006-01-02")
	if s.days[day] == nil {
		s.days[day] = &Total{}
	}
	s.days[day].add(r)
	if s.keys[r.KeyID] == nil {
		s.keys[r.KeyID] = &Total{}
	}
	s.keys[r.KeyID].add(r)
}

func (s *summer) result() *Summary {
	out := &Summary{Total: s.total, ByDay: []DayTotal{}, ByKey: []KeyTotal{}}
	for d, t := range s.days {
		out.ByDay = append(out.ByDay, DayTotal{Day: d, Total: *t})
	}
	slices.SortFunc(out.ByDay, func(a, b DayTotal) int { return cmp.Compare(a.Day, b.Day) })
	for k, t := range s.keys {
		out.ByKey = append(out.ByKey, KeyTotal{KeyID: k, Total: *t})
	}
	slices.SortFunc(out.ByKey, func(a, b KeyTotal) int {
		return cmp.Or(cmp.Compare(b.Points, a.Points), cmp.Compare(a.KeyID, b.KeyID))
	})
	return out
}

func (b *BillDetail) addRecord(r *Record) {
	tokens := r.InputTokens + r.OutputTokens
	b.TotalTokens += tokens
	b.TotalPoints += r.Points
	for i := range b.Items {
		if it := &b.Items[i]; it.Module == r.Module && it.Model == r.Model {
			it.Tokens += tokens
			it.Points += r.Points
			return
		}
	}
	b.Items = append(b.Items, BillItem{Module: r.Module, Model: r.Model, Tokens: tokens, Points: r.Points})
}
