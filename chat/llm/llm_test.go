package llm_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/chat/internal/upstreamtest"
	"github.com/chatgate/chatgate/chat/llm"
)

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
	u := upstreamtest.New(t, upstreamtest.ServeOpenAI)
	m := upstreamtest.NewOpenAIModel(t, u, 0)
	temp := 0.3
	req := upstreamtest.Request
	req.MaxTokens, req.Temperature = 64, &temp
	res, pieces, err := upstreamtest.Generate(context.Background(), m, req)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(pieces, upstreamtest.Pieces) {
		t.Fatalf("pieces %q, want %q", pieces, upstreamtest.Pieces)
	}
	if res.Text != "Hello from upstream." || res.FinishReason != "stop" || res.Usage.PromptTokens != 12 || res.Usage.CompletionTokens != 5 {
		t.Fatalf("result %+v", res)
	}
	headers, bodies := u.Requests()
	if got := headers[0].Get("Authorization"); got != "Bearer "+upstreamtest.ProviderKey {
		t.Fatalf("Authorization %q", got)
	}
	checkUpstreamMessages(t, bodies[0], "gpt-up")
	if bodies[0]["max_completion_tokens"] != 64.0 || bodies[0]["temperature"] != 0.3 {
		t.Fatalf("upstream body %v", bodies[0])
	}

	// Without a configured upstream model, the app's model name is sent.
	m2, err := llm.NewOpenAI(llm.Config{BaseURL: u.Srv.URL + "/v1", HTTPClient: upstreamtest.Client(t)})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := upstreamtest.Generate(context.Background(), m2, upstreamtest.Request); err != nil {
		t.Fatal(err)
	}
	if headers, bodies := u.Requests(); bodies[1]["model"] != "app-model" || headers[1].Get("Authorization") != "" {
		t.Fatalf("model %v, Authorization %q", bodies[1]["model"], headers[1].Get("Authorization"))
	}
	if _, err := llm.NewOpenAI(llm.Config{}); err == nil {
		t.Fatal("an OpenAI provider without a base URL")
	}
}

func TestOllamaAdapter(t *testing.T) {
	u := upstreamtest.New(t, upstreamtest.ServeOllama)
	m := upstreamtest.NewOllamaModel(t, u, 0)
	res, pieces, err := upstreamtest.Generate(context.Background(), m, upstreamtest.Request)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(pieces, upstreamtest.Pieces) || res.Text != "Hello from upstream." || res.FinishReason != "stop" ||
		res.Usage.PromptTokens != 21 || res.Usage.CompletionTokens != 4 {
		t.Fatalf("result %+v, pieces %q", res, pieces)
	}
	headers, bodies := u.Requests()
	checkUpstreamMessages(t, bodies[0], "llama-up")
	if h := headers[0].Get("Authorization"); h != "" {
		t.Fatalf("Ollama got Authorization %q", h)
	}
	if _, err := llm.NewOllama(llm.Config{}); err == nil {
		t.Fatal("an Ollama provider without a base URL")
	}
}

// TestAdapterFailures: every way an upstream fails surfaces as an
// *UpstreamError after the pieces it did send.
func TestAdapterFailures(t *testing.T) {
	upstreamtest.EachFailure(t, func(t *testing.T, p upstreamtest.Provider, f upstreamtest.Failure, u *upstreamtest.Upstream) {
		_, pieces, err := upstreamtest.Generate(context.Background(), p.Model(t, u, 0), upstreamtest.Request)
		var ue *chat.UpstreamError
		if !errors.As(err, &ue) || ue.Provider != p.Name {
			t.Fatalf("err = %v (%T), want an UpstreamError from %s", err, err, p.Name)
		}
		if !slices.Equal(pieces, upstreamtest.Pieces[:f.After]) {
			t.Fatalf("pieces %q", pieces)
		}
	})
}

