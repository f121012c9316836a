package dataset_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/chatgate/chatgate/dataset"
	"github.com/chatgate/chatgate/dataset/pgstore"
	"github.com/chatgate/chatgate/internal/postgres/pgtest"
)

// The retrieval tests on a replica: the data trained into Postgres, each
// full-text index fed from the change feed instead of the outbox. Recall
// is what the embedded store's is, as the index, its analyzer and the
// data it is fed are the same.
func TestRetrievalQualityOnReplica(t *testing.T) {
	forEachTextIndex(t, replicaQuality, testRetrievalQuality)
}

func TestRetrievalQualityParaphrasesOnReplica(t *testing.T) {
	forEachTextIndex(t, replicaQuality, testRetrievalQualityParaphrases)
}

// replicaQuality is a pgstore on a fresh schema (the test skips without
// CHATGATE_TEST_POSTGRES). Its Service's full-text index has taken it all
// once a full-text search of each q finds its item: the feed brings the
// items of a commit together.
func replicaQuality(t *testing.T) qualityStore {
	st, err := pgstore.New(context.Background(), pgtest.Pool(t))
	if err != nil {
		t.Fatal(err)
	}
	return qualityStore{st, func(t *testing.T, s *dataset.Service, datasetID string, qs []string) {
		for _, q := range qs {
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
				r, err := s.Search(context.Background(), dataset.SearchRequest{TeamID: "team", DatasetIDs: []string{datasetID},
					Text: q, Mode: dataset.SearchFullText, MaxResults: dataset.MaxSearchResults})
				if err != nil {
					t.Fatal(err)
				}
				if slices.ContainsFunc(r.Hits, func(h dataset.SearchHit) bool { return h.Q == q }) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the replica's full-text index never took %q", q)
				}
			}
		}
	}}
}
