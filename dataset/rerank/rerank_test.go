package rerank_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/chatgate/chatgate/dataset/rerank"
)

// sent is a request the fake endpoint received.
type sent struct {
	Method, Path, Auth, ContentType string
	Body                            map[string]json.RawMessage
}

// endpoint is a loopback rerank endpoint answering what answer returns.
type endpoint struct {
	t      *testing.T
	mu     sync.Mutex
	got    []sent
	answer func(docs []string) (status int, body string)
}

func (e *endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	s := sent{Method: r.Method, Path: r.URL.Path, Auth: r.Header.Get("Authorization"), ContentType: r.Header.Get("Content-Type")}
	if err := json.Unmarshal(raw, &s.Body); err != nil {
		e.t.Errorf("request body %s: %v", raw, err)
	}
	var docs []string
	_ = json.Unmarshal(s.Body["documents"], &docs)
	e.mu.Lock()
	e.got = append(e.got, s)
	e.mu.Unlock()
	status, body := e.answer(docs)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func (e *endpoint) requests() []sent {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.got)
}

func serve(t *testing.T, answer func(docs []string) (int, string)) (*endpoint, *httptest.Server) {
	t.Helper()
	e := &endpoint{t: t, answer: answer}
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return e, srv
}

func client(t *testing.T, c rerank.Config) *rerank.Client {
	t.Helper()
	cl, err := rerank.New(c)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func TestRerank(t *testing.T) {
	// Jina's answer: best first, not in the documents' order, with usage
	e, srv := serve(t, func([]string) (int, string) {
		return 200, `{"model":"jina-reranker-v2-base-multilingual","usage":{"total_tokens":42,"prompt_tokens":42},
			"results":[{"index":2,"relevance_score":0.91,"document":{"text":"c"}},{"index":0,"relevance_score":0.4},{"index":1,"relevance_score":0.05}]}`
	})
	cl := client(t, rerank.Config{BaseURL: srv.URL + "/v1/", APIKey: "jina_test", Model: "jina-reranker-v2-base-multilingual"})
	ctx := context.Background()
	docs := []string{"电影《铃芽之旅》的导演是谁？", "Who wrote Moby-Dick?", "新海诚导演了《铃芽之旅》"}
	scores, tokens, err := cl.Rerank(ctx, "导演是谁", docs)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(scores, []float64{0.4, 0.05, 0.91}) || tokens != 42 {
		t.Fatalf("scores %v, tokens %d; want the documents' order and the reported usage", scores, tokens)
	}
	reqs := e.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	r := reqs[0]
	if r.Method != "POST" || r.Path != "/v1/rerank" || r.Auth != "Bearer jina_test" || !strings.HasPrefix(r.ContentType, "application/json") {
		t.Fatalf("request %+v", r)
	}
	var body struct {
		Model     string   `json:"model"`
		Query     string   `json:"query"`
		Documents []string `json:"documents"`
		TopN      int      `json:"top_n"`
	}
	if keys := slices.Sorted(maps.Keys(r.Body)); !slices.Equal(keys, []string{"documents", "model", "query", "top_n"}) {
		t.Fatalf("request fields %v; want the documented body", keys)
	}
	raw, _ := json.Marshal(r.Body)
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatal(err)
	}
	if body.Model != "jina-reranker-v2-base-multilingual" || body.Query != "导演是谁" || !slices.Equal(body.Documents, docs) || body.TopN != 3 {
		t.Fatalf("request body %+v", body)
	}
	if cl.Model() != "jina-reranker-v2-base-multilingual" {
		t.Fatalf("Model() = %q", cl.Model())
	}

	// nothing to rerank: no request
	if s, n, err := cl.Rerank(ctx, "q", nil); s != nil || n != 0 || err != nil || len(e.requests()) != 1 {
		t.Fatalf("Rerank(nil) = %v %d %v after %d requests", s, n, err, len(e.requests()))
	}

	// Cohere's answer: no usage (0: the caller counts), a document left
	// out (-Inf), and no key sent when none is configured
	e2, srv2 := serve(t, func([]string) (int, string) {
		return 200, `{"id":"x","results":[{"index":1,"relevance_score":0.7}],"meta":{"billed_units":{"search_units":1}}}`
	})
	keyless := client(t, rerank.Config{BaseURL: srv2.URL, Model: "rerank-v3.5"})
	scores, tokens, err = keyless.Rerank(ctx, "q", []string{"a", "b"})
	if err != nil || tokens != 0 || scores[1] != 0.7 || !math.IsInf(scores[0], -1) {
		t.Fatalf("partial answer: %v %d %v", scores, tokens, err)
	}
	if r := e2.requests()[0]; r.Auth != "" || r.Path != "/rerank" {
		t.Fatalf("keyless request %+v", r)
	}
}

