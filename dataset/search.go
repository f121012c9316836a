package dataset

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/chatgate/chatgate/apierror"
)

// Search modes, FastGPT's names.
const (
	SearchEmbedding = "embedding"      // cosine similarity of vectors (default)
	SearchFullText  = "fullTextRecall" // the full-text engine's relevance
	SearchMixed     = "mixedRecall"    // both, fused by reciprocal rank
)

// Search limits. FastGPT's searchTest limit is a token budget for the
// quotes it returns (MaxTokens here); a cap on the number of hits is
// chatgate's own (MaxResults, the route's maxResults).
const (
	DefaultSearchTokens = 5000  // FastGPT's default limit
	MaxSearchTokens     = 20000 // FastGPT's largest limit
	MaxSearchResults    = 100
)

// minRerankCandidates is the fewest candidates a reranked search hands the
// reranker: it can only lift what retrieval found, so it is given more than
// the answer will hold (twice the hits wanted, at least this many, at most
// MaxSearchResults).
const minRerankCandidates = 20

// rrfK is reciprocal rank fusion's constant, the value its authors found
// robust: a result's fused score is the sum of w/(rrfK+rank) over the
// lists, w its score in the list relative to the list's best (see fuse).
const rrfK = 60

// SearchRequest asks for the data of some datasets best matching a text.
type SearchRequest struct {
	TeamID, KeyID, BillID string
	DatasetIDs            []string
	Text                  string
	// MaxTokens is the token budget of the hits, FastGPT's limit: hits
	// are taken best first for as long as the next one's q and a (counted
	// with the Service's tokens.Counter) still fit. The best hit is
	// returned even when it alone is over, as FastGPT does, so that a
	// search that found something never answers nothing. 0:
	// DefaultSearchTokens; at most MaxSearchTokens. Errors name it limit.
	MaxTokens int
	// MaxResults caps the number of hits; 0: MaxSearchResults, the most.
	// Errors name it maxResults.
	MaxResults int
	Similarity float64 // 0-1: minimum cosine similarity for embedding results
	Mode       string  // a Search* mode; "" is SearchEmbedding
	// Rerank (FastGPT's usingReRank) has the Service's Reranker reorder
	// the candidates retrieval found, more than the answer holds, before
	// MaxResults and MaxTokens cut them. Without a Reranker the search
	// fails with ErrRerankUnavailable.
	Rerank bool

	// Extension asks for query extension; its zero value does not.
	Extension QueryExtension
}

// SearchHit is a found data item. Score is the cosine similarity in
// embedding mode, the full-text relevance divided by the best one's in
// full-text mode, and the fused score divided by the highest possible (a
// result ranked first in both lists) in mixed mode: in every mode 0-1,
// higher is better. A reranked search's Score is the reranker's relevance
// (0-1 for Jina's and Cohere's models).
type SearchHit struct {
	ID           string  `json:"id"`
	DatasetID    string  `json:"datasetId"`
	CollectionID string  `json:"collectionId"`
	Q            string  `json:"q"`
	A            string  `json:"a"`
	Source       string  `json:"source"`
	Score        float64 `json:"score"`
}

// SearchResult is the hits, best first, and what the search cost.
type SearchResult struct {
	Hits   []SearchHit
	Model  string // embedding model, when vectors were searched
	Tokens int    // tokens of the query that was embedded
	// RerankModel and RerankTokens are what reranking cost, when it ran.
	RerankModel  string
	RerankTokens int
	// Extension is what the query extension did; nil without one.
	Extension *Extension
}

