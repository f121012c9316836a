package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatgate/chatgate/server"
)

func histories(t *testing.T, base, key, app string) int {
	t.Helper()
	_, body := curl(t, "GET", base+"/api/core/chat/getHistories?appId="+app, key, "")
	var env struct {
		Code int `json:"code"`
		Data struct {
			Total int `json:"total"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &env); err != nil || env.Code != 200 {
		t.Fatalf("getHistories: %s", body)
	}
	return env.Data.Total
}

type openAIErr struct {
	Error struct {
		Message string `json:"message"`
		Type    string `json:"type"`
		Code    string `json:"code"`
	} `json:"error"`
}

// Every bad input gets a clear OpenAI-shaped error and stores nothing.
func TestChatBadInputs(t *testing.T) {
	base, _ := sdkServer(t, func(c *server.Config) {
		c.Chat.MaxBodyBytes = 4096
		c.Channels.API.Enabled = true
		c.Channels.API.Accounts = map[string]server.Account{"free": {Name: "free", Enabled: true, APIKey: "free-account-key"}}
	})
	key := sdkKey(t, base, map[string]any{"name": "app", "appId": "main"})
	for _, tc := range []struct {
		name, key, body string
		status          int
		code, field     string
	}{
		{"empty messages", key, `{"chatId":"x","messages":[]}`, 400, "invalid_request", "messages"},
		{"missing messages", key, `{"chatId":"x"}`, 400, "invalid_request", "messages"},
		{"wrong role", key, `{"chatId":"x","messages":[{"role":"wizard","content":"hi"}]}`, 400, "invalid_request", "messages[0].role"},
		{"content a number", key, `{"chatId":"x","messages":[{"role":"user","content":5}]}`, 400, "invalid_request", "messages[0].content"},
		{"content an object", key, `{"chatId":"x","messages":[{"role":"user","content":{"text":"hi"}}]}`, 400, "invalid_request", "messages[0].content"},
		{"image URL not a URL", key, `{"chatId":"x","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}`, 400, "invalid_request", "messages[0].content[0].image_url.url"},
		{"image to the offline model", key, `{"chatId":"x","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://img.test/a.png"}}]}]}`, 400, "invalid_request", "messages[0].content[0].image_url"},
		{"variables not an object", key, `{"chatId":"x","variables":["a"],"messages":[{"role":"user","content":"hi"}]}`, 400, "invalid_request", "variables"},
		{"variables a string", key, `{"chatId":"x","variables":"a=b","messages":[{"role":"user","content":"hi"}]}`, 400, "invalid_request", "variables"},
		{"malformed JSON", key, `{"chatId":"x","messages":[`, 400, "invalid_request", ""},
		{"oversized body", key, `{"chatId":"x","messages":[{"role":"user","content":"` + strings.Repeat("a", 5000) + `"}]}`, 400, "invalid_request", ""},
		{"unknown app", "free-account-key", `{"model":"no-such-app","chatId":"x","messages":[{"role":"user","content":"hi"}]}`, 404, "app_not_found", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := curl(t, "POST", base+"/api/v1/chat/completions", tc.key, tc.body)
			var e openAIErr
			if err := json.Unmarshal([]byte(body), &e); err != nil || resp.StatusCode != tc.status || e.Error.Code != tc.code || e.Error.Message == "" {
				t.Fatalf("%d %s; want %d %s", resp.StatusCode, body, tc.status, tc.code)
			}
			if tc.field != "" && !strings.Contains(e.Error.Message, `"`+tc.field+`"`) {
				t.Fatalf("message %q does not name %s", e.Error.Message, tc.field)
			}
		})
	}
	if n := histories(t, base, key, "main"); n != 0 {
		t.Fatalf("bad requests stored %d conversations", n)
	}
}

// scriptedUpstream answers streaming chat completions by a script:
// "fail-early" -> 500 before any byte, "cut" -> two chunks then a dropped
// connection, "stall" -> one chunk then silence until the client leaves.
type scriptedUpstream struct {
	*httptest.Server
	cancelled atomic.Int64
	script    atomic.Value
}

func newScriptedUpstream(t *testing.T) *scriptedUpstream {
	u := &scriptedUpstream{}
	u.script.Store("ok")
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		chunk := func(s string) {
			fmt.Fprintf(w, "data: {\"id\":\"u\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":%q},\"finish_reason\":null}]}\n\n", s)
			w.(http.Flusher).Flush()
		}
		switch u.script.Load().(string) {
		case "fail-early":
			http.Error(w, `{"error":{"message":"upstream is down","type":"server_error"}}`, http.StatusInternalServerError)
		case "cut":
			w.Header().Set("Content-Type", "text/event-stream")
			chunk("partial ")
			chunk("answer ")
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
		case "stall":
			w.Header().Set("Content-Type", "text/event-stream")
			chunk("thinking ")
			<-r.Context().Done()
			u.cancelled.Add(1)
		default:
			w.Header().Set("Content-Type", "text/event-stream")
			chunk("fine")
			fmt.Fprint(w, "data: {\"id\":\"u\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n")
		}
	}))
	t.Cleanup(u.Close)
	return u
}

