package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	openai "github.com/openai/openai-go"
	"github.com/openai/openai-go/option"

	"github.com/chatgate/chatgate/server"
)

const sdkAdmin = "sdk-admin-key-0123456789"

// sdkServer runs the reference server on loopback with a known admin key
// and returns its base URL.
func sdkServer(t *testing.T, mutate func(*server.Config)) (string, *server.Server) {
	return sdkServerTB(t, mutate)
}

func sdkServerTB(t testing.TB, mutate func(*server.Config)) (string, *server.Server) {
	t.Helper()
	cfg := server.Config{RootKey: sdkAdmin, Stderr: io.Discard}
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

// sdkKey creates a key through the key API and returns its secret.
func sdkKey(t *testing.T, base string, spec map[string]any) string {
	return sdkKeyTB(t, base, spec)
}

func sdkKeyTB(t testing.TB, base string, spec map[string]any) string {
	t.Helper()
	body, _ := json.Marshal(spec)
	req, _ := http.NewRequest(http.MethodPost, base+"/api/support/openapi/create", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+sdkAdmin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var env struct {
		Code int `json:"code"`
		Data struct {
			Key string `json:"key"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil || env.Code != 200 || env.Data.Key == "" {
		t.Fatalf("create key: %d %+v %v", resp.StatusCode, env, err)
	}
	return env.Data.Key
}

const sdkQuestion = "what does the quick brown fox do"

func TestOpenAIGo(t *testing.T) {
	base, _ := sdkServer(t, nil)
	appKey := sdkKey(t, base, map[string]any{"name": "app", "appId": "main"})
	globalKey := sdkKey(t, base, map[string]any{"name": "global"})
	ctx := context.Background()
	for _, prefix := range []string{"/api/v1/", "/v1/"} {
		t.Run(prefix, func(t *testing.T) {
			client := func(key string) openai.Client {
				return openai.NewClient(option.WithBaseURL(base+prefix), option.WithAPIKey(key), option.WithMaxRetries(0))
			}
			c := client(appKey)
			params := openai.ChatCompletionNewParams{Model: "main",
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(sdkQuestion)}}
			res, err := c.Chat.Completions.New(ctx, params)
			if err != nil {
				t.Fatal(err)
			}
			want := res.Choices[0].Message.Content
			if want == "" || res.Usage.PromptTokens <= 0 || res.Usage.CompletionTokens <= 0 || res.Object != "chat.completion" {
				t.Fatalf("non-stream: %+v", res)
			}

			params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
			stream := c.Chat.Completions.NewStreaming(ctx, params)
			var (
				got    strings.Builder
				chunks int
				usage  int64
			)
			for stream.Next() {
				ch := stream.Current()
				chunks++
				if len(ch.Choices) > 0 {
					got.WriteString(ch.Choices[0].Delta.Content)
				}
				if ch.Usage.TotalTokens > 0 {
					usage = ch.Usage.TotalTokens
				}
			}
			if err := stream.Err(); err != nil {
				t.Fatal(err)
			}
			if got.String() != want || chunks < 3 || usage <= 0 {
				t.Fatalf("stream gave %q in %d chunks (usage %d), want %q", got.String(), chunks, usage, want)
			}

			for _, tc := range []struct {
				key    string
				status int
				code   string
			}{{"cg-not-a-real-key", 401, "invalid_api_key"}, {globalKey, 403, "app_key_required"}} {
				bad := client(tc.key)
				_, err := bad.Chat.Completions.New(ctx, params)
				var apiErr *openai.Error
				if !errors.As(err, &apiErr) || apiErr.StatusCode != tc.status || apiErr.Code != tc.code || apiErr.Message == "" {
					t.Fatalf("key %q: err = %v, want a typed %d %s", tc.key[:6], err, tc.status, tc.code)
				}
			}
		})
	}
}

func TestGoOpenAI(t *testing.T) {
	base, _ := sdkServer(t, nil)
	appKey := sdkKey(t, base, map[string]any{"name": "app", "appId": "main"})
	globalKey := sdkKey(t, base, map[string]any{"name": "global"})
	ctx := context.Background()
	for _, prefix := range []string{"/api/v1", "/v1"} {
		t.Run(prefix, func(t *testing.T) {
			client := func(key string) *goopenai.Client {
				cfg := goopenai.DefaultConfig(key)
				cfg.BaseURL = base + prefix
				return goopenai.NewClientWithConfig(cfg)
			}
			req := goopenai.ChatCompletionRequest{Model: "main",
				Messages: []goopenai.ChatCompletionMessage{{Role: goopenai.ChatMessageRoleUser, Content: sdkQuestion}}}
			res, err := client(appKey).CreateChatCompletion(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			want := res.Choices[0].Message.Content
			if want == "" || res.Usage.PromptTokens <= 0 || res.Usage.CompletionTokens <= 0 {
				t.Fatalf("non-stream: %+v", res)
			}

			req.Stream = true
			req.StreamOptions = &goopenai.StreamOptions{IncludeUsage: true}
			st, err := client(appKey).CreateChatCompletionStream(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			var got strings.Builder
			var usage int
			for {
				ch, err := st.Recv()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if len(ch.Choices) > 0 {
					got.WriteString(ch.Choices[0].Delta.Content)
				}
				if ch.Usage != nil {
					usage = ch.Usage.TotalTokens
				}
			}
			st.Close()
			if got.String() != want || usage <= 0 {
				t.Fatalf("stream gave %q (usage %d), want %q", got.String(), usage, want)
			}

			for _, tc := range []struct {
				key    string
				status int
				code   string
			}{{"cg-not-a-real-key", 401, "invalid_api_key"}, {globalKey, 403, "app_key_required"}} {
				req.Stream, req.StreamOptions = false, nil
				_, err := client(tc.key).CreateChatCompletion(ctx, req)
				var apiErr *goopenai.APIError
				if !errors.As(err, &apiErr) || apiErr.HTTPStatusCode != tc.status || apiErr.Code != tc.code {
					t.Fatalf("key %q: err = %#v, want a typed %d %s", tc.key[:6], err, tc.status, tc.code)
				}
				// a stream request fails the same way, before any chunk
				req.Stream = true
				_, err = client(tc.key).CreateChatCompletionStream(ctx, req)
				if !errors.As(err, &apiErr) || apiErr.HTTPStatusCode != tc.status {
					t.Fatalf("stream with key %q: err = %v", tc.key[:6], err)
				}
			}
		})
	}
}
