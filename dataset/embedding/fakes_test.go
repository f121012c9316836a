package embedding_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/chatgate/chatgate/dataset"
	"github.com/chatgate/chatgate/dataset/embedding"
)

// A Client is a dataset.Embedder.
var _ dataset.Embedder = (*embedding.Client)(nil)

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

// fake is what the fake endpoints share: the requests they got, and a
// hook that answers instead of embedding when it reports true.
type fake[R any] struct {
	t    *testing.T
	fail func(w http.ResponseWriter, req R) bool
	mu   sync.Mutex
	reqs []R
}

// got records req and reports whether fail answered it.
func (f *fake[R]) got(w http.ResponseWriter, req R) bool {
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	f.mu.Unlock()
	return f.fail != nil && f.fail(w, req)
}

func (f *fake[R]) requests() []R {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reqs)
}

// fakeOpenAI speaks OpenAI's POST /v1/embeddings.
type fakeOpenAI struct{ fake[openAIRequest] }

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
	if f.got(w, req) {
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

// fakeOllama speaks Ollama's POST /api/embed, one text per request, as
// langchaingo's client sends it.
type fakeOllama struct{ fake[ollamaRequest] }

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
	if f.got(w, req) {
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

// embedsAsServed embeds texts with emb and checks that each vector is the
// one the fake endpoint sent for its text.
func embedsAsServed(t *testing.T, emb *embedding.Client, texts []string) {
	t.Helper()
	vs, err := emb.Embed(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != len(texts) {
		t.Fatalf("%d vectors for %d texts", len(vs), len(texts))
	}
	for i, v := range vs {
		if !slices.Equal(v, localVector(t, texts[i])) {
			t.Fatalf("vector %d is not the one the server sent for %q", i, texts[i])
		}
	}
}

// answer is what a fake endpoint sends instead of embeddings.
type answer struct {
	status int
	json   bool // sent as application/json
	body   string
}

// failWith is a fake's fail hook: while mode holds a key of answers, the
// endpoint sends that answer.
func failWith[R any](mode *atomic.Value, answers map[string]answer) func(http.ResponseWriter, R) bool {
	return func(w http.ResponseWriter, _ R) bool {
		name, _ := mode.Load().(string)
		a, ok := answers[name]
		if !ok {
			return false
		}
		if a.json {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(a.status)
		_, _ = io.WriteString(w, a.body)
		return true
	}
}

// refusesIncomplete checks that a Config without a base URL or a model is
// refused.
func refusesIncomplete(t *testing.T, newClient func(embedding.Config) (*embedding.Client, error), url string) {
	t.Helper()
	for _, bad := range []embedding.Config{{Model: "m"}, {BaseURL: url}} {
		if _, err := newClient(bad); err == nil {
			t.Fatalf("%+v accepted", bad)
		}
	}
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
