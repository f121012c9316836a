package dataset_test

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/chatgate/chatgate/cl100k"
	"github.com/chatgate/chatgate/dataset"
)

// searchTest with usingReRank: the reranker (the real client, on a
// loopback BM25 endpoint) reorders the candidates retrieval found, more
// than the answer holds, and then maxResults and the token budget cut
// them; its usage is recorded as module rerank under the configured
// model; a failed rerank answers 502 and records nothing.
func TestHandlerSearchRerank(t *testing.T) {
	counter := new(cl100k.Counter)
	rr := newTermReranker(t)
	e := newHTTPEnv(t, dataset.Options{Tokens: counter, Reranker: rr.client(t), RerankModel: "bm25-loopback"})
	ds := e.createDataset(t, e.writeA, "rerank")
	coll := e.createCollection(t, e.writeA, ds, "c")
	var items []map[string]any
	for i := range 40 {
		// the questions look alike to the embedder; the answers differ in
		// how often they say what the query asks
		items = append(items, map[string]any{"q": fmt.Sprintf("order %d shipping question", i),
			"a": strings.TrimSpace(strings.Repeat("refund policy ", i%5) + fmt.Sprintf("item %d", i))})
	}
	e.ok(t, e.writeA, "POST", "/api/core/dataset/data/pushData", map[string]any{"collectionId": coll, "data": items}, nil)
	e.waitIdle(t, e.writeA, coll)
	const query = "refund policy for shipping"
	search := func(body map[string]any) []hit {
		t.Helper()
		body["datasetId"], body["text"] = ds, query
		var hits []hit
		e.ok(t, e.writeA, "POST", "/api/core/dataset/searchTest", body, &hits)
		return hits
	}
	ids := func(hs []hit) []string {
		out := make([]string, len(hs))
		for i, h := range hs {
			out[i] = h.ID
		}
		return out
	}
	doc := func(h hit) string { return h.Q + "\n" + h.A }

	for _, mode := range []string{"embedding", "fullTextRecall", "mixedRecall"} {
		// maxResults 3 reranks 20 candidates: retrieval's first 20
		var cands []hit
		waitFor(t, mode, func() bool {
			cands = search(map[string]any{"searchMode": mode, "maxResults": 20})
			return len(cands) == 20
		})
		docs := make([]string, len(cands))
		for i, h := range cands {
			docs[i] = doc(h)
		}
		scores := bm25(query, docs)
		order := make([]int, len(cands))
		for i := range order {
			order[i] = i
		}
		slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(scores[b], scores[a]) })
		want := make([]hit, len(order))
		for i, j := range order {
			want[i] = cands[j]
			want[i].Score = scores[j]
		}
		// full text ranks much as BM25 does; the embedder does not
		if mode == "embedding" && slices.Equal(ids(want[:3]), ids(cands[:3])) {
			t.Fatalf("%s: the reranker agrees with retrieval; the test shows nothing", mode)
		}

		searches, reranks := len(e.usage.module(dataset.ModuleSearch)), len(e.usage.module(dataset.ModuleRerank))
		calls := rr.Calls.Load()
		got := search(map[string]any{"searchMode": mode, "maxResults": 3, "usingReRank": true, "limit": 5000, "similarity": 0})
		if !slices.Equal(ids(got), ids(want[:3])) {
			t.Fatalf("%s reranked: %v; want %v (retrieval's %v)", mode, ids(got), ids(want[:3]), ids(cands[:3]))
		}
		for i, h := range got {
			if h.Score != want[i].Score {
				t.Fatalf("%s: hit %d scores %v; want the reranker's %v", mode, i, h.Score, want[i].Score)
			}
		}
		if rr.Calls.Load() != calls+1 {
			t.Fatalf("%s: %d rerank requests for one search", mode, rr.Calls.Load()-calls)
		}
		recs := e.usage.module(dataset.ModuleRerank)
		if len(recs) != reranks+1 {
			t.Fatalf("%s: %d rerank records for one search", mode, len(recs)-reranks)
		}
		// the endpoint reports no usage: the Service counts the query once
		// a document, and the documents
		wantTokens := 0
		for _, d := range docs {
			wantTokens += counter.Count(query) + counter.Count(d)
		}
		if r := recs[len(recs)-1]; r.Model != "bm25-loopback" || r.InputTokens != wantTokens || r.TeamID != "team-a" || r.DatasetID != ds {
			t.Fatalf("%s: rerank record %+v; want model bm25-loopback, %d tokens", mode, r, wantTokens)
		}
		embedded := 0
		if mode != "fullTextRecall" {
			embedded = 1
		}
		if n := len(e.usage.module(dataset.ModuleSearch)) - searches; n != embedded {
			t.Fatalf("%s: %d search records; want %d", mode, n, embedded)
		}

		// the token budget cuts the reranked order
		tokensOf := func(h hit) int { return counter.Count(h.Q) + counter.Count(h.A) }
		budget := tokensOf(want[0]) + tokensOf(want[1])
		got = search(map[string]any{"searchMode": mode, "usingReRank": true, "limit": budget, "maxResults": 3})
		if !slices.Equal(ids(got), ids(want[:2])) {
			t.Fatalf("%s: limit %d after rerank: %v; want %v", mode, budget, ids(got), ids(want[:2]))
		}
	}

	// the rerank endpoint fails: 502, and nothing is recorded
	rr.Fail.Store(true)
	before := len(e.usage.all)
	snap := e.snapshot(t, e.writeA)
	r := e.fails(t, e.writeA, "POST", "/api/core/dataset/searchTest",
		map[string]any{"datasetId": ds, "text": query, "usingReRank": true}, 502, "upstream_error", "")
	if !strings.Contains(r.Message, "bm25-loopback") || !strings.Contains(r.Message, "503") || !strings.Contains(r.Message, "model overloaded") {
		t.Fatalf("failed rerank says %q", r.Message)
	}
	if after := len(e.usage.all); after != before {
		t.Fatalf("a failed rerank recorded %d usage records", after-before)
	}
	if e.snapshot(t, e.writeA) != snap {
		t.Fatal("a failed rerank changed something")
	}
	// nothing found: no rerank request, nothing to bill for it
	rr.Fail.Store(false)
	calls := rr.Calls.Load()
	var none []hit
	e.ok(t, e.writeA, "POST", "/api/core/dataset/searchTest",
		map[string]any{"datasetId": ds, "text": "zzqx", "usingReRank": true, "searchMode": "fullTextRecall"}, &none)
	if len(none) != 0 || rr.Calls.Load() != calls {
		t.Fatalf("a search that found nothing: %d hits, %d rerank requests", len(none), rr.Calls.Load()-calls)
	}
}

