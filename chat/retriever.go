package chat

import "context"

// Retriever finds knowledge-base quotes for a question. The dataset package
// provides one; chat only declares what it needs.
type Retriever interface {
	Retrieve(ctx context.Context, req RetrieveRequest) (RetrieveResult, error)
}

// RetrieverFunc adapts a function to Retriever.
type RetrieverFunc func(ctx context.Context, req RetrieveRequest) (RetrieveResult, error)

// Retrieve implements Retriever.
func (f RetrieverFunc) Retrieve(ctx context.Context, req RetrieveRequest) (RetrieveResult, error) {
	return f(ctx, req)
}

// RetrieveRequest asks for quotes from an app's datasets.
type RetrieveRequest struct {
	TeamID     string
	DatasetIDs []string
	Query      string
	Limit      int
	Similarity float64
	Mode       string
	BillKeyID  string // the key whose usage the search is charged to
}

// RetrieveResult holds the quotes, best first, and what the search cost.
type RetrieveResult struct {
	Quotes []Quote
	Model  string // embedding model
	Tokens int
}
