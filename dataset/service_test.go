package dataset_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/dataset"
	"github.com/chatgate/chatgate/dataset/fulltext"
)

// waitTrained polls until a collection has no queued items.
func waitTrained(t testing.TB, s *dataset.Service, team, collID string) *dataset.CollectionDetail {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := s.Collection(context.Background(), team, collID)
		if err != nil {
			t.Fatal(err)
		}
		if c.TrainingAmount == 0 {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("still training: %+v", c)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func newBoltService(t *testing.T, dir string, opts dataset.Options) (*dataset.Service, *bbolt.DB) {
	t.Helper()
	db, err := bbolt.Open(filepath.Join(dir, "chatgate.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := dataset.NewBoltStore(db)
	if err != nil {
		t.Fatal(err)
	}
	text, err := fulltext.Open(filepath.Join(dir, "fulltext.bleve"))
	if err != nil {
		t.Fatal(err)
	}
	opts.Store, opts.Text = st, text
	s, err := dataset.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.Close(context.Background())
		_ = text.Close()
		_ = db.Close()
	})
	return s, db
}

func TestPushTrainSearch(t *testing.T) {
	ctx := context.Background()
	for name, open := range map[string]func(t *testing.T) *dataset.Service{
		"memory": func(t *testing.T) *dataset.Service {
			s, err := dataset.New(ctx, dataset.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close(ctx) })
			return s
		},
		"bolt": func(t *testing.T) *dataset.Service {
			s, _ := newBoltService(t, t.TempDir(), dataset.Options{})
			return s
		},
	} {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			ds, err := s.CreateDataset(ctx, "team", "films", "")
			if err != nil {
				t.Fatal(err)
			}
			c, err := s.CreateCollection(ctx, "team", ds.ID, "manual")
			if err != nil {
				t.Fatal(err)
			}
			res, err := s.Push(ctx, dataset.PushRequest{TeamID: "team", CollectionID: c.ID, Data: []dataset.PushItem{
				{Q: "电影《铃芽之旅》的导演是谁?", A: "电影《铃芽之旅》的导演是新海诚。"},
				{Q: "Who wrote the novel Moby-Dick?", A: "Herman Melville wrote Moby-Dick."},
				{Q: "Who wrote the novel Moby-Dick?", A: "a repeat"},
				{Q: "  ", A: "empty"},
				{Q: "x", FileID: "not-a-collection"},
			}})
			if err != nil {
				t.Fatal(err)
			}
			if res.InsertLen != 2 || len(res.Repeat) != 1 || len(res.Error) != 1 || len(res.FileIDInvalid) != 1 {
				t.Fatalf("push result %+v", res)
			}
			detail := waitTrained(t, s, "team", c.ID)
			if detail.DataAmount != 2 || detail.FailedAmount != 0 {
				t.Fatalf("collection %+v", detail)
			}
			for _, mode := range []string{dataset.SearchEmbedding, dataset.SearchFullText, dataset.SearchMixed} {
				var got *dataset.SearchResult
				for range 200 { // the full-text index catches up asynchronously
					got, err = s.Search(ctx, dataset.SearchRequest{TeamID: "team", DatasetIDs: []string{ds.ID},
						Text: "导演是谁", Mode: mode})
					if err != nil {
						t.Fatal(err)
					}
					if len(got.Hits) > 0 {
						break
					}
					time.Sleep(10 * time.Millisecond)
				}
				if len(got.Hits) == 0 || got.Hits[0].A != "电影《铃芽之旅》的导演是新海诚。" {
					t.Fatalf("%s: hits %+v", mode, got.Hits)
				}
			}
			if _, err := s.Search(ctx, dataset.SearchRequest{TeamID: "other", DatasetIDs: []string{ds.ID}, Text: "x"}); !errors.Is(err, dataset.ErrDatasetNotFound) {
				t.Fatalf("other team: %v", err)
			}
			if _, err := s.Search(ctx, dataset.SearchRequest{TeamID: "team", DatasetIDs: []string{ds.ID}, Text: "x", Mode: "bogus"}); !errors.Is(err, apierror.ErrInvalidRequest) {
				t.Fatalf("bad mode: %v", err)
			}
		})
	}
}

// After Close every method answers ErrClosed, the ones that only read
// included: the training and the index catch-up behind them have stopped.
func TestClosedServiceAnswersErrClosed(t *testing.T) {
	ctx := context.Background()
	s, err := dataset.New(ctx, dataset.Options{Tokens: runeCounter{}})
	if err != nil {
		t.Fatal(err)
	}
	ds, c := setup(t, s, "team")
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatalf("a second Close: %v", err)
	}
	q := "q"
	calls := map[string]func() error{
		"CreateDataset":    func() error { _, err := s.CreateDataset(ctx, "team", "kb", ""); return err },
		"Dataset":          func() error { _, err := s.Dataset(ctx, "team", ds.ID); return err },
		"Datasets":         func() error { _, err := s.Datasets(ctx, "team"); return err },
		"DeleteDataset":    func() error { return s.DeleteDataset(ctx, "team", ds.ID) },
		"CreateCollection": func() error { _, err := s.CreateCollection(ctx, "team", ds.ID, "c"); return err },
		"CreateTextCollection": func() error {
			_, _, err := s.CreateTextCollection(ctx, dataset.TextCollection{TeamID: "team", DatasetID: ds.ID, Name: "t", Text: "text"})
			return err
		},
		"Collection":       func() error { _, err := s.Collection(ctx, "team", c.ID); return err },
		"Collections":      func() error { _, err := s.Collections(ctx, "team", ds.ID); return err },
		"TrainingFailures": func() error { _, err := s.TrainingFailures(ctx, "team", c.ID, 10); return err },
		"DeleteCollection": func() error { return s.DeleteCollection(ctx, "team", c.ID) },
		"Data":             func() error { _, err := s.Data(ctx, "team", "x"); return err },
		"DataList":         func() error { _, _, err := s.DataList(ctx, "team", c.ID, 0, 10); return err },
		"UpdateData":       func() error { _, err := s.UpdateData(ctx, "team", dataset.DataUpdate{ID: "x", Q: &q}); return err },
		"DeleteData":       func() error { return s.DeleteData(ctx, "team", "x") },
		"Push": func() error {
			_, err := s.Push(ctx, dataset.PushRequest{TeamID: "team", CollectionID: c.ID, Data: []dataset.PushItem{{Q: q}}})
			return err
		},
		"Search": func() error {
			_, err := s.Search(ctx, dataset.SearchRequest{TeamID: "team", DatasetIDs: []string{ds.ID}, Text: q})
			return err
		},
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, dataset.ErrClosed) {
			t.Errorf("%s after Close = %v; want ErrClosed", name, err)
		}
	}
}
