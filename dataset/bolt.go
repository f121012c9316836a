package dataset

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"go.etcd.io/bbolt"

	"github.com/chatgate/chatgate/internal/boltx"
	"github.com/chatgate/chatgate/queue"
)

var (
	bucketDatasets    = []byte("dataset.datasets")      // id -> Dataset
	bucketCollections = []byte("dataset.collections")   // id -> Collection
	bucketDSColls     = []byte("dataset.ds_colls")      // dataset\0collection -> ""
	bucketData        = []byte("dataset.data")          // id -> Data
	bucketCollData    = []byte("dataset.coll_data")     // collection\0created(8)id -> ""
	bucketQIndex      = []byte("dataset.qindex")        // collection\0sha256(q)[:16] -> data or item id
	bucketVectors     = []byte("dataset.vectors")       // dataset\0vector id -> float32s, little-endian
	bucketTraining    = []byte("dataset.training")      // item id -> TrainingItem
	bucketDue         = []byte("dataset.training_due")  // next attempt(8)item id -> ""
	bucketCollTrain   = []byte("dataset.coll_training") // collection\0item id -> "q" or "f"
	bucketTextPending = []byte("dataset.text_pending")  // data id -> version(8)
	bucketUsage       = []byte("dataset.usage_outbox")  // time(8)record id -> UsageRecord
)

// errNoItem is an index entry naming an item the queue does not hold: a
// corrupted file.
var errNoItem = errors.New("no such training item")

// BoltStore is a Store in a bbolt database, in the dataset.* buckets of the
// file the other domains share.
type BoltStore struct {
	db *bbolt.DB
}

// NewBoltStore returns a store on db, creating its buckets if needed.
func NewBoltStore(db *bbolt.DB) (*BoltStore, error) {
	if err := boltx.EnsureBuckets(db, bucketDatasets, bucketCollections, bucketDSColls, bucketData,
		bucketCollData, bucketQIndex, bucketVectors, bucketTraining, bucketDue, bucketCollTrain,
		bucketTextPending, bucketUsage); err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	return &BoltStore{db: db}, nil
}

func (s *BoltStore) view(ctx context.Context, fn func(*bbolt.Tx) error) error {
	return boltx.View(ctx, s.db, fn)
}

func (s *BoltStore) update(ctx context.Context, fn func(*bbolt.Tx) error) error {
	return boltx.Update(ctx, s.db, fn)
}

func join(parts ...string) []byte {
	var b []byte
	for i, p := range parts {
		if i > 0 {
			b = append(b, 0)
		}
		b = append(b, p...)
	}
	return b
}

func prefix(s string) []byte { return append([]byte(s), 0) }

func timeKey(t time.Time, id string) []byte {
	b := binary.BigEndian.AppendUint64(nil, unixNanos(t))
	return append(b, id...)
}

// Bounds of the times keys can order; UnixNano is undefined outside them.
var (
	minKeyTime = time.Unix(0, 0)
	maxKeyTime = time.Unix(0, math.MaxInt64)
)

// unixNanos is t's Unix time in nanoseconds, clamped to the range keys can
// order: times before 1970, the zero time among them, sort first (so an
// item never scheduled is due at once) instead of wrapping to a huge value.
func unixNanos(t time.Time) uint64 {
	switch {
	case t.Before(minKeyTime):
		return 0
	case t.After(maxKeyTime):
		return math.MaxInt64
	}
	return uint64(t.UnixNano())
}

func encodeVector(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return b
}

