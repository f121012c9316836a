package billing

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sync"

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
)

// BoltLedger is a Ledger in a bbolt database, in the billing.* buckets of
// the file the other domains share.
//
// Concurrent Record calls share commits: a call joins the next transaction
// and returns when it is on disk, so under load one fsync covers many
// records, without delaying a lone writer and without trading away
// durability.
type BoltLedger struct {
	db *bbolt.DB

	mu      sync.Mutex
	queue   []*pendingRecord
	running bool
}

type pendingRecord struct {
	r    *Record
	done chan error
}

// NewBoltLedger returns a ledger on db, creating its buckets if needed.
func NewBoltLedger(db *bbolt.DB) (*BoltLedger, error) {
	if err := boltx.EnsureBuckets(db, bucketRecords, bucketRecordIDs, bucketBills, bucketKeys, bucketApps); err != nil {
		return nil, fmt.Errorf("billing: %w", err)
	}
	if err := db.Update(migrateAppTotals); err != nil {
		return nil, fmt.Errorf("billing: scoping app totals to teams: %w", err)
	}
	return &BoltLedger{db: db}, nil
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
	if err := prepare(r); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	p := &pendingRecord{r: r, done: make(chan error, 1)}
	l.mu.Lock()
	l.queue = append(l.queue, p)
	if !l.running {
		l.running = true
		go l.commitLoop()
	}
	l.mu.Unlock()
	// Once queued the record is committed whatever ctx does: waiting for it
	// is what makes the nil error mean durable.
	return <-p.done
}

// commitLoop commits everything queued, one transaction per round, until
// the queue is empty.
func (l *BoltLedger) commitLoop() {
	for {
		l.mu.Lock()
		batch := l.queue
		l.queue = nil
		if len(batch) == 0 {
			l.running = false
			l.mu.Unlock()
			return
		}
		l.mu.Unlock()
		errs := make([]error, len(batch))
		// A panic here would end the process with every caller waiting; it
		// fails this round's records instead, and the next round goes on.
		err := panics.Catch(func() error {
			return l.db.Update(func(tx *bbolt.Tx) error {
				for i, p := range batch {
					errs[i] = nil
					// A record that fails alone (an unknown bill) must not
					// sink the others: it is checked before anything is put.
					if err := checkRecord(tx, p.r); err != nil {
						errs[i] = err
						continue
					}
					dup, err := putRecord(tx, p.r)
					if err != nil {
						return err
					}
					if dup {
						errs[i] = ErrDuplicate
					}
				}
				return nil
			})
		})
		for i, p := range batch {
			if err != nil {
				p.done <- fmt.Errorf("billing: writing usage: %w", err)
			} else {
				p.done <- errs[i]
			}
		}
	}
}

func checkRecord(tx *bbolt.Tx, r *Record) error {
	if r.BillID == "" {
		return nil
	}
	var b BillDetail
	ok, err := boltx.GetJSON(tx.Bucket(bucketBills), []byte(r.BillID), &b)
	if err != nil {
		return err
	}
	if !ok || b.TeamID != r.TeamID {
		return ErrBillNotFound
	}
	return nil
}

// putRecord stores r and adds it to the totals; dup reports an id already
// stored, which changes nothing.
func putRecord(tx *bbolt.Tx, r *Record) (dup bool, err error) {
	ids := tx.Bucket(bucketRecordIDs)
	if ids.Get([]byte(r.ID)) != nil {
		return true, nil
	}
	// Not a nil value: bbolt reads a nil put back as nil within the same
	// transaction, so a duplicate in the same commit would count again.
	if err := ids.Put([]byte(r.ID), []byte{1}); err != nil {
		return false, err
	}
	if err := boltx.PutJSON(tx.Bucket(bucketRecords), recordKey(r), r); err != nil {
		return false, err
	}
	if err := addFloat(tx.Bucket(bucketKeys), r.KeyID, r.Points); err != nil {
		return false, err
	}
	if r.AppID != "" {
		if err := addFloat(tx.Bucket(bucketApps), appKey(r.TeamID, r.AppID), r.Points); err != nil {
			return false, err
		}
	}
	if r.BillID == "" {
		return false, nil
	}
	bb := tx.Bucket(bucketBills)
	var b BillDetail
	if _, err := boltx.GetJSON(bb, []byte(r.BillID), &b); err != nil {
		return false, err
	}
	b.addRecord(r)
	return false, boltx.PutJSON(bb, []byte(r.BillID), &b)
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
	err := l.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketKeys).ForEach(func(k, v []byte) error {
			out[string(k)] = math.Float64frombits(binary.BigEndian.Uint64(v))
			return nil
		})
	})
	return out, err
}

// KeyPointsOf implements KeySpendReader.
func (l *BoltLedger) KeyPointsOf(ctx context.Context, keyID string) (float64, error) {
	var p float64
	err := l.db.View(func(tx *bbolt.Tx) error {
		p = getFloat(tx.Bucket(bucketKeys), keyID)
		return nil
	})
	return p, err
}

// AppPoints implements SpendReader.
func (l *BoltLedger) AppPoints(ctx context.Context, teamID, appID string) (float64, error) {
	var p float64
	err := l.db.View(func(tx *bbolt.Tx) error {
		p = getFloat(tx.Bucket(bucketApps), appKey(teamID, appID))
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