func TestUpstreamFailures(t *testing.T) {
	up := newScriptedUpstream(t)
	base, _ := sdkServer(t, func(c *server.Config) {
		c.Models = []server.ModelConfig{
			{Name: "up", Provider: "openai", BaseURL: up.URL + "/v1", APIKey: "k", IdleTimeout: server.Duration(300 * time.Millisecond)},
			{Name: "patient", Provider: "openai", BaseURL: up.URL + "/v1", APIKey: "k"},
		}
		c.Apps = []server.AppConfig{{ID: "proxied", Name: "p", Model: "up"}, {ID: "patient", Name: "p", Model: "patient"}}
	})
	key := sdkKey(t, base, map[string]any{"name": "app", "appId": "proxied"})
	url := base + "/api/v1/chat/completions"

	t.Run("before the first byte: 502", func(t *testing.T) {
		up.script.Store("fail-early")
		for _, stream := range []string{"false", "true"} {
			resp, body := curl(t, "POST", url, key, `{"chatId":"c1","stream":`+stream+`,"messages":[{"role":"user","content":"hi"}]}`)
			var e openAIErr
			if resp.StatusCode != 502 || json.Unmarshal([]byte(body), &e) != nil || e.Error.Code != "upstream_error" {
				t.Fatalf("stream=%s: %d %s", stream, resp.StatusCode, body)
			}
		}
	})
	t.Run("mid-stream: error chunk, no history", func(t *testing.T) {
		up.script.Store("cut")
		resp, body := curl(t, "POST", url, key, `{"chatId":"c2","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
		_, data := sseData(t, body)
		if resp.StatusCode != 200 || len(data) < 2 || !strings.Contains(data[0], "partial") ||
			!strings.Contains(data[len(data)-1], `"error"`) || !strings.Contains(data[len(data)-1], "upstream_error") {
			t.Fatalf("%d %q", resp.StatusCode, data)
		}
		resp, body = curl(t, "POST", url, key, `{"chatId":"c2","stream":true,"detail":true,"messages":[{"role":"user","content":"hi"}]}`)
		events, _ := sseData(t, body)
		if events[len(events)-1] != "error" {
			t.Fatalf("detail stream ended with %q:\n%s", events, body)
		}
	})
	t.Run("stall: idle timeout ends the stream", func(t *testing.T) {
		up.script.Store("stall")
		start := time.Now()
		_, body := curl(t, "POST", url, key, `{"chatId":"c3","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
		_, data := sseData(t, body)
		if d := time.Since(start); d > 5*time.Second || !strings.Contains(data[len(data)-1], "upstream_error") {
			t.Fatalf("after %v: %q", d, data)
		}
	})
	if n := histories(t, base, key, "proxied"); n != 0 {
		t.Fatalf("failed chats stored %d conversations", n)
	}

	t.Run("client disconnect cancels the upstream call", func(t *testing.T) {
		up.script.Store("stall")
		patient := sdkKey(t, base, map[string]any{"name": "patient", "appId": "patient"})
		before := runtime.NumGoroutine()
		was := up.cancelled.Load()
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "POST", url, strings.NewReader(`{"stream":true,"messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("Authorization", "Bearer "+patient)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64)
		if _, err := resp.Body.Read(buf); err != nil { // the first chunk is through
			t.Fatal(err)
		}
		cancel()
		resp.Body.Close()
		deadline := time.Now().Add(5 * time.Second)
		for up.cancelled.Load() == was {
			if time.Now().After(deadline) {
				t.Fatal("the upstream never saw the cancel")
			}
			time.Sleep(10 * time.Millisecond)
		}
		http.DefaultClient.CloseIdleConnections()
		for runtime.NumGoroutine() > before+2 {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Fatalf("goroutines: %d before, %d after\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}
