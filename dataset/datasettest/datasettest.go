// Package datasettest holds a conformance test for implementations of
// dataset.Store. A store passes when it behaves as the interface documents:
// deletions cascade, repeats of a q are reported rather than queued, a
// collection created with its items stores both or neither, the
// training queue hands out due items in order and forgets completed and
// failed ones the documented way, vectors live exactly as long as their
// data, full-text marks are versioned, and reads return copies; a store
// that is a DatasetLister, TrainingLister and DataImporter lists and
// imports as a copy of a whole store needs. TestTrainingQueue runs queue/queuetest's suite on a store's training
// queue, the queue.Store a queue.Runner trains from. Both are backend
// neutral: a store on another database runs them as they are.
// SearchTestBody and CreateLinkBody are documented requests, as handler
// tests send them.
package datasettest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/chatgate/chatgate/dataset"
	"github.com/chatgate/chatgate/queue"
	"github.com/chatgate/chatgate/queue/queuetest"
)

// TestStore runs the conformance suite against the stores open returns. It
// calls open once per subtest, which must return a new, empty store; open
// should register any cleanup with t.Cleanup. Every Claim it makes it
// hands back at once, so it suits stores whose claims are exclusive too.
// TestTrainingQueue checks the training queue against queuetest's suite.
func TestStore(t *testing.T, open func(t *testing.T) dataset.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s dataset.Store)
	}{
		{"Datasets", testDatasets},
		{"Collections", testCollections},
		{"DeleteDatasetCascades", testDeleteDatasetCascades},
		{"DeleteCollectionCascades", testDeleteCollectionCascades},
		{"EnqueueRepeats", testEnqueueRepeats},
		{"EnqueueCollectionNotFound", testEnqueueCollectionNotFound},
		{"CreateCollection", testCreateCollection},
		{"CreateCollectionRefused", testCreateCollectionRefused},
		{"Claim", testClaim},
		{"Commit", testCommit},
		{"CommitGone", testCommitGone},
		{"CommitQAPairs", testCommitQAPairs},
		{"UsageOutbox", testUsageOutbox},
		{"RescheduleRetry", testRescheduleRetry},
		{"RescheduleFailure", testRescheduleFailure},
		{"RescheduleGone", testRescheduleGone},
		{"TrainingCountsAndFailures", testTrainingCountsAndFailures},
		{"DataList", testDataList},
		{"UpdateData", testUpdateData},
		{"DeleteData", testDeleteData},
		{"EachVector", testEachVector},
		{"TextPending", testTextPending},
		{"Copies", testCopies},
		{"Import", testImport},
		{"UpdateDataset", testUpdateDataset},
		{"UpdateCollection", testUpdateCollection},
		{"DeleteCollections", testDeleteCollections},
		{"DataListMatching", testDataListMatching},
		{"Concurrent", testConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			if s == nil {
				t.Fatal("open returned a nil store")
			}
			tc.fn(t, s)
		})
	}
}

// TestTrainingQueue runs queuetest's suite, the contract queue.Runner
// relies on, on the training queue of the stores open returns (each new
// and empty): claiming due items earliest first, rescheduling, failing
// for good, queue.ErrGone. Run it beside TestStore. exclusive says the
// store keeps the items a Claim returned from every other Claim until they
// are rescheduled or committed, as one that several processes share must;
// MemoryStore and BoltStore serve one process and are not.
func TestTrainingQueue(t *testing.T, open func(t *testing.T) dataset.Store, exclusive bool) {
	queuetest.TestStore(t, func(t *testing.T) queuetest.Harness[*dataset.TrainingItem] {
		s := open(t)
		putDataset(t, s, "ds", t0)
		c := putCollection(t, s, "c", "ds", t0)
		return queuetest.Harness[*dataset.TrainingItem]{
			Store: s,
			Add: func(ctx context.Context, id string, next time.Time) error {
				_, err := s.Enqueue(ctx, []*dataset.TrainingItem{newItem(c, id, "q of "+id, next)})
				return err
			},
			State: func(ctx context.Context, id string) (queue.Attempt, bool, error) {
				return itemState(ctx, s, c.ID, id)
			},
			Exclusive: exclusive,
		}
	})
}

// itemState reads a queued item back: a failed one from the failures, any
// other by claiming it alone and handing it back, which any store allows.
func itemState(ctx context.Context, s dataset.Store, collID, id string) (queue.Attempt, bool, error) {
	fs, err := s.TrainingFailures(ctx, collID, 1<<20)
	if err != nil {
		return queue.Attempt{}, false, err
	}
	for _, f := range fs {
		if f.ID == id {
			return queue.Attempt{Attempts: f.Attempts, Failed: true, Err: f.LastError}, true, nil
		}
	}
	items, err := claim(s, time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC), 1, func(x string) bool { return x != id })
	if err != nil || len(items) == 0 {
		return queue.Attempt{}, false, err
	}
	return attempt(items[0]), true, nil
}

var bg = context.Background()

// t0 has a nanosecond part so that stores which round times are caught.
var t0 = time.Date(2025, 3, 4, 5, 6, 7, 891234567, time.UTC)

// --- fixtures ---

const team = "team-a"

func putDataset(t *testing.T, s dataset.Store, id string, at time.Time) *dataset.Dataset {
	t.Helper()
	d := &dataset.Dataset{ID: id, TeamID: team, Name: "dataset " + id, VectorModel: "local", CreateTime: at}
	if err := s.PutDataset(bg, d); err != nil {
		t.Fatalf("PutDataset(%s): %v", id, err)
	}
	return d
}

func putCollection(t *testing.T, s dataset.Store, id, datasetID string, at time.Time) *dataset.Collection {
	t.Helper()
	c := &dataset.Collection{ID: id, TeamID: team, DatasetID: datasetID, Name: "collection " + id,
		Type: dataset.CollectionVirtual, TrainingType: dataset.ModeIndex, ChunkSize: 512, CreateTime: at}
	if err := s.PutCollection(bg, c); err != nil {
		t.Fatalf("PutCollection(%s): %v", id, err)
	}
	return c
}

// newItem returns a queued index-mode item of collection c.
func newItem(c *dataset.Collection, id, q string, next time.Time) *dataset.TrainingItem {
	return &dataset.TrainingItem{ID: id, TeamID: c.TeamID, DatasetID: c.DatasetID, CollectionID: c.ID,
		Mode: dataset.ModeIndex, Q: q, A: "answer to " + q, Source: "src", BillID: "bill-1", KeyID: "key-1",
		NextAttempt: next, CreateTime: t0}
}

func enqueue(t *testing.T, s dataset.Store, items ...*dataset.TrainingItem) []int {
	t.Helper()
	rep, err := s.Enqueue(bg, items)
	if err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	return rep
}

// vec returns a small vector whose values identify id and a generation.
func vec(id string, gen float32) dataset.Vector {
	h := float32(0)
	for _, r := range id {
		h = h*3 + float32(r%7)
	}
	return dataset.Vector{ID: id, Values: []float32{h, gen, 0.25, -1}}
}

// trained returns what an index-mode item trains into: one Data with its
// id and q, and a vector for q and each index.
func trained(it *dataset.TrainingItem, created time.Time) dataset.Trained {
	d := &dataset.Data{ID: it.ID, TeamID: it.TeamID, DatasetID: it.DatasetID, CollectionID: it.CollectionID,
		Q: it.Q, A: it.A, Source: it.Source, FileID: it.FileID, Indexes: slices.Clone(it.Indexes),
		CreateTime: created, UpdateTime: created}
	tr := dataset.Trained{ItemID: it.ID, Data: []*dataset.Data{d}}
	tr.Vectors = append(tr.Vectors, vec(it.ID, 1))
	for n := range it.Indexes {
		tr.Vectors = append(tr.Vectors, vec(fmt.Sprintf("%s/%d", it.ID, n+1), 1))
	}
	return tr
}

// addData enqueues an index-mode item and completes it, returning the data.
func addData(t *testing.T, s dataset.Store, c *dataset.Collection, id, q string, created time.Time, indexes ...string) *dataset.Data {
	t.Helper()
	it := newItem(c, id, q, t0)
	it.Indexes = indexes
	if rep := enqueue(t, s, it); len(rep) != 0 {
		t.Fatalf("Enqueue(%q): repeats %v", q, rep)
	}
	tr := trained(it, created)
	if gone := commit(t, s, tr); len(gone) != 0 {
		t.Fatalf("Commit(%s): gone %v", id, gone)
	}
	return tr.Data[0]
}

func commit(t *testing.T, s dataset.Store, done ...dataset.Trained) []string {
	t.Helper()
	gone, err := s.Commit(bg, done)
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	return gone
}

// --- reads ---

func mustData(t *testing.T, s dataset.Store, id string) *dataset.Data {
	t.Helper()
	d, err := s.Data(bg, id)
	if err != nil {
		t.Fatalf("Data(%s): %v", id, err)
	}
	return d
}

func wantNoData(t *testing.T, s dataset.Store, id string) {
	t.Helper()
	if d, err := s.Data(bg, id); !errors.Is(err, dataset.ErrDataNotFound) {
		t.Fatalf("Data(%s) = %+v, %v; want ErrDataNotFound", id, d, err)
	}
}

// vectors returns every stored vector as datasetID -> vector id -> values.
func vectors(t *testing.T, s dataset.Store) map[string]map[string][]float32 {
	t.Helper()
	out := map[string]map[string][]float32{}
	err := s.EachVector(bg, func(ds string, v dataset.Vector) error {
		if out[ds] == nil {
			out[ds] = map[string][]float32{}
		}
		if _, dup := out[ds][v.ID]; dup {
			return fmt.Errorf("vector %s/%s seen twice", ds, v.ID)
		}
		out[ds][v.ID] = v.Values
		return nil
	})
	if err != nil {
		t.Fatalf("EachVector: %v", err)
	}
	return out
}

func vectorIDs(t *testing.T, s dataset.Store) []string {
	t.Helper()
	var ids []string
	for ds, m := range vectors(t, s) {
		for id := range m {
			ids = append(ids, ds+":"+id)
		}
	}
	sort.Strings(ids)
	return ids
}

