package dataset

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/chatgate/chatgate/apierror"
)

// Reranker is a rerank model: it scores documents against a query more
// closely than retrieval can, reading each with the query. dataset/rerank
// has a client of Jina/Cohere-compatible /rerank endpoints.
type Reranker interface {
	// Rerank returns the relevance of each of docs to query, in docs'
	// order, higher being more relevant, and the tokens it spent; 0 tokens
	// means the model did not say, and the Service counts them (the query
	// once a document, and the documents).
	Rerank(ctx context.Context, query string, docs []string) (scores []float64, tokens int, err error)
}

// RerankerFunc adapts a function to a Reranker.
type RerankerFunc func(ctx context.Context, query string, docs []string) ([]float64, int, error)

// Rerank calls f.
func (f RerankerFunc) Rerank(ctx context.Context, query string, docs []string) ([]float64, int, error) {
	return f(ctx, query, docs)
}

// DefaultRerankModel names a Reranker's model in usage records when
// Options.RerankModel does not.
const DefaultRerankModel = "rerank"

// rerank takes up to depth of the ranked candidates, has the Reranker
// score them against the query, and fills res with the best by that score
// within req's count and budget. The reranker's usage is in res only when
// it answered: a failed rerank fails the search, and nothing is billed.
func (s *Service) rerank(ctx context.Context, req SearchRequest, res *SearchResult, ranked []Hit, depth int) error {
	var cands []SearchHit
	err := s.walk(ctx, ranked, depth, func(_ context.Context, h SearchHit) (bool, error) {
		cands = append(cands, h)
		return len(cands) < depth, nil
	})
	if err != nil {
		return err
	}
	res.Hits = []SearchHit{}
	if len(cands) == 0 {
		return nil
	}
	docs := make([]string, len(cands))
	for i, h := range cands {
		docs[i] = rerankDoc(h)
	}
	model := cmp.Or(s.opts.RerankModel, DefaultRerankModel)
	scores, tokens, err := s.opts.Reranker.Rerank(ctx, req.Text, docs)
	if err == nil && len(scores) != len(docs) {
		err = fmt.Errorf("%d scores for %d documents", len(scores), len(docs))
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &apierror.Error{Status: http.StatusBadGateway, Code: "upstream_error",
			Message: fmt.Sprintf("reranking with %q failed: %v", model, err)}
	}
	if tokens <= 0 {
		q, err := s.count(ctx, req.Text)
		if err != nil {
			return err
		}
		d, err := s.count(ctx, docs...)
		if err != nil {
			return err
		}
		tokens = q*len(docs) + d
	}
	order := make([]int, len(cands))
	for i := range order {
		order[i] = i
	}
	// stable: candidates the reranker scores alike keep retrieval's order
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(scores[b], scores[a]) })
	b := budget{s: s, n: req.MaxResults, tokens: req.MaxTokens, hits: []SearchHit{}}
	for _, i := range order {
		h := cands[i]
		h.Score = scores[i]
		more, err := b.take(ctx, h)
		if err != nil {
			return err
		}
		if !more {
			break
		}
	}
	res.Hits = b.hits
	res.RerankModel, res.RerankTokens = model, tokens
	return nil
}

// rerankDoc is what the reranker reads of a hit: its question and its
// answer, as a quote shows both.
func rerankDoc(h SearchHit) string {
	if strings.TrimSpace(h.A) == "" {
		return h.Q
	}
	return h.Q + "\n" + h.A
}
