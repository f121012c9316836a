package upstreamtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

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

// OpenAIWhole is the non-stream answer: Pieces, whole, with the usage.
const OpenAIWhole = `{"id":"up-1","object":"chat.completion","created":1,"model":"gpt-up","choices":[{"index":0,"message":{"role":"assistant","content":"Hello from upstream."},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}`

// Streams reports whether an OpenAI request's body asks for a stream.
func Streams(body map[string]any) bool { return body["stream"] == true }

// ServeOpenAI streams Pieces, a finish chunk, usage and [DONE]; a request
// that does not ask for a stream gets OpenAIWhole.
func ServeOpenAI(u *Upstream, w http.ResponseWriter, r *http.Request, body map[string]any) {
	if r.URL.Path != "/v1/chat/completions" {
		http.Error(w, `{"error":{"message":"no route"}}`, http.StatusNotFound)
		return
	}
	if !Streams(body) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, OpenAIWhole)
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
