package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	goopenai "github.com/sashabaranov/go-openai"

	openai "github.com/openai/openai-go"
	"github.com/openai/openai-go/option"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/dataset"
	"github.com/chatgate/chatgate/server"
)

// ccFacts fill the knowledge base behind the default app, so that the
// offline extractive model answers each question with a different text: a
// stream that repeated another answer, or an answer cut short, shows.
var ccFacts = []struct{ q, a, ask string }{
	{"What does the quick brown fox do?", "The quick brown fox jumps over the lazy dog.", "what does the quick brown fox do"},
	{"Who painted the Mona Lisa?", "Leonardo da Vinci painted the Mona Lisa, in Florence.", "who painted the mona lisa"},
	{"电影《铃芽之旅》的导演是谁?", "电影《铃芽之旅》的导演是新海诚。", "铃芽之旅的导演是谁"},
}

// ccEnv is the real reference server on loopback, its keys made through
// s.Keys.
type ccEnv struct {
	base string
	s    *server.Server
	// appKey is bound to the default app; globalKey is a global key (data
	// scopes, no app); agentKey has the chat scope and no app, so it names
	// the app in "model"; revokedKey was an app key.
	appKey, globalKey, agentKey, revokedKey string
}

// ccServe starts server.New on a t.TempDir data directory and a
// 127.0.0.1:0 listener; Serve's error is checked at cleanup.
func ccServe(t testing.TB, mutate func(*server.Config)) (string, *server.Server) {
	t.Helper()
	cfg := server.Config{Stderr: io.Discard} // the generated admin key is not needed
	cfg.Server.Data = t.TempDir()
	cfg.Logging.Level = "error"
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = s.Close(context.Background())
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String(), s
}

// ccKey creates a key through the server's auth.Manager.
func ccKey(t testing.TB, s *server.Server, spec auth.KeySpec) (*auth.Key, string) {
	t.Helper()
	k, secret, err := s.Keys.Create(context.Background(), spec)
	if err != nil {
		t.Fatalf("create key %q: %v", spec.Name, err)
	}
	return k, secret
}