func decodeVector(b []byte) []float32 {
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

// eachPrefix calls fn for each key under p; fn may not modify the bucket,
// so deleters collect keys first.
func eachPrefix(b *bbolt.Bucket, p []byte, fn func(k, v []byte) error) error {
	c := b.Cursor()
	for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return nil
}

func keysWithPrefix(b *bbolt.Bucket, p []byte) [][]byte {
	var keys [][]byte
	_ = eachPrefix(b, p, func(k, _ []byte) error {
		keys = append(keys, bytes.Clone(k))
		return nil
	})
	return keys
}

// PutDataset implements DatasetStore.
func (s *BoltStore) PutDataset(ctx context.Context, d *Dataset) error {
	return s.update(ctx, func(tx *bbolt.Tx) error {
		return boltx.PutJSON(tx.Bucket(bucketDatasets), []byte(d.ID), d)
	})
}

// Dataset implements DatasetStore.
func (s *BoltStore) Dataset(ctx context.Context, id string) (*Dataset, error) {
	d := new(Dataset)
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		return getOr(tx.Bucket(bucketDatasets), id, d, ErrDatasetNotFound)
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

func getOr(b *bbolt.Bucket, id string, v any, notFound error) error {
	ok, err := boltx.GetJSON(b, []byte(id), v)
	if err != nil {
		return err
	}
	if !ok {
		return notFound
	}
	return nil
}

// Datasets implements DatasetStore.
func (s *BoltStore) Datasets(ctx context.Context, teamID string) ([]*Dataset, error) {
	out, err := s.datasetsWhere(ctx, func(d *Dataset) bool { return d.TeamID == teamID })
	slices.SortFunc(out, func(a, b *Dataset) int { return a.CreateTime.Compare(b.CreateTime) })
	return out, err
}

// AllDatasets implements DatasetLister.
func (s *BoltStore) AllDatasets(ctx context.Context) ([]*Dataset, error) {
	out, err := s.datasetsWhere(ctx, func(*Dataset) bool { return true })
	slices.SortFunc(out, datasetOrder)
	return out, err
}

// datasetsWhere returns the datasets keep selects, by id.
func (s *BoltStore) datasetsWhere(ctx context.Context, keep func(*Dataset) bool) ([]*Dataset, error) {
	var out []*Dataset
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketDatasets).ForEach(func(_, v []byte) error {
			d := new(Dataset)
			if err := json.Unmarshal(v, d); err != nil {
				return err
			}
			if keep(d) {
				out = append(out, d)
			}
			return nil
		})
	})
	return out, err
}

// DeleteDataset implements DatasetStore.
func (s *BoltStore) DeleteDataset(ctx context.Context, id string) error {
	return s.update(ctx, func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketDatasets).Get([]byte(id)) == nil {
			return ErrDatasetNotFound
		}
		for _, k := range keysWithPrefix(tx.Bucket(bucketDSColls), prefix(id)) {
			if _, err := deleteCollection(tx, string(k[len(id)+1:])); err != nil {
				return err
			}
		}
		vb := tx.Bucket(bucketVectors)
		for _, k := range keysWithPrefix(vb, prefix(id)) {
			if err := vb.Delete(k); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketDatasets).Delete([]byte(id))
	})
}

// UpdateDataset implements DatasetStore.
func (s *BoltStore) UpdateDataset(ctx context.Context, id string, fn func(*Dataset) error) (*Dataset, error) {
	var d *Dataset
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketDatasets)
		old := new(Dataset)
		if err := getOr(b, id, old, ErrDatasetNotFound); err != nil {
			return err
		}
		d = new(Dataset)
		*d = *old
		if err := fn(d); err != nil {
			return err
		}
		d.ID, d.TeamID = old.ID, old.TeamID
		return boltx.PutJSON(b, []byte(id), d)
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// PutCollection implements CollectionStore.
func (s *BoltStore) PutCollection(ctx context.Context, c *Collection) error {
	return s.update(ctx, func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketDatasets).Get([]byte(c.DatasetID)) == nil {
			return ErrDatasetNotFound
		}
		if err := tx.Bucket(bucketDSColls).Put(join(c.DatasetID, c.ID), nil); err != nil {
			return err
		}
		return boltx.PutJSON(tx.Bucket(bucketCollections), []byte(c.ID), c)
	})
}

// Collection implements CollectionStore.
func (s *BoltStore) Collection(ctx context.Context, id string) (*Collection, error) {
	c := new(Collection)
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		return getOr(tx.Bucket(bucketCollections), id, c, ErrCollectionNotFound)
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Collections implements CollectionStore.
func (s *BoltStore) Collections(ctx context.Context, datasetID string) ([]*Collection, error) {
	var out []*Collection
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		cb := tx.Bucket(bucketCollections)
		return eachPrefix(tx.Bucket(bucketDSColls), prefix(datasetID), func(k, _ []byte) error {
			c := new(Collection)
			if err := getOr(cb, string(k[len(datasetID)+1:]), c, ErrCollectionNotFound); err != nil {
				return err
			}
			out = append(out, c)
			return nil
		})
	})
	slices.SortFunc(out, func(a, b *Collection) int {
		return cmp.Or(a.CreateTime.Compare(b.CreateTime), cmp.Compare(a.ID, b.ID))
	})
	return out, err
}

