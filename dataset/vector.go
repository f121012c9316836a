package dataset

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/philippgille/chromem-go"
)

// VectorStore is the nearest-neighbour index over a Service's vectors. It
// need not be durable: the Service loads it from its Store at start.
type VectorStore interface {
	// Upsert adds vectors to a dataset's index, replacing any with the same id.
	Upsert(ctx context.Context, datasetID string, vs []Vector) error
	// Delete removes vectors by id; missing ids are ignored.
	Delete(ctx context.Context, datasetID string, ids []string) error
	// DeleteDataset removes a dataset's index.
	DeleteDataset(ctx context.Context, datasetID string) error
	// Query returns up to n vectors of the dataset nearest q by cosine
	// similarity, best first.
	Query(ctx context.Context, datasetID string, q []float32, n int) ([]Hit, error)
}

// Hit is a search result: an id and its score, higher is better.
type Hit struct {
	ID    string
	Score float64
}

// ChromemStore is a VectorStore on chromem-go, in memory, one chromem
// collection per dataset. Its zero value is ready to use.
type ChromemStore struct {
	once sync.Once
	db   *chromem.DB
	// del keeps Delete apart from Upsert: chromem-go v0.7.0's
	// Collection.Delete reads its document map before taking the
	// collection's lock, a data race with a concurrent AddDocument.
	del sync.RWMutex
}

// NewChromemStore returns an empty ChromemStore.
func NewChromemStore() *ChromemStore { return &ChromemStore{} }

// errNoEmbedding guards chromem's embedding function: vectors are always
// given, so chromem must never embed (its default would call OpenAI).
var errNoEmbedding = errors.New("dataset: chromem asked to embed; vectors must be given")

func refuseEmbedding(context.Context, string) ([]float32, error) { return nil, errNoEmbedding }

func (s *ChromemStore) collection(datasetID string, create bool) (*chromem.Collection, error) {
	s.once.Do(func() { s.db = chromem.NewDB() })
	if !create {
		return s.db.GetCollection(datasetID, refuseEmbedding), nil
	}
	return s.db.GetOrCreateCollection(datasetID, nil, refuseEmbedding)
}

// Upsert implements VectorStore.
func (s *ChromemStore) Upsert(ctx context.Context, datasetID string, vs []Vector) error {
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

// Delete implements VectorStore.
func (s *ChromemStore) Delete(ctx context.Context, datasetID string, ids []string) error {
	c, _ := s.collection(datasetID, false)
	if c == nil || len(ids) == 0 {
		return nil
	}
	s.del.Lock()
	defer s.del.Unlock()
	return c.Delete(ctx, nil, nil, ids...)
}

// DeleteDataset implements VectorStore.
func (s *ChromemStore) DeleteDataset(ctx context.Context, datasetID string) error {
	s.once.Do(func() { s.db = chromem.NewDB() })
	return s.db.DeleteCollection(datasetID)
}

// Query implements VectorStore.
func (s *ChromemStore) Query(ctx context.Context, datasetID string, q []float32, n int) ([]Hit, error) {
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
	hits := make([]Hit, len(res))
	for i, r := range res {
		hits[i] = Hit{ID: r.ID, Score: float64(r.Similarity)}
	}
	return hits, nil
}
