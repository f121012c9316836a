// Package upstreamtest is a fake model provider on loopback, speaking
// OpenAI's and Ollama's streaming protocols, for the tests of chat/llm's
// adapters and of chat's handler in front of them.
package upstreamtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/chat/llm"
)

// ProviderKey is the API key the OpenAI models are configured with.
const ProviderKey = "sk-provider-secret"

// Serve answers one request to an Upstream; body is the request's JSON.
type Serve func(u *Upstream, w http.ResponseWriter, r *http.Request, body map[string]any)

// Upstream is a fake model provider on loopback. Its behaviour is set per
// test; it records what each request carried and whether the request's
// context ended (the caller cancelled or went away).
type Upstream struct {
	Srv *httptest.Server
	// Serve answers the requests; a test may change it between requests.
	Serve Serve
	// Arrived gets a value as each request reaches Serve.
	Arrived chan struct{}

	mu      sync.Mutex
	headers []http.Header
	bodies  []map[string]any
	gone    chan struct{} // gets a value when a handler sees r.Context().Done()
	release chan struct{} // closed to end every stall
}

// New starts an Upstream that answers with serve; it closes at t's cleanup.
func New(t *testing.T, serve Serve) *Upstream {
	t.Helper()
	u := &Upstream{Serve: serve, Arrived: make(chan struct{}, 64), gone: make(chan struct{}, 16), release: make(chan struct{})}
	u.Srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		raw, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(raw, &body)
		u.mu.Lock()
		u.headers = append(u.headers, r.Header.Clone())
		u.bodies = append(u.bodies, body)
		serve := u.Serve
		u.mu.Unlock()
		select {
		case u.Arrived <- struct{}{}:
		default:
		}
		serve(u, w, r, body)
	}))
	t.Cleanup(u.Close)
	return u
}

// SetServe changes how the Upstream answers the next requests.
func (u *Upstream) SetServe(serve Serve) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.Serve = serve
}

// Close ends every stall and stops the server; it may be called twice.
func (u *Upstream) Close() {
	select {
	case <-u.release:
	default:
		close(u.release)
	}
	u.Srv.Close()
}

// Stall blocks until the request's context ends (and reports it) or the
// test ends.
func (u *Upstream) Stall(r *http.Request) {
	select {
	case <-r.Context().Done():
		u.gone <- struct{}{}
	case <-u.release:
	}
}

// Requests returns the headers and bodies of the requests so far.
func (u *Upstream) Requests() ([]http.Header, []map[string]any) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.headers), slices.Clone(u.bodies)
}

// WaitGone waits until a stalled request's context ended.
func (u *Upstream) WaitGone(t *testing.T) {
	t.Helper()
	select {
	case <-u.gone:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream request was not cancelled")
	}
}

// WaitArrived waits until a request reached the upstream.
func (u *Upstream) WaitArrived(t *testing.T) {
	t.Helper()
	select {
	case <-u.Arrived:
	case <-time.After(5 * time.Second):
		t.Fatal("no request reached the upstream")
	}
}

// OpenAI's streaming protocol.

// SSEHeaders starts an event stream.
func SSEHeaders(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
}

// SSEData sends one event.
func SSEData(w http.ResponseWriter, data string) {
	fmt.Fprintf(w, "data: %s\n\n", data)
	w.(http.Flusher).Flush()
}

// OpenAIDelta is a chunk carrying content.
func OpenAIDelta(content string) string {
	c, _ := json.Marshal(content)
	return `{"id":"up-1","object":"chat.completion.chunk","created":1,"model":"gpt-up","choices":[{"index":0,"delta":{"content":` + string(c) + `},"finish_reason":null}]}`
}

// OpenAI's closing chunks.
const (
	OpenAIFinish = `{"id":"up-1","object":"chat.completion.chunk","created":1,"model":"gpt-up","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`
	OpenAIUsage  = `{"id":"up-1","object":"chat.completion.chunk","created":1,"model":"gpt-up","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}`
)

// Pieces is what the upstreams stream.
var Pieces = []string{"Hello", " from", " up", "stream", "."}

// ServeOpenAI streams Pieces, a finish chunk, usage and [DONE].
func ServeOpenAI(u *Upstream, w http.ResponseWriter, r *http.Request, _ map[string]any) {
	if r.URL.Path != "/v1/chat/completions" {
		http.Error(w, `{"error":{"message":"no route"}}`, http.StatusNotFound)
		return
	}
	SSEHeaders(w)
	for _, p := range Pieces {
		SSEData(w, OpenAIDelta(p))
	}
	SSEData(w, OpenAIFinish)
	SSEData(w, OpenAIUsage)
	SSEData(w, "[DONE]")
}

// Ollama's /api/chat protocol: one JSON object a line.

// OllamaLine sends one line; the done line carries the usage.
func OllamaLine(w http.ResponseWriter, content string, done bool) {
	line := map[string]any{"model": "llama-up", "created_at": "2026-01-01T00:00:00Z",
		"message": map[string]any{"role": "assistant", "content": content}, "done": done}
	if done {
		line["done_reason"], line["prompt_eval_count"], line["eval_count"] = "stop", 21, 4
	}
	b, _ := json.Marshal(line)
	w.Write(append(b, '\n'))
	w.(http.Flusher).Flush()
}