// DeleteCollection implements CollectionStore.
func (s *BoltStore) DeleteCollection(ctx context.Context, id string) ([]string, error) {
	var removed []string
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		var err error
		removed, err = deleteCollection(tx, id)
		return err
	})
	return removed, err
}

// DeleteCollections implements CollectionStore.
func (s *BoltStore) DeleteCollections(ctx context.Context, ids []string) (map[string][]string, error) {
	var removed map[string][]string
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		removed = map[string][]string{}
		cb := tx.Bucket(bucketCollections)
		datasetOf := make(map[string]string, len(ids))
		for _, id := range ids {
			c := new(Collection)
			if err := getOr(cb, id, c, ErrCollectionNotFound); err != nil {
				return err
			}
			datasetOf[id] = c.DatasetID
		}
		for _, id := range ids {
			ds, ok := datasetOf[id]
			if !ok {
				continue // removed already: ids may repeat
			}
			delete(datasetOf, id)
			vs, err := deleteCollection(tx, id)
			if err != nil {
				return err
			}
			removed[ds] = append(removed[ds], vs...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return removed, nil
}

// UpdateCollection implements CollectionStore.
func (s *BoltStore) UpdateCollection(ctx context.Context, id string, fn func(*Collection) error) (*Collection, error) {
	var c *Collection
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketCollections)
		old := new(Collection)
		if err := getOr(b, id, old, ErrCollectionNotFound); err != nil {
			return err
		}
		c = new(Collection)
		*c = *old
		c.Tags = slices.Clone(old.Tags)
		if err := fn(c); err != nil {
			return err
		}
		c.ID, c.TeamID, c.DatasetID = old.ID, old.TeamID, old.DatasetID
		return boltx.PutJSON(b, []byte(id), c)
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

func deleteCollection(tx *bbolt.Tx, id string) ([]string, error) {
	c := new(Collection)
	if err := getOr(tx.Bucket(bucketCollections), id, c, ErrCollectionNotFound); err != nil {
		return nil, err
	}
	var removed []string
	db := tx.Bucket(bucketData)
	for _, k := range keysWithPrefix(tx.Bucket(bucketCollData), prefix(id)) {
		dataID := string(k[len(id)+1+8:])
		d := new(Data)
		if ok, err := boltx.GetJSON(db, []byte(dataID), d); err != nil {
			return nil, err
		} else if ok {
			ids, err := deleteData(tx, d)
			if err != nil {
				return nil, err
			}
			removed = append(removed, ids...)
		}
	}
	tb, due := tx.Bucket(bucketTraining), tx.Bucket(bucketDue)
	ctb := tx.Bucket(bucketCollTrain)
	for _, k := range keysWithPrefix(ctb, prefix(id)) {
		itemID := k[len(id)+1:]
		it := new(TrainingItem)
		if ok, err := boltx.GetJSON(tb, itemID, it); err != nil {
			return nil, err
		} else if ok && !it.Failed {
			if err := due.Delete(timeKey(it.NextAttempt, it.ID)); err != nil {
				return nil, err
			}
		}
		if err := tb.Delete(itemID); err != nil {
			return nil, err
		}
		if err := ctb.Delete(k); err != nil {
			return nil, err
		}
	}
	qb := tx.Bucket(bucketQIndex)
	for _, k := range keysWithPrefix(qb, prefix(id)) {
		if err := qb.Delete(k); err != nil {
			return nil, err
		}
	}
	if err := tx.Bucket(bucketDSColls).Delete(join(c.DatasetID, id)); err != nil {
		return nil, err
	}
	return removed, tx.Bucket(bucketCollections).Delete([]byte(id))
}

// deleteData removes d, its vectors and its q entry, and marks its
// full-text entry stale.
func deleteData(tx *bbolt.Tx, d *Data) ([]string, error) {
	vb := tx.Bucket(bucketVectors)
	ids := vectorIDsOf(d)
	for _, vid := range ids {
		if err := vb.Delete(join(d.DatasetID, vid)); err != nil {
			return nil, err
		}
	}
	qb := tx.Bucket(bucketQIndex)
	if qk := qKey(d.CollectionID, d.Q); string(qb.Get(qk)) == d.ID {
		if err := qb.Delete(qk); err != nil {
			return nil, err
		}
	}
	if err := tx.Bucket(bucketCollData).Delete(join(d.CollectionID, string(timeKey(d.CreateTime, d.ID)))); err != nil {
		return nil, err
	}
	if err := markText(tx, d.ID); err != nil {
		return nil, err
	}
	return ids, tx.Bucket(bucketData).Delete([]byte(d.ID))
}

func markText(tx *bbolt.Tx, dataID string) error {
	b := tx.Bucket(bucketTextPending)
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	return b.Put([]byte(dataID), binary.BigEndian.AppendUint64(nil, seq))
}

// Enqueue implements TrainingIntake.
func (s *BoltStore) Enqueue(ctx context.Context, items []*TrainingItem) ([]int, error) {
	var repeats []int
	err := s.update(ctx, func(tx *bbolt.Tx) (err error) {
		repeats, err = enqueue(tx, items)
		return err
	})
	if err != nil {
		return nil, err
	}
	return repeats, nil
}

// enqueue queues items in tx and returns the positions of the repeats.
func enqueue(tx *bbolt.Tx, items []*TrainingItem) ([]int, error) {
	var repeats []int
	cb, qb := tx.Bucket(bucketCollections), tx.Bucket(bucketQIndex)
	tb, due, ctb := tx.Bucket(bucketTraining), tx.Bucket(bucketDue), tx.Bucket(bucketCollTrain)
	seen := map[string]bool{}
	for i, it := range items {
		if !seen[it.CollectionID] {
			if cb.Get([]byte(it.CollectionID)) == nil {
				return nil, ErrCollectionNotFound
			}
			seen[it.CollectionID] = true
		}
		qk := qKey(it.CollectionID, it.Q)
		if qb.Get(qk) != nil {
			repeats = append(repeats, i)
			continue
		}
		if err := qb.Put(qk, []byte(it.ID)); err != nil {
			return nil, err
		}
		if err := boltx.PutJSON(tb, []byte(it.ID), it); err != nil {
			return nil, err
		}
		if err := due.Put(timeKey(it.NextAttempt, it.ID), nil); err != nil {
			return nil, err
		}
		if err := ctb.Put(join(it.CollectionID, it.ID), []byte("q")); err != nil {
			return nil, err
		}
	}
	return repeats, nil
}

// Claim implements TrainingQueue. It only reads: a BoltStore serves the
// one process that holds the file, whose queue.Runner keeps its own claims
// apart (skip may be nil).
func (s *BoltStore) Claim(ctx context.Context, now time.Time, n int, skip func(string) bool) ([]*TrainingItem, error) {
	var out []*TrainingItem
	limit := binary.BigEndian.AppendUint64(nil, unixNanos(now)+1)
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		tb := tx.Bucket(bucketTraining)
		c := tx.Bucket(bucketDue).Cursor()
		for k, _ := c.First(); k != nil && len(out) < n && bytes.Compare(k, limit) < 0; k, _ = c.Next() {
			id := string(k[8:])
			if skip != nil && skip(id) {
				continue
			}
			it := new(TrainingItem)
			if err := getOr(tb, id, it, errNoItem); err != nil {
				return fmt.Errorf("dataset: due index names %s: %w", id, err)
			}
			out = append(out, it)
		}
		return nil
	})
	return out, err
}

