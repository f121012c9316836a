package dataset_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/chatgate/chatgate/dataset"
)

// localVector is what the fake servers answer for a text: the local
// embedding, so results can be checked and searched.
func localVector(t *testing.T, text string) []float32 {
	t.Helper()
	v, err := dataset.LocalEmbedder{Dimensions: 32}.Embed(context.Background(), []string{text})
	if err != nil {
		t.Fatal(err)
	}
	return v[0]
}

// fakeOpenAI speaks OpenAI's POST /v1/embeddings and records each request.
type fakeOpenAI struct {
	t    *testing.T
	mu   sync.Mutex
	reqs []openAIRequest
	// fail, when set, answers instead of embedding
	fail func(w http.ResponseWriter, req openAIRequest) bool
}

type openAIRequest struct {
	Path, Auth, ContentType string
	Model                   string   `json:"model"`
	Input                   []string `json:"input"`
}

func (f *fakeOpenAI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req openAIRequest
	if err := json.Unmarshal(body, &req); err != nil {
		http.Error(w, `{"error":{"message":"bad json"}}`, http.StatusBadRequest)
		return
	}
	req.Path, req.Auth, req.ContentType = r.Method+" "+r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("Content-Type")
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	f.mu.Unlock()
	if f.fail != nil && f.fail(w, req) {
		return
	}
	type item struct {
		Object    string    `json:"object"`
		Embedding []float32 `json:"embedding"`
		Index     int       `json:"index"`
	}
	out := struct {
		Object string         `json:"object"`
		Data   []item         `json:"data"`
		Model  string         `json:"model"`
		Usage  map[string]int `json:"usage"`
	}{Object: "list", Model: req.Model, Usage: map[string]int{"prompt_tokens": len(req.Input), "total_tokens": len(req.Input)}}
	for i, in := range req.Input {
		out.Data = append(out.Data, item{Object: "embedding", Embedding: localVector(f.t, in), Index: i})
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func (f *fakeOpenAI) requests() []openAIRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reqs)
}

// countingClient counts the requests it sends.
func countingClient(n *atomic.Int32) *http.Client {
	return &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		n.Add(1)
		return http.DefaultTransport.RoundTrip(r)
	})}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestOpenAIEmbedder(t *testing.T) {
	ctx := context.Background()
	fake := &fakeOpenAI{t: t}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	var sent atomic.Int32
	emb, err := dataset.NewOpenAIEmbedder(dataset.RemoteEmbedderConfig{BaseURL: srv.URL + "/v1", APIKey: "sk-test-123",
		Model: "text-embedding-3-small", HTTPClient: countingClient(&sent)})
	if err != nil {
		t.Fatal(err)
	}
	texts := []string{"电影《铃芽之旅》的导演是谁？", "Who wrote Moby-Dick?", "第三段"}
	vs, err := emb.Embed(ctx, texts)
	if err != nil {
		t.Fatal(err)
	}
	reqs := fake.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests for %d texts; want all in one", len(reqs), len(texts))
	}
	r := reqs[0]
	if r.Path != "POST /v1/embeddings" || r.Auth != "Bearer sk-test-123" || r.Model != "text-embedding-3-small" ||
		!slices.Equal(r.Input, texts) || !strings.HasPrefix(r.ContentType, "application/json") {
		t.Fatalf("request = %+v", r)
	}
	if sent.Load() != 1 {
		t.Fatalf("the configured HTTP client sent %d requests", sent.Load())
	}
	if len(vs) != 3 {
		t.Fatalf("%d vectors", len(vs))
	}
	for i, v := range vs {
		if !slices.Equal(v, localVector(t, texts[i])) {
			t.Fatalf("vector %d is not the one the server sent for %q", i, texts[i])
		}
	}
	// nothing to embed: no request
	if vs, err := emb.Embed(ctx, nil); err != nil || len(vs) != 0 || len(fake.requests()) != 1 {
		t.Fatalf("Embed(nil) = %v, %v after %d requests", vs, err, len(fake.requests()))
	}

	// no API key: a placeholder, since local servers want none
	keyless, err := dataset.NewOpenAIEmbedder(dataset.RemoteEmbedderConfig{BaseURL: srv.URL + "/v1", Model: "bge-m3"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keyless.Embed(ctx, []string{"x"}); err != nil {
		t.Fatal(err)
	}
	if r := fake.requests()[1]; r.Auth != "Bearer none" || r.Model != "bge-m3" {
		t.Fatalf("keyless request = %+v", r)
	}

	for _, bad := range []dataset.RemoteEmbedderConfig{{Model: "m"}, {BaseURL: srv.URL}} {
		if _, err := dataset.NewOpenAIEmbedder(bad); err == nil {
			t.Fatalf("NewOpenAIEmbedder(%+v) accepted", bad)
		}
	}
}

func TestOpenAIEmbedderErrors(t *testing.T) {
	ctx := context.Background()
	var mode atomic.Value
	fake := &fakeOpenAI{t: t, fail: func(w http.ResponseWriter, req openAIRequest) bool {
		switch mode.Load() {
		case "unauthorized":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":{"message":"Incorrect API key provided: sk-wrong","type":"invalid_request_error","code":"invalid_api_key"}}`)
		case "overloaded":
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `upstream overloaded`)
		case "short":
			w.Header().Set("Content-Type", "application/json")
			_, _ = fmt.Fprintf(w, `{"object":"list","data":[{"object":"embedding","embedding":[1,0],"index":0}],"model":"m"}`)
		case "garbage":
			_, _ = io.WriteString(w, `{"object":"list","data":[`)
		default:
			return false
		}
		return true
	}}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	emb, err := dataset.NewOpenAIEmbedder(dataset.RemoteEmbedderConfig{BaseURL: srv.URL + "/v1", APIKey: "sk-wrong", Model: "m"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ mode, want string }{
		{"unauthorized", "Incorrect API key provided"},
		{"unauthorized", "401"},
		{"overloaded", "503"},
		{"short", "unexpected length"},
		{"garbage", ""},
	} {
		mode.Store(tc.mode)
		vs, err := emb.Embed(ctx, []string{"a", "b"})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s: Embed = %v, %v; want an error containing %q", tc.mode, vs, err, tc.want)
		}
	}
	// a server that is gone
	srv.Close()
	mode.Store("")
	if _, err := emb.Embed(ctx, []string{"a"}); err == nil {
		t.Fatal("Embed against a closed server succeeded")
	}
}