// TestUpstreamStall: an upstream that goes quiet, before the first piece or
// after some, fails the call after the idle timeout and is cancelled. It
// measures the real idle timeout against a real (loopback) server, so it
// cannot run on synctest's clock.
func TestUpstreamStall(t *testing.T) {
	const idle = 300 * time.Millisecond
	for _, p := range upstreamtest.Providers {
		t.Run(p.Name, func(t *testing.T) {
			for _, n := range []int{2, 0} {
				u := upstreamtest.New(t, upstreamtest.StallAfter(p, n))
				start := time.Now()
				_, pieces, err := upstreamtest.Generate(context.Background(), p.Model(t, u, idle), upstreamtest.Request)
				elapsed := time.Since(start)
				var ue *chat.UpstreamError
				if !errors.As(err, &ue) || !strings.Contains(err.Error(), "idle timeout") || !slices.Equal(pieces, upstreamtest.Pieces[:n]) {
					t.Fatalf("after %d pieces: %v, pieces %q", n, err, pieces)
				}
				if elapsed < idle || elapsed > idle+3*time.Second {
					t.Fatalf("the stall was noticed after %v (idle timeout %v)", elapsed, idle)
				}
				u.WaitGone(t) // the abandoned call was cancelled upstream
			}
		})
	}
}

// A caller that wants only the finished answer passes a nil callback; every
// shipped model honours it and still returns the whole text and usage.
func TestGenerateWithoutCallback(t *testing.T) {
	openAI := upstreamtest.New(t, upstreamtest.ServeOpenAI)
	ollama := upstreamtest.New(t, upstreamtest.ServeOllama)
	for _, tc := range []struct {
		name  string
		model chat.Model
		req   chat.ModelRequest
		text  string
	}{
		{"openai", upstreamtest.NewOpenAIModel(t, openAI, 0), upstreamtest.Request, "Hello from upstream."},
		{"ollama", upstreamtest.NewOllamaModel(t, ollama, 0), upstreamtest.Request, "Hello from upstream."},
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
	// a call without a callback is bounded by the whole timeout: a stalled
	// upstream fails, and is cancelled
	stalled := upstreamtest.New(t, upstreamtest.StallAfter(upstreamtest.Providers[0], 1))
	m := upstreamtest.NewOpenAIModel(t, stalled, time.Hour)
	m.WholeTimeout = 50 * time.Millisecond
	_, err := m.Generate(context.Background(), upstreamtest.Request, nil)
	var ue *chat.UpstreamError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "no answer within the timeout") {
		t.Fatalf("stalled upstream without a callback: %v", err)
	}
	stalled.WaitGone(t)
}

// TestWholeCall: a call nobody reads before it is finished (no callback, or
// ModelRequest.Whole) asks the OpenAI upstream for a non-stream answer and
// reads its usage; one with a callback asks for a stream. Either way the
// calls, one after another, share one connection.
func TestWholeCall(t *testing.T) {
	u := upstreamtest.New(t, upstreamtest.ServeOpenAI)
	m := upstreamtest.NewOpenAIModel(t, u, 0)
	whole := upstreamtest.Request
	whole.Whole = true
	var tokens int
	count := func(string) error { tokens++; return nil }
	for _, call := range []struct {
		name    string
		req     chat.ModelRequest
		onToken func(string) error
		stream  bool
	}{
		{"no callback", upstreamtest.Request, nil, false},
		{"Whole", whole, count, false},
		{"stream", upstreamtest.Request, count, true},
		{"no callback again", upstreamtest.Request, nil, false},
		{"stream again", upstreamtest.Request, count, true},
	} {
		tokens = 0
		res, err := m.Generate(context.Background(), call.req, call.onToken)
		if err != nil {
			t.Fatalf("%s: %v", call.name, err)
		}
		if res.Text != "Hello from upstream." || res.FinishReason != "stop" || res.Usage.PromptTokens != 12 || res.Usage.CompletionTokens != 5 {
			t.Fatalf("%s: result %+v", call.name, res)
		}
		_, bodies := u.Requests()
		if got := upstreamtest.Streams(bodies[len(bodies)-1]); got != call.stream {
			t.Fatalf("%s: the upstream was asked for stream=%v", call.name, got)
		}
		if want := map[bool]int{true: len(upstreamtest.Pieces)}[call.stream]; tokens != want {
			t.Fatalf("%s: %d tokens streamed, want %d", call.name, tokens, want)
		}
	}
	if n := u.Conns(); n != 1 {
		t.Fatalf("5 calls one after another opened %d upstream connections, want 1", n)
	}
}
