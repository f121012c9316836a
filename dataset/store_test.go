package dataset_test

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/chatgate/chatgate/dataset"
	"github.com/chatgate/chatgate/dataset/datasettest"
	"github.com/chatgate/chatgate/queue"
)

func TestMemoryStoreConformance(t *testing.T) {
	datasettest.TestStore(t, func(t *testing.T) dataset.Store { return dataset.NewMemoryStore() })
}

// The zero MemoryStore is documented as ready to use.
func TestZeroMemoryStoreConformance(t *testing.T) {
	datasettest.TestStore(t, func(t *testing.T) dataset.Store { return new(dataset.MemoryStore) })
}

func TestBoltStoreConformance(t *testing.T) {
	datasettest.TestStore(t, openTempBolt)
}

func openTempBolt(t *testing.T) dataset.Store {
	s, _ := openBoltStore(t, filepath.Join(t.TempDir(), "chatgate.db"))
	return s
}

func TestMemoryTrainingQueue(t *testing.T) {
	datasettest.TestTrainingQueue(t, func(t *testing.T) dataset.Store { return dataset.NewMemoryStore() }, false)
}

func TestBoltTrainingQueue(t *testing.T) {
	datasettest.TestTrainingQueue(t, openTempBolt, false)
}

// openBoltStore opens (or reopens) the bbolt file at path as a BoltStore,
// closed when the test ends unless the caller closes it first.
func openBoltStore(t *testing.T, path string) (*dataset.BoltStore, *bbolt.DB) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatalf("bbolt.Open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	s, err := dataset.NewBoltStore(db)
	if err != nil {
		t.Fatalf("NewBoltStore: %v", err)
	}
	return s, db
}

func TestBoltStoreSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "chatgate.db")
	s, db := openBoltStore(t, path)
	t0 := time.Date(2025, 6, 7, 8, 9, 10, 111213141, time.UTC)

	ds := &dataset.Dataset{ID: "ds", TeamID: "team", Name: "films", VectorModel: "local", CreateTime: t0}
	c := &dataset.Collection{ID: "c", TeamID: "team", DatasetID: "ds", Name: "manual", Type: dataset.CollectionText,
		TrainingType: dataset.ModeQA, ChunkSize: 300, CreateTime: t0}
	if err := s.PutDataset(ctx, ds); err != nil {
		t.Fatal(err)
	}
	if err := s.PutCollection(ctx, c); err != nil {
		t.Fatal(err)
	}
	item := func(id, q string) *dataset.TrainingItem {
		return &dataset.TrainingItem{ID: id, TeamID: "team", DatasetID: "ds", CollectionID: "c", Mode: dataset.ModeIndex,
			Q: q, A: "a " + q, Indexes: []string{"index of " + q}, BillID: "bill", KeyID: "key", NextAttempt: t0, CreateTime: t0}
	}
	trainedIt, queued, failed := item("i-trained", "trained q"), item("i-queued", "queued q"), item("i-failed", "failed q")
	if rep, err := s.Enqueue(ctx, []*dataset.TrainingItem{trainedIt, queued, failed}); err != nil || len(rep) != 0 {
		t.Fatalf("Enqueue = %v, %v", rep, err)
	}
	data := &dataset.Data{ID: "i-trained", TeamID: "team", DatasetID: "ds", CollectionID: "c", Q: "trained q", A: "a trained q",
		Source: "src", FileID: "mark", Indexes: []string{"index of trained q"}, CreateTime: t0, UpdateTime: t0.Add(time.Second)}
	vecs := []dataset.Vector{{ID: "i-trained", Values: []float32{0.5, -0.25, 1e-7}}, {ID: "i-trained/1", Values: []float32{1, 2, 3}}}
	if gone, err := s.Commit(ctx, []dataset.Trained{{ItemID: "i-trained", Data: []*dataset.Data{data}, Vectors: vecs}}); err != nil || len(gone) != 0 {
		t.Fatalf("Commit = %v, %v", gone, err)
	}
	queued.Attempts, queued.LastError, queued.NextAttempt = 2, "retrying", t0.Add(time.Hour)
	failed.Attempts, failed.LastError, failed.Failed = 5, "gave up", true
	for _, it := range []*dataset.TrainingItem{queued, failed} {
		a := queue.Attempt{Attempts: it.Attempts, Err: it.LastError, Failed: it.Failed}
		if !it.Failed {
			a.Next = it.NextAttempt
		}
		if err := s.Reschedule(ctx, it.ID, a); err != nil {
			t.Fatal(err)
		}
	}
	pendBefore, err := s.TextPending(ctx, 100)
	if err != nil || len(pendBefore) != 1 {
		t.Fatalf("TextPending = %v, %v", pendBefore, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s, _ = openBoltStore(t, path)
	gotDS, err := s.Dataset(ctx, "ds")
	if err != nil || *gotDS != *ds {
		t.Fatalf("Dataset after reopen = %+v, %v; want %+v", gotDS, err, ds)
	}
	gotC, err := s.Collection(ctx, "c")
	if err != nil || !reflect.DeepEqual(gotC, c) {
		t.Fatalf("Collection after reopen = %+v, %v; want %+v", gotC, err, c)
	}
	if cs, _ := s.Collections(ctx, "ds"); len(cs) != 1 {
		t.Fatalf("Collections after reopen = %v", cs)
	}
	gotD, err := s.Data(ctx, "i-trained")
	if err != nil || gotD.Q != data.Q || gotD.A != data.A || gotD.Source != "src" || gotD.FileID != "mark" ||
		!slices.Equal(gotD.Indexes, data.Indexes) || !gotD.CreateTime.Equal(t0) || !gotD.UpdateTime.Equal(data.UpdateTime) {
		t.Fatalf("Data after reopen = %+v, %v", gotD, err)
	}
	if list, total, err := s.DataList(ctx, "c", 0, 10); err != nil || total != 1 || len(list) != 1 {
		t.Fatalf("DataList after reopen = %v, %d, %v", list, total, err)
	}
	got := map[string][]float32{}
	if err := s.EachVector(ctx, func(ds string, v dataset.Vector) error {
		if ds != "ds" {
			t.Errorf("vector %s in dataset %q", v.ID, ds)
		}
		got[v.ID] = v.Values
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !slices.Equal(got["i-trained"], vecs[0].Values) || !slices.Equal(got["i-trained/1"], vecs[1].Values) {
		t.Fatalf("vectors after reopen = %v", got)
	}
	if q, f, err := s.TrainingCounts(ctx, "c"); err != nil || q != 1 || f != 1 {
		t.Fatalf("TrainingCounts after reopen = %d, %d, %v", q, f, err)
	}
	if due, _ := s.Claim(ctx, t0.Add(time.Minute), 10, nil); len(due) != 0 {
		t.Fatalf("due before its next attempt after reopen: %v", due)
	}
	due, err := s.Claim(ctx, t0.Add(time.Hour), 10, nil)
	if err != nil || len(due) != 1 || due[0].ID != "i-queued" || due[0].Attempts != 2 || due[0].LastError != "retrying" ||
		due[0].BillID != "bill" || due[0].KeyID != "key" || !slices.Equal(due[0].Indexes, queued.Indexes) {
		t.Fatalf("Claim after reopen = %+v, %v", due, err)
	}
	fs, err := s.TrainingFailures(ctx, "c", 10)
	if err != nil || len(fs) != 1 || fs[0].ID != "i-failed" || fs[0].LastError != "gave up" || !fs[0].Failed {
		t.Fatalf("TrainingFailures after reopen = %+v, %v", fs, err)
	}
	pend, err := s.TextPending(ctx, 100)
	if err != nil || !slices.Equal(pend, pendBefore) {
		t.Fatalf("TextPending after reopen = %v, %v; want %v", pend, err, pendBefore)
	}
	// q repeats are still known: data and queued item repeat, the failed
	// item's q is free again
	rep, err := s.Enqueue(ctx, []*dataset.TrainingItem{item("n1", "trained q"), item("n2", "queued q"), item("n3", "failed q")})
	if err != nil || !slices.Equal(rep, []int{0, 1}) {
		t.Fatalf("Enqueue after reopen: repeats %v, %v; want [0 1]", rep, err)
	}
	// and deletion still cascades
	ids, err := s.DeleteCollection(ctx, "c")
	if err != nil || len(ids) != 2 {
		t.Fatalf("DeleteCollection after reopen = %v, %v", ids, err)
	}
	if _, err := s.Data(ctx, "i-trained"); !errors.Is(err, dataset.ErrDataNotFound) {
		t.Fatalf("Data after DeleteCollection: %v", err)
	}
}
