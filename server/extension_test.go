package server_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chatgate/chatgate/billing"
	"github.com/chatgate/chatgate/dataset"
	"github.com/chatgate/chatgate/dataset/datasettest"
	"github.com/chatgate/chatgate/internal/postgres/pgtest"
	"github.com/chatgate/chatgate/server"
)

// searchTest's query extension through the real chat/llm OpenAI
// adapter, against a loopback OpenAI-compatible model (qaUpstream).

// exRewrites is what the model answers for FastGPT's documented question
// 导演是谁 ("who is the director"): rewrites in English, the data's
// language, in a code fence as models like to.
const exRewrites = "```json\n[\"Who directed Hero?\", \"Hero film director\"]\n```"

// exEach runs fn on the embedded default and on Postgres, each with the
// upstream as the OPENAI_BASE_URL provider (which serves any model name,
// the documented gpt-4o-mini included) and mutate applied.
func exEach(t *testing.T, reply func(string) string, mutate func(c *server.Config, upstream string), fn func(t *testing.T, base string, up *qaUpstream)) {
	start := func(t *testing.T, dsn string) {
		up := newChatUpstream(t, reply)
		base := blStart(t, t.TempDir(), func(c *server.Config) {
			c.Storage.DSN = dsn
			if mutate != nil {
				mutate(c, up.URL)
			} else {
				env := map[string]string{"OPENAI_BASE_URL": up.URL + "/v1", "OPENAI_API_KEY": "sk-upstream"}
				c.ApplyEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
			}
		})
		fn(t, base, up)
	}
	t.Run("embedded", func(t *testing.T) { start(t, "") })
	t.Run("postgres", func(t *testing.T) { start(t, pgtest.DSN(t)) })
}

// exKnowledge is a dataset of English notes, trained and in the
// full-text index.
func exKnowledge(t *testing.T, base, key string) string {
	t.Helper()
	ds := dvDataset(t, base, key, "films")
	dvPush(t, base, key, dvCollection(t, base, key, ds, "notes"),
		"Who directed Hero?", "How long is the refund window?", "Which actor plays Nameless?")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var hits []struct{ Q string }
		blCall(t, "POST", base+"/api/core/dataset/searchTest", key, fmt.Sprintf(`{"datasetId":%q,"text":"refund window","searchMode":"fullTextRecall"}`, ds), &hits)
		if len(hits) == 1 {
			return ds
		}
		if time.Now().After(deadline) {
			t.Fatalf("full-text index: %+v", hits)
		}
	}
}

// exRecords is the key's usage records of a module.
func exRecords(t *testing.T, base, keyID, module string) []billing.Record {
	t.Helper()
	var out []billing.Record
	for _, r := range blUsage(t, base, "?keyId="+keyID).List {
		if r.Module == module {
			out = append(out, r)
		}
	}
	return out
}