// Commit implements TrainingQueue.
func (s *BoltStore) Commit(ctx context.Context, done []Trained) ([]string, error) {
	var gone []string
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		gone = gone[:0]
		tb := tx.Bucket(bucketTraining)
		for i, t := range done {
			it := new(TrainingItem)
			if ok, err := boltx.GetJSON(tb, []byte(t.ItemID), it); err != nil {
				return err
			} else if !ok || it.Failed {
				gone = append(gone, t.ItemID)
				continue
			}
			if err := complete(tx, it, &done[i]); err != nil {
				return err
			}
		}
		ub := tx.Bucket(bucketUsage)
		for _, t := range done {
			for _, u := range t.Usage {
				if err := boltx.PutJSON(ub, timeKey(u.Time, u.ID), u); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return gone, err
}

// PendingUsage implements UsageOutbox.
func (s *BoltStore) PendingUsage(ctx context.Context, n int) ([]UsageRecord, error) {
	var out []UsageRecord
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketUsage).Cursor()
		for k, v := c.First(); k != nil && len(out) < n; k, v = c.Next() {
			var u UsageRecord
			if err := json.Unmarshal(v, &u); err != nil {
				return fmt.Errorf("dataset: usage outbox record %x: %w", k, err)
			}
			out = append(out, u)
		}
		return nil
	})
	return out, err
}

