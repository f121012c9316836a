package dataset

import "context"

// VectorStore is the nearest-neighbour index over a Service's vectors. It
// need not be durable: the Service loads it from its Store at start.
// FlatStore is the default; dataset/chromemstore has one on chromem-go.
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