// Search finds the data of a team's datasets best matching req.Text. It
// records no usage: the caller that owns the request accounts for what it
// cost (res.Model and res.Tokens, res.RerankModel and res.RerankTokens),
// so that one search is billed once. The searchTest route records its
// own; chat records retrieval as its KB Search module. A query extension
// (req.Extension) is the exception: it records its chat model's tokens
// itself (see Extension).
func (s *Service) Search(ctx context.Context, req SearchRequest) (*SearchResult, error) {
	if err := s.live(); err != nil {
		return nil, err
	}
	if strings.TrimSpace(req.Text) == "" {
		return nil, apierror.InvalidRequest("text", "is required")
	}
	if len(req.DatasetIDs) == 0 {
		return nil, apierror.InvalidRequest("datasetId", "is required")
	}
	switch {
	case req.MaxTokens == 0:
		req.MaxTokens = DefaultSearchTokens
	case req.MaxTokens < 0 || req.MaxTokens > MaxSearchTokens:
		return nil, apierror.InvalidRequest("limit", "is a token budget, between 1 and %d", MaxSearchTokens)
	}
	switch {
	case req.MaxResults == 0:
		req.MaxResults = MaxSearchResults
	case req.MaxResults < 0 || req.MaxResults > MaxSearchResults:
		return nil, apierror.InvalidRequest("maxResults", "must be between 1 and %d", MaxSearchResults)
	}
	if req.Similarity < 0 || req.Similarity > 1 {
		return nil, apierror.InvalidRequest("similarity", "must be between 0 and 1")
	}
	if req.Mode == "" {
		req.Mode = SearchEmbedding
	}
	if req.Mode != SearchEmbedding && req.Mode != SearchFullText && req.Mode != SearchMixed {
		return nil, apierror.InvalidRequest("searchMode", "must be embedding, fullTextRecall or mixedRecall")
	}
	if req.Rerank && s.opts.Reranker == nil {
		return nil, ErrRerankUnavailable
	}
	var sets []*Dataset
	for _, id := range req.DatasetIDs {
		ds, err := s.Dataset(ctx, req.TeamID, id)
		if err != nil {
			return nil, err
		}
		sets = append(sets, ds)
	}
	depth := req.MaxResults
	if req.Rerank {
		depth = min(MaxSearchResults, max(2*req.MaxResults, minRerankCandidates))
	}
	res := &SearchResult{}
	if err := s.extendQuery(ctx, &req, res); err != nil {
		return nil, err
	}
	var ranked []Hit
	switch req.Mode {
	case SearchEmbedding:
		hits, err := s.recallVectors(ctx, req, sets, depth, res)
		if err != nil {
			return nil, err
		}
		ranked = hits
	case SearchFullText:
		hits, err := s.recallText(ctx, req, depth)
		if err != nil {
			return nil, err
		}
		ranked = hits
	case SearchMixed:
		deep := max(2*depth, 20)
		vec, err := s.recallVectors(ctx, req, sets, deep, res)
		if err != nil {
			return nil, err
		}
		txt, err := s.recallText(ctx, req, deep)
		if err != nil {
			return nil, err
		}
		ranked = fuse(vec, txt)
	}
	if req.Rerank {
		return res, s.rerank(ctx, req, res, ranked, depth)
	}
	return res, s.fill(ctx, res, ranked, req)
}

// searchTest is the searchTest route's search: a billId must name a bill
// of the team (another team's is as unknown as a missing one), and the
// search is recorded under it.
func (s *Service) searchTest(ctx context.Context, req SearchRequest) (*SearchResult, error) {
	if err := s.checkBill(ctx, req.TeamID, req.BillID); err != nil {
		return nil, err
	}
	res, err := s.Search(ctx, req)
	if err != nil {
		return nil, err
	}
	if res.Tokens > 0 {
		s.recordUsage(ctx, UsageRecord{TeamID: req.TeamID, KeyID: req.KeyID, BillID: req.BillID,
			DatasetID: req.DatasetIDs[0], Module: ModuleSearch, Model: res.Model, InputTokens: res.Tokens})
	}
	if res.RerankTokens > 0 {
		s.recordUsage(ctx, UsageRecord{TeamID: req.TeamID, KeyID: req.KeyID, BillID: req.BillID,
			DatasetID: req.DatasetIDs[0], Module: ModuleRerank, Model: res.RerankModel, InputTokens: res.RerankTokens})
	}
	return res, nil
}

// searchVectors returns up to n data ids by cosine similarity at or above
// req.Similarity. Data with index texts have several vectors; the best
// counts.
func (s *Service) searchVectors(ctx context.Context, req SearchRequest, sets []*Dataset, n int, res *SearchResult) ([]Hit, error) {
	queries := map[string][]float32{}
	best := map[string]float64{}
	for _, ds := range sets {
		q, ok := queries[ds.VectorModel]
		if !ok {
			emb, err := s.embedder(ds)
			if err != nil {
				return nil, err
			}
			vs, err := emb.Embed(ctx, []string{req.Text})
			if err != nil {
				if ctx.Err() != nil {
					return nil, err
				}
				return nil, &apierror.Error{Status: http.StatusBadGateway, Code: "upstream_error",
					Message: fmt.Sprintf("embedding the query with %q failed: %v", ds.VectorModel, err)}
			}
			q = vs[0]
			queries[ds.VectorModel] = q
			res.Model = ds.VectorModel
			n, err := s.count(ctx, req.Text)
			if err != nil {
				return nil, err
			}
			res.Tokens += n
		}
		// ask for more than n: one item may hold several of the nearest vectors
		hits, err := s.vectors.Query(ctx, ds.ID, q, 2*n+8)
		if err != nil {
			return nil, err
		}
		for _, h := range hits {
			if h.Score < req.Similarity {
				continue
			}
			id := dataIDOf(h.ID)
			if h.Score > best[id] {
				best[id] = h.Score
			}
		}
	}
	return topHits(best, n), nil
}

