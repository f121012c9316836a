package server_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chatgate/chatgate/dataset"
	"github.com/chatgate/chatgate/server"
)

// dataset.full_text picks the full-text index. The built-in default
// starts on a data directory an older version left a bleve index in (here
// one it could not even open), removing it, and finds what was trained;
// switching to bleve rebuilds a fresh bleve index from the database; an
// unknown value is refused.
func TestFullTextSetting(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	leftover := filepath.Join(dir, server.TextIndexDir)
	if err := os.MkdirAll(leftover, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(leftover, "index_meta.json"), []byte("not bleve"), 0o600); err != nil {
		t.Fatal(err)
	}
	open := func(fullText string) *server.Server {
		t.Helper()
		cfg := svConfig(dir)
		cfg.Dataset.FullText = fullText
		cfg.Logging.Level = "error"
		s, err := server.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	found := func(s *server.Server, dsID string) bool {
		t.Helper()
		r, err := s.Datasets.Search(ctx, dataset.SearchRequest{TeamID: "team", DatasetIDs: []string{dsID}, Text: "shipping", Mode: dataset.SearchFullText})
		if err != nil {
			t.Fatal(err)
		}
		return len(r.Hits) == 1 && r.Hits[0].A == "the buyer"
	}

	s := open("")
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Fatalf("the leftover bleve index is still there: %v", err)
	}
	ds, err := s.Datasets.CreateDataset(ctx, "team", "kb", "")
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Datasets.CreateCollection(ctx, "team", ds.ID, "faq")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Datasets.Push(ctx, dataset.PushRequest{TeamID: "team", CollectionID: c.ID,
		Data: []dataset.PushItem{{Q: "Who pays for shipping?", A: "the buyer"}}}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !found(s, ds.ID); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the pushed item was never found by full text")
		}
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}

	s = open(server.FullTextBleve)
	for deadline := time.Now().Add(10 * time.Second); !found(s, ds.ID); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the rebuilt bleve index never found the item")
		}
	}
	if _, err := os.Stat(filepath.Join(dir, server.TextIndexDir)); err != nil {
		t.Fatalf("bleve's index directory: %v", err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}

	cfg := svConfig(dir)
	cfg.Dataset.FullText = "lucene"
	if s, err := server.New(cfg); err == nil || !strings.Contains(err.Error(), "dataset.full_text") {
		if s != nil {
			_ = s.Close(ctx)
		}
		t.Fatalf("full_text lucene: %v", err)
	}
}
