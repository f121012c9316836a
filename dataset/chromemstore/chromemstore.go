// Package chromemstore is a dataset.VectorStore on chromem-go, the
// alternative to dataset's default FlatStore: in memory, one chromem
// collection per dataset. FlatStore answers a query in a fraction of its
// time at 100,000 vectors (see BENCHMARKS.md) but takes longer to load;
// a program that does not import this package links no chromem-go.
package chromemstore

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/philippgille/chromem-go"

	"github.com/chatgate/chatgate/dataset"
)

// Store is a dataset.VectorStore on chromem-go. Its zero value is ready to
// use.
type Store struct {
	once sync.Once
	db   *chromem.DB
	// del keeps Delete apart from Upsert: chromem-go v0.7.0's
	// Collection.Delete reads its document map before taking the
	// collection's lock, a data race with a concurrent AddDocument.
	del sync.RWMutex
}

// New returns an empty Store.
func New() *Store { return &Store{} }

// errNoEmbedding guards chromem's embedding function: vectors are always
// given, so chromem must never embed (its default would call OpenAI).
var errNoEmbedding = errors.New("dataset: chromem asked to embed; vectors must be given")

func refuseEmbedding(context.Context, string) ([]float32, error) { return nil, errNoEmbedding }

func (s *Store) collection(datasetID string, create bool) (*chromem.Collection, error) {
	s.once.Do(func() { s.db = chromem.NewDB() })
	if !create {
		return s.db.GetCollection(datasetID, refuseEmbedding), nil
	}
	return s.db.GetOrCreateCollection(datasetID, nil, refuseEmbedding)
}

// Upsert implements dataset.VectorStore.
func (s *Store) Upsert(ctx context.Context, datasetID string, vs []dataset.Vector) error {
	if len(vs) == 0 {
		return nil
	}
	c, err := s.collection(datasetID, true)
	if err != nil {
		return fmt.Errorf("dataset: vector collection: %w", err)
	}
	s.del.RLock()
	defer s.del.RUnlock()
	for _, v := range vs {
		// AddDocument replaces a document with the same id. Adding one at a
		// time avoids AddDocuments' goroutine per document.
		if err := c.AddDocument(ctx, chromem.Document{ID: v.ID, Embedding: v.Values}); err != nil {
			return fmt.Errorf("dataset: add vector %s: %w", v.ID, err)
		}
	}
	return nil
}

// Delete implements dataset.VectorStore.
func (s *Store) Delete(ctx context.Context, datasetID string, ids []string) error {
	c, _ := s.collection(datasetID, false)
	if c == nil || len(ids) == 0 {
		return nil
	}
	s.del.Lock()
	defer s.del.Unlock()
	return c.Delete(ctx, nil, nil, ids...)
}

// DeleteDataset implements dataset.VectorStore.
func (s *Store) DeleteDataset(ctx context.Context, datasetID string) error {
	s.once.Do(func() { s.db = chromem.NewDB() })
	return s.db.DeleteCollection(datasetID)
}

// Query implements dataset.VectorStore.
func (s *Store) Query(ctx context.Context, datasetID string, q []float32, n int) ([]dataset.Hit, error) {
	c, _ := s.collection(datasetID, false)
	if c == nil || n <= 0 {
		return nil, nil
	}
	n = min(n, c.Count())
	if n == 0 {
		return nil, nil
	}
	res, err := c.QueryEmbedding(ctx, q, n, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("dataset: vector query: %w", err)
	}
	hits := make([]dataset.Hit, len(res))
	for i, r := range res {
		hits[i] = dataset.Hit{ID: r.ID, Score: float64(r.Similarity)}
	}
	return hits, nil
}
