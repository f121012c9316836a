package embedding_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/chatgate/chatgate/dataset/embedding"
)

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

func TestOpenAIEmbedder(t *testing.T) {
	ctx := context.Background()
	fake := &fakeOpenAI{t: t}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	var sent atomic.Int32
	emb, err := embedding.NewOpenAI(embedding.Config{BaseURL: srv.URL + "/v1", APIKey: "sk-test-123",
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
	keyless, err := embedding.NewOpenAI(embedding.Config{BaseURL: srv.URL + "/v1", Model: "bge-m3"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keyless.Embed(ctx, []string{"x"}); err != nil {
		t.Fatal(err)
	}
	if r := fake.requests()[1]; r.Auth != "Bearer none" || r.Model != "bge-m3" {
		t.Fatalf("keyless request = %+v", r)
	}

	refusesIncomplete(t, embedding.NewOpenAI, srv.URL)
}

func TestOpenAIEmbedderErrors(t *testing.T) {
	var mode atomic.Value
	fake := &fakeOpenAI{t: t, fail: failWith[openAIRequest](&mode, map[string]answer{
		"unauthorized": {http.StatusUnauthorized, true,
			`{"error":{"message":"Incorrect API key provided: sk-wrong","type":"invalid_request_error","code":"invalid_api_key"}}`},
		"overloaded": {http.StatusServiceUnavailable, false, `upstream overloaded`},
		"short":      {http.StatusOK, true, `{"object":"list","data":[{"object":"embedding","embedding":[1,0],"index":0}],"model":"m"}`},
		"garbage":    {http.StatusOK, false, `{"object":"list","data":[`},
	})}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	emb, err := embedding.NewOpenAI(embedding.Config{BaseURL: srv.URL + "/v1", APIKey: "sk-wrong", Model: "m"})
	if err != nil {
		t.Fatal(err)
	}
	embedFails(t, emb, &mode, []struct{ mode, want string }{
		{"unauthorized", "Incorrect API key provided"},
		{"unauthorized", "401"},
		{"overloaded", "503"},
		{"short", "unexpected length"},
		{"garbage", ""},
	})
	// a server that is gone
	srv.Close()
	mode.Store("")
	if _, err := emb.Embed(context.Background(), []string{"a"}); err == nil {
		t.Fatal("Embed against a closed server succeeded")
	}
}
