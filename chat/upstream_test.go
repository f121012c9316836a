package chat_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatgate/chatgate/chat"
	up "github.com/chatgate/chatgate/chat/internal/upstreamtest"
)

// The handler in front of chat/llm's adapters and a fake provider: what a
// client sees when the upstream answers, fails, stalls or is left.

// drain empties c, so that the next value is news.
func drain(c chan struct{}) {
	for len(c) > 0 {
		<-c
	}
}

// upstreamGateway serves app "up" (app key "app1" is bound to it) with model m.
func upstreamGateway(t *testing.T, m chat.Model, usage chat.UsageRecorder, opts chat.HandlerOptions) *gateway {
	return newGateway(t, gatewayConfig{opts: opts, usage: usage, models: map[string]chat.Model{"up-model": m},
		apps: []*chat.App{{ID: "app1", Name: "Upstream", Model: "up-model", SystemPrompt: "Be brief."}}})
}

// checkNoChatgateKey fails if any header an upstream received carries a
// chatgate key.
func checkNoChatgateKey(t *testing.T, g *gateway, u *up.Upstream) {
	t.Helper()
	headers, _ := u.Requests()
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
		Name  string
		serve up.Serve
		Model func(t *testing.T, u *up.Upstream, idle time.Duration) chat.Model
		auth  string
		usage chat.Usage
	}{
		{"openai", up.ServeOpenAI, func(t *testing.T, u *up.Upstream, idle time.Duration) chat.Model {
			return up.NewOpenAIModel(t, u, idle)
		}, "Bearer " + up.ProviderKey, chat.Usage{PromptTokens: 12, CompletionTokens: 5, TotalTokens: 17}},
		{"ollama", up.ServeOllama, func(t *testing.T, u *up.Upstream, idle time.Duration) chat.Model {
			return up.NewOllamaModel(t, u, idle)
		}, "", chat.Usage{PromptTokens: 21, CompletionTokens: 4, TotalTokens: 25}},
	} {
		t.Run(p.Name, func(t *testing.T) {
			u := up.New(t, p.serve)
			g := upstreamGateway(t, p.Model(t, u, 0), nil, chat.HandlerOptions{})

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
			if resp.StatusCode != http.StatusOK || text != "Hello from upstream." || !slices.Equal(deltas, up.Pieces) || usage == nil || *usage != p.usage {
				t.Fatalf("stream: %d deltas %q usage %+v\n%s", resp.StatusCode, deltas, usage, b)
			}

			// The second turn carried the first to the upstream.
			headers, bodies := u.Requests()
			if p.Name == "openai" && (up.Streams(bodies[0]) || !up.Streams(bodies[1])) {
				// a non-stream completion is a non-stream call; a stream, a stream
				t.Fatalf("upstream asked for stream=%v, then stream=%v", bodies[0]["stream"], bodies[1]["stream"])
			}
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
	up.EachFailure(t, func(t *testing.T, p up.Provider, f up.Failure, u *up.Upstream) {
		usage := &usageLog{}
		g := upstreamGateway(t, p.Model(t, u, 0), usage, chat.HandlerOptions{})
		for _, detail := range []bool{false, true} {
			body := fmt.Sprintf(`{"stream":true,"detail":%v,"chatId":"c1","messages":[{"role":"user","content":"hi"}]}`, detail)
			resp, b := g.chat("app1", body)
			if f.After == 0 {
				checkOpenAIError(t, resp, b, http.StatusBadGateway, "api_error", "upstream_error", "model provider "+p.Name+" failed")
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
			if !slices.Equal(deltas, up.Pieces[:f.After]) {
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
			case detail && last.name == "error" && e.Code == "upstream_error" && strings.Contains(e.Message, p.Name):
			case !detail && last.name == "" && e.Error != nil && e.Error.Code == "upstream_error" && e.Error.Type == "api_error" &&
				strings.Contains(e.Error.Message, p.Name):
			default:
				t.Fatalf("detail %v: the stream ends with %+v", detail, last)
			}
		}
		resp, b := g.chat("app1", `{"chatId":"c1","messages":[{"role":"user","content":"hi"}]}`)
		checkOpenAIError(t, resp, b, http.StatusBadGateway, "api_error", "upstream_error", "model provider "+p.Name+" failed")
		if g.conversations("app1") != 0 {
			t.Fatal("a failed chat was stored")
		}
		if len(usage.recs) != 0 {
			t.Fatalf("usage recorded for failed chats: %+v", usage.recs)
		}
		checkNoChatgateKey(t, g, u)
	})
}

// TestUpstreamStallThroughHandler: an upstream stalled before the first
// byte is a 502; after it, the stream ends with an error. Neither is stored.
func TestUpstreamStallThroughHandler(t *testing.T) {
	const idle = 300 * time.Millisecond
	for _, p := range up.Providers {
		t.Run(p.Name, func(t *testing.T) {
			u := up.New(t, up.StallAfter(p, 0))
			g := upstreamGateway(t, p.Model(t, u, idle), nil, chat.HandlerOptions{})
			resp, b := g.chat("app1", `{"stream":true,"chatId":"s","messages":[{"role":"user","content":"hi"}]}`)
			checkOpenAIError(t, resp, b, http.StatusBadGateway, "api_error", "upstream_error", "idle timeout")
			u.WaitGone(t)
			u.SetServe(up.StallAfter(p, 1))
			resp, b = g.chat("app1", `{"stream":true,"chatId":"s","messages":[{"role":"user","content":"hi"}]}`)
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"content":"Hello"`) ||
				!strings.HasSuffix(string(b), `"code":"upstream_error","param":null}}`+"\n\n") || !strings.Contains(string(b), "idle timeout") {
				t.Fatalf("%d %s", resp.StatusCode, b)
			}
			u.WaitGone(t)
			if g.conversations("app1") != 0 {
				t.Fatal("a stalled chat was stored")
			}
		})
	}
}

// TestClientCancelCancelsUpstream: a client that goes away mid-stream
// cancels the upstream call, and nothing is stored.
func TestClientCancelCancelsUpstream(t *testing.T) {
	for _, p := range up.Providers {
		t.Run(p.Name, func(t *testing.T) {
			u := up.New(t, up.StallAfter(p, 2))
			g := upstreamGateway(t, p.Model(t, u, 0), nil, chat.HandlerOptions{})
			for _, stream := range []bool{true, false} {
				drain(u.Arrived)
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
					u.WaitArrived(t)
					cancel()
				}
				u.WaitGone(t)
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
	for _, p := range up.Providers {
		func() {
			calls := []up.Serve{
				p.Serve(up.Failure{After: len(up.Pieces), Fail: func(u *up.Upstream, w http.ResponseWriter, r *http.Request) {
					if p.Name == "openai" {
						up.SSEData(w, up.OpenAIFinish)
						up.SSEData(w, "[DONE]")
					} else {
						up.OllamaLine(w, "", true)
					}
				}}),
				p.Serve(p.Failures[0]), // dropped mid-stream
				up.StallAfter(p, 1),    // idle timeout
				up.StallAfter(p, 2),    // the client cancels
			}
			// The handler of a stalled call may still be starting when the
			// next call is chosen, so the choice is shared atomically.
			var call atomic.Int32
			u := up.New(t, func(u *up.Upstream, w http.ResponseWriter, r *http.Request, body map[string]any) {
				calls[call.Load()](u, w, r, body)
			})
			g := upstreamGateway(t, p.Model(t, u, 250*time.Millisecond), nil, chat.HandlerOptions{Heartbeat: 100 * time.Millisecond})
			for i := range 3 {
				call.Store(int32(i))
				for _, stream := range []string{"true", "false"} {
					resp, b := g.chat("app1", `{"stream":`+stream+`,"messages":[{"role":"user","content":"hi"}]}`)
					if resp.StatusCode >= 500 && resp.StatusCode != http.StatusBadGateway {
						t.Fatalf("%d %s", resp.StatusCode, b)
					}
				}
			}
			call.Store(3)
			ctx, cancel := context.WithCancel(context.Background())
			resp, err := g.request(ctx, http.MethodPost, "/api/v1/chat/completions", "app1", `{"stream":true,"messages":[{"role":"user","content":"hi"}]}`)
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 1)
			_, _ = resp.Body.Read(buf)
			cancel()
			resp.Body.Close()
			u.WaitGone(t)
			g.close()
			u.Close()
		}()
	}
	// Connections close in the background: poll, with a deadline, until the
	// goroutines are back. (synctest would check this itself, but the
	// gateway and the provider talk over real loopback, which a bubble's
	// goroutines may not wait on.)
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