// ServeOllama streams Pieces and the done line.
func ServeOllama(u *Upstream, w http.ResponseWriter, r *http.Request, _ map[string]any) {
	if r.URL.Path != "/api/chat" {
		http.Error(w, `{"error":"no route"}`, http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	for _, p := range Pieces {
		OllamaLine(w, p, false)
	}
	OllamaLine(w, "", true)
}

// Client is an HTTP client of its own, so a test can close its connections
// and count goroutines.
func Client(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// NewOpenAIModel is an OpenAI model of upstream model gpt-up on u.
func NewOpenAIModel(t *testing.T, u *Upstream, idle time.Duration) *llm.Model {
	t.Helper()
	m, err := llm.NewOpenAI(llm.Config{BaseURL: u.Srv.URL + "/v1", APIKey: ProviderKey, Model: "gpt-up",
		HTTPClient: Client(t), IdleTimeout: idle})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// NewOllamaModel is an Ollama model of upstream model llama-up on u.
func NewOllamaModel(t *testing.T, u *Upstream, idle time.Duration) *llm.Model {
	t.Helper()
	m, err := llm.NewOllama(llm.Config{BaseURL: u.Srv.URL, Model: "llama-up", HTTPClient: Client(t), IdleTimeout: idle})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Request is a model request with a system prompt and history.
var Request = chat.ModelRequest{Model: "app-model", Question: "hello?", Messages: []chat.Message{
	{Role: chat.RoleSystem, Content: "Be brief."}, {Role: chat.RoleUser, Content: "hi"},
	{Role: chat.RoleAssistant, Content: "hello"}, {Role: chat.RoleUser, Content: "hello?"}}}

// Generate runs m and returns the pieces it streamed.
func Generate(ctx context.Context, m chat.Model, req chat.ModelRequest) (chat.ModelResult, []string, error) {
	var pieces []string
	res, err := m.Generate(ctx, req, func(d string) error {
		pieces = append(pieces, d)
		return nil
	})
	return res, pieces, err
}

// Failure is a way for an upstream to fail. After is how many pieces it
// sends first; 0 fails before the first byte.
type Failure struct {
	Name  string
	After int
	Fail  func(u *Upstream, w http.ResponseWriter, r *http.Request)
}

func dropConnection(*Upstream, http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }

var openAIFailures = []Failure{
	{"connection dropped mid-stream", 2, dropConnection},
	{"error event mid-stream", 2, func(u *Upstream, w http.ResponseWriter, r *http.Request) {
		SSEData(w, `{"error":{"message":"model overloaded","type":"server_error"}}`)
		SSEData(w, "[DONE]")
	}},
	{"stream ends without finish", 2, func(u *Upstream, w http.ResponseWriter, r *http.Request) {}},
	{"status 500", 0, func(u *Upstream, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, `{"error":{"message":"upstream is down","type":"server_error"}}`)
	}},
	{"status 401", 0, func(u *Upstream, w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error":{"message":"bad provider key"}}`)
	}},
	{"connection dropped before the response", 0, dropConnection},
}

var ollamaFailures = []Failure{
	{"connection dropped mid-stream", 2, dropConnection},
	{"error line mid-stream", 2, func(u *Upstream, w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"error":"model runner crashed"}`+"\n")
	}},
	{"stream ends without done", 2, func(u *Upstream, w http.ResponseWriter, r *http.Request) {}},
	{"status 404", 0, func(u *Upstream, w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"error":"model \"llama-up\" not found"}`)
	}},
	{"connection dropped before the response", 0, dropConnection},
}

func failingOpenAI(f Failure) Serve {
	return func(u *Upstream, w http.ResponseWriter, r *http.Request, _ map[string]any) {
		if f.After > 0 {
			SSEHeaders(w)
			for _, p := range Pieces[:f.After] {
				SSEData(w, OpenAIDelta(p))
			}
		}
		f.Fail(u, w, r)
	}
}

func failingOllama(f Failure) Serve {
	return func(u *Upstream, w http.ResponseWriter, r *http.Request, _ map[string]any) {
		if f.After > 0 {
			w.Header().Set("Content-Type", "application/x-ndjson")
			for _, p := range Pieces[:f.After] {
				OllamaLine(w, p, false)
			}
		}
		f.Fail(u, w, r)
	}
}

// Provider is one protocol: how it fails, how to serve a failure, and its
// model.
type Provider struct {
	Name     string
	Failures []Failure
	Serve    func(f Failure) Serve
	Model    func(t *testing.T, u *Upstream, idle time.Duration) *llm.Model
}

// Providers are OpenAI's and Ollama's.
var Providers = []Provider{
	{"openai", openAIFailures, failingOpenAI, NewOpenAIModel},
	{"ollama", ollamaFailures, failingOllama, NewOllamaModel},
}

// StallAfter sends n pieces, then nothing until the request is cancelled.
func StallAfter(p Provider, n int) Serve {
	return p.Serve(Failure{After: n, Fail: func(u *Upstream, w http.ResponseWriter, r *http.Request) {
		if n == 0 {
			w.(http.Flusher).Flush() // headers only
		}
		u.Stall(r)
	}})
}
