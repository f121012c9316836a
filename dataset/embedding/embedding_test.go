package embedding_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/chatgate/chatgate/dataset/embedding"
)

// open serves endpoint, closed when the test ends, and makes a Client of
// it with newClient, given its URL.
func open(t *testing.T, endpoint http.Handler, newClient func(url string) (*embedding.Client, error)) (*embedding.Client, *httptest.Server) {
	t.Helper()
	srv := httptest.NewServer(endpoint)
	t.Cleanup(srv.Close)
	emb, err := newClient(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return emb, srv
}

func TestOpenAIEmbedder(t *testing.T) {
	fake := &fakeOpenAI{fake[openAIRequest]{t: t}}
	var sent atomic.Int32
	emb, srv := open(t, fake, func(url string) (*embedding.Client, error) {
		return embedding.NewOpenAI(embedding.Config{BaseURL: url + "/v1", APIKey: "sk-test-123",
			Model: "text-embedding-3-small", HTTPClient: countingClient(&sent)})
	})
	texts := []string{"电影《铃芽之旅》的导演是谁？", "Who wrote Moby-Dick?", "第三段"}
	embedsAsServed(t, emb, texts)
	reqs := fake.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests for %d texts; want all in one", len(reqs), len(texts))
	}
	if r := reqs[0]; r.Path != "POST /v1/embeddings" || r.Auth != "Bearer sk-test-123" || r.Model != "text-embedding-3-small" ||
		!slices.Equal(r.Input, texts) || !strings.HasPrefix(r.ContentType, "application/json") {
		t.Fatalf("request = %+v", r)
	}
	if sent.Load() != 1 {
		t.Fatalf("the configured HTTP client sent %d requests", sent.Load())
	}
	// nothing to embed: no request
	ctx := context.Background()
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
	emb, srv := open(t, &fakeOpenAI{fake[openAIRequest]{t: t, fail: failWith[openAIRequest](&mode, map[string]answer{
		"unauthorized": {http.StatusUnauthorized, true,
			`{"error":{"message":"Incorrect API key provided: sk-wrong","type":"invalid_request_error","code":"invalid_api_key"}}`},
		"overloaded": {http.StatusServiceUnavailable, false, `upstream overloaded`},
		"short":      {http.StatusOK, true, `{"object":"list","data":[{"object":"embedding","embedding":[1,0],"index":0}],"model":"m"}`},
		"garbage":    {http.StatusOK, false, `{"object":"list","data":[`},
	})}}, func(url string) (*embedding.Client, error) {
		return embedding.NewOpenAI(embedding.Config{BaseURL: url + "/v1", APIKey: "sk-wrong", Model: "m"})
	})
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

func TestOllamaEmbedder(t *testing.T) {
	fake := &fakeOllama{fake[ollamaRequest]{t: t}}
	var sent atomic.Int32
	emb, srv := open(t, fake, func(url string) (*embedding.Client, error) {
		return embedding.NewOllama(embedding.Config{BaseURL: url, Model: "nomic-embed-text", HTTPClient: countingClient(&sent)})
	})
	texts := []string{"退货期限是多久？", "shipping costs", "第三段"}
	embedsAsServed(t, emb, texts)
	// one request a text
	if n := len(fake.requests()); n != len(texts) || sent.Load() != int32(len(texts)) {
		t.Fatalf("%d requests (%d through the client) for %d texts", n, sent.Load(), len(texts))
	}
	for i, r := range fake.requests() {
		var in string
		_ = json.Unmarshal(r.Input, &in)
		if r.Path != "POST /api/embed" || r.Model != "nomic-embed-text" || in != texts[i] {
			t.Fatalf("request %d = %+v", i, r)
		}
	}
	refusesIncomplete(t, embedding.NewOllama, srv.URL)
}

func TestOllamaEmbedderErrors(t *testing.T) {
	var mode atomic.Value
	emb, _ := open(t, &fakeOllama{fake[ollamaRequest]{t: t, fail: failWith[ollamaRequest](&mode, map[string]answer{
		"missing model": {http.StatusNotFound, true, `{"error":"model \"nomic-embed-text\" not found, try pulling it first"}`},
		"empty":         {http.StatusOK, false, `{"model":"nomic-embed-text","embeddings":[]}`},
		"server error":  {http.StatusInternalServerError, false, `runner crashed`},
	})}}, func(url string) (*embedding.Client, error) {
		return embedding.NewOllama(embedding.Config{BaseURL: url, Model: "nomic-embed-text"})
	})
	embedFails(t, emb, &mode, []struct{ mode, want string }{
		{"missing model", "not found, try pulling it first"},
		{"server error", "runner crashed"},
		{"empty", ""},
	})
}

// embedFails checks that emb fails with an error holding want while the
// endpoint answers as mode says.
func embedFails(t *testing.T, emb *embedding.Client, mode *atomic.Value, cases []struct{ mode, want string }) {
	t.Helper()
	for _, tc := range cases {
		mode.Store(tc.mode)
		if vs, err := emb.Embed(context.Background(), []string{"a", "b"}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s: Embed = %v, %v; want an error containing %q", tc.mode, vs, err, tc.want)
		}
	}
}