// ClearUsage implements UsageOutbox.
func (s *BoltStore) ClearUsage(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	return s.update(ctx, func(tx *bbolt.Tx) error {
		// The outbox is short (records wait only for a crash or a failing
		// recorder), so a scan finds them without an index by id.
		c := tx.Bucket(bucketUsage).Cursor()
		for k, _ := c.First(); k != nil && len(want) > 0; k, _ = c.Next() {
			if id := string(k[8:]); want[id] {
				if err := c.Delete(); err != nil {
					return err
				}
				delete(want, id)
			}
		}
		return nil
	})
}

func complete(tx *bbolt.Tx, it *TrainingItem, t *Trained) error {
	qb, db, cdb, vb := tx.Bucket(bucketQIndex), tx.Bucket(bucketData), tx.Bucket(bucketCollData), tx.Bucket(bucketVectors)
	stored := map[string]bool{}
	kept := t.Data[:0]
	for _, d := range t.Data {
		qk := qKey(d.CollectionID, d.Q)
		if owner := qb.Get(qk); owner != nil && string(owner) != d.ID && string(owner) != it.ID {
			continue // a QA pair whose question the collection already has
		}
		kept = append(kept, d)
		if err := qb.Put(qk, []byte(d.ID)); err != nil {
			return err
		}
		if err := boltx.PutJSON(db, []byte(d.ID), d); err != nil {
			return err
		}
		if err := cdb.Put(join(d.CollectionID, string(timeKey(d.CreateTime, d.ID))), nil); err != nil {
			return err
		}
		if err := markText(tx, d.ID); err != nil {
			return err
		}
		stored[d.ID] = true
	}
	keptVecs := t.Vectors[:0]
	for _, v := range t.Vectors {
		if stored[dataIDOf(v.ID)] {
			if err := vb.Put(join(it.DatasetID, v.ID), encodeVector(v.Values)); err != nil {
				return err
			}
			keptVecs = append(keptVecs, v)
		}
	}
	t.Data, t.Vectors = kept, keptVecs
	// A QA item's own q became no data: it is neither data nor queued now,
	// so it may be pushed again.
	if qk := qKey(it.CollectionID, it.Q); string(qb.Get(qk)) == it.ID && !stored[it.ID] {
		if err := qb.Delete(qk); err != nil {
			return err
		}
	}
	if err := tx.Bucket(bucketDue).Delete(timeKey(it.NextAttempt, it.ID)); err != nil {
		return err
	}
	if err := tx.Bucket(bucketCollTrain).Delete(join(it.CollectionID, it.ID)); err != nil {
		return err
	}
	return tx.Bucket(bucketTraining).Delete([]byte(it.ID))
}

// Reschedule implements TrainingQueue.
func (s *BoltStore) Reschedule(ctx context.Context, id string, a queue.Attempt) error {
	return s.update(ctx, func(tx *bbolt.Tx) error {
		tb, due := tx.Bucket(bucketTraining), tx.Bucket(bucketDue)
		it := new(TrainingItem)
		if err := getOr(tb, id, it, queue.ErrGone); err != nil {
			return err
		}
		if !it.Failed {
			if err := due.Delete(timeKey(it.NextAttempt, it.ID)); err != nil {
				return err
			}
		}
		it.Attempts, it.LastError, it.Failed = a.Attempts, a.Err, a.Failed
		state := []byte("q")
		if it.Failed {
			state = []byte("f")
			// a failed q may be pushed again
			qb := tx.Bucket(bucketQIndex)
			if qk := qKey(it.CollectionID, it.Q); string(qb.Get(qk)) == it.ID {
				if err := qb.Delete(qk); err != nil {
					return err
				}
			}
		} else {
			it.NextAttempt = a.Next
			if err := due.Put(timeKey(it.NextAttempt, it.ID), nil); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bucketCollTrain).Put(join(it.CollectionID, it.ID), state); err != nil {
			return err
		}
		return boltx.PutJSON(tb, []byte(it.ID), it)
	})
}

