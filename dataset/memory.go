package dataset

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/chatgate/chatgate/queue"
)

// MemoryStore is a Store in memory, for tests and for callers that keep
// state elsewhere. Its zero value is ready to use.
type MemoryStore struct {
	mu       sync.RWMutex
	datasets map[string]*Dataset
	colls    map[string]*Collection
	data     map[string]*Data
	qindex   map[string]string // qKey -> data or item id
	vectors  map[string]map[string][]float32
	training map[string]*TrainingItem
	pending  map[string]uint64
	seq      uint64
	usage    []UsageRecord // the usage outbox, oldest first
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{} }

func (s *MemoryStore) init() {
	if s.datasets == nil {
		s.datasets, s.colls, s.data = map[string]*Dataset{}, map[string]*Collection{}, map[string]*Data{}
		s.qindex, s.vectors = map[string]string{}, map[string]map[string][]float32{}
		s.training, s.pending = map[string]*TrainingItem{}, map[string]uint64{}
	}
}

func (s *MemoryStore) lock() func() {
	s.mu.Lock()
	s.init()
	return s.mu.Unlock
}

func (s *MemoryStore) rlock() func() {
	s.mu.RLock()
	if s.datasets == nil {
		s.mu.RUnlock()
		s.mu.Lock()
		s.init()
		s.mu.Unlock()
		s.mu.RLock()
	}
	return s.mu.RUnlock
}

func cloneData(d *Data) *Data {
	c := *d
	c.Indexes = slices.Clone(d.Indexes)
	return &c
}

func cloneCollection(c *Collection) *Collection {
	cc := *c
	cc.Tags = slices.Clone(c.Tags)
	return &cc
}

func cloneItem(it *TrainingItem) *TrainingItem {
	c := *it
	c.Indexes = slices.Clone(it.Indexes)
	return &c
}

// PutDataset implements DatasetStore.
func (s *MemoryStore) PutDataset(ctx context.Context, d *Dataset) error {
	defer s.lock()()
	c := *d
	s.datasets[d.ID] = &c
	return nil
}

// Dataset implements DatasetStore.
func (s *MemoryStore) Dataset(ctx context.Context, id string) (*Dataset, error) {
	defer s.rlock()()
	d, ok := s.datasets[id]
	if !ok {
		return nil, ErrDatasetNotFound
	}
	c := *d
	return &c, nil
}

// Datasets implements DatasetStore.
func (s *MemoryStore) Datasets(ctx context.Context, teamID string) ([]*Dataset, error) {
	return s.datasetsWhere(func(d *Dataset) bool { return d.TeamID == teamID }), nil
}

// AllDatasets implements DatasetLister.
func (s *MemoryStore) AllDatasets(ctx context.Context) ([]*Dataset, error) {
	return s.datasetsWhere(func(*Dataset) bool { return true }), nil
}

// datasetsWhere returns copies of the datasets keep selects, oldest first.
func (s *MemoryStore) datasetsWhere(keep func(*Dataset) bool) []*Dataset {
	defer s.rlock()()
	var out []*Dataset
	for _, d := range s.datasets {
		if keep(d) {
			c := *d
			out = append(out, &c)
		}
	}
	slices.SortFunc(out, datasetOrder)
	return out
}

// DeleteDataset implements DatasetStore.
func (s *MemoryStore) DeleteDataset(ctx context.Context, id string) error {
	defer s.lock()()
	if _, ok := s.datasets[id]; !ok {
		return ErrDatasetNotFound
	}
	for cid, c := range s.colls {
		if c.DatasetID == id {
			s.deleteCollection(cid)
		}
	}
	delete(s.vectors, id)
	delete(s.datasets, id)
	return nil
}

// UpdateDataset implements DatasetStore.
func (s *MemoryStore) UpdateDataset(ctx context.Context, id string, fn func(*Dataset) error) (*Dataset, error) {
	defer s.lock()()
	d, ok := s.datasets[id]
	if !ok {
		return nil, ErrDatasetNotFound
	}
	c := *d
	if err := fn(&c); err != nil {
		return nil, err
	}
	c.ID, c.TeamID = d.ID, d.TeamID
	stored := c
	s.datasets[id] = &stored
	return &c, nil
}

// PutCollection implements CollectionStore.
func (s *MemoryStore) PutCollection(ctx context.Context, c *Collection) error {
	defer s.lock()()
	if _, ok := s.datasets[c.DatasetID]; !ok {
		return ErrDatasetNotFound
	}
	s.colls[c.ID] = cloneCollection(c)
	return nil
}

// Collection implements CollectionStore.
func (s *MemoryStore) Collection(ctx context.Context, id string) (*Collection, error) {
	defer s.rlock()()
	c, ok := s.colls[id]
	if !ok {
		return nil, ErrCollectionNotFound
	}
	return cloneCollection(c), nil
}