// fakeOllama speaks Ollama's POST /api/embed, one text per request, as
// langchaingo's client sends it.
type fakeOllama struct {
	t    *testing.T
	mu   sync.Mutex
	reqs []ollamaRequest
	fail func(w http.ResponseWriter, req ollamaRequest) bool
}

type ollamaRequest struct {
	Path  string
	Model string          `json:"model"`
	Input json.RawMessage `json:"input"`
}

func (f *fakeOllama) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req ollamaRequest
	if err := json.Unmarshal(body, &req); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"error":"bad json"}`)
		return
	}
	req.Path = r.Method + " " + r.URL.Path
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	f.mu.Unlock()
	if f.fail != nil && f.fail(w, req) {
		return
	}
	var in string
	if err := json.Unmarshal(req.Input, &in); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"error":"input must be a string here"}`)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"model": req.Model, "embeddings": [][]float32{localVector(f.t, in)}})
}

func (f *fakeOllama) requests() []ollamaRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reqs)
}

func TestOllamaEmbedder(t *testing.T) {
	ctx := context.Background()
	fake := &fakeOllama{t: t}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	var sent atomic.Int32
	emb, err := dataset.NewOllamaEmbedder(dataset.RemoteEmbedderConfig{BaseURL: srv.URL, Model: "nomic-embed-text",
		HTTPClient: countingClient(&sent)})
	if err != nil {
		t.Fatal(err)
	}
	texts := []string{"退货期限是多久？", "shipping costs", "第三段"}
	vs, err := emb.Embed(ctx, texts)
	if err != nil {
		t.Fatal(err)
	}
	reqs := fake.requests()
	if len(reqs) != len(texts) || sent.Load() != int32(len(texts)) {
		t.Fatalf("%d requests (%d through the client) for %d texts", len(reqs), sent.Load(), len(texts))
	}
	for i, r := range reqs {
		var in string
		_ = json.Unmarshal(r.Input, &in)
		if r.Path != "POST /api/embed" || r.Model != "nomic-embed-text" || in != texts[i] {
			t.Fatalf("request %d = %+v", i, r)
		}
	}
	for i, v := range vs {
		if !slices.Equal(v, localVector(t, texts[i])) {
			t.Fatalf("vector %d is not the one the server sent for %q", i, texts[i])
		}
	}
	for _, bad := range []dataset.RemoteEmbedderConfig{{Model: "m"}, {BaseURL: srv.URL}} {
		if _, err := dataset.NewOllamaEmbedder(bad); err == nil {
			t.Fatalf("NewOllamaEmbedder(%+v) accepted", bad)
		}
	}
}

