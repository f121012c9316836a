package upstreamtest

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/chat/llm"
)

// ProviderKey is the API key the OpenAI models are configured with.
const ProviderKey = "sk-provider-secret"

// NewOpenAIModel is an OpenAI model of upstream model gpt-up on u; idle
// bounds its non-stream calls too, so that a stall fails either kind.
func NewOpenAIModel(t *testing.T, u *Upstream, idle time.Duration) *llm.OpenAI {
	t.Helper()
	m, err := llm.NewOpenAI(llm.Config{BaseURL: u.Srv.URL + "/v1", APIKey: ProviderKey, Model: "gpt-up",
		HTTPClient: Client(t), IdleTimeout: idle, WholeTimeout: idle})
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
	Model    func(t *testing.T, u *Upstream, idle time.Duration) chat.Model
}

// Providers are OpenAI's and Ollama's.
var Providers = []Provider{
	{"openai", openAIFailures, failingOpenAI, func(t *testing.T, u *Upstream, idle time.Duration) chat.Model { return NewOpenAIModel(t, u, idle) }},
	{"ollama", ollamaFailures, failingOllama, func(t *testing.T, u *Upstream, idle time.Duration) chat.Model { return NewOllamaModel(t, u, idle) }},
}

// StallAfter sends n pieces, then nothing until the request is cancelled;
// an OpenAI request that does not ask for a stream gets nothing at all.
func StallAfter(p Provider, n int) Serve {
	stream := p.Serve(Failure{After: n, Fail: func(u *Upstream, w http.ResponseWriter, r *http.Request) {
		if n == 0 {
			w.(http.Flusher).Flush() // headers only
		}
		u.Stall(r)
	}})
	return func(u *Upstream, w http.ResponseWriter, r *http.Request, body map[string]any) {
		if p.Name == "openai" && !Streams(body) {
			u.Stall(r)
			return
		}
		stream(u, w, r, body)
	}
}

// EachFailure runs fn in a subtest for each way each provider fails, with
// an upstream that fails that way.
func EachFailure(t *testing.T, fn func(t *testing.T, p Provider, f Failure, u *Upstream)) {
	for _, p := range Providers {
		for _, f := range p.Failures {
			t.Run(p.Name+"/"+f.Name, func(t *testing.T) { fn(t, p, f, New(t, p.Serve(f))) })
		}
	}
}
