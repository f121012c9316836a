package embedding_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/chatgate/chatgate/dataset/embedding"
)

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
	emb, err := embedding.NewOllama(embedding.Config{BaseURL: srv.URL, Model: "nomic-embed-text",
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
	refusesIncomplete(t, embedding.NewOllama, srv.URL)
}

func TestOllamaEmbedderErrors(t *testing.T) {
	var mode atomic.Value
	fake := &fakeOllama{t: t, fail: failWith[ollamaRequest](&mode, map[string]answer{
		"missing model": {http.StatusNotFound, true, `{"error":"model \"nomic-embed-text\" not found, try pulling it first"}`},
		"empty":         {http.StatusOK, false, `{"model":"nomic-embed-text","embeddings":[]}`},
		"server error":  {http.StatusInternalServerError, false, `runner crashed`},
	})}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	emb, err := embedding.NewOllama(embedding.Config{BaseURL: srv.URL, Model: "nomic-embed-text"})
	if err != nil {
		t.Fatal(err)
	}
	embedFails(t, emb, &mode, []struct{ mode, want string }{
		{"missing model", "not found, try pulling it first"},
		{"server error", "runner crashed"},
		{"empty", ""},
	})
}