func TestOllamaEmbedderErrors(t *testing.T) {
	ctx := context.Background()
	var mode atomic.Value
	fake := &fakeOllama{t: t, fail: func(w http.ResponseWriter, req ollamaRequest) bool {
		switch mode.Load() {
		case "missing model":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"error":"model \"nomic-embed-text\" not found, try pulling it first"}`)
		case "empty":
			_, _ = io.WriteString(w, `{"model":"nomic-embed-text","embeddings":[]}`)
		case "server error":
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, `runner crashed`)
		default:
			return false
		}
		return true
	}}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	emb, err := dataset.NewOllamaEmbedder(dataset.RemoteEmbedderConfig{BaseURL: srv.URL, Model: "nomic-embed-text"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ mode, want string }{
		{"missing model", "not found, try pulling it first"},
		{"server error", "runner crashed"},
		{"empty", ""},
	} {
		mode.Store(tc.mode)
		vs, err := emb.Embed(ctx, []string{"a", "b"})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s: Embed = %v, %v; want an error containing %q", tc.mode, vs, err, tc.want)
		}
	}
}

// A dataset embedded by a remote model: training and search go through the
// endpoint, and an endpoint failure is a recorded training failure.
func TestServiceWithRemoteEmbedder(t *testing.T) {
	ctx := context.Background()
	var down atomic.Bool
	fake := &fakeOpenAI{t: t, fail: func(w http.ResponseWriter, _ openAIRequest) bool {
		if !down.Load() {
			return false
		}
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = io.WriteString(w, `{"error":{"message":"Rate limit reached for text-embedding-3-small"}}`)
		return true
	}}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	emb, err := dataset.NewOpenAIEmbedder(dataset.RemoteEmbedderConfig{BaseURL: srv.URL + "/v1", APIKey: "sk-x", Model: "text-embedding-3-small"})
	if err != nil {
		t.Fatal(err)
	}
	s := newService(t, dataset.Options{Embedders: map[string]dataset.Embedder{"text-embedding-3-small": emb},
		DefaultVectorModel: "text-embedding-3-small", MaxAttempts: 2})
	ds, c := setup(t, s, "team")
	if ds.VectorModel != "text-embedding-3-small" {
		t.Fatalf("vector model %q", ds.VectorModel)
	}
	push(t, s, dataset.PushRequest{TeamID: "team", CollectionID: c.ID, Data: []dataset.PushItem{
		{Q: "退货期限是多久？", A: "三十天", Indexes: []dataset.Index{"怎么退货"}}, {Q: "运费谁付？", A: "买家"}}})
	waitTrained(t, s, "team", c.ID)
	// one batch: both items and the index text in one request
	if reqs := fake.requests(); len(reqs) != 1 || len(reqs[0].Input) != 3 {
		t.Fatalf("training requests = %+v", reqs)
	}
	r, err := s.Search(ctx, dataset.SearchRequest{TeamID: "team", DatasetIDs: []string{ds.ID}, Text: "退货期限是多久"})
	if err != nil || len(r.Hits) == 0 || r.Hits[0].A != "三十天" || r.Model != "text-embedding-3-small" {
		t.Fatalf("search = %+v, %v", r, err)
	}
	if reqs := fake.requests(); len(reqs) != 2 || !slices.Equal(reqs[1].Input, []string{"退货期限是多久"}) {
		t.Fatalf("search request = %+v", reqs[len(reqs)-1])
	}

	down.Store(true)
	push(t, s, dataset.PushRequest{TeamID: "team", CollectionID: c.ID, Data: []dataset.PushItem{{Q: "换货呢？"}}})
	waitFor(t, "the failure", func() bool {
		d, err := s.Collection(ctx, "team", c.ID)
		return err == nil && d.FailedAmount == 1
	})
	fs, _ := s.TrainingFailures(ctx, "team", c.ID, 10)
	if len(fs) != 1 || !strings.Contains(fs[0].LastError, "Rate limit reached") {
		t.Fatalf("failures = %+v", fs)
	}
	if _, err := s.Search(ctx, dataset.SearchRequest{TeamID: "team", DatasetIDs: []string{ds.ID}, Text: "x"}); err == nil ||
		!strings.Contains(err.Error(), "Rate limit reached") {
		t.Fatalf("search with the endpoint down = %v", err)
	}
}
