package llm_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/chat/internal/upstreamtest"
)

func toolChunk(frag string) string {
	return `{"id":"up-1","object":"chat.completion.chunk","created":1,"model":"gpt-up","choices":[{"index":0,"delta":{"tool_calls":[` + frag + `]},"finish_reason":null}]}`
}

const toolsFinish = `{"id":"up-1","object":"chat.completion.chunk","created":1,"model":"gpt-up","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`

var toolsRequest = func() chat.ModelRequest {
	r := upstreamtest.Request
	r.Tools = json.RawMessage(`[{"type":"function","function":{"name":"lookup","parameters":{"type":"object"}}}]`)
	r.ToolChoice = json.RawMessage(`{"type":"function","function":{"name":"lookup"}}`)
	return r
}()

// The adapter puts a call's fragments together by index, hands each to
// OnToolCall in order with the text, and returns the whole calls; the
// request carries tools and tool_choice as given, and no
// parallel_tool_calls when none was given.
func TestOpenAIToolCalls(t *testing.T) {
	u := upstreamtest.New(t, func(u *upstreamtest.Upstream, w http.ResponseWriter, r *http.Request, _ map[string]any) {
		upstreamtest.SSEHeaders(w)
		upstreamtest.SSEData(w, upstreamtest.OpenAIDelta("Looking."))
		for _, f := range []string{`{"index":0,"id":"c1","type":"function","function":{"name":"look","arguments":""}}`,
			`{"index":0,"function":{"name":"up","arguments":"{\"q\":"}}`, `{"index":0,"function":{"arguments":"1}"}}`} {
			upstreamtest.SSEData(w, toolChunk(f))
		}
		upstreamtest.SSEData(w, toolsFinish)
		upstreamtest.SSEData(w, upstreamtest.OpenAIUsage)
		upstreamtest.SSEData(w, "[DONE]")
	})
	req := toolsRequest
	var got []string
	req.OnToolCall = func(c chat.ToolCall) error {
		b, _ := json.Marshal(c)
		got = append(got, string(b))
		return nil
	}
	res, pieces, err := upstreamtest.Generate(context.Background(), upstreamtest.NewOpenAIModel(t, u, 0), req)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`{"index":0,"id":"c1","type":"function","function":{"name":"look","arguments":""}}`,
		`{"index":0,"function":{"name":"up","arguments":"{\"q\":"}}`, `{"index":0,"function":{"arguments":"1}"}}`}
	if !slices.Equal(got, want) || !slices.Equal(pieces, []string{"Looking."}) {
		t.Fatalf("fragments %q, text %q", got, pieces)
	}
	if res.FinishReason != "tool_calls" || res.Text != "Looking." || res.Usage.PromptTokens != 12 ||
		!slices.Equal(res.ToolCalls, []chat.ToolCall{{ID: "c1", Type: "function", Function: chat.FunctionCall{Name: "lookup", Arguments: `{"q":1}`}}}) {
		t.Fatalf("result %+v", res)
	}
	_, bodies := u.Requests()
	tools, _ := json.Marshal(bodies[0]["tools"])
	choice, _ := json.Marshal(bodies[0]["tool_choice"])
	if string(tools) != `[{"function":{"name":"lookup","parameters":{"type":"object"}},"type":"function"}]` ||
		string(choice) != `{"function":{"name":"lookup"},"type":"function"}` || bodies[0]["parallel_tool_calls"] != nil || bodies[0]["stream"] != true {
		t.Fatalf("upstream body %v", bodies[0])
	}
}

// A client that leaves during the calls stops the upstream call at once,
// and nothing reaches the chat after Generate returned; an upstream whose
// fragments skip an index fails as an UpstreamError.
func TestOpenAIToolCallFailures(t *testing.T) {
	gone := errors.New("client gone")
	u := upstreamtest.New(t, func(u *upstreamtest.Upstream, w http.ResponseWriter, r *http.Request, _ map[string]any) {
		upstreamtest.SSEHeaders(w)
		upstreamtest.SSEData(w, toolChunk(`{"index":0,"id":"c1","type":"function","function":{"name":"f","arguments":""}}`))
		upstreamtest.SSEData(w, toolChunk(`{"index":0,"function":{"arguments":"{}"}}`))
		u.Stall(r)
	})
	req := toolsRequest
	calls, returned := 0, false
	req.OnToolCall = func(chat.ToolCall) error {
		if returned {
			t.Error("a fragment reached the chat after Generate returned")
		}
		calls++
		return gone
	}
	start := time.Now()
	_, _, err := upstreamtest.Generate(context.Background(), upstreamtest.NewOpenAIModel(t, u, 0), req)
	returned = true
	if !errors.Is(err, gone) || calls != 1 || time.Since(start) > 5*time.Second {
		t.Fatalf("err %v after %d calls, %v", err, calls, time.Since(start))
	}
	u.WaitGone(t)

	u.SetServe(func(u *upstreamtest.Upstream, w http.ResponseWriter, r *http.Request, _ map[string]any) {
		upstreamtest.SSEHeaders(w)
		upstreamtest.SSEData(w, toolChunk(`{"index":1,"id":"c2","type":"function","function":{"name":"f","arguments":""}}`))
		upstreamtest.SSEData(w, toolsFinish)
		upstreamtest.SSEData(w, "[DONE]")
	})
	_, _, err = upstreamtest.Generate(context.Background(), upstreamtest.NewOpenAIModel(t, u, 0), toolsRequest)
	var ue *chat.UpstreamError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "index 1 after 0 calls") {
		t.Fatalf("skipped index: %v", err)
	}
}

// Ollama takes text only: it says so, and refuses tools and images should
// it be asked anyway.
func TestOllamaRefusesTools(t *testing.T) {
	u := upstreamtest.New(t, upstreamtest.ServeOllama)
	m := upstreamtest.NewOllamaModel(t, u, 0)
	if m.Supports(chat.FeatureTools) || m.Supports(chat.FeatureImages) {
		t.Fatal("Ollama claims tools or images")
	}
	if o := upstreamtest.NewOpenAIModel(t, upstreamtest.New(t, upstreamtest.ServeOpenAI), 0); !o.Supports(chat.FeatureTools) || !o.Supports(chat.FeatureImages) {
		t.Fatal("the OpenAI provider does not claim tools and images")
	}
	img := upstreamtest.Request
	img.Messages = []chat.Message{{Role: chat.RoleUser, Content: "what?", Parts: []chat.ContentPart{{Type: "image_url", ImageURL: &chat.ImageURL{URL: "https://e.test/a.png"}}}}}
	for _, req := range []chat.ModelRequest{toolsRequest, img} {
		_, _, err := upstreamtest.Generate(context.Background(), m, req)
		var ue *chat.UpstreamError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "does not take tools or images") {
			t.Fatalf("%v", err)
		}
	}
	if _, bodies := u.Requests(); len(bodies) != 0 {
		t.Fatalf("Ollama was asked %d times", len(bodies))
	}
}