// The documented request searches the question and the model's rewrites:
// by full text the Chinese question finds nothing in English notes, its
// rewrites find the director's note. The model's tokens (as the upstream
// reports them) are in the ledger as the search's queryExtension module,
// on the bill named, and charged to the key.
func TestDocSearchTestExtension(t *testing.T) {
	exEach(t, func(string) string { return exRewrites }, nil, func(t *testing.T, base string, up *qaUpstream) {
		keyID, key := blKey(t, base, map[string]any{"name": "kb"})
		ds := exKnowledge(t, base, key)
		var hits []struct{ ID, Q string }
		blCall(t, "POST", base+"/api/core/dataset/searchTest", key, fmt.Sprintf(`{"datasetId":%q,"text":"导演是谁","searchMode":"fullTextRecall"}`, ds), &hits)
		if len(hits) != 0 || up.calls.Load() != 0 {
			t.Fatalf("without extension: %+v, %d model calls; want nothing found and no call", hits, up.calls.Load())
		}

		for i, mode := range []string{"fullTextRecall", "embedding", "mixedRecall"} {
			blCall(t, "POST", base+"/api/core/dataset/searchTest", key, datasettest.SearchTestBody(ds, mode, "gpt-4o-mini"), &hits)
			if len(hits) == 0 || hits[0].Q != "Who directed Hero?" || (mode == "fullTextRecall" && len(hits) != 1) {
				t.Fatalf("%s with extension: %+v; want the director's note first", mode, hits)
			}
			if n := up.calls.Load(); n != int64(i+1) {
				t.Fatalf("%d model calls after %d searches", n, i+1)
			}
		}
		up.mu.Lock()
		prompt := up.prompts[0]
		up.mu.Unlock()
		if !strings.Contains(prompt, "导演是谁") || !strings.Contains(prompt, "JSON array") {
			t.Fatalf("the model was asked:\n%s", prompt)
		}
		recs := exRecords(t, base, keyID, dataset.ModuleQueryExtension)
		if len(recs) != 3 {
			t.Fatalf("%d queryExtension records for 3 searches: %+v", len(recs), recs)
		}
		for _, r := range recs {
			if r.Source != billing.SourceSearch || r.Model != "gpt-4o-mini" || r.InputTokens != up.prompt ||
				r.OutputTokens != up.completion || r.DatasetID != ds || r.Points <= 0 {
				t.Fatalf("queryExtension record %+v; want the upstream's %d+%d tokens of gpt-4o-mini, priced", r, up.prompt, up.completion)
			}
		}
		sum := 0.0
		for _, r := range blUsage(t, base, "?keyId="+keyID).List {
			sum += r.Points
		}
		if used := blKeyUsage(t, base, keyID); !blNear(used, sum) {
			t.Fatalf("key charged %v, its records sum %v", used, sum)
		}

		// on a bill, beside the embedding of the queries
		var bill string
		blCall(t, "POST", base+"/api/support/wallet/usage/createTrainingUsage", key, fmt.Sprintf(`{"datasetId":%q,"name":"search"}`, ds), &bill)
		body := strings.Replace(datasettest.SearchTestBody(ds, "embedding", "gpt-4o-mini"), `"text"`, fmt.Sprintf(`"billId": %q, "text"`, bill), 1)
		blCall(t, "POST", base+"/api/core/dataset/searchTest", key, body, nil)
		var b billing.BillDetail
		blCall(t, "GET", base+"/api/common/bill/detail?id="+bill, key, "", &b)
		modules := map[string]bool{}
		for _, it := range b.Items {
			modules[it.Module] = true
		}
		if !modules[dataset.ModuleQueryExtension] || !modules[dataset.ModuleSearch] {
			t.Fatalf("bill %+v; want the extension and the search on it", b)
		}
	})
}

// A model that does not answer with a list is paid for, and the question
// is searched alone; a model that fails answers 502 and nothing is
// recorded.
func TestSearchTestExtensionModelFaults(t *testing.T) {
	exEach(t, func(string) string { return "Sorry, I can only answer questions: Zhang Yimou." }, nil, func(t *testing.T, base string, up *qaUpstream) {
		keyID, key := blKey(t, base, map[string]any{"name": "kb"})
		ds := exKnowledge(t, base, key)
		var hits []struct{ Q string }
		blCall(t, "POST", base+"/api/core/dataset/searchTest", key, datasettest.SearchTestBody(ds, "fullTextRecall", "gpt-4o-mini"), &hits)
		if len(hits) != 0 {
			t.Fatalf("malformed answer: %+v; want what the question alone finds: nothing", hits)
		}
		if recs := exRecords(t, base, keyID, dataset.ModuleQueryExtension); len(recs) != 1 || recs[0].InputTokens != up.prompt {
			t.Fatalf("queryExtension records %+v; want the one call's tokens", recs)
		}

		up.down.Store(true)
		before := len(blUsage(t, base, "?keyId="+keyID).List)
		env := blCallAny(t, "POST", base+"/api/core/dataset/searchTest", key, datasettest.SearchTestBody(ds, "embedding", "gpt-4o-mini"))
		if env.Code != 502 || env.StatusText != "upstream_error" || !strings.Contains(env.Message, "query extension failed") {
			t.Fatalf("model down: %+v; want 502 upstream_error about the query extension", env)
		}
		if after := len(blUsage(t, base, "?keyId="+keyID).List); after != before {
			t.Fatalf("a failed extension left %d usage records", after-before)
		}
		up.down.Store(false)
		blCall(t, "POST", base+"/api/core/dataset/searchTest", key, datasettest.SearchTestBody(ds, "embedding", "gpt-4o-mini"), nil)
	})
}