// ccKnowledge puts facts into a new dataset of the default team, waits for
// training to finish and attaches the dataset to the app.
func ccKnowledge(t testing.TB, s *server.Server, appID string, facts []dataset.PushItem) {
	t.Helper()
	ctx := context.Background()
	ds, err := s.Datasets.CreateDataset(ctx, auth.DefaultTeam, "facts", "")
	if err != nil {
		t.Fatal(err)
	}
	col, err := s.Datasets.CreateCollection(ctx, auth.DefaultTeam, ds.ID, "facts")
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Datasets.Push(ctx, dataset.PushRequest{TeamID: auth.DefaultTeam, CollectionID: col.ID, Mode: dataset.ModeIndex, Data: facts})
	if err != nil || res.InsertLen != len(facts) {
		t.Fatalf("push: %+v %v", res, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		d, err := s.Datasets.Collection(ctx, auth.DefaultTeam, col.ID)
		if err != nil {
			t.Fatal(err)
		}
		if d.TrainingAmount == 0 && d.DataAmount == len(facts) {
			break
		}
		if d.FailedAmount > 0 || time.Now().After(deadline) {
			t.Fatalf("training did not finish: %+v", d)
		}
		time.Sleep(10 * time.Millisecond)
	}
	app, err := s.Chat.App(ctx, auth.DefaultTeam, appID)
	if err != nil {
		t.Fatal(err)
	}
	app.DatasetIDs = []string{ds.ID}
	if err := s.Chat.SaveApp(ctx, app); err != nil {
		t.Fatal(err)
	}
}

func ccStart(t *testing.T) *ccEnv {
	t.Helper()
	base, s := ccServe(t, nil)
	items := make([]dataset.PushItem, len(ccFacts))
	for i, f := range ccFacts {
		items[i] = dataset.PushItem{Q: f.q, A: f.a}
	}
	ccKnowledge(t, s, chat.DefaultAppID, items)
	env := &ccEnv{base: base, s: s}
	_, env.appKey = ccKey(t, s, auth.KeySpec{Name: "app", AppID: chat.DefaultAppID})
	_, env.globalKey = ccKey(t, s, auth.KeySpec{Name: "global"})
	_, env.agentKey = ccKey(t, s, auth.KeySpec{Name: "agent", Scopes: auth.Scopes{auth.ScopeChat}})
	revoked, secret := ccKey(t, s, auth.KeySpec{Name: "revoked", AppID: chat.DefaultAppID})
	if err := s.Keys.Revoke(context.Background(), auth.DefaultTeam, revoked.ID, "test"); err != nil {
		t.Fatal(err)
	}
	env.revokedKey = secret
	return env
}

// ccBadKeys are the keys every SDK must see rejected with a typed error.
func (e *ccEnv) badKeys() []struct {
	name, key, typ, code string
	status               int
} {
	return []struct {
		name, key, typ, code string
		status               int
	}{
		{"unknown", "cg-0123456789abcdefghijklmnopqrstuv", "authentication_error", "invalid_api_key", 401},
		{"revoked", e.revokedKey, "authentication_error", "", 401},
		{"global", e.globalKey, "permission_error", "app_key_required", 403},
	}
}

func TestClientsOpenAIGo(t *testing.T) {
	env := ccStart(t)
	ctx := context.Background()
	for _, prefix := range []string{"/api/v1", "/v1"} {
		t.Run(prefix, func(t *testing.T) {
			client := func(key string) openai.Client {
				return openai.NewClient(option.WithBaseURL(env.base+prefix), option.WithAPIKey(key), option.WithMaxRetries(0))
			}
			c := client(env.appKey)
			answers := map[string]bool{}
			for _, f := range ccFacts {
				params := openai.ChatCompletionNewParams{Model: "ignored-for-app-keys",
					Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(f.ask)}}
				res, err := c.Chat.Completions.New(ctx, params)
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Choices) != 1 {
					t.Fatalf("%d choices", len(res.Choices))
				}
				got := res.Choices[0].Message.Content
				if got != f.a || res.Choices[0].FinishReason != "stop" || res.Choices[0].Message.Role != "assistant" ||
					res.Object != "chat.completion" || res.Model != chat.DefaultAppID || !strings.HasPrefix(res.ID, "chatcmpl-") {
					t.Fatalf("%q: non-stream %+v, want answer %q", f.ask, res, f.a)
				}
				if res.Usage.PromptTokens <= 0 || res.Usage.CompletionTokens <= 0 ||
					res.Usage.TotalTokens != res.Usage.PromptTokens+res.Usage.CompletionTokens {
					t.Fatalf("%q: usage %+v", f.ask, res.Usage)
				}
				answers[got] = true

				// The stream, accumulated by the SDK, gives the same answer and usage.
				params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
				stream := c.Chat.Completions.NewStreaming(ctx, params)
				var (
					acc        openai.ChatCompletionAccumulator
					deltas     int
					usageLast  bool
					usageCount int
				)
				for stream.Next() {
					ch := stream.Current()
					if !acc.AddChunk(ch) {
						t.Fatalf("chunk %d does not continue the completion: %s", deltas, ch.RawJSON())
					}
					usageLast = false
					if len(ch.Choices) == 0 {
						usageCount++
						usageLast = true
						if ch.Usage.PromptTokens != res.Usage.PromptTokens || ch.Usage.CompletionTokens != res.Usage.CompletionTokens {
							t.Fatalf("%q: stream usage %+v, non-stream %+v", f.ask, ch.Usage, res.Usage)
						}
					} else if ch.Choices[0].Delta.Content != "" {
						deltas++
					}
				}
				if err := stream.Err(); err != nil {
					t.Fatal(err)
				}
				if acc.Choices[0].Message.Content != got || acc.Choices[0].FinishReason != "stop" {
					t.Fatalf("%q: stream gave %q (finish %q), non-stream %q", f.ask, acc.Choices[0].Message.Content, acc.Choices[0].FinishReason, got)
				}
				if deltas < 3 || usageCount != 1 || !usageLast {
					t.Fatalf("%q: %d content chunks, %d usage chunks (last: %v)", f.ask, deltas, usageCount, usageLast)
				}

				// Without include_usage there is no usage chunk.
				params.StreamOptions = openai.ChatCompletionStreamOptionsParam{}
				stream = c.Chat.Completions.NewStreaming(ctx, params)
				var plain strings.Builder
				for stream.Next() {
					ch := stream.Current()
					if len(ch.Choices) == 0 || ch.Usage.TotalTokens != 0 {
						t.Fatalf("usage chunk without include_usage: %s", ch.RawJSON())
					}
					plain.WriteString(ch.Choices[0].Delta.Content)
				}
				if err := stream.Err(); err != nil || plain.String() != got {
					t.Fatalf("plain stream %q, %v", plain.String(), err)
				}
			}
			if len(answers) != len(ccFacts) {
				t.Fatalf("questions were not told apart: %v", answers)
			}

			// A chat-scoped key without an app names the app in "model".
			params := openai.ChatCompletionNewParams{Model: chat.DefaultAppID,
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(ccFacts[0].ask)}}
			agent := client(env.agentKey)
			if res, err := agent.Chat.Completions.New(ctx, params); err != nil || res.Choices[0].Message.Content != ccFacts[0].a {
				t.Fatalf("agent key: %v %+v", err, res)
			}
			params.Model = "no-such-app"
			_, err := agent.Chat.Completions.New(ctx, params)
			var apiErr *openai.Error
			if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 {
				t.Fatalf("agent key, unknown app: %v", err)
			}

			params.Model = chat.DefaultAppID
			for _, bk := range env.badKeys() {
				bad := client(bk.key)
				_, err := bad.Chat.Completions.New(ctx, params)
				var apiErr *openai.Error
				if !errors.As(err, &apiErr) || apiErr.StatusCode != bk.status || apiErr.Type != bk.typ ||
					(bk.code != "" && apiErr.Code != bk.code) || apiErr.Message == "" {
					t.Fatalf("%s key: err = %v, want a typed %d %s", bk.name, err, bk.status, bk.code)
				}
				// A stream fails the same way, before any chunk.
				stream := bad.Chat.Completions.NewStreaming(ctx, params)
				if stream.Next() {
					t.Fatalf("%s key: stream gave a chunk: %s", bk.name, stream.Current().RawJSON())
				}
				if err := stream.Err(); !errors.As(err, &apiErr) || apiErr.StatusCode != bk.status || (bk.code != "" && apiErr.Code != bk.code) {
					t.Fatalf("%s key: stream err = %v", bk.name, err)
				}
			}
		})
	}
}

