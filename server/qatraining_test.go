package server_test

import (
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
	"time"

	"github.com/chatgate/chatgate/dataset"
	"github.com/chatgate/chatgate/internal/postgres/pgtest"
	"github.com/chatgate/chatgate/server"
)

// qaUpstream is a loopback OpenAI-compatible provider that answers every
// chat completion by streaming Q/A pairs a few characters at a time, with
// usage in the last chunk, as OpenAI does with include_usage.
type qaUpstream struct {
	*httptest.Server
	calls      atomic.Int64
	prompt     int // the usage it reports
	completion int
	mu         sync.Mutex
	prompts    []string
	models     []string // the model each call named
	// reply, when set, is the answer to a prompt instead of qaAnswer's
	// pairs (see newChatUpstream); down, when set, makes every call fail
	// with 503.
	reply func(prompt string) string
	down  atomic.Bool
}

// qaAnswer is what the fake model writes for a text: two pairs about it.
func qaAnswer(text string) string {
	return fmt.Sprintf("Q1: What does the note %q say?\nA1: %s\n\nQ2: How long is the note %q?\nA2: %d bytes.", text, text, text, len(text))
}

// qaText finds the text in a QA prompt: FastGPT's template quotes it.
func qaText(prompt string) string {
	_, rest, _ := strings.Cut(prompt, `"""`)
	text, _, _ := strings.Cut(rest, `"""`)
	return text
}

func newQAUpstream(t *testing.T) *qaUpstream { return newChatUpstream(t, nil) }

// newChatUpstream is a qaUpstream that answers prompts with reply (nil:
// qaAnswer's pairs).
func newChatUpstream(t *testing.T, reply func(prompt string) string) *qaUpstream {
	u := &qaUpstream{prompt: 120, completion: 30, reply: reply}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Model    string `json:"model"`
			Stream   bool   `json:"stream"`
			Messages []struct {
				Content string `json:"content"`
			} `json:"messages"`
		}
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path != "/v1/chat/completions" || json.Unmarshal(body, &req) != nil || !req.Stream || len(req.Messages) == 0 {
			http.Error(w, `{"error":{"message":"unexpected request"}}`, http.StatusBadRequest)
			return
		}
		u.calls.Add(1)
		prompt := req.Messages[len(req.Messages)-1].Content
		u.mu.Lock()
		u.prompts = append(u.prompts, prompt)
		u.models = append(u.models, req.Model)
		u.mu.Unlock()
		if u.down.Load() {
			http.Error(w, `{"error":{"message":"the model is overloaded"}}`, http.StatusServiceUnavailable)
			return
		}
		answer := qaAnswer(qaText(prompt))
		if u.reply != nil {
			answer = u.reply(prompt)
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		chunk := func(choices string) {
			fmt.Fprintf(w, "data: {\"id\":\"qa-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":%q,\"choices\":%s}\n\n", req.Model, choices)
			fl.Flush()
		}
		chunk(`[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]`)
		for s := answer; s != ""; {
			n := min(7, len(s))
			d, _ := json.Marshal(map[string]string{"content": s[:n]})
			chunk(fmt.Sprintf(`[{"index":0,"delta":%s,"finish_reason":null}]`, d))
			s = s[n:]
		}
		chunk(`[{"index":0,"delta":{},"finish_reason":"stop"}]`)
		fmt.Fprintf(w, "data: {\"id\":\"qa-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":%q,\"choices\":[],\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%d,\"total_tokens\":%d}}\n\ndata: [DONE]\n\n",
			req.Model, u.prompt, u.completion, u.prompt+u.completion)
		fl.Flush()
	}))
	t.Cleanup(u.Close)
	return u
}