// TrainingCounts implements TrainingProgress.
func (s *BoltStore) TrainingCounts(ctx context.Context, collectionID string) (queued, failed int, err error) {
	err = s.view(ctx, func(tx *bbolt.Tx) error {
		return eachPrefix(tx.Bucket(bucketCollTrain), prefix(collectionID), func(_, v []byte) error {
			if string(v) == "f" {
				failed++
			} else {
				queued++
			}
			return nil
		})
	})
	return queued, failed, err
}

// TrainingFailures implements TrainingProgress.
func (s *BoltStore) TrainingFailures(ctx context.Context, collectionID string, limit int) ([]*TrainingItem, error) {
	return s.collTraining(ctx, collectionID, true, limit)
}

// TrainingItems implements TrainingLister.
func (s *BoltStore) TrainingItems(ctx context.Context, collectionID string) ([]*TrainingItem, error) {
	return s.collTraining(ctx, collectionID, false, math.MaxInt)
}

// collTraining returns up to limit of a collection's queued items, only
// the failed ones when failedOnly, by id.
func (s *BoltStore) collTraining(ctx context.Context, collectionID string, failedOnly bool, limit int) ([]*TrainingItem, error) {
	var out []*TrainingItem
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		tb := tx.Bucket(bucketTraining)
		p := prefix(collectionID)
		return eachPrefix(tx.Bucket(bucketCollTrain), p, func(k, v []byte) error {
			if (failedOnly && string(v) != "f") || len(out) >= limit {
				return nil
			}
			it := new(TrainingItem)
			if err := getOr(tb, string(k[len(p):]), it, errNoItem); err != nil {
				return err
			}
			out = append(out, it)
			return nil
		})
	})
	return out, err
}

// Data implements DataStore.
func (s *BoltStore) Data(ctx context.Context, id string) (*Data, error) {
	d := new(Data)
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		return getOr(tx.Bucket(bucketData), id, d, ErrDataNotFound)
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// DataList implements DataStore.
func (s *BoltStore) DataList(ctx context.Context, collectionID string, offset, limit int) ([]*Data, int, error) {
	var (
		out   []*Data
		total int
	)
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		db := tx.Bucket(bucketData)
		p := prefix(collectionID)
		return eachPrefix(tx.Bucket(bucketCollData), p, func(k, _ []byte) error {
			total++
			if total <= offset || len(out) >= limit {
				return nil
			}
			d := new(Data)
			if err := getOr(db, string(k[len(p)+8:]), d, ErrDataNotFound); err != nil {
				return err
			}
			out = append(out, d)
			return nil
		})
	})
	return out, total, err
}

// DataListMatching implements DataStore. The collection's data are read
// and matched one by one: there is no index of words to ask.
func (s *BoltStore) DataListMatching(ctx context.Context, collectionID, text string, offset, limit int) ([]*Data, int, error) {
	var (
		out   []*Data
		total int
	)
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		db := tx.Bucket(bucketData)
		p := prefix(collectionID)
		return eachPrefix(tx.Bucket(bucketCollData), p, func(k, _ []byte) error {
			d := new(Data)
			if err := getOr(db, string(k[len(p)+8:]), d, ErrDataNotFound); err != nil {
				return err
			}
			if !d.Contains(text) {
				return nil
			}
			total++
			if total > offset && len(out) < limit {
				out = append(out, d)
			}
			return nil
		})
	})
	return out, total, err
}

// UpdateData implements DataStore.
func (s *BoltStore) UpdateData(ctx context.Context, d *Data, vectors []Vector) error {
	return s.update(ctx, func(tx *bbolt.Tx) error {
		old := new(Data)
		if err := getOr(tx.Bucket(bucketData), d.ID, old, ErrDataNotFound); err != nil {
			return err
		}
		qb := tx.Bucket(bucketQIndex)
		if owner := qb.Get(qKey(d.CollectionID, d.Q)); owner != nil && string(owner) != d.ID {
			return ErrRepeat
		}
		if _, err := deleteData(tx, old); err != nil {
			return err
		}
		return complete(tx, &TrainingItem{ID: d.ID, DatasetID: d.DatasetID, CollectionID: d.CollectionID},
			&Trained{ItemID: d.ID, Data: []*Data{d}, Vectors: vectors})
	})
}