func TestClientsGoOpenAI(t *testing.T) {
	env := ccStart(t)
	ctx := context.Background()
	for _, prefix := range []string{"/api/v1", "/v1"} {
		t.Run(prefix, func(t *testing.T) {
			client := func(key string) *goopenai.Client {
				cfg := goopenai.DefaultConfig(key)
				cfg.BaseURL = env.base + prefix
				return goopenai.NewClientWithConfig(cfg)
			}
			c := client(env.appKey)
			answers := map[string]bool{}
			for _, f := range ccFacts {
				req := goopenai.ChatCompletionRequest{Model: "ignored-for-app-keys",
					Messages: []goopenai.ChatCompletionMessage{{Role: goopenai.ChatMessageRoleUser, Content: f.ask}}}
				res, err := c.CreateChatCompletion(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Choices) != 1 {
					t.Fatalf("%d choices", len(res.Choices))
				}
				got := res.Choices[0].Message.Content
				if got != f.a || res.Choices[0].FinishReason != goopenai.FinishReasonStop || res.Object != "chat.completion" ||
					res.Model != chat.DefaultAppID || res.Usage.PromptTokens <= 0 || res.Usage.CompletionTokens <= 0 {
					t.Fatalf("%q: non-stream %+v, want answer %q", f.ask, res, f.a)
				}
				answers[got] = true

				req.Stream = true
				req.StreamOptions = &goopenai.StreamOptions{IncludeUsage: true}
				st, err := c.CreateChatCompletionStream(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				var (
					text   strings.Builder
					ids    = map[string]bool{}
					usage  *goopenai.Usage
					finish goopenai.FinishReason
					deltas int
				)
				for {
					ch, err := st.Recv()
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					ids[ch.ID] = true
					if ch.Usage != nil {
						if usage != nil || len(ch.Choices) != 0 {
							t.Fatalf("second usage chunk, or usage with choices: %+v", ch)
						}
						usage = ch.Usage
						continue
					}
					if usage != nil {
						t.Fatalf("chunk after the usage chunk: %+v", ch)
					}
					if len(ch.Choices) != 1 {
						t.Fatalf("chunk with %d choices", len(ch.Choices))
					}
					if ch.Choices[0].Delta.Content != "" {
						deltas++
					}
					text.WriteString(ch.Choices[0].Delta.Content)
					if ch.Choices[0].FinishReason != "" {
						finish = ch.Choices[0].FinishReason
					}
				}
				st.Close()
				if text.String() != got || finish != goopenai.FinishReasonStop || len(ids) != 1 || deltas < 3 {
					t.Fatalf("%q: stream gave %q (finish %q, ids %v, %d deltas), non-stream %q", f.ask, text.String(), finish, ids, deltas, got)
				}
				if usage == nil || usage.PromptTokens != res.Usage.PromptTokens || usage.CompletionTokens != res.Usage.CompletionTokens ||
					usage.TotalTokens != res.Usage.TotalTokens {
					t.Fatalf("%q: stream usage %+v, non-stream %+v", f.ask, usage, res.Usage)
				}
			}
			if len(answers) != len(ccFacts) {
				t.Fatalf("questions were not told apart: %v", answers)
			}

			req := goopenai.ChatCompletionRequest{Model: chat.DefaultAppID,
				Messages: []goopenai.ChatCompletionMessage{{Role: goopenai.ChatMessageRoleUser, Content: ccFacts[1].ask}}}
			if res, err := client(env.agentKey).CreateChatCompletion(ctx, req); err != nil || res.Choices[0].Message.Content != ccFacts[1].a {
				t.Fatalf("agent key: %v %+v", err, res)
			}

			for _, bk := range env.badKeys() {
				req.Stream, req.StreamOptions = false, nil
				_, err := client(bk.key).CreateChatCompletion(ctx, req)
				var apiErr *goopenai.APIError
				if !errors.As(err, &apiErr) || apiErr.HTTPStatusCode != bk.status || apiErr.Type != bk.typ ||
					(bk.code != "" && apiErr.Code != bk.code) || apiErr.Message == "" {
					t.Fatalf("%s key: err = %#v, want a typed %d %s", bk.name, err, bk.status, bk.code)
				}
				req.Stream = true
				_, err = client(bk.key).CreateChatCompletionStream(ctx, req)
				if !errors.As(err, &apiErr) || apiErr.HTTPStatusCode != bk.status || (bk.code != "" && apiErr.Code != bk.code) {
					t.Fatalf("%s key: stream err = %v", bk.name, err)
				}
			}
		})
	}
}

// An upstream that fails after the stream has started must reach both SDKs
// as an error, not as an answer that merely ends early.
func TestClientsMidStreamFailure(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		for _, word := range []string{"half ", "an "} {
			fmt.Fprintf(w, "data: {\"id\":\"u\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":%q},\"finish_reason\":null}]}\n\n", word)
		}
		w.(http.Flusher).Flush()
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			_ = conn.Close() // cut off: no finish reason, no [DONE]
		}
	}))
	t.Cleanup(up.Close)
	base, s := ccServe(t, func(c *server.Config) {
		c.Models = []server.ModelConfig{{Name: "flaky", Provider: "openai", BaseURL: up.URL + "/v1", APIKey: "upstream-secret"}}
		c.Apps = []server.AppConfig{{ID: "flaky", Name: "flaky", Model: "flaky"}}
	})
	_, key := ccKey(t, s, auth.KeySpec{Name: "flaky", AppID: "flaky"})
	ctx := context.Background()

	oc := openai.NewClient(option.WithBaseURL(base+"/v1"), option.WithAPIKey(key), option.WithMaxRetries(0))
	stream := oc.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{Model: "flaky",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
	var got strings.Builder
	for stream.Next() {
		if ch := stream.Current(); len(ch.Choices) > 0 {
			got.WriteString(ch.Choices[0].Delta.Content)
		}
	}
	if err := stream.Err(); err == nil || got.String() != "half an " {
		t.Fatalf("openai-go: got %q, err %v; want the two words, then an error", got.String(), err)
	}

	gc := goopenai.NewClientWithConfig(func() goopenai.ClientConfig {
		cfg := goopenai.DefaultConfig(key)
		cfg.BaseURL = base + "/api/v1"
		return cfg
	}())
	st, err := gc.CreateChatCompletionStream(ctx, goopenai.ChatCompletionRequest{Model: "flaky", Stream: true,
		Messages: []goopenai.ChatCompletionMessage{{Role: goopenai.ChatMessageRoleUser, Content: "hi"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got.Reset()
	for {
		ch, err := st.Recv()
		if err != nil {
			var apiErr *goopenai.APIError
			if errors.Is(err, io.EOF) || !errors.As(err, &apiErr) || apiErr.Code != "upstream_error" {
				t.Fatalf("go-openai: stream ended with %v after %q; want an upstream_error API error", err, got.String())
			}
			break
		}
		if len(ch.Choices) > 0 {
			got.WriteString(ch.Choices[0].Delta.Content)
		}
	}
	if got.String() != "half an " {
		t.Fatalf("go-openai: got %q before the error", got.String())
	}
}

// ccUpstream is a fake OpenAI-compatible provider that streams words and
// keeps every request it received, headers and body, as text.
type ccUpstream struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []ccSeen
}

type ccSeen struct {
	auth, model string
	dump        string // every header line and the body
}

func ccFakeUpstream(t *testing.T, words ...string) *ccUpstream {
	f := &ccUpstream{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var hdr strings.Builder
		_ = r.Header.Write(&hdr)
		var req struct {
			Model  string `json:"model"`
			Stream bool   `json:"stream"`
		}
		_ = json.Unmarshal(body, &req)
		f.mu.Lock()
		f.reqs = append(f.reqs, ccSeen{auth: r.Header.Get("Authorization"), model: req.Model,
			dump: r.Method + " " + r.URL.String() + "\n" + hdr.String() + "\n" + string(body)})
		f.mu.Unlock()
		if r.URL.Path != "/v1/chat/completions" {
			http.Error(w, `{"error":{"message":"no such route"}}`, http.StatusNotFound)
			return
		}
		chunk := func(delta, finish string) string {
			return fmt.Sprintf(`{"id":"up-1","object":"chat.completion.chunk","created":1,"model":%q,"choices":[{"index":0,"delta":%s,"finish_reason":%s}]}`,
				req.Model, delta, finish)
		}
		if !req.Stream {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"id":"up-1","object":"chat.completion","created":1,"model":%q,"choices":[{"index":0,"message":{"role":"assistant","content":%q},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":%d,"total_tokens":%d}}`,
				req.Model, strings.Join(words, ""), len(words), 9+len(words))
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		fmt.Fprintf(w, "data: %s\n\n", chunk(`{"role":"assistant","content":""}`, "null"))
		for _, word := range words {
			d, _ := json.Marshal(map[string]string{"content": word})
			fmt.Fprintf(w, "data: %s\n\n", chunk(string(d), "null"))
			fl.Flush()
		}
		fmt.Fprintf(w, "data: %s\n\ndata: [DONE]\n\n", chunk("{}", `"stop"`))
		fl.Flush()
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *ccUpstream) seen() []ccSeen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]ccSeen(nil), f.reqs...)
}

// ccRaw posts a chat body with a key and returns the status and body.
func ccRaw(t *testing.T, base, key, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// ccAnswer chats once with each SDK (one streaming, one not) and raw
// (stream with a chatId and variables) and checks the upstream's words
// come back.
func ccAnswer(t *testing.T, base, key, want string) {
	t.Helper()
	ctx := context.Background()
	oc := openai.NewClient(option.WithBaseURL(base+"/v1"), option.WithAPIKey(key), option.WithMaxRetries(0))
	stream := oc.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{Model: "x",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("be brief"), openai.UserMessage("say hello")}})
	var got strings.Builder
	for stream.Next() {
		if ch := stream.Current(); len(ch.Choices) > 0 {
			got.WriteString(ch.Choices[0].Delta.Content)
		}
	}
	if err := stream.Err(); err != nil || got.String() != want {
		t.Fatalf("openai-go stream: %q, %v; want %q", got.String(), err, want)
	}
	cfg := goopenai.DefaultConfig(key)
	cfg.BaseURL = base + "/api/v1"
	res, err := goopenai.NewClientWithConfig(cfg).CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "x",
		Messages: []goopenai.ChatCompletionMessage{{Role: goopenai.ChatMessageRoleUser, Content: "say hello"}}})
	if err != nil || res.Choices[0].Message.Content != want {
		t.Fatalf("go-openai: %+v, %v; want %q", res, err, want)
	}
	status, body := ccRaw(t, base, key, `{"chatId":"c1","stream":true,"detail":true,"variables":{"uid":"u-1"},"messages":[{"role":"user","content":"say hello"}]}`)
	if status != 200 || !strings.Contains(body, "event: answer") || !strings.HasSuffix(strings.TrimSpace(body), "data: [DONE]") {
		t.Fatalf("raw stream: %d %s", status, body)
	}
}