// Collections implements CollectionStore.
func (s *MemoryStore) Collections(ctx context.Context, datasetID string) ([]*Collection, error) {
	defer s.rlock()()
	var out []*Collection
	for _, c := range s.colls {
		if c.DatasetID == datasetID {
			out = append(out, cloneCollection(c))
		}
	}
	slices.SortFunc(out, func(a, b *Collection) int {
		return cmp.Or(a.CreateTime.Compare(b.CreateTime), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// DeleteCollection implements CollectionStore.
func (s *MemoryStore) DeleteCollection(ctx context.Context, id string) ([]string, error) {
	defer s.lock()()
	if _, ok := s.colls[id]; !ok {
		return nil, ErrCollectionNotFound
	}
	return s.deleteCollection(id), nil
}

// DeleteCollections implements CollectionStore.
func (s *MemoryStore) DeleteCollections(ctx context.Context, ids []string) (map[string][]string, error) {
	defer s.lock()()
	for _, id := range ids {
		if _, ok := s.colls[id]; !ok {
			return nil, ErrCollectionNotFound
		}
	}
	removed := map[string][]string{}
	for _, id := range ids {
		if c, ok := s.colls[id]; ok { // not yet removed: ids may repeat
			removed[c.DatasetID] = append(removed[c.DatasetID], s.deleteCollection(id)...)
		}
	}
	return removed, nil
}

// UpdateCollection implements CollectionStore.
func (s *MemoryStore) UpdateCollection(ctx context.Context, id string, fn func(*Collection) error) (*Collection, error) {
	defer s.lock()()
	c, ok := s.colls[id]
	if !ok {
		return nil, ErrCollectionNotFound
	}
	cc := cloneCollection(c)
	if err := fn(cc); err != nil {
		return nil, err
	}
	cc.ID, cc.TeamID, cc.DatasetID = c.ID, c.TeamID, c.DatasetID
	s.colls[id] = cloneCollection(cc)
	return cc, nil
}

func (s *MemoryStore) deleteCollection(id string) []string {
	var removed []string
	for _, d := range s.data {
		if d.CollectionID == id {
			removed = append(removed, s.deleteData(d)...)
		}
	}
	for iid, it := range s.training {
		if it.CollectionID == id {
			delete(s.training, iid)
		}
	}
	p := string(prefix(id))
	for k := range s.qindex {
		if len(k) > len(p) && k[:len(p)] == p {
			delete(s.qindex, k)
		}
	}
	delete(s.colls, id)
	return removed
}

func (s *MemoryStore) deleteData(d *Data) []string {
	ids := vectorIDsOf(d)
	for _, vid := range ids {
		delete(s.vectors[d.DatasetID], vid)
	}
	if qk := string(qKey(d.CollectionID, d.Q)); s.qindex[qk] == d.ID {
		delete(s.qindex, qk)
	}
	s.markText(d.ID)
	delete(s.data, d.ID)
	return ids
}

func (s *MemoryStore) markText(id string) {
	s.seq++
	s.pending[id] = s.seq
}

// Enqueue implements TrainingIntake.
func (s *MemoryStore) Enqueue(ctx context.Context, items []*TrainingItem) ([]int, error) {
	defer s.lock()()
	for _, it := range items {
		if _, ok := s.colls[it.CollectionID]; !ok {
			return nil, ErrCollectionNotFound
		}
	}
	return s.enqueue(items), nil
}

// enqueue queues items, whose collections exist, and returns the positions
// of the repeats.
func (s *MemoryStore) enqueue(items []*TrainingItem) []int {
	var repeats []int
	for i, it := range items {
		qk := string(qKey(it.CollectionID, it.Q))
		if _, ok := s.qindex[qk]; ok {
			repeats = append(repeats, i)
			continue
		}
		s.qindex[qk] = it.ID
		s.training[it.ID] = cloneItem(it)
	}
	return repeats
}

// Claim implements TrainingQueue. It only reads: a MemoryStore serves one
// process, whose queue.Runner keeps its own claims apart (skip may be nil).
func (s *MemoryStore) Claim(ctx context.Context, now time.Time, n int, skip func(string) bool) ([]*TrainingItem, error) {
	defer s.rlock()()
	var out []*TrainingItem
	for _, it := range s.training {
		if !it.Failed && !it.NextAttempt.After(now) && (skip == nil || !skip(it.ID)) {
			out = append(out, it)
		}
	}
	slices.SortFunc(out, func(a, b *TrainingItem) int {
		return cmp.Or(a.NextAttempt.Compare(b.NextAttempt), cmp.Compare(a.ID, b.ID))
	})
	out = out[:min(n, len(out))]
	for i, it := range out {
		out[i] = cloneItem(it)
	}
	return out, nil
}

// Commit implements TrainingQueue.
func (s *MemoryStore) Commit(ctx context.Context, done []Trained) ([]string, error) {
	defer s.lock()()
	var gone []string
	for i, t := range done {
		it, ok := s.training[t.ItemID]
		if !ok || it.Failed {
			gone = append(gone, t.ItemID)
			continue
		}
		s.complete(it, &done[i])
	}
	for _, t := range done {
		s.usage = append(s.usage, t.Usage...)
	}
	slices.SortStableFunc(s.usage, func(a, b UsageRecord) int { return a.Time.Compare(b.Time) })
	return gone, nil
}

// PendingUsage implements UsageOutbox.
func (s *MemoryStore) PendingUsage(ctx context.Context, n int) ([]UsageRecord, error) {
	defer s.rlock()()
	return slices.Clone(s.usage[:min(n, len(s.usage))]), nil
}

// ClearUsage implements UsageOutbox.
func (s *MemoryStore) ClearUsage(ctx context.Context, ids []string) error {
	defer s.lock()()
	s.usage = slices.DeleteFunc(s.usage, func(u UsageRecord) bool { return slices.Contains(ids, u.ID) })
	return nil
}

func (s *MemoryStore) complete(it *TrainingItem, t *Trained) {
	stored := map[string]bool{}
	kept := t.Data[:0]
	for _, d := range t.Data {
		qk := string(qKey(d.CollectionID, d.Q))
		if owner, ok := s.qindex[qk]; ok && owner != d.ID && owner != it.ID {
			continue
		}
		kept = append(kept, d)
		s.qindex[qk] = d.ID
		s.data[d.ID] = cloneData(d)
		s.markText(d.ID)
		stored[d.ID] = true
	}
	keptVecs := t.Vectors[:0]
	for _, v := range t.Vectors {
		if stored[dataIDOf(v.ID)] {
			m := s.vectors[it.DatasetID]
			if m == nil {
				m = map[string][]float32{}
				s.vectors[it.DatasetID] = m
			}
			m[v.ID] = slices.Clone(v.Values)
			keptVecs = append(keptVecs, v)
		}
	}
	t.Data, t.Vectors = kept, keptVecs
	// A QA item's own q became no data: it is neither data nor queued now,
	// so it may be pushed again.
	if qk := string(qKey(it.CollectionID, it.Q)); s.qindex[qk] == it.ID && !stored[it.ID] {
		delete(s.qindex, qk)
	}
	delete(s.training, it.ID)
}

// Reschedule implements TrainingQueue.
func (s *MemoryStore) Reschedule(ctx context.Context, id string, a queue.Attempt) error {
	defer s.lock()()
	it, ok := s.training[id]
	if !ok {
		return queue.ErrGone
	}
	it.Attempts, it.LastError, it.Failed = a.Attempts, a.Err, a.Failed
	if !a.Failed {
		it.NextAttempt = a.Next
	} else if qk := string(qKey(it.CollectionID, it.Q)); s.qindex[qk] == it.ID {
		delete(s.qindex, qk) // a failed q may be pushed again
	}
	return nil
}

// TrainingCounts implements TrainingProgress.
func (s *MemoryStore) TrainingCounts(ctx context.Context, collectionID string) (queued, failed int, err error) {
	defer s.rlock()()
	for _, it := range s.training {
		if it.CollectionID != collectionID {
			continue
		}
		if it.Failed {
			failed++
		} else {
			queued++
		}
	}
	return queued, failed, nil
}

// TrainingFailures implements TrainingProgress.
func (s *MemoryStore) TrainingFailures(ctx context.Context, collectionID string, limit int) ([]*TrainingItem, error) {
	out := s.collTraining(collectionID, true)
	return out[:min(limit, len(out))], nil
}

// TrainingItems implements TrainingLister.
func (s *MemoryStore) TrainingItems(ctx context.Context, collectionID string) ([]*TrainingItem, error) {
	return s.collTraining(collectionID, false), nil
}

// collTraining returns copies of a collection's queued items, only the
// failed ones when failedOnly, by id.
func (s *MemoryStore) collTraining(collectionID string, failedOnly bool) []*TrainingItem {
	defer s.rlock()()
	var out []*TrainingItem
	for _, it := range s.training {
		if it.CollectionID == collectionID && (it.Failed || !failedOnly) {
			out = append(out, cloneItem(it))
		}
	}
	slices.SortFunc(out, func(a, b *TrainingItem) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Data implements DataStore.
func (s *MemoryStore) Data(ctx context.Context, id string) (*Data, error) {
	defer s.rlock()()
	d, ok := s.data[id]
	if !ok {
		return nil, ErrDataNotFound
	}
	return cloneData(d), nil
}

// DataList implements DataStore.
func (s *MemoryStore) DataList(ctx context.Context, collectionID string, offset, limit int) ([]*Data, int, error) {
	defer s.rlock()()
	var all []*Data
	for _, d := range s.data {
		if d.CollectionID == collectionID {
			all = append(all, d)
		}
	}
	return page(all, offset, limit), len(all), nil
}

// DataListMatching implements DataStore.
func (s *MemoryStore) DataListMatching(ctx context.Context, collectionID, text string, offset, limit int) ([]*Data, int, error) {
	defer s.rlock()()
	var all []*Data
	for _, d := range s.data {
		if d.CollectionID == collectionID && d.Contains(text) {
			all = append(all, d)
		}
	}
	return page(all, offset, limit), len(all), nil
}

// page sorts a collection's data oldest first and returns copies of those
// from offset, at most limit.
func page(all []*Data, offset, limit int) []*Data {
	slices.SortFunc(all, func(a, b *Data) int {
		return cmp.Or(a.CreateTime.Compare(b.CreateTime), cmp.Compare(a.ID, b.ID))
	})
	all = all[min(max(offset, 0), len(all)):]
	all = all[:min(max(limit, 0), len(all))]
	out := make([]*Data, len(all))
	for i, d := range all {
		out[i] = cloneData(d)
	}
	return out
}

// UpdateData implements DataStore.
func (s *MemoryStore) UpdateData(ctx context.Context, d *Data, vectors []Vector) error {
	defer s.lock()()
	old, ok := s.data[d.ID]
	if !ok {
		return ErrDataNotFound
	}
	if owner, ok := s.qindex[string(qKey(d.CollectionID, d.Q))]; ok && owner != d.ID {
		return ErrRepeat
	}
	s.deleteData(old)
	s.complete(&TrainingItem{ID: d.ID, DatasetID: d.DatasetID, CollectionID: d.CollectionID},
		&Trained{ItemID: d.ID, Data: []*Data{d}, Vectors: vectors})
	return nil
}

// ImportData implements DataImporter.
func (s *MemoryStore) ImportData(ctx context.Context, d *Data, vectors []Vector) error {
	defer s.lock()()
	if _, ok := s.colls[d.CollectionID]; !ok {
		return ErrCollectionNotFound
	}
	if _, ok := s.qindex[string(qKey(d.CollectionID, d.Q))]; ok {
		return ErrRepeat
	}
	s.complete(&TrainingItem{ID: d.ID, DatasetID: d.DatasetID, CollectionID: d.CollectionID},
		&Trained{ItemID: d.ID, Data: []*Data{d}, Vectors: slices.Clone(vectors)}) // complete reuses the slice
	return nil
}

// DeleteData implements DataStore.
func (s *MemoryStore) DeleteData(ctx context.Context, id string) ([]string, error) {
	defer s.lock()()
	d, ok := s.data[id]
	if !ok {
		return nil, ErrDataNotFound
	}
	return s.deleteData(d), nil
}

// EachVector implements VectorSource.
func (s *MemoryStore) EachVector(ctx context.Context, fn func(string, Vector) error) error {
	defer s.rlock()()
	for ds, m := range s.vectors {
		for id, v := range m {
			if err := fn(ds, Vector{ID: id, Values: slices.Clone(v)}); err != nil {
				return err
			}
		}
	}
	return nil
}

// EachText implements TextSource.
func (s *MemoryStore) EachText(ctx context.Context, fn func(TextDoc) error) error {
	defer s.rlock()()
	for _, d := range s.data {
		if err := fn(textDoc(d)); err != nil {
			return err
		}
	}
	return nil
}

// TextPending implements TextOutbox.
func (s *MemoryStore) TextPending(ctx context.Context, n int) ([]Pending, error) {
	defer s.rlock()()
	var out []Pending
	for id, v := range s.pending {
		if len(out) == n {
			break
		}
		out = append(out, Pending{DataID: id, Version: v})
	}
	return out, nil
}

// ClearTextPending implements TextOutbox.
func (s *MemoryStore) ClearTextPending(ctx context.Context, done []Pending) error {
	defer s.lock()()
	for _, p := range done {
		if s.pending[p.DataID] == p.Version {
			delete(s.pending, p.DataID)
		}
	}
	return nil
}

// CreateCollection implements TrainingIntake.
func (s *MemoryStore) CreateCollection(ctx context.Context, c *Collection, items []*TrainingItem) ([]int, error) {
	if err := checkOwnItems(c, items); err != nil {
		return nil, err
	}
	defer s.lock()()
	if _, ok := s.datasets[c.DatasetID]; !ok {
		return nil, ErrDatasetNotFound
	}
	if _, ok := s.colls[c.ID]; ok {
		return nil, ErrCollectionExists
	}
	s.colls[c.ID] = cloneCollection(c)
	return s.enqueue(items), nil
}