// Without a language model the documented request is refused naming
// datasetSearchUsingExtensionQuery; with declared models only, a model
// chatgate does not serve, the offline extractive one, or none at all
// without dataset.extension_model are refused naming
// datasetSearchExtensionModel. Nothing is recorded.
func TestSearchTestExtensionRefused(t *testing.T) {
	t.Run("offline default", func(t *testing.T) {
		base := blStart(t, t.TempDir(), nil)
		keyID, key := blKey(t, base, map[string]any{"name": "kb"})
		ds := dvDataset(t, base, key, "films")
		dvRefused(t, "POST", base+"/api/core/dataset/searchTest", key, datasettest.SearchTestBody(ds, "embedding", "gpt-4o-mini"), 400, `"datasetSearchUsingExtensionQuery"`)
		dvRefused(t, "POST", base+"/api/core/dataset/searchTest", key, datasettest.SearchTestBody(ds, "embedding", "extractive"), 400, `"datasetSearchUsingExtensionQuery"`)
		if n := len(blUsage(t, base, "?keyId="+keyID).List); n != 0 {
			t.Fatalf("%d usage records after refused searches", n)
		}
	})
	declared := func(extensionModel string) func(c *server.Config, upstream string) {
		return func(c *server.Config, upstream string) {
			c.Models = []server.ModelConfig{{Name: "writer", Provider: "openai", BaseURL: upstream + "/v1", Model: "gpt-qa"}}
			c.Dataset.ExtensionModel = extensionModel
		}
	}
	t.Run("declared models", func(t *testing.T) {
		exEach(t, func(string) string { return exRewrites }, declared(""), func(t *testing.T, base string, up *qaUpstream) {
			keyID, key := blKey(t, base, map[string]any{"name": "kb"})
			ds := exKnowledge(t, base, key)
			before := len(blUsage(t, base, "?keyId="+keyID).List)
			for model, says := range map[string]string{
				"gpt-4o-mini": `"gpt-4o-mini" is not a chat model chatgate serves`,
				"extractive":  "offline extractive model",
				"":            "no dataset.extension_model is configured",
			} {
				dvRefused(t, "POST", base+"/api/core/dataset/searchTest", key, datasettest.SearchTestBody(ds, "embedding", model), 400, `"datasetSearchExtensionModel"`)
				dvRefused(t, "POST", base+"/api/core/dataset/searchTest", key, datasettest.SearchTestBody(ds, "embedding", model), 400, says)
			}
			if after := len(blUsage(t, base, "?keyId="+keyID).List); after != before || up.calls.Load() != 0 {
				t.Fatalf("refused searches: %d usage records, %d model calls", after-before, up.calls.Load())
			}
			var hits []struct{ Q string }
			blCall(t, "POST", base+"/api/core/dataset/searchTest", key, datasettest.SearchTestBody(ds, "fullTextRecall", "writer"), &hits)
			if len(hits) != 1 || hits[0].Q != "Who directed Hero?" {
				t.Fatalf("declared writer: %+v", hits)
			}
		})
	})
	t.Run("dataset.extension_model", func(t *testing.T) {
		exEach(t, func(string) string { return exRewrites }, declared("writer"), func(t *testing.T, base string, up *qaUpstream) {
			keyID, key := blKey(t, base, map[string]any{"name": "kb"})
			ds := exKnowledge(t, base, key)
			var hits []struct{ Q string }
			blCall(t, "POST", base+"/api/core/dataset/searchTest", key, datasettest.SearchTestBody(ds, "fullTextRecall", ""), &hits)
			if len(hits) != 1 || hits[0].Q != "Who directed Hero?" {
				t.Fatalf("default extension model: %+v", hits)
			}
			if recs := exRecords(t, base, keyID, dataset.ModuleQueryExtension); len(recs) != 1 || recs[0].Model != "writer" {
				t.Fatalf("queryExtension records %+v; want one of writer", recs)
			}
		})
	})
}
