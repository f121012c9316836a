package server_test

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chatgate/chatgate/billing"
	"github.com/chatgate/chatgate/dataset/rerank/reranktest"
	"github.com/chatgate/chatgate/internal/postgres/pgtest"
	"github.com/chatgate/chatgate/server"
)

// rrEndpoint is a loopback rerank endpoint that knows who directed Hero,
// as a cross-encoder would: a document naming Zhang Yimou is relevant
// (1), any other scores half the share of the query's words it holds; the
// answer reports 17 tokens. It fails with 500 while Fail is set, and
// checks the key and model it is sent.
type rrEndpoint struct{ *reranktest.Endpoint }

func newRREndpoint(t *testing.T) *rrEndpoint {
	t.Helper()
	return &rrEndpoint{reranktest.New(t, func(query string, docs []string) []float64 {
		words := strings.Fields(strings.ToLower(query))
		scores := make([]float64, len(docs))
		for i, d := range docs {
			if strings.Contains(d, "Zhang Yimou") {
				scores[i] = 1
				continue
			}
			n := 0
			for _, w := range words {
				if slices.Contains(strings.Fields(strings.ToLower(d)), w) {
					n++
				}
			}
			scores[i] = float64(n) / float64(len(words)) / 2
		}
		return scores
	}, reranktest.Options{Key: "rr-key", Model: "rr-upstream", Tokens: 17,
		FailStatus: http.StatusInternalServerError, FailDetail: "reranker crashed"})}
}

// rrConfig declares the endpoint as dataset.rerank, its key read from the
// environment variable the config names.
func (e *rrEndpoint) rrConfig(c *server.Config) {
	c.Dataset.Rerank = server.RerankConfig{Name: "rr-model", BaseURL: e.BaseURL, APIKeyEnv: "CHATGATE_TEST_RERANK_KEY", Model: "rr-upstream"}
	c.ApplyEnv(func(k string) (string, bool) {
		if k == "CHATGATE_TEST_RERANK_KEY" {
			return "rr-key", true
		}
		return "", false
	})
}