// due claims the items due at now, as a queue.Runner does, and hands them
// back at once (Release, for a queue.Releaser, else Reschedule with what
// they had): so it reads the queue whether or not the store keeps claimed
// items from other Claims.
func due(t *testing.T, s dataset.Store, now time.Time, n int, skip func(string) bool) []*dataset.TrainingItem {
	t.Helper()
	items, err := claim(s, now, n, skip)
	if err != nil {
		t.Fatalf("Claim: %v", err)
	}
	return items
}

// claim is due without a test, for goroutines; skip nil skips nothing.
func claim(s dataset.Store, now time.Time, n int, skip func(string) bool) ([]*dataset.TrainingItem, error) {
	if skip == nil {
		skip = func(string) bool { return false }
	}
	items, err := s.Claim(bg, now, n, skip)
	if err != nil {
		return nil, err
	}
	if rl, ok := s.(queue.Releaser); ok {
		return items, rl.Release(bg, itemIDs(items))
	}
	for _, it := range items {
		if err := s.Reschedule(bg, it.ID, attempt(it)); err != nil && !errors.Is(err, queue.ErrGone) {
			return nil, fmt.Errorf("handing %s back: %w", it.ID, err)
		}
	}
	return items, nil
}

// attempt is what Reschedule is told to make an item as it is: its
// attempts, next attempt, last error and failure.
func attempt(it *dataset.TrainingItem) queue.Attempt {
	a := queue.Attempt{Attempts: it.Attempts, Err: it.LastError, Failed: it.Failed}
	if !it.Failed {
		a.Next = it.NextAttempt
	}
	return a
}

// reschedule records it's attempts, next attempt, error and failure.
func reschedule(t *testing.T, s dataset.Store, it *dataset.TrainingItem) {
	t.Helper()
	if err := s.Reschedule(bg, it.ID, attempt(it)); err != nil {
		t.Fatalf("Reschedule(%s): %v", it.ID, err)
	}
}

func ids[T any](xs []T, id func(T) string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = id(x)
	}
	return out
}

func itemIDs(items []*dataset.TrainingItem) []string {
	return ids(items, func(it *dataset.TrainingItem) string { return it.ID })
}

func dataIDs(ds []*dataset.Data) []string {
	return ids(ds, func(d *dataset.Data) string { return d.ID })
}

// dueIDs lists every due item far in the future, sorted.
func allDue(t *testing.T, s dataset.Store) []string {
	t.Helper()
	out := itemIDs(due(t, s, t0.Add(1000*time.Hour), 1000, nil))
	sort.Strings(out)
	return out
}

func counts(t *testing.T, s dataset.Store, collID string) (int, int) {
	t.Helper()
	q, f, err := s.TrainingCounts(bg, collID)
	if err != nil {
		t.Fatalf("TrainingCounts(%s): %v", collID, err)
	}
	return q, f
}

func wantCounts(t *testing.T, s dataset.Store, collID string, queued, failed int) {
	t.Helper()
	if q, f := counts(t, s, collID); q != queued || f != failed {
		t.Fatalf("TrainingCounts(%s) = %d queued, %d failed; want %d, %d", collID, q, f, queued, failed)
	}
}

func dataList(t *testing.T, s dataset.Store, collID string, offset, limit int) ([]*dataset.Data, int) {
	t.Helper()
	list, total, err := s.DataList(bg, collID, offset, limit)
	if err != nil {
		t.Fatalf("DataList(%s, %d, %d): %v", collID, offset, limit, err)
	}
	return list, total
}

func pending(t *testing.T, s dataset.Store) map[string]uint64 {
	t.Helper()
	ps, err := s.TextPending(bg, 100000)
	if err != nil {
		t.Fatalf("TextPending: %v", err)
	}
	out := map[string]uint64{}
	for _, p := range ps {
		if _, dup := out[p.DataID]; dup {
			t.Fatalf("TextPending lists %s twice", p.DataID)
		}
		out[p.DataID] = p.Version
	}
	return out
}

func clearPending(t *testing.T, s dataset.Store) {
	t.Helper()
	ps, err := s.TextPending(bg, 100000)
	if err != nil {
		t.Fatalf("TextPending: %v", err)
	}
	if err := s.ClearTextPending(bg, ps); err != nil {
		t.Fatalf("ClearTextPending: %v", err)
	}
	if p := pending(t, s); len(p) != 0 {
		t.Fatalf("after clearing every entry, still pending: %v", p)
	}
}

// wantRepeat enqueues an item with q in c and checks whether it is
// reported as a repeat; a non-repeat stays queued.
func wantRepeat(t *testing.T, s dataset.Store, c *dataset.Collection, id, q string, repeat bool) {
	t.Helper()
	rep := enqueue(t, s, newItem(c, id, q, t0))
	if got := len(rep) == 1; got != repeat {
		t.Fatalf("Enqueue(%q) repeats = %v; want repeat %v", q, rep, repeat)
	}
}

func equalStrings(a, b []string) bool { return slices.Equal(a, b) }

func sorted(xs []string) []string {
	xs = slices.Clone(xs)
	sort.Strings(xs)
	return xs
}

func checkData(t *testing.T, got, want *dataset.Data) {
	t.Helper()
	if got.ID != want.ID || got.TeamID != want.TeamID || got.DatasetID != want.DatasetID ||
		got.CollectionID != want.CollectionID || got.Q != want.Q || got.A != want.A ||
		got.Source != want.Source || got.FileID != want.FileID || !slices.Equal(got.Indexes, want.Indexes) ||
		!got.CreateTime.Equal(want.CreateTime) || !got.UpdateTime.Equal(want.UpdateTime) {
		t.Fatalf("data = %+v\nwant %+v", got, want)
	}
}

// --- tests ---