func (s *Service) searchText(ctx context.Context, req SearchRequest, n int) ([]Hit, error) {
	hits, err := s.text.Search(ctx, req.DatasetIDs, req.Text, n)
	if err != nil || len(hits) == 0 {
		return nil, err
	}
	top := hits[0].Score
	for i := range hits {
		if top > 0 {
			hits[i].Score /= top
		}
	}
	return hits, nil
}

// fuse merges ranked lists, each best first, by reciprocal rank fusion
// weighted by score: a hit adds w/(rrfK+rank), w its score divided by its
// list's best. Plain rank fusion treats a list whose first hit stands far
// above the rest like one whose hits are all about as weak (an embedding
// of a query sharing no words with any question ranks noise); a hit both
// lists rank low then beats one list's clear first, and the deeper the
// lists, the more such noise is found in both. With the weights, a list's
// weak hits count little and a flat list still counts as plain ranks.
func fuse(lists ...[]Hit) []Hit {
	scores := map[string]float64{}
	for _, l := range lists {
		if len(l) == 0 {
			continue
		}
		top := l[0].Score
		for rank, h := range l {
			w := 1.0
			if top > 0 {
				w = max(h.Score, 0) / top
			}
			scores[h.ID] += w / float64(rrfK+rank+1)
		}
	}
	top := float64(len(lists)) / float64(rrfK+1)
	for id := range scores {
		scores[id] /= top
	}
	return topHits(scores, len(scores))
}

func topHits(scores map[string]float64, n int) []Hit {
	hits := make([]Hit, 0, len(scores))
	for id, sc := range scores {
		hits = append(hits, Hit{ID: id, Score: sc})
	}
	slices.SortFunc(hits, func(a, b Hit) int {
		return cmp.Or(cmp.Compare(b.Score, a.Score), cmp.Compare(a.ID, b.ID))
	})
	return hits[:min(n, len(hits))]
}

// fill takes the data of the ranked hits into res, best first, within
// req's count and token budget (see budget).
func (s *Service) fill(ctx context.Context, res *SearchResult, ranked []Hit, req SearchRequest) error {
	b := budget{s: s, n: req.MaxResults, tokens: req.MaxTokens, hits: []SearchHit{}}
	err := s.walk(ctx, ranked, req.MaxResults, b.take)
	res.Hits = b.hits
	return err
}

// budget takes hits, best first, while they fit: at most n of them, and of
// at most tokens tokens (their q and a), but always the first.
type budget struct {
	s         *Service
	n, tokens int
	used      int
	hits      []SearchHit
}

// take adds h if it fits, and says whether another may.
func (b *budget) take(ctx context.Context, h SearchHit) (bool, error) {
	k, err := b.s.count(ctx, h.Q, h.A)
	if err != nil {
		return false, err
	}
	if len(b.hits) > 0 && b.used+k > b.tokens {
		return false, nil
	}
	b.hits = append(b.hits, h)
	b.used += k
	return len(b.hits) < b.n && b.used < b.tokens, nil
}

// walk hands visit the data of the ranked hits, in order, skipping any
// deleted meanwhile, until visit says it wants no more. It reads them in
// windows, the first of want hits (what the caller expects to need), each
// next twice the last: with one read a window when the store is a
// DataReader, else one a hit.
func (s *Service) walk(ctx context.Context, ranked []Hit, want int, visit func(context.Context, SearchHit) (bool, error)) error {
	dr, _ := s.store.(DataReader)
	for start, size := 0, max(want, 1); start < len(ranked); start, size = start+size, 2*size {
		window := ranked[start:min(start+size, len(ranked))]
		var read map[string]*Data
		if dr != nil {
			ids := make([]string, len(window))
			for i, h := range window {
				ids[i] = h.ID
			}
			ds, err := dr.DataByID(ctx, ids)
			if err != nil {
				return err
			}
			read = make(map[string]*Data, len(ds))
			for _, d := range ds {
				read[d.ID] = d
			}
		}
		for _, h := range window {
			d, err := read[h.ID], error(nil)
			switch {
			case dr != nil && d == nil:
				continue
			case dr == nil:
				d, err = s.store.Data(ctx, h.ID)
			}
			if errors.Is(err, ErrDataNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			more, err := visit(ctx, SearchHit{ID: d.ID, DatasetID: d.DatasetID, CollectionID: d.CollectionID,
				Q: d.Q, A: d.A, Source: d.Source, Score: h.Score})
			if err != nil || !more {
				return err
			}
		}
	}
	return nil
}
