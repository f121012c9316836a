package dataset_test

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chatgate/chatgate/dataset"
)

// feedStore is a MemoryStore with a change feed the test writes, standing
// for a store other processes change too. Its Changes answers Held or
// Reset once when told to (Held with nothing, as a real one may).
type feedStore struct {
	*dataset.MemoryStore
	wake chan struct{}

	mu         sync.Mutex
	snapshot   []dataset.Change
	log        []dataset.Change
	hold, lose bool
}

func (f *feedStore) SnapshotChanges(_ context.Context, fn func(dataset.Change) error) (dataset.ChangeCursor, error) {
	f.mu.Lock()
	snap, at := slices.Clone(f.snapshot), len(f.log)
	f.mu.Unlock()
	for _, c := range snap {
		if err := fn(c); err != nil {
			return "", err
		}
	}
	return dataset.ChangeCursor(string(rune('a' + at))), nil
}

func (f *feedStore) Changes(_ context.Context, after dataset.ChangeCursor, n int) (dataset.ChangePage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lose {
		f.lose = false
		return dataset.ChangePage{Next: after, Reset: true}, nil
	}
	if f.hold {
		f.hold = false
		return dataset.ChangePage{Next: after, Held: true}, nil
	}
	from := int(after[0] - 'a')
	to := min(len(f.log), from+n)
	return dataset.ChangePage{Changes: slices.Clone(f.log[from:to]), Next: dataset.ChangeCursor(string(rune('a' + to)))}, nil
}

func (f *feedStore) ListenChanges(ctx context.Context, wake chan<- struct{}) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-f.wake:
			select {
			case wake <- struct{}{}:
			default:
			}
		}
	}
}

// write stores d with its vector in the memory store, as another process
// would in the shared one, and returns its change.
func (f *feedStore) write(t *testing.T, c *dataset.Collection, id, q string) dataset.Change {
	t.Helper()
	it := &dataset.TrainingItem{ID: id, TeamID: c.TeamID, DatasetID: c.DatasetID, CollectionID: c.ID, Mode: dataset.ModeIndex, Q: q}
	if _, err := f.Enqueue(context.Background(), []*dataset.TrainingItem{it}); err != nil {
		t.Fatal(err)
	}
	v, _ := dataset.LocalEmbedder{}.Embed(context.Background(), []string{q})
	d := &dataset.Data{ID: id, TeamID: c.TeamID, DatasetID: c.DatasetID, CollectionID: c.ID, Q: q}
	vs := []dataset.Vector{{ID: id, Values: v[0]}}
	if _, err := f.Commit(context.Background(), []dataset.Trained{{ItemID: id, Data: []*dataset.Data{d}, Vectors: vs}}); err != nil {
		t.Fatal(err)
	}
	return dataset.Change{DatasetID: c.DatasetID, DataID: id, Data: d, Vectors: vs}
}

func (f *feedStore) publish(cs ...dataset.Change) {
	f.mu.Lock()
	f.log = append(f.log, cs...)
	f.mu.Unlock()
}

// found reports whether a search of q in mode through s finds data id.
func found(t *testing.T, s *dataset.Service, dsID, mode, q, id string) bool {
	t.Helper()
	res, err := s.Search(context.Background(), dataset.SearchRequest{TeamID: "team", DatasetIDs: []string{dsID}, Text: q, Mode: mode})
	if err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(res.Hits, func(h dataset.SearchHit) bool { return h.ID == id })
}

// A Service on a ChangeFeed store loads its indexes from the snapshot,
// then applies the feed's changes when woken, when the feed held some
// back, and after the feed lost some (loading the snapshot again); it
// never polls here (PollEvery is an hour).
func TestServiceFollowsChangeFeed(t *testing.T) {
	ctx := context.Background()
	f := &feedStore{MemoryStore: dataset.NewMemoryStore(), wake: make(chan struct{}, 1)}
	ds := &dataset.Dataset{ID: "ds", TeamID: "team", Name: "kb", VectorModel: dataset.LocalModel}
	c := &dataset.Collection{ID: "c", TeamID: "team", DatasetID: "ds", Name: "docs", Type: dataset.CollectionVirtual}
	if err := f.PutDataset(ctx, ds); err != nil {
		t.Fatal(err)
	}
	if err := f.PutCollection(ctx, c); err != nil {
		t.Fatal(err)
	}
	f.snapshot = []dataset.Change{f.write(t, c, "a", "alpha apples in autumn")}
	s, err := dataset.New(ctx, dataset.Options{Store: f, PollEvery: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	for _, mode := range []string{dataset.SearchEmbedding, dataset.SearchFullText} {
		if !found(t, s, "ds", mode, "alpha apples", "a") {
			t.Fatalf("%s search misses the snapshot's item", mode)
		}
	}

	// another process adds b and notifies
	f.publish(f.write(t, c, "b", "bravo bananas in brine"))
	f.wake <- struct{}{}
	waitFor(t, "b found after a notification", func() bool { return found(t, s, "ds", dataset.SearchFullText, "bananas", "b") })

	// and deletes a: its change comes after a page held back, no wake-up
	if _, err := f.DeleteData(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.hold = true // the first read after the wake-up returns nothing, held
	f.log = append(f.log, dataset.Change{DatasetID: "ds", DataID: "a", Removed: []string{"a"}})
	f.mu.Unlock()
	f.wake <- struct{}{}
	waitFor(t, "a gone once the held change is read", func() bool {
		return !found(t, s, "ds", dataset.SearchFullText, "alpha apples", "a")
	})
	if found(t, s, "ds", dataset.SearchEmbedding, "alpha apples", "a") {
		t.Fatal("a's vector outlived its deletion")
	}

	// the feed loses a change: the Service loads the snapshot again
	d := f.write(t, c, "d", "delta dates in december")
	f.mu.Lock()
	f.snapshot, f.lose = []dataset.Change{f.log[0], d}, true
	f.mu.Unlock()
	f.wake <- struct{}{}
	waitFor(t, "d found after a reload", func() bool { return found(t, s, "ds", dataset.SearchFullText, "dates december", "d") })
	if !found(t, s, "ds", dataset.SearchEmbedding, "bravo bananas", "b") {
		t.Fatal("b was lost in the reload")
	}
}