// QA-mode training through the real chat/llm OpenAI client, the way
// an operator configures it: the model writes pairs without a token
// callback (it used to be called nil and kill the process, and the queued
// item killed every restart). The pairs are stored and the model's usage
// lands on the bill next to the embedding of the pairs.
func TestQATrainingThroughRealModel(t *testing.T) {
	for _, tc := range []struct {
		name   string
		config func(cfg *server.Config, upstream string)
	}{
		{"OPENAI_BASE_URL and CHATGATE_QA_MODEL", func(cfg *server.Config, upstream string) {
			env := map[string]string{"OPENAI_BASE_URL": upstream + "/v1", "OPENAI_API_KEY": "sk-upstream", "CHATGATE_QA_MODEL": "gpt-qa"}
			cfg.ApplyEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		}},
		{"declared model as dataset.qa_model", func(cfg *server.Config, upstream string) {
			cfg.Models = []server.ModelConfig{{Name: "writer", Provider: "openai", BaseURL: upstream + "/v1", Model: "gpt-qa"}}
			cfg.Dataset.QAModel = "writer"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newQAUpstream(t)
			dir := t.TempDir()
			base := blStart(t, dir, func(cfg *server.Config) { tc.config(cfg, up.URL) })
			_, key := blKey(t, base, map[string]any{"name": "importer"})
			var ds, coll, bill string
			blCall(t, "POST", base+"/api/core/dataset/create", key, `{"name":"films"}`, &ds)
			blCall(t, "POST", base+"/api/core/dataset/collection/create", key, fmt.Sprintf(`{"datasetId":%q,"name":"notes"}`, ds), &coll)
			blCall(t, "POST", base+"/api/common/bill/createTrainingBill", key, `{"name":"qa"}`, &bill)

			texts := []string{"Hero is a 2002 wuxia film directed by Zhang Yimou.", "The film stars Jet Li as Nameless."}
			body, _ := json.Marshal(map[string]any{"collectionId": coll, "mode": "qa", "prompt": "film facts", "billId": bill,
				"data": []map[string]string{{"q": texts[0]}, {"q": texts[1]}}})
			var res struct {
				InsertLen int `json:"insertLen"`
			}
			blCall(t, "POST", base+"/api/core/dataset/data/pushData", key, string(body), &res)
			if res.InsertLen != 2 {
				t.Fatalf("insertLen %d", res.InsertLen)
			}

			// two items, two pairs each
			var list struct {
				List []struct {
					Q, A string
				} `json:"list"`
				Total int `json:"total"`
			}
			deadline := time.Now().Add(20 * time.Second)
			for {
				blCall(t, "GET", base+"/api/core/dataset/data/list?collectionId="+coll, key, "", &list)
				if list.Total >= 4 || time.Now().After(deadline) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if list.Total != 4 {
				var d struct {
					TrainingAmount, FailedAmount int
				}
				blCall(t, "GET", base+"/api/core/dataset/collection/detail?id="+coll, key, "", &d)
				t.Fatalf("%d data after training (training %d, failed %d); want the 4 pairs", list.Total, d.TrainingAmount, d.FailedAmount)
			}
			var got []string
			for _, d := range list.List {
				got = append(got, d.Q+" => "+d.A)
			}
			slices.Sort(got)
			var want []string
			for _, text := range texts {
				want = append(want, fmt.Sprintf("What does the note %q say? => %s", text, text),
					fmt.Sprintf("How long is the note %q? => %d bytes.", text, len(text)))
			}
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("stored pairs %q", got)
			}
			if n := up.calls.Load(); n != 2 {
				t.Fatalf("the QA model was called %d times for 2 items", n)
			}
			up.mu.Lock()
			for i, p := range up.prompts {
				if !strings.Contains(p, "film facts") || !(strings.Contains(p, texts[0]) || strings.Contains(p, texts[1])) {
					t.Errorf("prompt %d does not carry the theme and the text: %q", i, p)
				}
			}
			up.mu.Unlock()

			// the bill: the model's reported tokens for both items, and the
			// embedding of the stored pairs
			var b struct {
				TotalTokens int `json:"totalTokens"`
				Items       []struct {
					Module string `json:"module"`
					Model  string `json:"model"`
					Tokens int    `json:"tokens"`
				} `json:"items"`
			}
			wantQA := 2 * (up.prompt + up.completion)
			for {
				blCall(t, "GET", base+"/api/common/bill/detail?id="+bill, key, "", &b)
				qa := 0
				for _, it := range b.Items {
					if it.Module == "qa" {
						qa = it.Tokens
					}
				}
				if (qa == wantQA && len(b.Items) == 2) || time.Now().After(deadline) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			var qa, emb int
			for _, it := range b.Items {
				switch {
				case it.Module == "qa" && it.Model != "":
					qa += it.Tokens
				case it.Module == "embedding" && it.Model == "local":
					emb += it.Tokens
				default:
					t.Errorf("unexpected bill item %+v", it)
				}
			}
			if qa != wantQA || emb == 0 || b.TotalTokens != qa+emb {
				t.Fatalf("bill %+v: want %d QA tokens and the pairs' embedding", b, wantQA)
			}
		})
	}
}

// dataset/create as FastGPT's docs write it names an agentModel: that
// dataset's QA training calls it (through the real adapter), another
// dataset's the configured QA model; a name no model answers is refused
// and creates nothing. Embedded and on Postgres.
func TestDatasetAgentModelTrainsWithIt(t *testing.T) {
	up := newQAUpstream(t)
	config := func(cfg *server.Config) {
		cfg.Models = []server.ModelConfig{{Name: "writer", Provider: "openai", BaseURL: up.URL + "/v1", Model: "gpt-qa"},
			{Name: "gpt-3.5-turbo-16k", Provider: "openai", BaseURL: up.URL + "/v1"}}
		cfg.Dataset.QAModel = "writer"
		cfg.Dataset.ExtraEmbedders = map[string]dataset.Embedder{"text-embedding-ada-002": dataset.LocalEmbedder{}}
	}
	each := map[string]func(*testing.T) string{
		"embedded": func(t *testing.T) string { return blStart(t, t.TempDir(), config) },
		"postgres": func(t *testing.T) string {
			dsn := pgtest.DSN(t)
			return blStart(t, t.TempDir(), func(cfg *server.Config) { config(cfg); cfg.Storage.DSN = dsn })
		},
	}
	for _, name := range []string{"embedded", "postgres"} {
		t.Run(name, func(t *testing.T) {
			base := each[name](t)
			_, key := blKey(t, base, map[string]any{"name": "importer"})
			dvRefused(t, "POST", base+"/api/core/dataset/create", key, `{"name":"x","agentModel":"extractive"}`, 400, "agentModel")
			var list []json.RawMessage
			blCall(t, "GET", base+"/api/core/dataset/list", key, "", &list)
			if len(list) != 0 {
				t.Fatalf("a refused create left %d datasets", len(list))
			}
			var ds, plain string
			blCall(t, "POST", base+"/api/core/dataset/create", key, `{
    "parentId": null,
    "type": "dataset",
    "name":"测试",
    "intro":"介绍",
    "avatar": "",
    "vectorModel": "text-embedding-ada-002",
    "agentModel": "gpt-3.5-turbo-16k"
}`, &ds)
			blCall(t, "POST", base+"/api/core/dataset/create", key, `{"name":"plain"}`, &plain)
			var detail struct{ AgentModel, VectorModel string }
			blCall(t, "GET", base+"/api/core/dataset/detail?id="+ds, key, "", &detail)
			if detail.AgentModel != "gpt-3.5-turbo-16k" || detail.VectorModel != "text-embedding-ada-002" {
				t.Fatalf("detail %+v", detail)
			}
			before := up.calls.Load()
			for i, id := range []string{ds, plain} {
				coll := dvCollection(t, base, key, id, "notes")
				body, _ := json.Marshal(map[string]any{"collectionId": coll, "mode": "qa",
					"data": []map[string]string{{"q": fmt.Sprintf("note %d of %s", i, name)}}})
				blCall(t, "POST", base+"/api/core/dataset/data/pushData", key, string(body), nil)
				for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
					var c struct{ TrainingAmount, DataAmount int }
					blCall(t, "GET", base+"/api/core/dataset/collection/detail?id="+coll, key, "", &c)
					if c.TrainingAmount == 0 && c.DataAmount == 2 {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("collection of %s not trained: %+v", id, c)
					}
				}
			}
			up.mu.Lock()
			got := slices.Clone(up.models[before:])
			up.mu.Unlock()
			if !slices.Equal(got, []string{"gpt-3.5-turbo-16k", "gpt-qa"}) {
				t.Fatalf("the upstream was asked for %q; want the agentModel, then the QA model", got)
			}
		})
	}
}