// A Reranker that breaks its contract (a score short) fails the search
// rather than misranking it; one that reports its tokens is billed those,
// under DefaultRerankModel when the Service names no model.
func TestSearchRerankerContract(t *testing.T) {
	var short bool
	rr := dataset.RerankerFunc(func(_ context.Context, _ string, docs []string) ([]float64, int, error) {
		scores := make([]float64, len(docs))
		for i := range scores {
			scores[i] = float64(i) // the last candidate first
		}
		if short {
			return scores[1:], 0, nil
		}
		return scores, 7, nil
	})
	e := newHTTPEnv(t, dataset.Options{Reranker: rr})
	ds := e.createDataset(t, e.writeA, "contract")
	coll := e.createCollection(t, e.writeA, ds, "c")
	e.ok(t, e.writeA, "POST", "/api/core/dataset/data/pushData", map[string]any{"collectionId": coll,
		"data": []map[string]any{{"q": "alpha one"}, {"q": "alpha two"}, {"q": "alpha three"}}}, nil)
	e.waitIdle(t, e.writeA, coll)
	body := map[string]any{"datasetId": ds, "text": "alpha", "usingReRank": true}
	var plain, hits []hit
	e.ok(t, e.writeA, "POST", "/api/core/dataset/searchTest", map[string]any{"datasetId": ds, "text": "alpha"}, &plain)
	e.ok(t, e.writeA, "POST", "/api/core/dataset/searchTest", body, &hits)
	if len(hits) != 3 || len(plain) != 3 || hits[0].ID != plain[2].ID || hits[0].Score != 2 {
		t.Fatalf("reranked %+v; want retrieval's last (of %+v) first", hits, plain)
	}
	recs := e.usage.module(dataset.ModuleRerank)
	if len(recs) != 1 || recs[0].Model != dataset.DefaultRerankModel || recs[0].InputTokens != 7 {
		t.Fatalf("rerank records %+v; want one of 7 tokens under %q", recs, dataset.DefaultRerankModel)
	}
	short = true
	before := len(e.usage.all)
	r := e.fails(t, e.writeA, "POST", "/api/core/dataset/searchTest", body, 502, "upstream_error", "")
	if !strings.Contains(r.Message, "2 scores for 3 documents") || len(e.usage.all) != before {
		t.Fatalf("short scores: %q, %d records", r.Message, len(e.usage.all)-before)
	}
}
