package embedding_test

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatgate/chatgate/dataset"
	"github.com/chatgate/chatgate/dataset/embedding"
	"github.com/chatgate/chatgate/tokens"
)

// A dataset embedded by a remote model: training and search go through the
// endpoint, and an endpoint failure is a recorded training failure.
func TestServiceWithRemoteEmbedder(t *testing.T) {
	var mode atomic.Value
	fake := &fakeOpenAI{fake[openAIRequest]{t: t, fail: failWith[openAIRequest](&mode, map[string]answer{
		"down": {http.StatusTooManyRequests, false, `{"error":{"message":"Rate limit reached for text-embedding-3-small"}}`},
	})}}
	emb, _ := open(t, fake, func(url string) (*embedding.Client, error) {
		return embedding.NewOpenAI(embedding.Config{BaseURL: url + "/v1", APIKey: "sk-x", Model: "text-embedding-3-small"})
	})
	ctx := context.Background()
	s, err := dataset.New(ctx, dataset.Options{Embedders: map[string]dataset.Embedder{"text-embedding-3-small": emb},
		DefaultVectorModel: "text-embedding-3-small", MaxAttempts: 2, RetryBase: time.Millisecond, PollEvery: 5 * time.Millisecond,
		Tokens: tokens.CounterFunc(func(s string) int { return len(s) }), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	ds, err := s.CreateDataset(ctx, "team", "kb", "")
	if err != nil || ds.VectorModel != "text-embedding-3-small" {
		t.Fatalf("dataset %+v, %v", ds, err)
	}
	c, err := s.CreateCollection(ctx, "team", ds.ID, "manual")
	if err != nil {
		t.Fatal(err)
	}
	// pushing waits until what it pushed is trained or failed
	push := func(items ...dataset.PushItem) *dataset.CollectionDetail {
		t.Helper()
		if _, err := s.Push(ctx, dataset.PushRequest{TeamID: "team", CollectionID: c.ID, Data: items}); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			d, err := s.Collection(ctx, "team", c.ID)
			if err != nil || d.TrainingAmount == 0 || time.Now().After(deadline) {
				return d
			}
		}
	}
	push(dataset.PushItem{Q: "退货期限是多久？", A: "三十天", Indexes: []dataset.Index{"怎么退货"}}, dataset.PushItem{Q: "运费谁付？", A: "买家"})
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

	mode.Store("down")
	if d := push(dataset.PushItem{Q: "换货呢？"}); d.FailedAmount != 1 {
		t.Fatalf("after the endpoint went down: %+v", d)
	}
	fs, _ := s.TrainingFailures(ctx, "team", c.ID, 10)
	if len(fs) != 1 || !strings.Contains(fs[0].LastError, "Rate limit reached") {
		t.Fatalf("failures = %+v", fs)
	}
	if _, err := s.Search(ctx, dataset.SearchRequest{TeamID: "team", DatasetIDs: []string{ds.ID}, Text: "x"}); err == nil ||
		!strings.Contains(err.Error(), "Rate limit reached") {
		t.Fatalf("search with the endpoint down = %v", err)
	}
}
