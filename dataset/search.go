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

// Search limits.
const (
	DefaultSearchLimit = 10
	MaxSearchLimit     = 100
)

// rrfK is reciprocal rank fusion's constant, the value its authors found
// robust: a result's fused score is the sum of w/(rrfK+rank) over the
// lists, w its score in the list relative to the list's best (see fuse).
const rrfK = 60

// SearchRequest asks for the data of some datasets best matching a text.
type SearchRequest struct {
	TeamID, KeyID, BillID string
	DatasetIDs            []string
	Text                  string
	Limit                 int     // default DefaultSearchLimit, at most MaxSearchLimit
	Similarity            float64 // 0-1: minimum cosine similarity for embedding results
	Mode                  string  // a Search* mode; "" is SearchEmbedding

	// Extension asks for query extension; its zero value does not.
	Extension QueryExtension
}

// SearchHit is a found data item. Score is the cosine similarity in
// embedding mode, the full-text relevance divided by the best one's in
// full-text mode, and the fused score divided by the highest possible (a
// result ranked first in both lists) in mixed mode: in every mode 0-1,
// higher is better.
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
	// Extension is what the query extension did; nil without one.
	Extension *Extension
}

// Search finds the data of a team's datasets best matching req.Text. It
// records no usage: the caller that owns the request accounts for what it
// cost (res.Model and res.Tokens), so that one search is billed once. The
// searchTest route records its own; chat records retrieval as its KB Search
// module. A query extension (req.Extension) is the exception: it records
// its chat model's tokens itself (see Extension).
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
	case req.Limit == 0:
		req.Limit = DefaultSearchLimit
	case req.Limit < 0 || req.Limit > MaxSearchLimit:
		return nil, apierror.InvalidRequest("limit", "must be between 1 and %d", MaxSearchLimit)
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
	var sets []*Dataset
	for _, id := range req.DatasetIDs {
		ds, err := s.Dataset(ctx, req.TeamID, id)
		if err != nil {
			return nil, err
		}
		sets = append(sets, ds)
	}
	res := &SearchResult{}
	if err := s.extendQuery(ctx, &req, res); err != nil {
		return nil, err
	}
	var ranked []Hit
	switch req.Mode {
	case SearchEmbedding:
		hits, err := s.recallVectors(ctx, req, sets, req.Limit, res)
		if err != nil {
			return nil, err
		}
		ranked = hits
	case SearchFullText:
		hits, err := s.recallText(ctx, req, req.Limit)
		if err != nil {
			return nil, err
		}
		ranked = hits
	case SearchMixed:
		depth := max(2*req.Limit, 20)
		vec, err := s.recallVectors(ctx, req, sets, depth, res)
		if err != nil {
			return nil, err
		}
		txt, err := s.recallText(ctx, req, depth)
		if err != nil {
			return nil, err
		}
		ranked = fuse(vec, txt)
	}
	if err := s.fill(ctx, res, ranked, req.Limit); err != nil {
		return nil, err
	}
	return res, nil
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

// fill loads the data of the ranked hits, skipping any deleted meanwhile:
// with one read when the store is a DataReader, else one per hit.
func (s *Service) fill(ctx context.Context, res *SearchResult, ranked []Hit, n int) error {
	res.Hits = []SearchHit{}
	var read map[string]*Data
	if dr, ok := s.store.(DataReader); ok && len(ranked) > 0 {
		ids := make([]string, len(ranked))
		for i, h := range ranked {
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
	for _, h := range ranked {
		if len(res.Hits) == n {
			break
		}
		d, err := read[h.ID], error(nil)
		switch {
		case read != nil && d == nil:
			continue
		case read == nil:
			d, err = s.store.Data(ctx, h.ID)
		}
		if errors.Is(err, ErrDataNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		res.Hits = append(res.Hits, SearchHit{ID: d.ID, DatasetID: d.DatasetID, CollectionID: d.CollectionID,
			Q: d.Q, A: d.A, Source: d.Source, Score: h.Score})
	}
	return nil
}