func TestRerankConfig(t *testing.T) {
	for _, c := range []rerank.Config{{Model: "m"}, {BaseURL: "http://127.0.0.1:1"}} {
		if _, err := rerank.New(c); err == nil {
			t.Fatalf("New(%+v) succeeded", c)
		}
	}
}

// Every answer the client cannot use is an error that says what was wrong
// and wraps ErrBadResponse; none yields scores.
func TestRerankBadAnswers(t *testing.T) {
	answer := map[string]struct {
		status int
		body   string
	}{
		"5xx":        {503, `{"detail":"model is loading"}`},
		"5xx-text":   {500, `internal error`},
		"401":        {401, `{"message":"invalid api token"}`},
		"malformed":  {200, `{"results":[{"index":0,"relevance_score":`},
		"not-json":   {200, `<html>gateway</html>`},
		"no-results": {200, `{"data":[]}`},
		"range":      {200, `{"results":[{"index":0,"relevance_score":0.5},{"index":2,"relevance_score":0.1}]}`},
		"negative":   {200, `{"results":[{"index":-1,"relevance_score":0.5}]}`},
		"twice":      {200, `{"results":[{"index":0,"relevance_score":0.5},{"index":0,"relevance_score":0.1}]}`},
		"no-score":   {200, `{"results":[{"index":0}]}`},
		"no-index":   {200, `{"results":[{"relevance_score":0.3}]}`},
		"score-type": {200, `{"results":[{"index":0,"relevance_score":"high"}]}`},
		"huge":       {200, `{"results":[],"pad":"` + strings.Repeat("x", 2048) + `"}`},
	}
	var mode string
	_, srv := serve(t, func([]string) (int, string) { a := answer[mode]; return a.status, a.body })
	cl := client(t, rerank.Config{BaseURL: srv.URL, Model: "m", MaxResponseBytes: 1024})
	for _, c := range []struct{ mode, want string }{
		{"5xx", "503"}, {"5xx", "model is loading"}, {"5xx-text", "internal error"}, {"401", "invalid api token"},
		{"malformed", "not a rerank result"}, {"not-json", "not a rerank result"}, {"no-results", "no results"},
		{"range", "document 2 of 2"}, {"negative", "document -1 of 2"}, {"twice", "again"},
		{"no-score", "lacks"}, {"no-index", "lacks"}, {"score-type", "not a rerank result"}, {"huge", "exceeds 1024 bytes"},
	} {
		mode = c.mode
		scores, tokens, err := cl.Rerank(context.Background(), "q", []string{"a", "b"})
		if err == nil || !errors.Is(err, rerank.ErrBadResponse) || !strings.Contains(err.Error(), c.want) || scores != nil || tokens != 0 {
			t.Errorf("%s: %v, %d, %v; want an ErrBadResponse saying %q", c.mode, scores, tokens, err, c.want)
		}
	}
	// an endpoint that is gone is an error, not a bad answer
	srv.Close()
	if _, _, err := cl.Rerank(context.Background(), "q", []string{"a"}); err == nil || errors.Is(err, rerank.ErrBadResponse) {
		t.Fatalf("closed endpoint: %v", err)
	}
	// a cancelled context stops the request
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := cl.Rerank(ctx, "q", []string{"a"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}