// ccNoChatgateSecret checks what the upstream saw: the provider key, and
// nothing of any chatgate key (whole, or the part after its prefix).
func ccNoChatgateSecret(t *testing.T, seen []ccSeen, wantAuth, wantModel string, secrets ...string) {
	t.Helper()
	if len(seen) == 0 {
		t.Fatal("the upstream saw no request")
	}
	for i, s := range seen {
		if s.auth != wantAuth {
			t.Errorf("request %d: Authorization %q, want %q", i, s.auth, wantAuth)
		}
		if s.model != wantModel {
			t.Errorf("request %d: model %q, want %q", i, s.model, wantModel)
		}
		for _, secret := range secrets {
			tail := secret[len(secret)-16:]
			if strings.Contains(s.dump, secret) || strings.Contains(s.dump, tail) {
				t.Errorf("request %d carried a chatgate key:\n%s", i, s.dump)
			}
		}
	}
}

// The caller's chatgate key authenticates to chatgate only: the upstream
// of a declared model sees the key configured for it, for apps declared in
// the config and apps created through the API alike.
func TestClientsUpstreamKey(t *testing.T) {
	const admin = "cc-admin-key-0123456789abcdef"
	up := ccFakeUpstream(t, "Hello", " from", " upstream")
	base, s := ccServe(t, func(c *server.Config) {
		c.RootKey = admin
		c.Models = []server.ModelConfig{{Name: "gpt-up", Provider: "openai", BaseURL: up.URL + "/v1",
			APIKey: "upstream-secret", Model: "gpt-4o-mini"}}
		c.Apps = []server.AppConfig{{ID: "cfg-app", Name: "from config", Model: "gpt-up",
			SystemPrompt: "You talk to {{uid}}."}}
	})
	status, body := ccRawAdmin(t, base, admin, "POST", "/api/core/app/create", `{"id":"api-app","name":"from the API","model":"gpt-up"}`)
	if status != 200 {
		t.Fatalf("app create: %d %s", status, body)
	}
	secrets := []string{admin}
	for _, app := range []string{"cfg-app", "api-app"} {
		_, key := ccKey(t, s, auth.KeySpec{Name: app, AppID: app})
		secrets = append(secrets, key)
		ccAnswer(t, base, key, "Hello from upstream")
	}
	seen := up.seen()
	if len(seen) != 6 {
		t.Fatalf("upstream saw %d requests, want 6", len(seen))
	}
	ccNoChatgateSecret(t, seen, "Bearer upstream-secret", "gpt-4o-mini", secrets...)
	// the variables reached the prompt, so the body checked above is the real one
	if !strings.Contains(seen[2].dump, "You talk to u-1.") {
		t.Fatalf("system prompt not in the upstream request:\n%s", seen[2].dump)
	}
}

