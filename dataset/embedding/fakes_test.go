package embedding_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/chatgate/chatgate/dataset"
	"github.com/chatgate/chatgate/dataset/embedding"
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

// refusesIncomplete checks that a Config without a base URL or a model is
// refused.
func refusesIncomplete(t *testing.T, open func(embedding.Config) (*embedding.Client, error), url string) {
	t.Helper()
	for _, bad := range []embedding.Config{{Model: "m"}, {BaseURL: url}} {
		if _, err := open(bad); err == nil {
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

// A Client is a dataset.Embedder.
var _ dataset.Embedder = (*embedding.Client)(nil)
