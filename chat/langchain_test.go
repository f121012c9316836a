package chat_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatgate/chatgate/chat"
)

const providerKey = "sk-provider-secret"

// upstream is a fake model provider on loopback. Its behaviour is set per
// test; it records what each request carried and whether the request's
// context ended (the caller cancelled or went away).
type upstream struct {
	srv   *httptest.Server
	serve func(u *upstream, w http.ResponseWriter, r *http.Request, body map[string]any)

	mu      sync.Mutex
	headers []http.Header
	bodies  []map[string]any
	gone    chan struct{} // gets a value when a handler sees r.Context().Done()
	release chan struct{} // closed to end every stall
}

func newUpstream(t *testing.T, serve func(u *upstream, w http.ResponseWriter, r *http.Request, body map[string]any)) *upstream {
	t.Helper()
	u := &upstream{serve: serve, gone: make(chan struct{}, 16), release: make(chan struct{})}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		raw, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(raw, &body)
		u.mu.Lock()
		u.headers = append(u.headers, r.Header.Clone())
		u.bodies = append(u.bodies, body)
		u.mu.Unlock()
		u.serve(u, w, r, body)
	}))
	t.Cleanup(u.close)
	return u
}

func (u *upstream) close() {
	select {
	case <-u.release:
	default:
		close(u.release)
	}
	u.srv.Close()
}

// stall blocks until the request's context ends (and reports it) or the
// test ends.
func (u *upstream) stall(r *http.Request) {
	select {
	case <-r.Context().Done():
		u.gone <- struct{}{}
	case <-u.release:
	}
}

func (u *upstream) requests() ([]http.Header, []map[string]any) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.headers), slices.Clone(u.bodies)
}

func (u *upstream) waitGone(t *testing.T) {
	t.Helper()
	select {
	case <-u.gone:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream request was not cancelled")
	}
}

// OpenAI's streaming protocol.

func sseHeaders(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
}

func sseData(w http.ResponseWriter, data string) {
	fmt.Fprintf(w, "data: %s\n\n", data)
	w.(http.Flusher).Flush()
}

func openAIDelta(content string) string {
	c, _ := json.Marshal(content)
	return `{"id":"up-1","object":"chat.completion.chunk","created":1,"model":"gpt-up","choices":[{"index":0,"delta":{"content":` + string(c) + `},"finish_reason":null}]}`
}

const (
	openAIFinish = `{"id":"up-1","object":"chat.completion.chunk","created":1,"model":"gpt-up","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`
	openAIUsage  = `{"id":"up-1","object":"chat.completion.chunk","created":1,"model":"gpt-up","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}`
)

var upPieces = []string{"Hello", " from", " up", "stream", "."}

// serveOpenAI streams upPieces, a finish chunk, usage and [DONE].
func serveOpenAI(u *upstream, w http.ResponseWriter, r *http.Request, _ map[string]any) {
	if r.URL.Path != "/v1/chat/completions" {
		http.Error(w, `{"error":{"message":"no route"}}`, http.StatusNotFound)
		return
	}
	sseHeaders(w)
	for _, p := range upPieces {
		sseData(w, openAIDelta(p))
	}
	sseData(w, openAIFinish)
	sseData(w, openAIUsage)
	sseData(w, "[DONE]")
}

// Ollama's /api/chat protocol: one JSON object a line.

func ollamaLine(w http.ResponseWriter, content string, done bool) {
	line := map[string]any{"model": "llama-up", "created_at": "2026-01-01T00:00:00Z",
		"message": map[string]any{"role": "assistant", "content": content}, "done": done}
	if done {
		line["done_reason"], line["prompt_eval_count"], line["eval_count"] = "stop", 21, 4
	}
	b, _ := json.Marshal(line)
	w.Write(append(b, '\n'))
	w.(http.Flusher).Flush()
}