// OPENAI_BASE_URL and OPENAI_API_KEY, read from the environment the way
// the server's command reads them, serve a model name nobody declared; a
// declared model keeps its own upstream and key, and the offline model
// calls nobody.
func TestClientsEnvFallback(t *testing.T) {
	declared := ccFakeUpstream(t, "declared")
	fallback := ccFakeUpstream(t, "from", " env")
	t.Setenv("OPENAI_BASE_URL", fallback.URL+"/v1")
	t.Setenv("OPENAI_API_KEY", "env-secret")
	base, s := ccServe(t, func(c *server.Config) {
		c.ApplyEnv(os.LookupEnv)
		c.Models = []server.ModelConfig{{Name: "gpt-up", Provider: "openai", BaseURL: declared.URL + "/v1", APIKey: "upstream-secret"}}
		c.Apps = []server.AppConfig{
			{ID: "undeclared", Name: "u", Model: "some-upstream-model"},
			{ID: "declared", Name: "d", Model: "gpt-up"},
		}
	})
	if !strings.HasPrefix(fallback.URL, "http://127.0.0.1:") {
		t.Fatalf("fallback is not on loopback: %s", fallback.URL)
	}
	_, uKey := ccKey(t, s, auth.KeySpec{Name: "u", AppID: "undeclared"})
	_, dKey := ccKey(t, s, auth.KeySpec{Name: "d", AppID: "declared"})
	_, mKey := ccKey(t, s, auth.KeySpec{Name: "m", AppID: chat.DefaultAppID})
	ccAnswer(t, base, uKey, "from env")
	ccAnswer(t, base, dKey, "declared")
	if status, body := ccRaw(t, base, mKey, `{"messages":[{"role":"user","content":"hi"}]}`); status != 200 {
		t.Fatalf("offline app: %d %s", status, body)
	}
	ccNoChatgateSecret(t, fallback.seen(), "Bearer env-secret", "some-upstream-model", uKey, dKey, mKey)
	ccNoChatgateSecret(t, declared.seen(), "Bearer upstream-secret", "gpt-up", uKey, dKey, mKey)
	if n, m := len(fallback.seen()), len(declared.seen()); n != 3 || m != 3 {
		t.Fatalf("fallback saw %d requests, declared %d; want 3 each", n, m)
	}
}

func ccRawAdmin(t *testing.T, base, key, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}
