// Package reranktest is a loopback rerank endpoint in Jina's wire shape
// (POST {base}/rerank), for tests that drive dataset/rerank's real client
// against a model they choose.
package reranktest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
)

// Scorer is the endpoint's model: the relevance of each document to the
// query, in the documents' order.
type Scorer func(query string, docs []string) []float64

// Options shape what the endpoint checks and answers.
type Options struct {
	// Key, when set, is the bearer key every request must carry.
	Key string
	// Model, when set, is the model every request must name; a request
	// naming none is refused either way.
	Model string
	// Tokens is the usage the answer reports (none when 0).
	Tokens int
	// FailStatus and FailDetail are the answer while Endpoint.Fail is set;
	// 503 "model overloaded" by default.
	FailStatus int
	FailDetail string
}

// Endpoint is a running rerank endpoint, closed when its test ends. A
// request the client should never send (another path, a missing key or
// model, unknown fields, top_n other than the number of documents)
// answers 400, so a client that drifts from the wire shape fails its test.
type Endpoint struct {
	// BaseURL is the base a client is configured with, ending in /v1.
	BaseURL string
	// Calls counts the requests answered with scores.
	Calls atomic.Int32
	// Fail makes every request fail while it is set.
	Fail atomic.Bool

	score Scorer
	opts  Options
}

// New starts an endpoint scoring with score.
func New(t testing.TB, score Scorer, opts Options) *Endpoint {
	t.Helper()
	if opts.FailStatus == 0 {
		opts.FailStatus, opts.FailDetail = http.StatusServiceUnavailable, "model overloaded"
	}
	e := &Endpoint{score: score, opts: opts}
	srv := httptest.NewServer(http.HandlerFunc(e.serve))
	t.Cleanup(srv.Close)
	e.BaseURL = srv.URL + "/v1"
	return e
}

func (e *Endpoint) serve(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Model     string   `json:"model"`
		Query     string   `json:"query"`
		Documents []string `json:"documents"`
		TopN      int      `json:"top_n"`
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if r.Method != http.MethodPost || r.URL.Path != "/v1/rerank" ||
		(e.opts.Key != "" && r.Header.Get("Authorization") != "Bearer "+e.opts.Key) ||
		dec.Decode(&in) != nil || in.Model == "" || (e.opts.Model != "" && in.Model != e.opts.Model) || in.TopN != len(in.Documents) {
		http.Error(w, `{"detail":"bad request"}`, http.StatusBadRequest)
		return
	}
	if e.Fail.Load() {
		detail, _ := json.Marshal(map[string]string{"detail": e.opts.FailDetail})
		http.Error(w, string(detail), e.opts.FailStatus)
		return
	}
	e.Calls.Add(1)
	type result struct {
		Index int     `json:"index"`
		Score float64 `json:"relevance_score"`
	}
	var out struct {
		Results []result `json:"results"`
		Usage   *struct {
			TotalTokens int `json:"total_tokens"`
		} `json:"usage,omitempty"`
	}
	for i, s := range e.score(in.Query, in.Documents) {
		out.Results = append(out.Results, result{i, s})
	}
	// best first, as Jina answers, so a client that trusts the order
	// rather than the indexes is caught
	slices.SortStableFunc(out.Results, func(a, b result) int {
		switch {
		case a.Score > b.Score:
			return -1
		case a.Score < b.Score:
			return 1
		}
		return 0
	})
	if e.opts.Tokens > 0 {
		out.Usage = &struct {
			TotalTokens int `json:"total_tokens"`
		}{e.opts.Tokens}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}