func serveOllama(u *upstream, w http.ResponseWriter, r *http.Request, _ map[string]any) {
	if r.URL.Path != "/api/chat" {
		http.Error(w, `{"error":"no route"}`, http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	for _, p := range upPieces {
		ollamaLine(w, p, false)
	}
	ollamaLine(w, "", true)
}

// providerClient is an HTTP client of its own, so a test can close its
// connections and count goroutines.
func providerClient(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func newOpenAIModel(t *testing.T, u *upstream, idle time.Duration) *chat.LangChain {
	t.Helper()
	m, err := chat.NewOpenAI(chat.ProviderConfig{BaseURL: u.srv.URL + "/v1", APIKey: providerKey, Model: "gpt-up",
		HTTPClient: providerClient(t), IdleTimeout: idle})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func newOllamaModel(t *testing.T, u *upstream, idle time.Duration) *chat.LangChain {
	t.Helper()
	m, err := chat.NewOllama(chat.ProviderConfig{BaseURL: u.srv.URL, Model: "llama-up", HTTPClient: providerClient(t), IdleTimeout: idle})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var upRequest = chat.ModelRequest{Model: "app-model", Question: "hello?", Messages: []chat.Message{
	{Role: chat.RoleSystem, Content: "Be brief."}, {Role: chat.RoleUser, Content: "hi"},
	{Role: chat.RoleAssistant, Content: "hello"}, {Role: chat.RoleUser, Content: "hello?"}}}

// generate runs m and returns the pieces it streamed.
func generate(ctx context.Context, m chat.Model, req chat.ModelRequest) (chat.ModelResult, []string, error) {
	var pieces []string
	res, err := m.Generate(ctx, req, func(d string) error {
		pieces = append(pieces, d)
		return nil
	})
	return res, pieces, err
}

func checkUpstreamMessages(t *testing.T, body map[string]any, model string) {
	t.Helper()
	msgs, _ := body["messages"].([]any)
	var got []string
	for _, m := range msgs {
		mm, _ := m.(map[string]any)
		got = append(got, fmt.Sprintf("%v:%v", mm["role"], mm["content"]))
	}
	want := []string{"system:Be brief.", "user:hi", "assistant:hello", "user:hello?"}
	if body["model"] != model || body["stream"] != true || !slices.Equal(got, want) {
		t.Fatalf("upstream body: model %v stream %v messages %v", body["model"], body["stream"], got)
	}
}

func TestOpenAIAdapter(t *testing.T) {
	u := newUpstream(t, serveOpenAI)
	m := newOpenAIModel(t, u, 0)
	temp := 0.3
	req := upRequest
	req.MaxTokens, req.Temperature = 64, &temp
	res, pieces, err := generate(context.Background(), m, req)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(pieces, upPieces) {
		t.Fatalf("pieces %q, want %q", pieces, upPieces)
	}
	if res.Text != "Hello from upstream." || res.FinishReason != "stop" || res.Usage.PromptTokens != 12 || res.Usage.CompletionTokens != 5 {
		t.Fatalf("result %+v", res)
	}
	headers, bodies := u.requests()
	if got := headers[0].Get("Authorization"); got != "Bearer "+providerKey {
		t.Fatalf("Authorization %q", got)
	}
	checkUpstreamMessages(t, bodies[0], "gpt-up")
	if bodies[0]["max_completion_tokens"] != 64.0 || bodies[0]["temperature"] != 0.3 {
		t.Fatalf("upstream body %v", bodies[0])
	}

	// Without a configured upstream model, the app's model name is sent.
	m2, err := chat.NewOpenAI(chat.ProviderConfig{BaseURL: u.srv.URL + "/v1", HTTPClient: providerClient(t)})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := generate(context.Background(), m2, upRequest); err != nil {
		t.Fatal(err)
	}
	if headers, bodies := u.requests(); bodies[1]["model"] != "app-model" || headers[1].Get("Authorization") != "Bearer none" {
		t.Fatalf("model %v, Authorization %q", bodies[1]["model"], headers[1].Get("Authorization"))
	}
	if _, err := chat.NewOpenAI(chat.ProviderConfig{}); err == nil {
		t.Fatal("an OpenAI provider without a base URL")
	}
}

func TestOllamaAdapter(t *testing.T) {
	u := newUpstream(t, serveOllama)
	m := newOllamaModel(t, u, 0)
	res, pieces, err := generate(context.Background(), m, upRequest)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(pieces, upPieces) || res.Text != "Hello from upstream." || res.FinishReason != "stop" ||
		res.Usage.PromptTokens != 21 || res.Usage.CompletionTokens != 4 {
		t.Fatalf("result %+v, pieces %q", res, pieces)
	}
	headers, bodies := u.requests()
	checkUpstreamMessages(t, bodies[0], "llama-up")
	if h := headers[0].Get("Authorization"); h != "" {
		t.Fatalf("Ollama got Authorization %q", h)
	}
	if _, err := chat.NewOllama(chat.ProviderConfig{}); err == nil {
		t.Fatal("an Ollama provider without a base URL")
	}
}

// failure is a way for an upstream to fail. after is how many pieces it
// sends first; 0 fails before the first byte.
type failure struct {
	name  string
	after int
	fail  func(u *upstream, w http.ResponseWriter, r *http.Request)
}

var openAIFailures = []failure{
	{"connection dropped mid-stream", 2, func(u *upstream, w http.ResponseWriter, r *http.Request) { panic(http.ErrAbortHandler) }},
	{"error event mid-stream", 2, func(u *upstream, w http.ResponseWriter, r *http.Request) {
		sseData(w, `{"error":{"message":"model overloaded","type":"server_error"}}`)
		sseData(w, "[DONE]")
	}},
	{"stream ends without finish", 2, func(u *upstream, w http.ResponseWriter, r *http.Request) {}},
	{"status 500", 0, func(u *upstream, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, `{"error":{"message":"upstream is down","type":"server_error"}}`)
	}},
	{"status 401", 0, func(u *upstream, w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error":{"message":"bad provider key"}}`)
	}},
	{"connection dropped before the response", 0, func(u *upstream, w http.ResponseWriter, r *http.Request) { panic(http.ErrAbortHandler) }},
}

var ollamaFailures = []failure{
	{"connection dropped mid-stream", 2, func(u *upstream, w http.ResponseWriter, r *http.Request) { panic(http.ErrAbortHandler) }},
	{"error line mid-stream", 2, func(u *upstream, w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"error":"model runner crashed"}`+"\n")
	}},
	{"stream ends without done", 2, func(u *upstream, w http.ResponseWriter, r *http.Request) {}},
	{"status 404", 0, func(u *upstream, w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"error":"model \"llama-up\" not found"}`)
	}},
	{"connection dropped before the response", 0, func(u *upstream, w http.ResponseWriter, r *http.Request) { panic(http.ErrAbortHandler) }},
}

func failingOpenAI(f failure) func(u *upstream, w http.ResponseWriter, r *http.Request, _ map[string]any) {
	return func(u *upstream, w http.ResponseWriter, r *http.Request, _ map[string]any) {
		if f.after > 0 {
			sseHeaders(w)
			for _, p := range upPieces[:f.after] {
				sseData(w, openAIDelta(p))
			}
		}
		f.fail(u, w, r)
	}
}

func failingOllama(f failure) func(u *upstream, w http.ResponseWriter, r *http.Request, _ map[string]any) {
	return func(u *upstream, w http.ResponseWriter, r *http.Request, _ map[string]any) {
		if f.after > 0 {
			w.Header().Set("Content-Type", "application/x-ndjson")
			for _, p := range upPieces[:f.after] {
				ollamaLine(w, p, false)
			}
		}
		f.fail(u, w, r)
	}
}

type provider struct {
	name     string
	failures []failure
	serve    func(f failure) func(u *upstream, w http.ResponseWriter, r *http.Request, _ map[string]any)
	model    func(t *testing.T, u *upstream, idle time.Duration) *chat.LangChain
}

var providers = []provider{
	{"openai", openAIFailures, failingOpenAI, newOpenAIModel},
	{"ollama", ollamaFailures, failingOllama, newOllamaModel},
}

// TestAdapterFailures: every way an upstream fails surfaces as an
// *UpstreamError after the pieces it did send.
func TestAdapterFailures(t *testing.T) {
	for _, p := range providers {
		for _, f := range p.failures {
			t.Run(p.name+"/"+f.name, func(t *testing.T) {
				u := newUpstream(t, p.serve(f))
				_, pieces, err := generate(context.Background(), p.model(t, u, 0), upRequest)
				var ue *chat.UpstreamError
				if !errors.As(err, &ue) || ue.Provider != p.name {
					t.Fatalf("err = %v (%T), want an UpstreamError from %s", err, err, p.name)
				}
				if !slices.Equal(pieces, upPieces[:f.after]) {
					t.Fatalf("pieces %q", pieces)
				}
			})
		}
	}
}

// upstreamGateway serves app "up" (app key "app1" is bound to it) with model m.
func upstreamGateway(t *testing.T, m chat.Model, usage chat.UsageRecorder, opts chat.HandlerOptions) *gateway {
	return newGateway(t, gatewayConfig{opts: opts, usage: usage, models: map[string]chat.Model{"up-model": m},
		apps: []*chat.App{{ID: "app1", Name: "Upstream", Model: "up-model", SystemPrompt: "Be brief."}}})
}

// checkNoChatgateKey fails if any header an upstream received carries a
// chatgate key.
func checkNoChatgateKey(t *testing.T, g *gateway, u *upstream) {
	t.Helper()
	headers, _ := u.requests()
	if len(headers) == 0 {
		t.Fatal("the upstream was not called")
	}
	for _, h := range headers {
		for name, vs := range h {
			for _, v := range vs {
				for kn, k := range g.keys {
					if strings.Contains(v, k) {
						t.Fatalf("the upstream received the %s chatgate key in %s", kn, name)
					}
				}
			}
		}
	}
}

func TestUpstreamThroughHandler(t *testing.T) {
	for _, p := range []struct {
		name  string
		serve func(u *upstream, w http.ResponseWriter, r *http.Request, _ map[string]any)
		model func(t *testing.T, u *upstream, idle time.Duration) *chat.LangChain
		auth  string
		usage chat.Usage
	}{
		{"openai", serveOpenAI, newOpenAIModel, "Bearer " + providerKey, chat.Usage{PromptTokens: 12, CompletionTokens: 5, TotalTokens: 17}},
		{"ollama", serveOllama, newOllamaModel, "", chat.Usage{PromptTokens: 21, CompletionTokens: 4, TotalTokens: 25}},
	} {
		t.Run(p.name, func(t *testing.T) {
			u := newUpstream(t, p.serve)
			g := upstreamGateway(t, p.model(t, u, 0), nil, chat.HandlerOptions{})

			resp, b := g.chat("app1", `{"chatId":"c1","messages":[{"role":"user","content":"hi"}]}`)
			var out struct {
				Choices []struct {
					Message struct{ Content string } `json:"message"`
				} `json:"choices"`
				Usage chat.Usage `json:"usage"`
			}
			if err := json.Unmarshal(b, &out); err != nil || resp.StatusCode != http.StatusOK ||
				out.Choices[0].Message.Content != "Hello from upstream." || out.Usage != p.usage {
				t.Fatalf("non-stream: %d %s", resp.StatusCode, b)
			}

			resp, b = g.chat("app1", `{"stream":true,"stream_options":{"include_usage":true},"chatId":"c1","messages":[{"role":"user","content":"again"}]}`)
			events, _ := parseSSE(t, string(b))
			text, usage := streamSummary(t, events, "app1")
			var deltas []string
			for _, ev := range events {
				var c chunk
				if json.Unmarshal([]byte(ev.data), &c) == nil && len(c.Choices) == 1 && c.Choices[0].Delta.Content != nil {
					deltas = append(deltas, *c.Choices[0].Delta.Content)
				}
			}
			if resp.StatusCode != http.StatusOK || text != "Hello from upstream." || !slices.Equal(deltas, upPieces) || usage == nil || *usage != p.usage {
				t.Fatalf("stream: %d deltas %q usage %+v\n%s", resp.StatusCode, deltas, usage, b)
			}

			// The second turn carried the first to the upstream.
			headers, bodies := u.requests()
			msgs, _ := bodies[1]["messages"].([]any)
			if len(msgs) != 4 {
				t.Fatalf("second upstream request has %d messages: %v", len(msgs), bodies[1])
			}
			for _, h := range headers {
				if got := h.Get("Authorization"); got != p.auth {
					t.Fatalf("upstream Authorization %q, want %q", got, p.auth)
				}
			}
			checkNoChatgateKey(t, g, u)
			if g.conversations("app1") != 1 {
				t.Fatal("the conversation was not stored")
			}
		})
	}
}

// TestUpstreamFailuresThroughHandler: a failure before the first byte is a
// 502 in OpenAI's shape; one after it ends the committed stream with an
// error chunk (an error event with detail) and no [DONE]. Neither stores
// history nor records usage.
func TestUpstreamFailuresThroughHandler(t *testing.T) {
	for _, p := range providers {
		for _, f := range p.failures {
			t.Run(p.name+"/"+f.name, func(t *testing.T) {
				u := newUpstream(t, p.serve(f))
				usage := &usageLog{}
				g := upstreamGateway(t, p.model(t, u, 0), usage, chat.HandlerOptions{})
				for _, detail := range []bool{false, true} {
					body := fmt.Sprintf(`{"stream":true,"detail":%v,"chatId":"c1","messages":[{"role":"user","content":"hi"}]}`, detail)
					resp, b := g.chat("app1", body)
					if f.after == 0 {
						checkOpenAIError(t, resp, b, http.StatusBadGateway, "api_error", "upstream_error", "model provider "+p.name+" failed")
						continue
					}
					if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
						t.Fatalf("%d %s", resp.StatusCode, b)
					}
					events, _ := parseSSE(t, string(b))
					var deltas []string
					for _, ev := range events[:len(events)-1] {
						var c chunk
						if ev.name == "answer" || ev.name == "" {
							if err := json.Unmarshal([]byte(ev.data), &c); err != nil || len(c.Choices) != 1 || c.Choices[0].FinishReason != nil {
								t.Fatalf("chunk before the error: %s", ev.data)
							}
							deltas = append(deltas, *c.Choices[0].Delta.Content)
						}
					}
					if !slices.Equal(deltas, upPieces[:f.after]) {
						t.Fatalf("deltas %q before the error", deltas)
					}
					last := events[len(events)-1]
					var e struct {
						Message string `json:"message"`
						Code    string `json:"code"`
						Error   *struct {
							Message, Type, Code string
						} `json:"error"`
					}
					if err := json.Unmarshal([]byte(last.data), &e); err != nil {
						t.Fatal(err)
					}
					switch {
					case detail && last.name == "error" && e.Code == "upstream_error" && strings.Contains(e.Message, p.name):
					case !detail && last.name == "" && e.Error != nil && e.Error.Code == "upstream_error" && e.Error.Type == "api_error" &&
						strings.Contains(e.Error.Message, p.name):
					default:
						t.Fatalf("detail %v: the stream ends with %+v", detail, last)
					}
				}
				resp, b := g.chat("app1", `{"chatId":"c1","messages":[{"role":"user","content":"hi"}]}`)
				checkOpenAIError(t, resp, b, http.StatusBadGateway, "api_error", "upstream_error", "model provider "+p.name+" failed")
				if g.conversations("app1") != 0 {
					t.Fatal("a failed chat was stored")
				}
				if len(usage.recs) != 0 {
					t.Fatalf("usage recorded for failed chats: %+v", usage.recs)
				}
				checkNoChatgateKey(t, g, u)
			})
		}
	}
}

// stallAfter sends n pieces, then nothing until the request is cancelled.
func stallAfter(p provider, n int) func(u *upstream, w http.ResponseWriter, r *http.Request, _ map[string]any) {
	return p.serve(failure{after: n, fail: func(u *upstream, w http.ResponseWriter, r *http.Request) {
		if n == 0 {
			w.(http.Flusher).Flush() // headers only
		}
		u.stall(r)
	}})
}

func TestUpstreamStall(t *testing.T) {
	const idle = 300 * time.Millisecond
	for _, p := range providers {
		t.Run(p.name, func(t *testing.T) {
			for _, n := range []int{2, 0} {
				u := newUpstream(t, stallAfter(p, n))
				start := time.Now()
				_, pieces, err := generate(context.Background(), p.model(t, u, idle), upRequest)
				elapsed := time.Since(start)
				var ue *chat.UpstreamError
				if !errors.As(err, &ue) || !strings.Contains(err.Error(), "idle timeout") || !slices.Equal(pieces, upPieces[:n]) {
					t.Fatalf("after %d pieces: %v, pieces %q", n, err, pieces)
				}
				if elapsed < idle || elapsed > idle+3*time.Second {
					t.Fatalf("the stall was noticed after %v (idle timeout %v)", elapsed, idle)
				}
				u.waitGone(t) // the abandoned call was cancelled upstream
			}

			// Through the handler: stalled before the first byte is a 502;
			// after it, the stream ends with an error.
			u := newUpstream(t, stallAfter(p, 0))
			g := upstreamGateway(t, p.model(t, u, idle), nil, chat.HandlerOptions{})
			resp, b := g.chat("app1", `{"stream":true,"chatId":"s","messages":[{"role":"user","content":"hi"}]}`)
			checkOpenAIError(t, resp, b, http.StatusBadGateway, "api_error", "upstream_error", "idle timeout")
			u.waitGone(t)
			u.serve = stallAfter(p, 1)
			resp, b = g.chat("app1", `{"stream":true,"chatId":"s","messages":[{"role":"user","content":"hi"}]}`)
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"content":"Hello"`) ||
				!strings.HasSuffix(string(b), `"code":"upstream_error","param":null}}`+"\n\n") || !strings.Contains(string(b), "idle timeout") {
				t.Fatalf("%d %s", resp.StatusCode, b)
			}
			u.waitGone(t)
			if g.conversations("app1") != 0 {
				t.Fatal("a stalled chat was stored")
			}
		})
	}
}

// TestClientCancelCancelsUpstream: a client that goes away mid-stream
// cancels the upstream call, and nothing is stored.
func TestClientCancelCancelsUpstream(t *testing.T) {
	for _, p := range providers {
		t.Run(p.name, func(t *testing.T) {
			u := newUpstream(t, stallAfter(p, 2))
			g := upstreamGateway(t, p.model(t, u, 0), nil, chat.HandlerOptions{})
			for _, stream := range []bool{true, false} {
				ctx, cancel := context.WithCancel(context.Background())
				body := fmt.Sprintf(`{"stream":%v,"chatId":"c","messages":[{"role":"user","content":"hi"}]}`, stream)
				done := make(chan error, 1)
				go func() {
					resp, err := g.request(ctx, http.MethodPost, "/api/v1/chat/completions", "app1", body)
					if err != nil {
						done <- err
						return
					}
					defer resp.Body.Close()
					// read until the first delta arrives, then hang up
					sc := bufio.NewScanner(resp.Body)
					for sc.Scan() {
						if strings.Contains(sc.Text(), `"content":"Hello"`) {
							cancel()
						}
					}
					done <- sc.Err()
				}()
				if !stream {
					// a non-stream client sees nothing before the end; it
					// hangs up once the upstream has started
					time.Sleep(200 * time.Millisecond)
					cancel()
				}
				u.waitGone(t)
				if err := <-done; !errors.Is(err, context.Canceled) {
					t.Fatalf("stream %v: client read ended with %v", stream, err)
				}
				cancel()
			}
			if g.conversations("app1") != 0 {
				t.Fatal("a cancelled chat was stored")
			}
		})
	}
}

// TestUpstreamNoGoroutineLeak: after successful, failed, stalled and
// cancelled upstream calls, with every server and connection closed, the
// goroutines are back to where they were.
func TestUpstreamNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	for _, p := range providers {
		func() {
			calls := []func(u *upstream, w http.ResponseWriter, r *http.Request, _ map[string]any){
				p.serve(failure{after: len(upPieces), fail: func(u *upstream, w http.ResponseWriter, r *http.Request) {
					if p.name == "openai" {
						sseData(w, openAIFinish)
						sseData(w, "[DONE]")
					} else {
						ollamaLine(w, "", true)
					}
				}}),
				p.serve(p.failures[0]), // dropped mid-stream
				stallAfter(p, 1),       // idle timeout
				stallAfter(p, 2),       // the client cancels
			}
			var i int
			u := newUpstream(t, func(u *upstream, w http.ResponseWriter, r *http.Request, body map[string]any) {
				calls[i](u, w, r, body)
			})
			g := upstreamGateway(t, p.model(t, u, 250*time.Millisecond), nil, chat.HandlerOptions{Heartbeat: 100 * time.Millisecond})
			for i = range 3 {
				for _, stream := range []string{"true", "false"} {
					resp, b := g.chat("app1", `{"stream":`+stream+`,"messages":[{"role":"user","content":"hi"}]}`)
					if resp.StatusCode >= 500 && resp.StatusCode != http.StatusBadGateway {
						t.Fatalf("%d %s", resp.StatusCode, b)
					}
				}
			}
			i = 3
			ctx, cancel := context.WithCancel(context.Background())
			resp, err := g.request(ctx, http.MethodPost, "/api/v1/chat/completions", "app1", `{"stream":true,"messages":[{"role":"user","content":"hi"}]}`)
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 1)
			_, _ = resp.Body.Read(buf)
			cancel()
			resp.Body.Close()
			u.waitGone(t)
			g.close()
			u.close()
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		now := runtime.NumGoroutine()
		if now <= before {
			break
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before, %d after:\n%s", before, now, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A caller that wants only the finished answer passes a nil callback; every
// shipped model honours it and still returns the whole text and usage.
func TestGenerateWithoutCallback(t *testing.T) {
	openAI := newUpstream(t, serveOpenAI)
	ollama := newUpstream(t, serveOllama)
	for _, tc := range []struct {
		name  string
		model chat.Model
		req   chat.ModelRequest
		text  string
	}{
		{"openai", newOpenAIModel(t, openAI, 0), upRequest, "Hello from upstream."},
		{"ollama", newOllamaModel(t, ollama, 0), upRequest, "Hello from upstream."},
		{"extractive", chat.Extractive{}, chat.ModelRequest{Question: "who directed it?",
			Quotes: []chat.Quote{{Q: "who directed Hero?", A: "Zhang Yimou directed Hero."}}}, "Zhang Yimou directed Hero."},
		{"extractive, nothing found", chat.Extractive{}, chat.ModelRequest{Question: "who?", EmptyAnswer: "no idea"}, "no idea"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := tc.model.Generate(context.Background(), tc.req, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Text != tc.text || res.FinishReason != "stop" {
				t.Fatalf("result %+v, want text %q", res, tc.text)
			}
		})
	}
	// the idle timeout still applies without a callback: a stalled upstream fails
	stalled := newUpstream(t, stallAfter(providers[0], 1))
	_, err := newOpenAIModel(t, stalled, 50*time.Millisecond).Generate(context.Background(), upRequest, nil)
	var ue *chat.UpstreamError
	if !errors.As(err, &ue) {
		t.Fatalf("stalled upstream without a callback: %v", err)
	}
}
