package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/chatgate/chatgate/server"
)

// fakeUpstream speaks OpenAI's chat completions, streaming or not, and
// remembers every request's headers and body.
type fakeUpstream struct {
	*httptest.Server
	mu   sync.Mutex
	seen []string // each request's headers and body, as text
	auth []string
}

func newFakeUpstream(t testing.TB, words []string) *fakeUpstream {
	f := &fakeUpstream{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var hdr bytes.Buffer
		_ = r.Header.Write(&hdr)
		f.mu.Lock()
		f.seen = append(f.seen, hdr.String()+"\n"+string(body))
		f.auth = append(f.auth, r.Header.Get("Authorization"))
		f.mu.Unlock()
		var req struct {
			Model  string `json:"model"`
			Stream bool   `json:"stream"`
		}
		_ = json.Unmarshal(body, &req)
		if !req.Stream {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"id":"up-1","object":"chat.completion","created":1,"model":%q,"choices":[{"index":0,"message":{"role":"assistant","content":%q},"finish_reason":"stop"}],"usage":{"prompt_tokens":7,"completion_tokens":%d,"total_tokens":%d}}`,
				req.Model, strings.Join(words, ""), len(words), 7+len(words))
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		for _, word := range words {
			fmt.Fprintf(w, "data: {\"id\":\"up-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":%q,\"choices\":[{\"index\":0,\"delta\":{\"content\":%q},\"finish_reason\":null}]}\n\n", req.Model, word)
			fl.Flush()
		}
		fmt.Fprintf(w, "data: {\"id\":\"up-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":%q,\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n", req.Model)
		fl.Flush()
	}))
	t.Cleanup(f.Close)
	return f
}

func chatOnce(t *testing.T, base, key string, stream bool) string {
	t.Helper()
	body := fmt.Sprintf(`{"stream":%v,"messages":[{"role":"user","content":"say hello"}]}`, stream)
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("chat: %d %s", resp.StatusCode, out)
	}
	return string(out)
}

// The caller's chatgate key authenticates to chatgate only; the upstream
// sees the provider key configured for the model, in every request.
func TestUpstreamNeverSeesChatgateKey(t *testing.T) {
	up := newFakeUpstream(t, []string{"Hel", "lo ", "there"})
	base, _ := sdkServer(t, func(c *server.Config) {
		c.Models = []server.ModelConfig{{Name: "fake", Provider: "openai", BaseURL: up.URL + "/v1", APIKey: "upstream-secret", Model: "gpt-fake"}}
		c.Apps = []server.AppConfig{{ID: "proxied", Name: "proxied", Model: "fake"}}
	})
	key := sdkKey(t, base, map[string]any{"name": "app", "appId": "proxied"})
	if out := chatOnce(t, base, key, false); !strings.Contains(out, "Hello there") {
		t.Fatalf("non-stream answer %s", out)
	}
	if out := chatOnce(t, base, key, true); !strings.Contains(out, `"content":"Hel"`) || !strings.HasSuffix(strings.TrimSpace(out), "data: [DONE]") {
		t.Fatalf("stream answer %s", out)
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	if len(up.seen) < 2 {
		t.Fatalf("upstream saw %d requests", len(up.seen))
	}
	for i, s := range up.seen {
		if up.auth[i] != "Bearer upstream-secret" {
			t.Errorf("request %d: Authorization %q", i, up.auth[i])
		}
		for _, secret := range []string{key, key[len(key)-12:], sdkAdmin} {
			if strings.Contains(s, secret) {
				t.Errorf("request %d carried a chatgate key:\n%s", i, s)
			}
		}
		if !strings.Contains(s, "gpt-fake") {
			t.Errorf("request %d did not name the upstream model:\n%s", i, s)
		}
	}
}

// OPENAI_BASE_URL and OPENAI_API_KEY make an OpenAI-compatible provider
// serve every model name that is not declared.
func TestOpenAIEnvFallback(t *testing.T) {
	up := newFakeUpstream(t, []string{"from ", "env"})
	base, _ := sdkServer(t, func(c *server.Config) {
		env := map[string]string{"OPENAI_BASE_URL": up.URL + "/v1", "OPENAI_API_KEY": "env-secret"}
		c.ApplyEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		c.Apps = []server.AppConfig{{ID: "undeclared", Name: "u", Model: "some-upstream-model"}}
	})
	key := sdkKey(t, base, map[string]any{"name": "app", "appId": "undeclared"})
	if out := chatOnce(t, base, key, false); !strings.Contains(out, "from env") {
		t.Fatalf("answer %s", out)
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	if len(up.auth) != 1 || up.auth[0] != "Bearer env-secret" || !strings.Contains(up.seen[0], "some-upstream-model") {
		t.Fatalf("upstream saw %q\n%v", up.auth, up.seen)
	}
}