// searchTest as FastGPT documents it (less the query-extension fields),
// with usingReRank: true, on a server whose config declares a rerank
// model: the hits come in the reranker's order, and what it cost is in the
// ledger as its own record (source search, module rerank, the declared
// name), on the bill the search names, and charged to the key. A failed
// rerank answers 502 and bills nothing.
func TestDocSearchTestRerank(t *testing.T) {
	for _, deploy := range []string{"embedded", "postgres"} {
		t.Run(deploy, func(t *testing.T) {
			rr := newRREndpoint(t)
			mutate := rr.rrConfig
			if deploy == "postgres" {
				dsn := pgtest.DSN(t)
				mutate = func(c *server.Config) { rr.rrConfig(c); c.Storage.DSN = dsn }
			}
			base := blStart(t, t.TempDir(), mutate)
			keyID, key := blKey(t, base, map[string]any{"name": "kb"})
			ds := dvDataset(t, base, key, "films")
			coll := dvCollection(t, base, key, ds, "faq")
			// the embedder ranks the question worded like the query first;
			// the reranker, the one that answers it
			dvPush(t, base, key, coll, "Who directed the film Hero?", "Which director made Hero in 2002",
				"Hero: director Zhang Yimou", "Who directed the film Hero again?")
			// training usage is delivered in the background: wait for it,
			// so that what follows counts only the searches
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				if slices.ContainsFunc(blUsage(t, base, "?keyId="+keyID).List, func(r billing.Record) bool {
					return r.Source == billing.SourceTraining
				}) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the training usage never reached the ledger")
				}
			}
			var bill string
			blCall(t, "POST", base+"/api/support/wallet/usage/createTrainingUsage", key, fmt.Sprintf(`{"name":"search","datasetId":%q}`, ds), &bill)

			body := func(rerank bool) string {
				return fmt.Sprintf(`{
    "datasetId": %q,
    "text": "which director made hero",
    "limit": 5000,
    "similarity": 0,
    "searchMode": "embedding",
    "usingReRank": %v,
    "billId": %q
}`, ds, rerank, bill)
			}
			var plain, reranked []struct {
				Q     string  `json:"q"`
				Score float64 `json:"score"`
			}
			blCall(t, "POST", base+"/api/core/dataset/searchTest", key, body(false), &plain)
			if rr.Calls.Load() != 0 {
				t.Fatal("usingReRank false called the reranker")
			}
			blCall(t, "POST", base+"/api/core/dataset/searchTest", key, body(true), &reranked)
			if len(reranked) != 4 || reranked[0].Q != "Hero: director Zhang Yimou" || reranked[0].Score != 1 || rr.Calls.Load() != 1 {
				t.Fatalf("reranked hits %+v after %d rerank calls", reranked, rr.Calls.Load())
			}
			if plain[0].Q == reranked[0].Q {
				t.Fatalf("retrieval already ranks %q first; the test shows nothing", plain[0].Q)
			}

			var rerankRecs []billing.Record
			for _, r := range blUsage(t, base, "?keyId="+keyID).List {
				if r.Module == "rerank" {
					rerankRecs = append(rerankRecs, r)
				}
			}
			if len(rerankRecs) != 1 {
				t.Fatalf("%d rerank records; want 1", len(rerankRecs))
			}
			if r := rerankRecs[0]; r.Source != billing.SourceSearch || r.Model != "rr-model" || r.InputTokens != 17 ||
				r.DatasetID != ds || r.BillID != bill || r.Points <= 0 {
				t.Fatalf("rerank record %+v; want source search, model rr-model, the 17 tokens reported, on the bill", r)
			}
			var b billing.BillDetail
			blCall(t, "GET", base+"/api/common/bill/detail?id="+bill, key, "", &b)
			var items []string
			for _, it := range b.Items {
				items = append(items, fmt.Sprintf("%s/%s/%d", it.Module, it.Model, it.Tokens))
			}
			slices.Sort(items)
			if len(items) != 2 || items[0] != "rerank/rr-model/17" || !strings.HasPrefix(items[1], "search/local/") {
				t.Fatalf("bill items %v; want the query embeddings and the rerank's 17 tokens", items)
			}
			charged := blKeyUsage(t, base, keyID)
			sum := 0.0
			for _, r := range blUsage(t, base, "?keyId="+keyID).List {
				sum += r.Points
			}
			if !blNear(charged, sum) {
				t.Fatalf("key charged %v; its records sum to %v", charged, sum)
			}

			// the reranker fails: 502 naming it, nothing billed
			rr.Fail.Store(true)
			before := len(blUsage(t, base, "?keyId="+keyID).List)
			dvRefused(t, "POST", base+"/api/core/dataset/searchTest", key, body(true), 502, "rr-model")
			if after := len(blUsage(t, base, "?keyId="+keyID).List); after != before {
				t.Fatalf("a failed rerank wrote %d usage records", after-before)
			}
			if !blNear(blKeyUsage(t, base, keyID), charged) {
				t.Fatal("a failed rerank charged the key")
			}
		})
	}
}

// Without dataset.rerank, usingReRank answers 400 rerank_model_unavailable
// and records nothing; a rerank declared by halves stops the server.
func TestDocSearchTestRerankUnavailable(t *testing.T) {
	dvEach(t, func(t *testing.T, base string) {
		keyID, key := blKey(t, base, map[string]any{"name": "kb"})
		ds := dvDataset(t, base, key, "films")
		dvPush(t, base, key, dvCollection(t, base, key, ds, "faq"), "Who directed Hero?")
		// training usage is delivered in the background: count searches
		searches := func() int {
			n := 0
			for _, r := range blUsage(t, base, "?keyId="+keyID).List {
				if r.Source == billing.SourceSearch {
					n++
				}
			}
			return n
		}
		before := searches()
		env := blCallAny(t, "POST", base+"/api/core/dataset/searchTest", key,
			fmt.Sprintf(`{"datasetId":%q,"text":"导演是谁","limit":5000,"similarity":0,"searchMode":"embedding","usingReRank":true}`, ds))
		if env.Code != 400 || env.StatusText != "rerank_model_unavailable" || !strings.Contains(env.Message, "dataset.rerank") {
			t.Fatalf("usingReRank without a rerank model: %+v", env)
		}
		if after := searches(); after != before {
			t.Fatalf("a refused search wrote %d search records", after-before)
		}
	})
	cfg := server.Config{RootKey: blRoot, Stderr: io.Discard}
	cfg.Server.Data = t.TempDir()
	cfg.Logging.Level = "error"
	cfg.Dataset.Rerank = server.RerankConfig{Model: "rr-upstream"}
	if s, err := server.New(cfg); err == nil || !strings.Contains(err.Error(), "dataset.rerank needs base_url and model") {
		if s != nil {
			_ = s.Close(t.Context())
		}
		t.Fatalf("a rerank without base_url: %v", err)
	}
}