func testDatasets(t *testing.T, s dataset.Store) {
	if d, err := s.Dataset(bg, "missing"); !errors.Is(err, dataset.ErrDatasetNotFound) {
		t.Fatalf("Dataset(missing) = %+v, %v; want ErrDatasetNotFound", d, err)
	}
	// created out of order: the list is oldest first
	b := putDataset(t, s, "ds-b", t0.Add(2*time.Second))
	a := putDataset(t, s, "ds-a", t0.Add(time.Second))
	c := putDataset(t, s, "ds-c", t0.Add(3*time.Second))
	other := &dataset.Dataset{ID: "ds-other", TeamID: "team-b", Name: "theirs", VectorModel: "local", CreateTime: t0}
	if err := s.PutDataset(bg, other); err != nil {
		t.Fatal(err)
	}
	got, err := s.Dataset(bg, "ds-a")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != a.ID || got.TeamID != team || got.Name != a.Name || got.VectorModel != "local" || !got.CreateTime.Equal(a.CreateTime) {
		t.Fatalf("Dataset(ds-a) = %+v; want %+v", got, a)
	}
	list, err := s.Datasets(bg, team)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{a.ID, b.ID, c.ID}; !equalStrings(ids(list, func(d *dataset.Dataset) string { return d.ID }), want) {
		t.Fatalf("Datasets(%s) = %v; want %v (oldest first, own team only)", team, ids(list, func(d *dataset.Dataset) string { return d.ID }), want)
	}
	if list, _ := s.Datasets(bg, "team-b"); len(list) != 1 || list[0].ID != other.ID {
		t.Fatalf("Datasets(team-b) = %v", list)
	}
	if list, _ := s.Datasets(bg, "nobody"); len(list) != 0 {
		t.Fatalf("Datasets(nobody) = %v", list)
	}
	// Put again replaces.
	b2 := *b
	b2.Name = "renamed"
	if err := s.PutDataset(bg, &b2); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Dataset(bg, b.ID); got == nil || got.Name != "renamed" {
		t.Fatalf("after re-put: %+v", got)
	}
	if list, _ := s.Datasets(bg, team); len(list) != 3 {
		t.Fatalf("re-put added a dataset: %d", len(list))
	}
	if err := s.DeleteDataset(bg, "missing"); !errors.Is(err, dataset.ErrDatasetNotFound) {
		t.Fatalf("DeleteDataset(missing) = %v; want ErrDatasetNotFound", err)
	}
	if err := s.DeleteDataset(bg, b.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Dataset(bg, b.ID); !errors.Is(err, dataset.ErrDatasetNotFound) {
		t.Fatalf("deleted dataset: %v", err)
	}
	if list, _ := s.Datasets(bg, team); len(list) != 2 || list[0].ID != a.ID || list[1].ID != c.ID {
		t.Fatalf("after delete: %v", ids(list, func(d *dataset.Dataset) string { return d.ID }))
	}
	if err := s.DeleteDataset(bg, b.ID); !errors.Is(err, dataset.ErrDatasetNotFound) {
		t.Fatalf("second DeleteDataset = %v; want ErrDatasetNotFound", err)
	}
}

func testCollections(t *testing.T, s dataset.Store) {
	orphan := &dataset.Collection{ID: "c-orphan", TeamID: team, DatasetID: "missing", Name: "x", CreateTime: t0}
	if err := s.PutCollection(bg, orphan); !errors.Is(err, dataset.ErrDatasetNotFound) {
		t.Fatalf("PutCollection in a missing dataset = %v; want ErrDatasetNotFound", err)
	}
	if c, err := s.Collection(bg, orphan.ID); !errors.Is(err, dataset.ErrCollectionNotFound) {
		t.Fatalf("a refused collection was stored: %+v, %v", c, err)
	}
	putDataset(t, s, "ds1", t0)
	putDataset(t, s, "ds2", t0)
	c2 := putCollection(t, s, "c2", "ds1", t0.Add(2*time.Second))
	c1 := putCollection(t, s, "c1", "ds1", t0.Add(time.Second))
	c3 := putCollection(t, s, "c0", "ds1", t0.Add(3*time.Second))
	putCollection(t, s, "cx", "ds2", t0)
	got, err := s.Collection(bg, c1.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != c1.ID || got.TeamID != team || got.DatasetID != "ds1" || got.Name != c1.Name || got.Type != dataset.CollectionVirtual ||
		got.TrainingType != dataset.ModeIndex || got.ChunkSize != 512 || !got.CreateTime.Equal(c1.CreateTime) {
		t.Fatalf("Collection(c1) = %+v; want %+v", got, c1)
	}
	if c, err := s.Collection(bg, "missing"); !errors.Is(err, dataset.ErrCollectionNotFound) {
		t.Fatalf("Collection(missing) = %+v, %v", c, err)
	}
	list, err := s.Collections(bg, "ds1")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(list, func(c *dataset.Collection) string { return c.ID }), []string{c1.ID, c2.ID, c3.ID}; !equalStrings(got, want) {
		t.Fatalf("Collections(ds1) = %v; want %v (oldest first)", got, want)
	}
	if list, _ := s.Collections(bg, "missing"); len(list) != 0 {
		t.Fatalf("Collections(missing) = %v", list)
	}
	// re-put replaces
	c1b := *c1
	c1b.Name = "renamed"
	if err := s.PutCollection(bg, &c1b); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Collection(bg, c1.ID); got == nil || got.Name != "renamed" {
		t.Fatalf("after re-put: %+v", got)
	}
	if list, _ := s.Collections(bg, "ds1"); len(list) != 3 {
		t.Fatalf("re-put added a collection: %d", len(list))
	}
	if _, err := s.DeleteCollection(bg, "missing"); !errors.Is(err, dataset.ErrCollectionNotFound) {
		t.Fatalf("DeleteCollection(missing) = %v; want ErrCollectionNotFound", err)
	}
	removed, err := s.DeleteCollection(bg, c2.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 0 {
		t.Fatalf("an empty collection's deletion removed vectors %v", removed)
	}
	if _, err := s.Collection(bg, c2.ID); !errors.Is(err, dataset.ErrCollectionNotFound) {
		t.Fatalf("deleted collection: %v", err)
	}
	if list, _ := s.Collections(bg, "ds1"); len(list) != 2 {
		t.Fatalf("after delete: %d collections", len(list))
	}
}

// fill gives a collection stored data (with index vectors), a queued item
// and a failed item, and returns their ids.
func fill(t *testing.T, s dataset.Store, c *dataset.Collection, tag string) (data []string, queued, failed string) {
	t.Helper()
	d1 := addData(t, s, c, tag+"-d1", tag+" first question", t0.Add(time.Second), tag+" index one")
	d2 := addData(t, s, c, tag+"-d2", tag+" second question", t0.Add(2*time.Second))
	q := newItem(c, tag+"-queued", tag+" waiting", t0)
	f := newItem(c, tag+"-failed", tag+" broken", t0)
	enqueue(t, s, q, f)
	f.Attempts, f.LastError, f.Failed = 5, "boom", true
	reschedule(t, s, f)
	return []string{d1.ID, d2.ID}, q.ID, f.ID
}

func testDeleteDatasetCascades(t *testing.T, s dataset.Store) {
	putDataset(t, s, "dsA", t0)
	putDataset(t, s, "dsB", t0)
	a1 := putCollection(t, s, "a1", "dsA", t0)
	a2 := putCollection(t, s, "a2", "dsA", t0.Add(time.Second))
	b1 := putCollection(t, s, "b1", "dsB", t0)
	a1Data, a1Queued, _ := fill(t, s, a1, "a1")
	a2Data, a2Queued, _ := fill(t, s, a2, "a2")
	b1Data, b1Queued, b1Failed := fill(t, s, b1, "b1")
	clearPending(t, s)

	if err := s.DeleteDataset(bg, "dsA"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{a1.ID, a2.ID} {
		if _, err := s.Collection(bg, c); !errors.Is(err, dataset.ErrCollectionNotFound) {
			t.Fatalf("collection %s survived its dataset: %v", c, err)
		}
		wantCounts(t, s, c, 0, 0)
		if fs, err := s.TrainingFailures(bg, c, 10); err != nil || len(fs) != 0 {
			t.Fatalf("TrainingFailures(%s) = %v, %v", c, itemIDs(fs), err)
		}
		if list, total := dataList(t, s, c, 0, 10); len(list) != 0 || total != 0 {
			t.Fatalf("DataList(%s) = %v, %d", c, dataIDs(list), total)
		}
	}
	if list, _ := s.Collections(bg, "dsA"); len(list) != 0 {
		t.Fatalf("Collections(dsA) = %v", list)
	}
	for _, id := range append(a1Data, a2Data...) {
		wantNoData(t, s, id)
	}
	if got, want := vectorIDs(t, s), []string{"dsB:b1-d1", "dsB:b1-d1/1", "dsB:b1-d2"}; !equalStrings(got, want) {
		t.Fatalf("vectors after DeleteDataset = %v; want %v", got, want)
	}
	if got, want := allDue(t, s), []string{b1Queued}; !equalStrings(got, want) {
		t.Fatalf("due after DeleteDataset = %v; want %v (not %s, %s)", got, want, a1Queued, a2Queued)
	}
	// The deleted data's full-text entries must be removed.
	p := pending(t, s)
	for _, id := range append(a1Data, a2Data...) {
		if _, ok := p[id]; !ok {
			t.Fatalf("deleted data %s is not pending for the full-text index: %v", id, p)
		}
	}
	// dsB is untouched.
	for _, id := range b1Data {
		mustData(t, s, id)
	}
	wantCounts(t, s, b1.ID, 1, 1)
	if fs, _ := s.TrainingFailures(bg, b1.ID, 10); len(fs) != 1 || fs[0].ID != b1Failed {
		t.Fatalf("TrainingFailures(b1) = %v", itemIDs(fs))
	}
}

func testDeleteCollectionCascades(t *testing.T, s dataset.Store) {
	putDataset(t, s, "ds", t0)
	c := putCollection(t, s, "c", "ds", t0)
	keep := putCollection(t, s, "keep", "ds", t0)
	data, queued, failed := fill(t, s, c, "c")
	keepData, keepQueued, keepFailed := fill(t, s, keep, "k")
	clearPending(t, s)

	removed, err := s.DeleteCollection(bg, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sorted(removed), []string{"c-d1", "c-d1/1", "c-d2"}; !equalStrings(got, want) {
		t.Fatalf("DeleteCollection removed vectors %v; want %v", got, want)
	}
	if _, err := s.Collection(bg, c.ID); !errors.Is(err, dataset.ErrCollectionNotFound) {
		t.Fatalf("Collection after delete: %v", err)
	}
	for _, id := range data {
		wantNoData(t, s, id)
	}
	if got, want := vectorIDs(t, s), []string{"ds:k-d1", "ds:k-d1/1", "ds:k-d2"}; !equalStrings(got, want) {
		t.Fatalf("vectors = %v; want %v", got, want)
	}
	if got, want := allDue(t, s), []string{keepQueued}; !equalStrings(got, want) {
		t.Fatalf("due = %v; want %v (%s deleted)", got, want, queued)
	}
	wantCounts(t, s, c.ID, 0, 0)
	if fs, _ := s.TrainingFailures(bg, c.ID, 10); len(fs) != 0 {
		t.Fatalf("failed item %s survived: %v", failed, itemIDs(fs))
	}
	p := pending(t, s)
	for _, id := range data {
		if _, ok := p[id]; !ok {
			t.Fatalf("deleted data %s is not pending for the full-text index", id)
		}
	}
	// the sibling collection is untouched
	for _, id := range keepData {
		mustData(t, s, id)
	}
	wantCounts(t, s, keep.ID, 1, 1)
	if fs, _ := s.TrainingFailures(bg, keep.ID, 10); len(fs) != 1 || fs[0].ID != keepFailed {
		t.Fatalf("TrainingFailures(keep) = %v", itemIDs(fs))
	}
	// The collection's qs are forgotten: a new collection with the same id
	// takes them again.
	c = putCollection(t, s, "c", "ds", t0)
	wantRepeat(t, s, c, "again-1", "c first question", false)
	wantRepeat(t, s, c, "again-2", "c waiting", false)
	wantRepeat(t, s, c, "again-3", "c broken", false)
	wantCounts(t, s, c.ID, 3, 0)
}

func testEnqueueRepeats(t *testing.T, s dataset.Store) {
	putDataset(t, s, "ds", t0)
	c := putCollection(t, s, "c", "ds", t0)
	other := putCollection(t, s, "other", "ds", t0)
	addData(t, s, c, "d-alpha", "alpha", t0)
	if rep := enqueue(t, s, newItem(c, "i-beta", "beta", t0)); len(rep) != 0 {
		t.Fatalf("repeats %v", rep)
	}
	items := []*dataset.TrainingItem{
		newItem(c, "i0", "alpha", t0),         // 0: data has it
		newItem(c, "i1", "beta", t0),          // 1: a queued item has it
		newItem(c, "i2", "gamma", t0),         // 2: new
		newItem(c, "i3", "gamma", t0),         // 3: earlier in this call
		newItem(c, "i4", "  delta\n", t0),     // 4: new
		newItem(c, "i5", "delta", t0),         // 5: same once trimmed
		newItem(c, "i6", "\talpha  ", t0),     // 6: data has it, trimmed
		newItem(other, "i7", "alpha", t0),     // 7: another collection's q is no repeat
		newItem(c, "i8", "Gamma", t0),         // 8: case matters
		newItem(c, "i9", "gamma delta", t0),   // 9: new
		newItem(other, "i10", "  beta ", t0),  // 10: new in other
		newItem(other, "i11", "beta", t0),     // 11: repeat of 10
		newItem(c, "i12", "alpha beta", t0),   // 12: new
		newItem(c, "i13", "alpha beta ", t0),  // 13: repeat of 12
		newItem(c, "i14", "alpha  beta", t0),  // 14: inner spaces matter
		newItem(c, "i15", "alpha\nbeta", t0),  // 15: so do inner breaks
		newItem(c, "i16", "\u3000alpha", t0),  // 16: ideographic space is space too
		newItem(c, "i17", "delta\u00a0", t0),  // 17: as is a no-break space
		newItem(c, "i18", "epsilon", t0),      // 18: new
		newItem(c, "i19", "epsilon", t0),      // 19: repeat of 18
		newItem(other, "i20", "epsilon", t0),  // 20: new in other
		newItem(c, "i21", "zeta", t0),         // 21: new
		newItem(c, "i22", "zeta\r\n", t0),     // 22: repeat of 21
		newItem(c, "i23", "eta", t0),          // 23: new
		newItem(c, "i24", " eta ", t0),        // 24: repeat of 23
		newItem(c, "i25", "theta", t0),        // 25: new
		newItem(c, "i26", "beta", t0),         // 26: queued item has it
		newItem(c, "i27", "alpha", t0),        // 27: data has it
		newItem(other, "i28", "gamma", t0),    // 28: new in other
		newItem(other, "i29", "gamma", t0),    // 29: repeat of 28
		newItem(c, "i30", "iota", t0),         // 30: new
		newItem(c, "i31", "iota", t0.Add(1)),  // 31: repeat of 30
		newItem(c, "i32", "kappa", t0),        // 32: new
		newItem(c, "i33", "kappa", t0.Add(1)), // 33: repeat of 32
	}
	rep := enqueue(t, s, items...)
	want := []int{0, 1, 3, 5, 6, 11, 13, 16, 17, 19, 22, 24, 26, 27, 29, 31, 33}
	if !slices.Equal(rep, want) {
		t.Fatalf("repeats = %v; want %v", rep, want)
	}
	var wantQueued []string
	for i, it := range items {
		if !slices.Contains(want, i) {
			wantQueued = append(wantQueued, it.ID)
		}
	}
	wantQueued = append(wantQueued, "i-beta")
	if got := allDue(t, s); !equalStrings(got, sorted(wantQueued)) {
		t.Fatalf("queued = %v; want %v", got, sorted(wantQueued))
	}
	// i-beta, i2, i4, i8, i9, i12, i14, i15, i18, i21, i23, i25, i30, i32
	wantCounts(t, s, c.ID, 14, 0)
	wantCounts(t, s, other.ID, 4, 0)
	// a call made only of repeats queues nothing
	if rep := enqueue(t, s, newItem(c, "j0", "gamma", t0), newItem(c, "j1", "alpha", t0)); !slices.Equal(rep, []int{0, 1}) {
		t.Fatalf("repeats = %v; want [0 1]", rep)
	}
	wantCounts(t, s, c.ID, 14, 0)
}

func testEnqueueCollectionNotFound(t *testing.T, s dataset.Store) {
	putDataset(t, s, "ds", t0)
	c := putCollection(t, s, "c", "ds", t0)
	ghost := &dataset.Collection{ID: "ghost", TeamID: team, DatasetID: "ds"}
	_, err := s.Enqueue(bg, []*dataset.TrainingItem{newItem(c, "i1", "one", t0), newItem(ghost, "i2", "two", t0), newItem(c, "i3", "three", t0)})
	if !errors.Is(err, dataset.ErrCollectionNotFound) {
		t.Fatalf("Enqueue into a missing collection = %v; want ErrCollectionNotFound", err)
	}
	if got := allDue(t, s); len(got) != 0 {
		t.Fatalf("a refused Enqueue queued %v", got)
	}
	wantCounts(t, s, c.ID, 0, 0)
	// nothing of it is remembered as a q
	wantRepeat(t, s, c, "i1b", "one", false)
	wantRepeat(t, s, c, "i3b", "three", false)
}

// CreateCollection stores a collection with its items queued, repeats
// among them reported as Enqueue reports them.
func testCreateCollection(t *testing.T, s dataset.Store) {
	putDataset(t, s, "ds", t0)
	c := &dataset.Collection{ID: "text", TeamID: team, DatasetID: "ds", Name: "doc", Type: dataset.CollectionText,
		TrainingType: dataset.ModeIndex, ChunkSize: 16, CreateTime: t0}
	items := []*dataset.TrainingItem{newItem(c, "i0", "zero", t0), newItem(c, "i1", "one", t0), newItem(c, "i2", " zero ", t0), newItem(c, "i3", "three", t0)}
	rep, err := s.CreateCollection(bg, c, items)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep, []int{2}) {
		t.Fatalf("repeats %v; want [2] (the trimmed q of item 0)", rep)
	}
	got, err := s.Collection(bg, "text")
	if err != nil || got.Name != "doc" || got.Type != dataset.CollectionText || got.ChunkSize != 16 || !got.CreateTime.Equal(t0) {
		t.Fatalf("Collection = %+v, %v", got, err)
	}
	if list, _ := s.Collections(bg, "ds"); len(list) != 1 || list[0].ID != "text" {
		t.Fatalf("Collections(ds) = %v", list)
	}
	wantCounts(t, s, "text", 3, 0)
	if got := sorted(allDue(t, s)); !equalStrings(got, []string{"i0", "i1", "i3"}) {
		t.Fatalf("queued %v", got)
	}
	wantRepeat(t, s, c, "again", "one", true)
	// the queued items train like any others
	if gone := commit(t, s, trained(items[0], t0)); len(gone) != 0 {
		t.Fatalf("Commit: gone %v", gone)
	}
	wantCounts(t, s, "text", 2, 0)
	mustData(t, s, "i0")
	// and the collection deletes with them
	if _, err := s.DeleteCollection(bg, "text"); err != nil {
		t.Fatal(err)
	}
	if got := allDue(t, s); len(got) != 0 {
		t.Fatalf("after deleting the collection, queued %v", got)
	}
	// no items at all is an empty collection
	empty := &dataset.Collection{ID: "empty", TeamID: team, DatasetID: "ds", Name: "e", CreateTime: t0}
	if rep, err := s.CreateCollection(bg, empty, nil); err != nil || len(rep) != 0 {
		t.Fatalf("CreateCollection without items = %v, %v", rep, err)
	}
	if _, err := s.Collection(bg, "empty"); err != nil {
		t.Fatal(err)
	}
}

// A refused CreateCollection stores neither the collection nor any item.
func testCreateCollectionRefused(t *testing.T, s dataset.Store) {
	putDataset(t, s, "ds", t0)
	existing := putCollection(t, s, "taken", "ds", t0)
	orphan := &dataset.Collection{ID: "orphan", TeamID: team, DatasetID: "missing", Name: "x", CreateTime: t0}
	c := &dataset.Collection{ID: "new", TeamID: team, DatasetID: "ds", Name: "x", CreateTime: t0}
	for _, tc := range []struct {
		name  string
		c     *dataset.Collection
		items []*dataset.TrainingItem
		want  error
	}{
		{"missing dataset", orphan, []*dataset.TrainingItem{newItem(orphan, "o1", "one", t0)}, dataset.ErrDatasetNotFound},
		{"id taken", &dataset.Collection{ID: "taken", TeamID: team, DatasetID: "ds", Name: "again", CreateTime: t0},
			[]*dataset.TrainingItem{newItem(existing, "t1", "one", t0)}, dataset.ErrCollectionExists},
		{"an item of another collection", c, []*dataset.TrainingItem{newItem(c, "n1", "one", t0), newItem(existing, "n2", "two", t0)}, nil},
	} {
		_, err := s.CreateCollection(bg, tc.c, tc.items)
		if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Fatalf("%s: err = %v; want %v", tc.name, err, tc.want)
		}
		if got := allDue(t, s); len(got) != 0 {
			t.Fatalf("%s: queued %v", tc.name, got)
		}
	}
	for _, id := range []string{"orphan", "new"} {
		if got, err := s.Collection(bg, id); !errors.Is(err, dataset.ErrCollectionNotFound) {
			t.Fatalf("refused collection %s stored: %+v, %v", id, got, err)
		}
	}
	if got, _ := s.Collection(bg, "taken"); got.Name != existing.Name {
		t.Fatalf("the taken id's collection was replaced: %+v", got)
	}
	wantRepeat(t, s, existing, "later", "one", false)
	wantRepeat(t, s, existing, "later2", "two", false)
}

func testClaim(t *testing.T, s dataset.Store) {
	putDataset(t, s, "ds", t0)
	c := putCollection(t, s, "c", "ds", t0)
	enqueue(t, s,
		newItem(c, "i-3s", "three", t0.Add(3*time.Second)),
		newItem(c, "i-1s", "one", t0.Add(time.Second)),
		newItem(c, "i-10s", "ten", t0.Add(10*time.Second)),
		newItem(c, "i-2s", "two", t0.Add(2*time.Second)),
		newItem(c, "i-zero", "zero", time.Time{}), // never scheduled: due at once
	)
	f := newItem(c, "i-failed", "failed", t0)
	enqueue(t, s, f)
	f.Failed, f.Attempts, f.LastError = true, 1, "boom"
	reschedule(t, s, f)
	now := t0.Add(5 * time.Second)
	if got, want := itemIDs(due(t, s, now, 10, nil)), []string{"i-zero", "i-1s", "i-2s", "i-3s"}; !equalStrings(got, want) {
		t.Fatalf("Claim(t0+5s) = %v; want %v (earliest first, failed and future left out)", got, want)
	}
	if got, want := itemIDs(due(t, s, now, 2, nil)), []string{"i-zero", "i-1s"}; !equalStrings(got, want) {
		t.Fatalf("Claim(n=2) = %v; want %v", got, want)
	}
	skip := func(id string) bool { return id == "i-1s" || id == "i-zero" }
	if got, want := itemIDs(due(t, s, now, 2, skip)), []string{"i-2s", "i-3s"}; !equalStrings(got, want) {
		t.Fatalf("Claim(n=2, skipping) = %v; want %v (skipped ones do not count against n)", got, want)
	}
	// NextAttempt equal to now is due
	if got, want := itemIDs(due(t, s, t0.Add(2*time.Second), 10, nil)), []string{"i-zero", "i-1s", "i-2s"}; !equalStrings(got, want) {
		t.Fatalf("Claim(t0+2s) = %v; want %v", got, want)
	}
	if got := due(t, s, t0.Add(2*time.Second-1), 10, nil); len(got) != 2 {
		t.Fatalf("Claim(t0+2s-1ns) = %v; want i-zero and i-1s", itemIDs(got))
	}
	if got := due(t, s, now, 0, nil); len(got) != 0 {
		t.Fatalf("Claim(n=0) = %v", itemIDs(got))
	}
	// the items come back whole
	got := due(t, s, t0.Add(time.Second), 10, func(id string) bool { return id == "i-zero" })
	if len(got) != 1 {
		t.Fatalf("Claim = %v", itemIDs(got))
	}
	it := got[0]
	if it.ID != "i-1s" || it.TeamID != team || it.DatasetID != "ds" || it.CollectionID != "c" || it.Mode != dataset.ModeIndex ||
		it.Q != "one" || it.A != "answer to one" || it.Source != "src" || it.BillID != "bill-1" || it.KeyID != "key-1" ||
		!it.NextAttempt.Equal(t0.Add(time.Second)) || !it.CreateTime.Equal(t0) || it.Failed || it.Attempts != 0 {
		t.Fatalf("item = %+v", it)
	}
}

func testCommit(t *testing.T, s dataset.Store) {
	putDataset(t, s, "ds", t0)
	c := putCollection(t, s, "c", "ds", t0)
	it := newItem(c, "i1", "what is chatgate?", t0)
	it.Indexes = []string{"chatgate", "gateway"}
	it.FileID = "mark"
	other := newItem(c, "i2", "another", t0)
	enqueue(t, s, it, other)
	clearPending(t, s)
	tr := trained(it, t0.Add(time.Minute))
	tr.Vectors = append(tr.Vectors, vec("stray", 1), vec("i2", 1)) // not of stored data
	done := []dataset.Trained{tr}
	gone, err := s.Commit(bg, done)
	if err != nil || len(gone) != 0 {
		t.Fatalf("Commit = %v, %v", gone, err)
	}
	if len(done[0].Data) != 1 || done[0].Data[0].ID != "i1" {
		t.Fatalf("Commit changed the Trained's data: %v", dataIDs(done[0].Data))
	}
	if got, want := ids(done[0].Vectors, func(v dataset.Vector) string { return v.ID }), []string{"i1", "i1/1", "i1/2"}; !equalStrings(got, want) {
		t.Fatalf("Trained vectors after Commit = %v; want %v (vectors of no stored data dropped)", got, want)
	}
	checkData(t, mustData(t, s, "i1"), tr.Data[0])
	vs := vectors(t, s)
	if got, want := sorted(slices.Collect(maps.Keys(vs["ds"]))), []string{"i1", "i1/1", "i1/2"}; !equalStrings(got, want) {
		t.Fatalf("stored vectors = %v; want %v", got, want)
	}
	if !slices.Equal(vs["ds"]["i1/2"], vec("i1/2", 1).Values) {
		t.Fatalf("vector i1/2 = %v; want %v", vs["ds"]["i1/2"], vec("i1/2", 1).Values)
	}
	if got, want := allDue(t, s), []string{"i2"}; !equalStrings(got, want) {
		t.Fatalf("due = %v; want %v", got, want)
	}
	wantCounts(t, s, c.ID, 1, 0)
	if list, total := dataList(t, s, c.ID, 0, 10); total != 1 || len(list) != 1 || list[0].ID != "i1" {
		t.Fatalf("DataList = %v, %d", dataIDs(list), total)
	}
	if _, ok := pending(t, s)["i1"]; !ok {
		t.Fatalf("stored data is not pending for the full-text index")
	}
	// its q is the data's now
	wantRepeat(t, s, c, "i3", "what is chatgate?", true)
	// Completing it again: it is gone, and nothing changes.
	again := trained(it, t0.Add(time.Hour))
	again.Data[0].A = "changed"
	if gone := commit(t, s, again); !equalStrings(gone, []string{"i1"}) {
		t.Fatalf("second Commit gone = %v; want [i1]", gone)
	}
	if d := mustData(t, s, "i1"); d.A != it.A {
		t.Fatalf("a gone item's result was stored: %+v", d)
	}
	// Several items in one call, one of them gone.
	t2 := trained(other, t0.Add(2*time.Minute))
	ghost := dataset.Trained{ItemID: "ghost", Data: []*dataset.Data{{ID: "ghost", TeamID: team, DatasetID: "ds", CollectionID: "c", Q: "boo", CreateTime: t0}},
		Vectors: []dataset.Vector{vec("ghost", 1)}}
	if gone := commit(t, s, ghost, t2); !equalStrings(gone, []string{"ghost"}) {
		t.Fatalf("gone = %v; want [ghost]", gone)
	}
	wantNoData(t, s, "ghost")
	mustData(t, s, "i2")
	if _, ok := vectors(t, s)["ds"]["ghost"]; ok {
		t.Fatal("a gone item's vector was stored")
	}
	wantCounts(t, s, c.ID, 0, 0)
	wantRepeat(t, s, c, "i4", "boo", false)
}

func testCommitGone(t *testing.T, s dataset.Store) {
	putDataset(t, s, "ds", t0)
	c := putCollection(t, s, "c", "ds", t0)
	it := newItem(c, "i1", "q1", t0)
	enqueue(t, s, it)
	tr := trained(it, t0)
	if _, err := s.DeleteCollection(bg, c.ID); err != nil {
		t.Fatal(err)
	}
	if gone := commit(t, s, tr); !equalStrings(gone, []string{"i1"}) {
		t.Fatalf("Commit after its collection was deleted: gone = %v; want [i1]", gone)
	}
	wantNoData(t, s, "i1")
	if vs := vectorIDs(t, s); len(vs) != 0 {
		t.Fatalf("orphan vectors %v", vs)
	}
	if list, total := dataList(t, s, c.ID, 0, 10); total != 0 || len(list) != 0 {
		t.Fatalf("orphan data %v", dataIDs(list))
	}
}

func testCommitQAPairs(t *testing.T, s dataset.Store) {
	putDataset(t, s, "ds", t0)
	c := putCollection(t, s, "c", "ds", t0)
	addData(t, s, c, "d-old", "Who directed Suzume?", t0)
	text := "Suzume is a 2022 film directed by Makoto Shinkai. Its heroine is Suzume Iwato."
	it := newItem(c, "qa1", text, t0)
	it.Mode = dataset.ModeQA
	enqueue(t, s, it)
	pair := func(n int, q string) *dataset.Data {
		return &dataset.Data{ID: fmt.Sprintf("qa1-%d", n), TeamID: team, DatasetID: "ds", CollectionID: "c",
			Q: q, A: "answer " + q, CreateTime: t0.Add(time.Duration(n))}
	}
	tr := dataset.Trained{ItemID: "qa1", Data: []*dataset.Data{
		pair(1, "Who directed Suzume?"), // the collection has it
		pair(2, "When was Suzume released?"),
		pair(3, " When was Suzume released? "), // an earlier pair has it
		pair(4, "Who is the heroine?"),
	}}
	for n := 1; n <= 4; n++ {
		tr.Vectors = append(tr.Vectors, vec(fmt.Sprintf("qa1-%d", n), 2))
	}
	done := []dataset.Trained{tr}
	if gone, err := s.Commit(bg, done); err != nil || len(gone) != 0 {
		t.Fatalf("Commit = %v, %v", gone, err)
	}
	if got, want := dataIDs(done[0].Data), []string{"qa1-2", "qa1-4"}; !equalStrings(got, want) {
		t.Fatalf("Trained data after Commit = %v; want %v (repeats removed)", got, want)
	}
	if got, want := ids(done[0].Vectors, func(v dataset.Vector) string { return v.ID }), []string{"qa1-2", "qa1-4"}; !equalStrings(got, want) {
		t.Fatalf("Trained vectors after Commit = %v; want %v", got, want)
	}
	wantNoData(t, s, "qa1-1")
	wantNoData(t, s, "qa1-3")
	if d := mustData(t, s, "d-old"); d.A != "answer to Who directed Suzume?" {
		t.Fatalf("a repeated pair overwrote existing data: %+v", d)
	}
	if got, want := vectorIDs(t, s), []string{"ds:d-old", "ds:qa1-2", "ds:qa1-4"}; !equalStrings(got, want) {
		t.Fatalf("vectors = %v; want %v", got, want)
	}
	if list, total := dataList(t, s, c.ID, 0, 10); total != 3 || !equalStrings(dataIDs(list), []string{"d-old", "qa1-2", "qa1-4"}) {
		t.Fatalf("DataList = %v, %d", dataIDs(list), total)
	}
	wantCounts(t, s, c.ID, 0, 0)
	// the stored pairs' qs are taken
	wantRepeat(t, s, c, "x1", "Who is the heroine?", true)
	// The pushed text is neither data nor queued any more, so it may be
	// pushed again.
	wantRepeat(t, s, c, "x2", text, false)
}

func testRescheduleRetry(t *testing.T, s dataset.Store) {
	putDataset(t, s, "ds", t0)
	c := putCollection(t, s, "c", "ds", t0)
	it := newItem(c, "i1", "q1", t0)
	enqueue(t, s, it)
	it.Attempts, it.LastError, it.NextAttempt = 1, "embedder down", t0.Add(time.Hour)
	reschedule(t, s, it)
	if got := due(t, s, t0.Add(time.Minute), 10, nil); len(got) != 0 {
		t.Fatalf("a rescheduled item is due before its next attempt: %v", itemIDs(got))
	}
	got := due(t, s, t0.Add(time.Hour), 10, nil)
	if len(got) != 1 || got[0].Attempts != 1 || got[0].LastError != "embedder down" || !got[0].NextAttempt.Equal(t0.Add(time.Hour)) || got[0].Failed {
		t.Fatalf("due after Reschedule = %+v", got)
	}
	wantCounts(t, s, c.ID, 1, 0)
	// and again, earlier
	it.Attempts, it.NextAttempt = 2, t0.Add(time.Second)
	reschedule(t, s, it)
	if got := due(t, s, t0.Add(time.Minute), 10, nil); len(got) != 1 || got[0].Attempts != 2 {
		t.Fatalf("due = %+v", got)
	}
	if got := due(t, s, t0.Add(1000*time.Hour), 10, nil); len(got) != 1 {
		t.Fatalf("rescheduled twice, the item is due %d times", len(got))
	}
	wantCounts(t, s, c.ID, 1, 0)
	// still queued, so its q is still taken
	wantRepeat(t, s, c, "i2", "q1", true)
	// and it completes normally
	if gone := commit(t, s, trained(it, t0)); len(gone) != 0 {
		t.Fatalf("gone %v", gone)
	}
	if got := allDue(t, s); len(got) != 0 {
		t.Fatalf("due after Commit: %v", got)
	}
}

func testRescheduleFailure(t *testing.T, s dataset.Store) {
	putDataset(t, s, "ds", t0)
	c := putCollection(t, s, "c", "ds", t0)
	it := newItem(c, "i1", "doomed", t0)
	keep := newItem(c, "i2", "fine", t0)
	enqueue(t, s, it, keep)
	it.Attempts, it.LastError, it.Failed = 5, "gave up: boom", true
	reschedule(t, s, it)
	if got, want := allDue(t, s), []string{"i2"}; !equalStrings(got, want) {
		t.Fatalf("due = %v; want %v (failed items leave the due set)", got, want)
	}
	wantCounts(t, s, c.ID, 1, 1)
	fs, err := s.TrainingFailures(bg, c.ID, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 1 || fs[0].ID != "i1" || !fs[0].Failed || fs[0].Attempts != 5 || fs[0].LastError != "gave up: boom" || fs[0].Q != "doomed" {
		t.Fatalf("TrainingFailures = %+v", fs)
	}
	// A failed item's q may be pushed again; the failure stays recorded.
	wantRepeat(t, s, c, "i3", "doomed", false)
	wantCounts(t, s, c.ID, 2, 1)
	if fs, _ := s.TrainingFailures(bg, c.ID, 10); len(fs) != 1 || fs[0].ID != "i1" {
		t.Fatalf("TrainingFailures after a re-push = %v", itemIDs(fs))
	}
	if got, want := allDue(t, s), []string{"i2", "i3"}; !equalStrings(got, want) {
		t.Fatalf("due = %v; want %v", got, want)
	}
	// the new item's q is taken as usual, and it trains normally
	wantRepeat(t, s, c, "i4", "doomed", true)
	if gone := commit(t, s, trained(newItem(c, "i3", "doomed", t0), t0)); len(gone) != 0 {
		t.Fatalf("gone %v", gone)
	}
	mustData(t, s, "i3")
	wantCounts(t, s, c.ID, 1, 1)
}

func testRescheduleGone(t *testing.T, s dataset.Store) {
	putDataset(t, s, "ds", t0)
	c := putCollection(t, s, "c", "ds", t0)
	it := newItem(c, "i1", "q1", t0)
	if err := s.Reschedule(bg, it.ID, attempt(it)); !errors.Is(err, queue.ErrGone) {
		t.Fatalf("Reschedule of an item never queued = %v; want queue.ErrGone", err)
	}
	enqueue(t, s, it)
	if gone := commit(t, s, trained(it, t0)); len(gone) != 0 {
		t.Fatal(gone)
	}
	it.Attempts, it.NextAttempt = 1, t0.Add(time.Minute)
	if err := s.Reschedule(bg, it.ID, attempt(it)); !errors.Is(err, queue.ErrGone) {
		t.Fatalf("Reschedule of a completed item = %v; want queue.ErrGone", err)
	}
	if got := allDue(t, s); len(got) != 0 {
		t.Fatalf("Reschedule of a gone item queued it again: %v", got)
	}
	wantCounts(t, s, c.ID, 0, 0)
	it.Failed = true
	if err := s.Reschedule(bg, it.ID, attempt(it)); !errors.Is(err, queue.ErrGone) {
		t.Fatalf("Reschedule (failed) of a completed item = %v; want queue.ErrGone", err)
	}
	wantCounts(t, s, c.ID, 0, 0)
	// its q belongs to the data it trained into
	wantRepeat(t, s, c, "i2", "q1", true)
}

func testTrainingCountsAndFailures(t *testing.T, s dataset.Store) {
	putDataset(t, s, "ds", t0)
	a := putCollection(t, s, "a", "ds", t0)
	b := putCollection(t, s, "b", "ds", t0)
	wantCounts(t, s, a.ID, 0, 0)
	wantCounts(t, s, "missing", 0, 0)
	var items []*dataset.TrainingItem
	for i := range 5 {
		items = append(items, newItem(a, fmt.Sprintf("a%d", i), fmt.Sprintf("a question %d", i), t0.Add(time.Duration(i)*time.Second)))
	}
	items = append(items, newItem(b, "b0", "b question", t0))
	enqueue(t, s, items...)
	wantCounts(t, s, a.ID, 5, 0)
	wantCounts(t, s, b.ID, 1, 0)
	for _, it := range []*dataset.TrainingItem{items[0], items[2], items[4], items[5]} {
		it.Failed, it.Attempts, it.LastError = true, 3, "error of "+it.ID
		reschedule(t, s, it)
	}
	wantCounts(t, s, a.ID, 2, 3)
	wantCounts(t, s, b.ID, 0, 1)
	fs, err := s.TrainingFailures(bg, a.ID, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sorted(itemIDs(fs)), []string{"a0", "a2", "a4"}; !equalStrings(got, want) {
		t.Fatalf("TrainingFailures(a) = %v; want %v", got, want)
	}
	for _, f := range fs {
		if !f.Failed || f.LastError != "error of "+f.ID || f.Attempts != 3 || f.CollectionID != a.ID {
			t.Fatalf("failure %+v", f)
		}
	}
	if fs, _ := s.TrainingFailures(bg, a.ID, 2); len(fs) != 2 {
		t.Fatalf("TrainingFailures(limit 2) returned %d", len(fs))
	}
	if fs, _ := s.TrainingFailures(bg, b.ID, 10); len(fs) != 1 || fs[0].ID != "b0" {
		t.Fatalf("TrainingFailures(b) = %v", itemIDs(fs))
	}
	if fs, _ := s.TrainingFailures(bg, "missing", 10); len(fs) != 0 {
		t.Fatalf("TrainingFailures(missing) = %v", itemIDs(fs))
	}
	// completing a queued one leaves the failures alone
	if gone := commit(t, s, trained(items[1], t0)); len(gone) != 0 {
		t.Fatal(gone)
	}
	wantCounts(t, s, a.ID, 1, 3)
}

func testDataList(t *testing.T, s dataset.Store) {
	putDataset(t, s, "ds", t0)
	c := putCollection(t, s, "c", "ds", t0)
	other := putCollection(t, s, "other", "ds", t0)
	// trained out of order, listed oldest first
	var want []string
	for _, n := range []int{3, 0, 4, 1, 2} {
		addData(t, s, c, fmt.Sprintf("d%d", n), fmt.Sprintf("question %d", n), t0.Add(time.Duration(n)*time.Minute))
	}
	for n := range 5 {
		want = append(want, fmt.Sprintf("d%d", n))
	}
	addData(t, s, other, "o1", "question 1", t0)
	for _, tc := range []struct {
		offset, limit int
		want          []string
	}{
		{0, 10, want},
		{0, 2, want[:2]},
		{2, 2, want[2:4]},
		{4, 2, want[4:]},
		{5, 2, nil},
		{50, 2, nil},
		{0, 0, nil},
		{1, 3, want[1:4]},
	} {
		list, total := dataList(t, s, c.ID, tc.offset, tc.limit)
		if total != 5 || !equalStrings(dataIDs(list), tc.want) {
			t.Fatalf("DataList(offset %d, limit %d) = %v, total %d; want %v, 5", tc.offset, tc.limit, dataIDs(list), total, tc.want)
		}
	}
	list, _ := dataList(t, s, c.ID, 0, 1)
	if d := list[0]; d.Q != "question 0" || d.A != "answer to question 0" || d.CollectionID != c.ID || !d.CreateTime.Equal(t0) {
		t.Fatalf("DataList item = %+v", d)
	}
	if list, total := dataList(t, s, other.ID, 0, 10); total != 1 || len(list) != 1 || list[0].ID != "o1" {
		t.Fatalf("DataList(other) = %v, %d", dataIDs(list), total)
	}
	if list, total := dataList(t, s, "missing", 0, 10); total != 0 || len(list) != 0 {
		t.Fatalf("DataList(missing) = %v, %d", dataIDs(list), total)
	}
	// a zero time is the oldest
	z := putCollection(t, s, "zero", "ds", t0)
	addData(t, s, z, "z1", "question 1", t0)
	addData(t, s, z, "z0", "question 0", time.Time{})
	if list, total := dataList(t, s, z.ID, 0, 10); total != 2 || !equalStrings(dataIDs(list), []string{"z0", "z1"}) {
		t.Fatalf("DataList = %v; want [z0 z1] (zero time first)", dataIDs(list))
	}
	// data with equal times keep a stable order
	addData(t, s, other, "o0", "question 0", t0)
	a, _ := dataList(t, s, other.ID, 0, 10)
	b, _ := dataList(t, s, other.ID, 0, 10)
	if !equalStrings(dataIDs(a), dataIDs(b)) || len(a) != 2 {
		t.Fatalf("DataList order is unstable: %v vs %v", dataIDs(a), dataIDs(b))
	}
	if p1, _ := dataList(t, s, other.ID, 1, 1); len(p1) != 1 || p1[0].ID != a[1].ID {
		t.Fatalf("second page %v does not follow the first %v", dataIDs(p1), dataIDs(a))
	}
}

func testUpdateData(t *testing.T, s dataset.Store) {
	putDataset(t, s, "ds", t0)
	c := putCollection(t, s, "c", "ds", t0)
	d1 := addData(t, s, c, "d1", "one", t0, "uno", "eins")
	addData(t, s, c, "d2", "two", t0.Add(time.Second))
	clearPending(t, s)

	u := *d1
	u.Q, u.A, u.Indexes, u.UpdateTime = "one, edited", "new answer", []string{"un"}, t0.Add(time.Hour)
	if err := s.UpdateData(bg, &u, []dataset.Vector{vec("d1", 7), vec("d1/1", 7)}); err != nil {
		t.Fatal(err)
	}
	checkData(t, mustData(t, s, "d1"), &u)
	vs := vectors(t, s)["ds"]
	if got, want := sorted(slices.Collect(maps.Keys(vs))), []string{"d1", "d1/1", "d2"}; !equalStrings(got, want) {
		t.Fatalf("vectors after UpdateData = %v; want %v (old ones replaced)", got, want)
	}
	if !slices.Equal(vs["d1"], vec("d1", 7).Values) || !slices.Equal(vs["d1/1"], vec("d1/1", 7).Values) {
		t.Fatalf("vectors not replaced: %v", vs)
	}
	if _, ok := pending(t, s)["d1"]; !ok {
		t.Fatal("updated data is not pending for the full-text index")
	}
	if list, total := dataList(t, s, c.ID, 0, 10); total != 2 || !equalStrings(dataIDs(list), []string{"d1", "d2"}) {
		t.Fatalf("DataList after update = %v, %d", dataIDs(list), total)
	}
	// the old q is free, the new one taken
	wantRepeat(t, s, c, "i-old", "one", false)
	wantRepeat(t, s, c, "i-new", "one, edited", true)

	// unchanged q is no repeat of itself
	u.A = "again"
	if err := s.UpdateData(bg, &u, []dataset.Vector{vec("d1", 8)}); err != nil {
		t.Fatalf("UpdateData keeping its own q: %v", err)
	}
	if got := sorted(slices.Collect(maps.Keys(vectors(t, s)["ds"]))); !equalStrings(got, []string{"d1", "d2"}) {
		t.Fatalf("vectors = %v; want d1's index vector gone", got)
	}

	// another item's q: ErrRepeat, nothing changes
	clash := u
	clash.Q, clash.A = "two", "clash"
	if err := s.UpdateData(bg, &clash, []dataset.Vector{vec("d1", 9)}); !errors.Is(err, dataset.ErrRepeat) {
		t.Fatalf("UpdateData to another item's q = %v; want ErrRepeat", err)
	}
	// a queued item's q too
	clash.Q = "  one  "
	if err := s.UpdateData(bg, &clash, []dataset.Vector{vec("d1", 9)}); !errors.Is(err, dataset.ErrRepeat) {
		t.Fatalf("UpdateData to a queued item's q = %v; want ErrRepeat", err)
	}
	if d := mustData(t, s, "d1"); d.Q != "one, edited" || d.A != "again" {
		t.Fatalf("a refused update changed the data: %+v", d)
	}
	if v := vectors(t, s)["ds"]["d1"]; !slices.Equal(v, vec("d1", 8).Values) {
		t.Fatalf("a refused update changed the vectors: %v", v)
	}
	missing := u
	missing.ID = "missing"
	if err := s.UpdateData(bg, &missing, nil); !errors.Is(err, dataset.ErrDataNotFound) {
		t.Fatalf("UpdateData(missing) = %v; want ErrDataNotFound", err)
	}
	wantNoData(t, s, "missing")
}

func testDeleteData(t *testing.T, s dataset.Store) {
	putDataset(t, s, "ds", t0)
	c := putCollection(t, s, "c", "ds", t0)
	addData(t, s, c, "d1", "one", t0, "uno", "eins")
	addData(t, s, c, "d2", "two", t0.Add(time.Second))
	clearPending(t, s)
	removed, err := s.DeleteData(bg, "d1")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sorted(removed), []string{"d1", "d1/1", "d1/2"}; !equalStrings(got, want) {
		t.Fatalf("DeleteData removed %v; want %v", got, want)
	}
	wantNoData(t, s, "d1")
	if got, want := vectorIDs(t, s), []string{"ds:d2"}; !equalStrings(got, want) {
		t.Fatalf("vectors = %v; want %v", got, want)
	}
	if list, total := dataList(t, s, c.ID, 0, 10); total != 1 || len(list) != 1 || list[0].ID != "d2" {
		t.Fatalf("DataList = %v, %d", dataIDs(list), total)
	}
	if p := pending(t, s); len(p) != 1 || p["d1"] == 0 {
		t.Fatalf("pending = %v; want d1", p)
	}
	if _, err := s.DeleteData(bg, "d1"); !errors.Is(err, dataset.ErrDataNotFound) {
		t.Fatalf("second DeleteData = %v; want ErrDataNotFound", err)
	}
	wantRepeat(t, s, c, "i1", "one", false)
	wantRepeat(t, s, c, "i2", "two", true)
}

func testEachVector(t *testing.T, s dataset.Store) {
	putDataset(t, s, "ds1", t0)
	putDataset(t, s, "ds2", t0)
	c1 := putCollection(t, s, "c1", "ds1", t0)
	c2 := putCollection(t, s, "c2", "ds2", t0)
	addData(t, s, c1, "a", "a", t0, "a-index")
	addData(t, s, c2, "b", "b", t0)
	vs := vectors(t, s)
	if len(vs) != 2 || len(vs["ds1"]) != 2 || len(vs["ds2"]) != 1 {
		t.Fatalf("EachVector saw %v", vs)
	}
	if !slices.Equal(vs["ds1"]["a/1"], vec("a/1", 1).Values) || !slices.Equal(vs["ds2"]["b"], vec("b", 1).Values) {
		t.Fatalf("EachVector values: %v", vs)
	}
	stop := errors.New("stop")
	n := 0
	err := s.EachVector(bg, func(string, dataset.Vector) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Fatalf("EachVector with a failing fn = %v after %d calls; want stop after 1", err, n)
	}
}

func testTextPending(t *testing.T, s dataset.Store) {
	if p := pending(t, s); len(p) != 0 {
		t.Fatalf("an empty store has pending text: %v", p)
	}
	putDataset(t, s, "ds", t0)
	c := putCollection(t, s, "c", "ds", t0)
	for i := range 5 {
		addData(t, s, c, fmt.Sprintf("d%d", i), fmt.Sprintf("q%d", i), t0)
	}
	p := pending(t, s)
	if len(p) != 5 {
		t.Fatalf("pending = %v; want d0-d4", p)
	}
	if got, err := s.TextPending(bg, 2); err != nil || len(got) != 2 {
		t.Fatalf("TextPending(2) = %v, %v", got, err)
	}
	first, _ := s.TextPending(bg, 100)
	// d0 changes again after it was read: clearing the old version keeps it
	var d0 dataset.Pending
	for _, x := range first {
		if x.DataID == "d0" {
			d0 = x
		}
	}
	if d0.DataID == "" {
		t.Fatalf("d0 not pending: %v", first)
	}
	if _, err := s.DeleteData(bg, "d0"); err != nil {
		t.Fatal(err)
	}
	if err := s.ClearTextPending(bg, first); err != nil {
		t.Fatal(err)
	}
	p = pending(t, s)
	if len(p) != 1 || p["d0"] == 0 || p["d0"] == d0.Version {
		t.Fatalf("pending after clearing = %v; want only d0, at a new version (was %d)", p, d0.Version)
	}
	// clearing with a stale version again changes nothing
	if err := s.ClearTextPending(bg, []dataset.Pending{d0, {DataID: "unknown", Version: 1}}); err != nil {
		t.Fatal(err)
	}
	if p2 := pending(t, s); len(p2) != 1 || p2["d0"] != p["d0"] {
		t.Fatalf("a stale clear changed pending: %v", p2)
	}
	if err := s.ClearTextPending(bg, []dataset.Pending{{DataID: "d0", Version: p["d0"]}}); err != nil {
		t.Fatal(err)
	}
	if p := pending(t, s); len(p) != 0 {
		t.Fatalf("pending = %v; want none", p)
	}
	// versions grow: each change gets a new one
	if _, err := s.DeleteData(bg, "d1"); err != nil {
		t.Fatal(err)
	}
	a := pending(t, s)["d1"]
	u := mustData(t, s, "d2")
	u.A = "changed"
	if err := s.UpdateData(bg, u, []dataset.Vector{vec("d2", 3)}); err != nil {
		t.Fatal(err)
	}
	b := pending(t, s)["d2"]
	if a == 0 || b == 0 || a == b {
		t.Fatalf("versions d1=%d d2=%d; want distinct non-zero", a, b)
	}
	if _, err := s.DeleteData(bg, "d2"); err != nil {
		t.Fatal(err)
	}
	if c := pending(t, s)["d2"]; c == b {
		t.Fatalf("re-marked d2 kept version %d", c)
	}
}

func testCopies(t *testing.T, s dataset.Store) {
	d := putDataset(t, s, "ds", t0)
	d.Name = "changed after put"
	if got, _ := s.Dataset(bg, "ds"); got.Name != "dataset ds" {
		t.Fatalf("PutDataset kept the caller's pointer: %q", got.Name)
	}
	got, _ := s.Dataset(bg, "ds")
	got.Name = "changed after get"
	if again, _ := s.Dataset(bg, "ds"); again.Name != "dataset ds" {
		t.Fatal("Dataset returned the stored record")
	}
	list, _ := s.Datasets(bg, team)
	list[0].Name = "changed in list"
	if again, _ := s.Dataset(bg, "ds"); again.Name != "dataset ds" {
		t.Fatal("Datasets returned the stored record")
	}

	c := putCollection(t, s, "c", "ds", t0)
	c.Name = "changed after put"
	gc, _ := s.Collection(bg, "c")
	if gc.Name != "collection c" {
		t.Fatal("PutCollection kept the caller's pointer")
	}
	gc.Name = "x"
	cs, _ := s.Collections(bg, "ds")
	if cs[0].Name != "collection c" {
		t.Fatal("Collection returned the stored record")
	}
	cs[0].Name = "y"
	if gc, _ := s.Collection(bg, "c"); gc.Name != "collection c" {
		t.Fatal("Collections returned the stored record")
	}

	it := newItem(c, "i1", "q1", t0)
	it.Indexes = []string{"idx"}
	enqueue(t, s, it)
	it.Q, it.Indexes[0] = "mutated", "mutated"
	items := due(t, s, t0, 10, nil)
	if items[0].Q != "q1" || items[0].Indexes[0] != "idx" {
		t.Fatalf("Enqueue kept the caller's item: %+v", items[0])
	}
	items[0].Q, items[0].Indexes[0] = "mutated", "mutated"
	items = due(t, s, t0, 10, nil)
	if items[0].Q != "q1" || items[0].Indexes[0] != "idx" {
		t.Fatalf("Claim returned the stored item: %+v", items[0])
	}

	tr := trained(items[0], t0)
	commit(t, s, tr)
	tr.Data[0].Q, tr.Data[0].Indexes[0] = "mutated", "mutated"
	tr.Vectors[0].Values[0] = 99
	dd := mustData(t, s, "i1")
	if dd.Q != "q1" || dd.Indexes[0] != "idx" {
		t.Fatalf("Commit kept the caller's data: %+v", dd)
	}
	if v := vectors(t, s)["ds"]["i1"]; v[0] == 99 {
		t.Fatal("Commit kept the caller's vector values")
	}
	dd.Q, dd.Indexes[0] = "mutated", "mutated"
	if dd := mustData(t, s, "i1"); dd.Q != "q1" || dd.Indexes[0] != "idx" {
		t.Fatal("Data returned the stored record")
	}
	l, _ := dataList(t, s, "c", 0, 10)
	l[0].Q, l[0].Indexes[0] = "mutated", "mutated"
	if dd := mustData(t, s, "i1"); dd.Q != "q1" || dd.Indexes[0] != "idx" {
		t.Fatal("DataList returned the stored record")
	}
	_ = s.EachVector(bg, func(_ string, v dataset.Vector) error { v.Values[0] = 77; return nil })
	if v := vectors(t, s)["ds"]["i1"]; v[0] == 77 {
		t.Fatal("EachVector handed out the stored values")
	}

	u := mustData(t, s, "i1")
	u.A = "updated"
	nv := []dataset.Vector{vec("i1", 5)}
	if err := s.UpdateData(bg, u, nv); err != nil {
		t.Fatal(err)
	}
	u.A, u.Indexes[0] = "mutated", "mutated"
	nv[0].Values[0] = 55
	if dd := mustData(t, s, "i1"); dd.A != "updated" || dd.Indexes[0] != "idx" {
		t.Fatalf("UpdateData kept the caller's data: %+v", dd)
	}
	if v := vectors(t, s)["ds"]["i1"]; v[0] == 55 {
		t.Fatal("UpdateData kept the caller's vector values")
	}

	f := newItem(c, "i2", "q2", t0)
	enqueue(t, s, f)
	f.Failed, f.LastError = true, "boom"
	reschedule(t, s, f)
	f.LastError = "mutated"
	fs, _ := s.TrainingFailures(bg, "c", 10)
	if fs[0].LastError != "boom" {
		t.Fatal("Reschedule kept the caller's item")
	}
	fs[0].LastError = "mutated"
	if fs, _ := s.TrainingFailures(bg, "c", 10); fs[0].LastError != "boom" {
		t.Fatal("TrainingFailures returned the stored item")
	}
}

// testConcurrent runs writers and readers at once; run it with -race.
func testConcurrent(t *testing.T, s dataset.Store) {
	putDataset(t, s, "ds", t0)
	c := putCollection(t, s, "c", "ds", t0)
	const workers, per = 4, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*per*4)
	for w := range workers {
		wg.Go(func() {
			for i := range per {
				it := newItem(c, fmt.Sprintf("w%d-%d", w, i), fmt.Sprintf("q %d %d", w, i), t0)
				if _, err := s.Enqueue(bg, []*dataset.TrainingItem{it}); err != nil {
					errs <- err
					return
				}
				if _, err := s.Commit(bg, []dataset.Trained{trained(it, t0.Add(time.Duration(i)))}); err != nil {
					errs <- err
				}
				if _, _, err := s.DataList(bg, c.ID, 0, 5); err != nil {
					errs <- err
				}
				if _, err := claim(s, t0, 5, nil); err != nil {
					errs <- err
				}
				if _, _, err := s.TrainingCounts(bg, c.ID); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if _, total := dataList(t, s, c.ID, 0, 1); total != workers*per {
		t.Fatalf("total = %d; want %d", total, workers*per)
	}
	if n := len(vectorIDs(t, s)); n != workers*per {
		t.Fatalf("%d vectors; want %d", n, workers*per)
	}
	wantCounts(t, s, c.ID, 0, 0)
}

// testUsageOutbox: the usage a Trained carries is kept with its data, even
// for an item no longer queued, until cleared by id.
func testUsageOutbox(t *testing.T, s dataset.Store) {
	if got, err := s.PendingUsage(bg, 10); err != nil || len(got) != 0 {
		t.Fatalf("PendingUsage of a new store = %v, %v", got, err)
	}
	putDataset(t, s, "ds", t0)
	c := putCollection(t, s, "c", "ds", t0)
	it1, it2 := newItem(c, "i1", "q1", t0), newItem(c, "i2", "q2", t0)
	enqueue(t, s, it1, it2)
	use := func(id string, at time.Time, tokens int) dataset.UsageRecord {
		return dataset.UsageRecord{ID: id, TeamID: team, KeyID: "key-1", DatasetID: "ds", CollectionID: "c", BillID: "bill-1",
			Module: dataset.ModuleEmbedding, Model: "local", InputTokens: tokens, Items: 1, Time: at}
	}
	tr1 := trained(it1, t0)
	tr1.Usage = []dataset.UsageRecord{use("u-late", t0.Add(2*time.Second), 7), use("u-early", t0.Add(time.Second), 5)}
	ghost := dataset.Trained{ItemID: "ghost", Usage: []dataset.UsageRecord{use("u-ghost", t0.Add(3*time.Second), 3)}}
	if gone := commit(t, s, tr1, ghost); !equalStrings(gone, []string{"ghost"}) {
		t.Fatalf("gone = %v; want [ghost]", gone)
	}
	got, err := s.PendingUsage(bg, 10)
	if err != nil {
		t.Fatal(err)
	}
	if ids := ids(got, func(u dataset.UsageRecord) string { return u.ID }); !slices.Equal(ids, []string{"u-early", "u-late", "u-ghost"}) {
		t.Fatalf("PendingUsage = %v; want oldest first, the gone item's too", ids)
	}
	if want := use("u-early", t0.Add(time.Second), 5); got[0] != want {
		t.Fatalf("PendingUsage[0] = %+v; want %+v", got[0], want)
	}
	if got, _ := s.PendingUsage(bg, 2); len(got) != 2 || got[1].ID != "u-late" {
		t.Fatalf("PendingUsage(2) = %+v", got)
	}
	if err := s.ClearUsage(bg, []string{"u-late", "no-such-record"}); err != nil {
		t.Fatal(err)
	}
	got, _ = s.PendingUsage(bg, 10)
	if ids := ids(got, func(u dataset.UsageRecord) string { return u.ID }); !slices.Equal(ids, []string{"u-early", "u-ghost"}) {
		t.Fatalf("after ClearUsage PendingUsage = %v", ids)
	}
	if err := s.ClearUsage(bg, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.ClearUsage(bg, []string{"u-early", "u-ghost"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.PendingUsage(bg, 10); len(got) != 0 {
		t.Fatalf("after clearing all PendingUsage = %+v", got)
	}
}

// testImport checks DatasetLister, TrainingLister and DataImporter, what
// a copy of a whole store reads and writes through, on a store that has
// them: every team's datasets in order, a collection's queued items with
// their state, failed ones included, and data stored as given with its
// vectors, its q then taken and its full-text entry pending.
func testImport(t *testing.T, s dataset.Store) {
	dl, okD := s.(dataset.DatasetLister)
	tl, okT := s.(dataset.TrainingLister)
	im, okI := s.(dataset.DataImporter)
	if !okD || !okT || !okI {
		t.Skip("the store is no DatasetLister, TrainingLister and DataImporter")
	}
	b := putDataset(t, s, "ds-b", t0.Add(time.Second))
	a := putDataset(t, s, "ds-a", t0.Add(time.Second)) // ties b: by id
	other := &dataset.Dataset{ID: "ds-0", TeamID: "team-other", Name: "other", VectorModel: "local", CreateTime: t0}
	if err := s.PutDataset(bg, other); err != nil {
		t.Fatal(err)
	}
	all, err := dl.AllDatasets(bg)
	if err != nil || !equalStrings(ids(all, func(d *dataset.Dataset) string { return d.ID }), []string{"ds-0", "ds-a", "ds-b"}) {
		t.Fatalf("AllDatasets = %v, %v; want ds-0 ds-a ds-b", all, err)
	}
	if o := all[0]; o.TeamID != other.TeamID || o.Name != other.Name || o.VectorModel != other.VectorModel ||
		!o.CreateTime.Equal(other.CreateTime) || !all[1].CreateTime.Equal(a.CreateTime) || all[2].Name != b.Name {
		t.Fatalf("AllDatasets returns them whole: %+v", all)
	}

	c := putCollection(t, s, "c1", "ds-a", t0)
	d := &dataset.Data{ID: "d1", TeamID: team, DatasetID: "ds-a", CollectionID: "c1", Q: "imported question",
		A: "imported answer", Source: "src", FileID: "f", Indexes: []string{"one", "two"},
		CreateTime: t0.Add(3 * time.Second), UpdateTime: t0.Add(4 * time.Second)}
	vs := []dataset.Vector{vec("d1", 2), vec("d1/1", 2), vec("d1/2", 2)}
	if err := im.ImportData(bg, d, slices.Clone(vs)); err != nil {
		t.Fatalf("ImportData: %v", err)
	}
	checkData(t, mustData(t, s, "d1"), d)
	if got, total := dataList(t, s, "c1", 0, 10); total != 1 || len(got) != 1 || got[0].ID != "d1" {
		t.Fatalf("DataList after ImportData: %v of %d", dataIDs(got), total)
	}
	stored := vectors(t, s)["ds-a"]
	for _, v := range vs {
		if !slices.Equal(stored[v.ID], v.Values) {
			t.Fatalf("vector %s after ImportData = %v, want %v", v.ID, stored[v.ID], v.Values)
		}
	}
	if _, ok := pending(t, s)["d1"]; !ok {
		t.Fatal("ImportData left the item's full-text entry as it was")
	}
	wantRepeat(t, s, c, "i-repeat", "imported question", true)
	again := *d
	again.ID = "d2"
	if err := im.ImportData(bg, &again, nil); !errors.Is(err, dataset.ErrRepeat) {
		t.Fatalf("ImportData of a q the collection has: %v, want ErrRepeat", err)
	}
	again.ID, again.Q, again.CollectionID = "d3", "elsewhere", "no-such-collection"
	if err := im.ImportData(bg, &again, nil); !errors.Is(err, dataset.ErrCollectionNotFound) {
		t.Fatalf("ImportData into a missing collection: %v, want ErrCollectionNotFound", err)
	}
	wantNoData(t, s, "d2")
	wantNoData(t, s, "d3")

	i2, i1, i3 := newItem(c, "i2", "second", t0.Add(time.Minute)), newItem(c, "i1", "first", t0), newItem(c, "i3", "third", t0)
	enqueue(t, s, i2, i1, i3)
	i3.Attempts, i3.LastError, i3.Failed = 3, "embedder down", true
	reschedule(t, s, i3)
	i1.Attempts, i1.LastError, i1.NextAttempt = 1, "slow", t0.Add(time.Hour)
	reschedule(t, s, i1)
	items, err := tl.TrainingItems(bg, "c1")
	if err != nil || !equalStrings(itemIDs(items), []string{"i1", "i2", "i3"}) {
		t.Fatalf("TrainingItems = %v, %v; want i1 i2 i3", itemIDs(items), err)
	}
	for i, want := range []*dataset.TrainingItem{i1, i2, i3} {
		got := items[i]
		if got.Q != want.Q || got.Attempts != want.Attempts || got.LastError != want.LastError || got.Failed != want.Failed ||
			got.BillID != want.BillID || got.KeyID != want.KeyID || (!want.Failed && !got.NextAttempt.Equal(want.NextAttempt)) {
			t.Fatalf("TrainingItems[%d] = %+v\nwant %+v", i, got, want)
		}
	}
	if items, err := tl.TrainingItems(bg, "no-such-collection"); err != nil || len(items) != 0 {
		t.Fatalf("TrainingItems of a missing collection: %v, %v", items, err)
	}
}