// ImportData implements DataImporter.
func (s *BoltStore) ImportData(ctx context.Context, d *Data, vectors []Vector) error {
	return s.update(ctx, func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketCollections).Get([]byte(d.CollectionID)) == nil {
			return ErrCollectionNotFound
		}
		if tx.Bucket(bucketQIndex).Get(qKey(d.CollectionID, d.Q)) != nil {
			return ErrRepeat
		}
		return complete(tx, &TrainingItem{ID: d.ID, DatasetID: d.DatasetID, CollectionID: d.CollectionID},
			&Trained{ItemID: d.ID, Data: []*Data{d}, Vectors: slices.Clone(vectors)}) // complete reuses the slice
	})
}

// DeleteData implements DataStore.
func (s *BoltStore) DeleteData(ctx context.Context, id string) ([]string, error) {
	var ids []string
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		d := new(Data)
		if err := getOr(tx.Bucket(bucketData), id, d, ErrDataNotFound); err != nil {
			return err
		}
		var err error
		ids, err = deleteData(tx, d)
		return err
	})
	return ids, err
}

// EachVector implements VectorSource.
func (s *BoltStore) EachVector(ctx context.Context, fn func(string, Vector) error) error {
	return s.view(ctx, func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketVectors).ForEach(func(k, v []byte) error {
			i := bytes.IndexByte(k, 0)
			if i < 0 {
				return fmt.Errorf("dataset: malformed vector key %q", k)
			}
			return fn(string(k[:i]), Vector{ID: string(k[i+1:]), Values: decodeVector(v)})
		})
	})
}

// EachText implements TextSource. It decodes only what a full-text
// document holds of each item: the times are most of the work of decoding
// a whole one.
func (s *BoltStore) EachText(ctx context.Context, fn func(TextDoc) error) error {
	return s.view(ctx, func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketData).ForEach(func(k, v []byte) error {
			var d struct {
				ID        string   `json:"id"`
				DatasetID string   `json:"datasetId"`
				Q         string   `json:"q"`
				A         string   `json:"a"`
				Indexes   []string `json:"indexes"`
			}
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("dataset: data %q: %w", k, err)
			}
			return fn(textDoc(&Data{ID: d.ID, DatasetID: d.DatasetID, Q: d.Q, A: d.A, Indexes: d.Indexes}))
		})
	})
}

// TextPending implements TextOutbox.
func (s *BoltStore) TextPending(ctx context.Context, n int) ([]Pending, error) {
	var out []Pending
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketTextPending).Cursor()
		for k, v := c.First(); k != nil && len(out) < n; k, v = c.Next() {
			out = append(out, Pending{DataID: string(k), Version: binary.BigEndian.Uint64(v)})
		}
		return nil
	})
	return out, err
}

// ClearTextPending implements TextOutbox.
func (s *BoltStore) ClearTextPending(ctx context.Context, done []Pending) error {
	return s.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketTextPending)
		for _, p := range done {
			if v := b.Get([]byte(p.DataID)); v != nil && binary.BigEndian.Uint64(v) == p.Version {
				if err := b.Delete([]byte(p.DataID)); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// CreateCollection implements TrainingIntake.
func (s *BoltStore) CreateCollection(ctx context.Context, c *Collection, items []*TrainingItem) ([]int, error) {
	if err := checkOwnItems(c, items); err != nil {
		return nil, err
	}
	var repeats []int
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		repeats = repeats[:0]
		if tx.Bucket(bucketDatasets).Get([]byte(c.DatasetID)) == nil {
			return ErrDatasetNotFound
		}
		cb := tx.Bucket(bucketCollections)
		if cb.Get([]byte(c.ID)) != nil {
			return ErrCollectionExists
		}
		if err := tx.Bucket(bucketDSColls).Put(join(c.DatasetID, c.ID), nil); err != nil {
			return err
		}
		if err := boltx.PutJSON(cb, []byte(c.ID), c); err != nil {
			return err
		}
		var err error
		repeats, err = enqueue(tx, items)
		return err
	})
	if err != nil {
		return nil, err
	}
	return repeats, nil
}
