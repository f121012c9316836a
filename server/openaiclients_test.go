package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	openai "github.com/openai/openai-go"
	"github.com/openai/openai-go/option"
	"github.com/openai/openai-go/shared"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/server"
)

// ocUpstream is a fake OpenAI provider that calls tools: a request with
// tools whose last message is the user's gets two parallel calls, their
// fragments interleaved as OpenAI streams them; one whose last message is
// a tool result gets a text answer. A request that does not ask for a
// stream gets the same answer whole. It keeps every request body.
type ocUpstream struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []map[string]any
}

// ocCalls are the calls the fake makes, whole.
var ocCalls = []chat.ToolCall{
	{Index: 0, ID: "call_weather", Type: "function", Function: chat.FunctionCall{Name: "get_weather", Arguments: `{"city":"Paris"}`}},
	{Index: 1, ID: "call_time", Type: "function", Function: chat.FunctionCall{Name: "get_time", Arguments: `{"tz":"Europe/Paris"}`}},
}

func ocFakeUpstream(t *testing.T) *ocUpstream {
	f := &ocUpstream{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var body map[string]any
		if err := json.Unmarshal(raw, &body); err != nil {
			http.Error(w, `{"error":{"message":"bad json"}}`, http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.bodies = append(f.bodies, body)
		f.mu.Unlock()
		msgs, _ := body["messages"].([]any)
		last, _ := msgs[len(msgs)-1].(map[string]any)
		calls := body["tools"] != nil && last["role"] == "user"
		if body["stream"] != true {
			// the whole answer, as OpenAI gives it to a non-stream request
			msg := map[string]any{"role": "assistant", "content": "Sunny, and it is noon."}
			finish := "stop"
			if calls {
				whole := make([]map[string]any, len(ocCalls))
				for i, c := range ocCalls {
					whole[i] = map[string]any{"id": c.ID, "type": c.Type, "function": map[string]any{"name": c.Function.Name, "arguments": c.Function.Arguments}}
				}
				msg["content"], msg["tool_calls"], finish = "Let me check.", whole, "tool_calls"
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"id": "up-1", "object": "chat.completion", "created": 1, "model": "gpt-tools",
				"choices": []any{map[string]any{"index": 0, "message": msg, "finish_reason": finish}},
				"usage":   map[string]int{"prompt_tokens": 30, "completion_tokens": 12, "total_tokens": 42}})
			return
		}
		chunk := func(delta, finish string) {
			fmt.Fprintf(w, "data: {\"id\":\"up-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-tools\",\"choices\":[{\"index\":0,\"delta\":%s,\"finish_reason\":%s}]}\n\n", delta, finish)
			w.(http.Flusher).Flush()
		}
		w.Header().Set("Content-Type", "text/event-stream")
		if !calls {
			chunk(`{"role":"assistant","content":""}`, "null")
			for _, word := range []string{"Sunny, ", "and it is noon."} {
				chunk(fmt.Sprintf(`{"content":%q}`, word), "null")
			}
			chunk(`{}`, `"stop"`)
		} else {
			chunk(`{"role":"assistant","content":null}`, "null")
			chunk(`{"content":"Let me check."}`, "null")
			for _, frag := range []string{
				`{"index":0,"id":"call_weather","type":"function","function":{"name":"get_weather","arguments":""}}`,
				`{"index":1,"id":"call_time","type":"function","function":{"name":"get_time","arguments":""}}`,
				`{"index":0,"function":{"arguments":"{\"city\":"}}`,
				`{"index":1,"function":{"arguments":"{\"tz\":\"Europe/"}}`,
				`{"index":0,"function":{"arguments":"\"Paris\"}"}}`,
				`{"index":1,"function":{"arguments":"Paris\"}"}}`,
			} {
				chunk(`{"tool_calls":[`+frag+`]}`, "null")
			}
			chunk(`{}`, `"tool_calls"`)
		}
		fmt.Fprint(w, "data: {\"id\":\"up-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-tools\",\"choices\":[],\"usage\":{\"prompt_tokens\":30,\"completion_tokens\":12,\"total_tokens\":42}}\n\ndata: [DONE]\n\n")
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *ocUpstream) requests() []map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.bodies)
}

// ocServe runs the server with app "agent" on the tool-calling upstream,
// and returns an app key for it and one for the default (offline) app.
func ocServe(t *testing.T) (base string, s *server.Server, up *ocUpstream, agentKey, mainKey string) {
	up = ocFakeUpstream(t)
	base, s = ccServe(t, func(c *server.Config) {
		c.Models = []server.ModelConfig{{Name: "tooly", Provider: "openai", BaseURL: up.URL + "/v1", APIKey: "up-secret", Model: "gpt-tools"}}
		c.Apps = []server.AppConfig{{ID: "agent", Name: "agent", Model: "tooly"}}
	})
	_, agentKey = ccKey(t, s, auth.KeySpec{Name: "agent", AppID: "agent"})
	_, mainKey = ccKey(t, s, auth.KeySpec{Name: "main", AppID: chat.DefaultAppID})
	return base, s, up, agentKey, mainKey
}

var ocTools = []openai.ChatCompletionToolParam{
	{Function: shared.FunctionDefinitionParam{Name: "get_weather", Description: openai.String("The weather in a city"),
		Parameters: shared.FunctionParameters{"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}, "required": []string{"city"}}}},
	{Function: shared.FunctionDefinitionParam{Name: "get_time"}}, // no parameters: none must be invented
}

// Tools, tool_choice and parallel_tool_calls reach the upstream as the
// client sent them; the upstream's tool calls, streamed as interleaved
// fragments of two parallel calls, come back in OpenAI's shape, streamed
// (the SDK's accumulator puts them together) and not; the tool results
// the client sends back reach the upstream with their calls.
func TestClientsToolCalls(t *testing.T) {
	base, _, up, key, _ := ocServe(t)
	ctx := context.Background()
	oc := openai.NewClient(option.WithBaseURL(base+"/v1"), option.WithAPIKey(key), option.WithMaxRetries(0))
	params := openai.ChatCompletionNewParams{Model: "agent", Tools: ocTools,
		ToolChoice:        openai.ChatCompletionToolChoiceOptionUnionParam{OfAuto: openai.String("required")},
		ParallelToolCalls: openai.Bool(false),
		Messages:          []openai.ChatCompletionMessageParamUnion{openai.UserMessage("weather and time in Paris?")}}

	checkCalls := func(t *testing.T, how string, got []openai.ChatCompletionMessageToolCall) {
		t.Helper()
		if len(got) != len(ocCalls) {
			t.Fatalf("%s: %d tool calls: %+v", how, len(got), got)
		}
		for i, c := range got {
			w := ocCalls[i]
			if c.ID != w.ID || c.Type != "function" || c.Function.Name != w.Function.Name || c.Function.Arguments != w.Function.Arguments {
				t.Fatalf("%s: call %d is %+v, want %+v", how, i, c, w)
			}
		}
	}

	// Stream: the SDK puts the fragments together.
	stream := oc.Chat.Completions.NewStreaming(ctx, params)
	var (
		acc       openai.ChatCompletionAccumulator
		fragments int
		finished  []string
	)
	for stream.Next() {
		ch := stream.Current()
		if !acc.AddChunk(ch) {
			t.Fatalf("chunk does not continue the completion: %s", ch.RawJSON())
		}
		if len(ch.Choices) > 0 {
			fragments += len(ch.Choices[0].Delta.ToolCalls)
		}
		if tc, ok := acc.JustFinishedToolCall(); ok {
			finished = append(finished, tc.Name+tc.Arguments)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if fragments != 6 || acc.Choices[0].FinishReason != "tool_calls" || acc.Choices[0].Message.Content != "Let me check." {
		t.Fatalf("stream: %d fragments, finish %q, content %q", fragments, acc.Choices[0].FinishReason, acc.Choices[0].Message.Content)
	}
	checkCalls(t, "stream", acc.Choices[0].Message.ToolCalls)

	// Non-stream: the whole calls, no index.
	res, err := oc.Chat.Completions.New(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	if res.Choices[0].FinishReason != "tool_calls" || res.Choices[0].Message.Content != "Let me check." {
		t.Fatalf("non-stream %s", res.RawJSON())
	}
	checkCalls(t, "non-stream", res.Choices[0].Message.ToolCalls)
	if strings.Contains(res.Choices[0].Message.RawJSON(), `"index"`) {
		t.Fatalf("non-stream tool calls carry stream indexes: %s", res.Choices[0].Message.RawJSON())
	}

	// What the upstream was asked: the tools as sent, nothing invented.
	sent, _ := json.Marshal(params.Tools)
	var wantTools any
	_ = json.Unmarshal(sent, &wantTools)
	bodies := up.requests()
	for i, b := range bodies {
		if !reflect.DeepEqual(b["tools"], wantTools) || b["tool_choice"] != "required" || b["parallel_tool_calls"] != false || b["model"] != "gpt-tools" {
			t.Fatalf("upstream request %d: tools %v, tool_choice %v, parallel_tool_calls %v", i, b["tools"], b["tool_choice"], b["parallel_tool_calls"])
		}
	}

	// The client runs the tools and sends the results back.
	params.Messages = append(params.Messages, res.Choices[0].Message.ToParam(),
		openai.ToolMessage(`{"sky":"clear"}`, "call_weather"), openai.ToolMessage(`{"time":"12:00"}`, "call_time"))
	params.ToolChoice = openai.ChatCompletionToolChoiceOptionUnionParam{OfAuto: openai.String("auto")}
	for _, streaming := range []bool{false, true} {
		var text string
		if streaming {
			s := oc.Chat.Completions.NewStreaming(ctx, params)
			var acc openai.ChatCompletionAccumulator
			for s.Next() {
				acc.AddChunk(s.Current())
			}
			if err := s.Err(); err != nil {
				t.Fatal(err)
			}
			text = acc.Choices[0].Message.Content
		} else {
			res, err := oc.Chat.Completions.New(ctx, params)
			if err != nil {
				t.Fatal(err)
			}
			text = res.Choices[0].Message.Content
			if res.Choices[0].FinishReason != "stop" || len(res.Choices[0].Message.ToolCalls) != 0 {
				t.Fatalf("answer after the tools: %s", res.RawJSON())
			}
		}
		if text != "Sunny, and it is noon." {
			t.Fatalf("answer after the tools (stream %v): %q", streaming, text)
		}
	}
	bodies = up.requests()
	msgs, _ := bodies[len(bodies)-1]["messages"].([]any)
	if len(msgs) != 4 {
		t.Fatalf("upstream got %d messages: %v", len(msgs), msgs)
	}
	asst, _ := msgs[1].(map[string]any)
	calls, _ := asst["tool_calls"].([]any)
	if asst["role"] != "assistant" || len(calls) != 2 {
		t.Fatalf("assistant message upstream: %v", asst)
	}
	for i, c := range calls {
		c := c.(map[string]any)
		fn := c["function"].(map[string]any)
		if c["id"] != ocCalls[i].ID || c["type"] != "function" || fn["name"] != ocCalls[i].Function.Name || fn["arguments"] != ocCalls[i].Function.Arguments {
			t.Fatalf("call %d upstream: %v", i, c)
		}
	}
	for i, want := range []string{"call_weather", "call_time"} {
		m := msgs[2+i].(map[string]any)
		if m["role"] != "tool" || m["tool_call_id"] != want {
			t.Fatalf("tool message %d upstream: %v", i, m)
		}
	}
	if c := msgs[2].(map[string]any)["content"]; c != `{"sky":"clear"}` {
		t.Fatalf("tool result upstream: %v", c)
	}
}

// The raw stream of a tool call is OpenAI's, chunk by chunk: the first
// fragment of each call names it, the rest carry its index and arguments.
func TestClientsToolCallChunks(t *testing.T) {
	base, _, _, key, _ := ocServe(t)
	status, body := ccRaw(t, base, key, `{"stream":true,"tools":[{"type":"function","function":{"name":"get_weather"}}],"messages":[{"role":"user","content":"weather?"}]}`)
	if status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	var deltas []string
	for _, line := range strings.Split(body, "\n") {
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok || data == "[DONE]" {
			continue
		}
		var c struct {
			Choices []struct {
				Delta        json.RawMessage `json:"delta"`
				FinishReason *string         `json:"finish_reason"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(data), &c); err != nil || len(c.Choices) != 1 {
			t.Fatalf("chunk %s", data)
		}
		d := string(c.Choices[0].Delta)
		if c.Choices[0].FinishReason != nil {
			d += " " + *c.Choices[0].FinishReason
		}
		deltas = append(deltas, d)
	}
	want := []string{
		`{"role":"assistant","content":"Let me check."}`,
		`{"tool_calls":[{"index":0,"id":"call_weather","type":"function","function":{"name":"get_weather","arguments":""}}]}`,
		`{"tool_calls":[{"index":1,"id":"call_time","type":"function","function":{"name":"get_time","arguments":""}}]}`,
		`{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]}`,
		`{"tool_calls":[{"index":1,"function":{"arguments":"{\"tz\":\"Europe/"}}]}`,
		`{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]}`,
		`{"tool_calls":[{"index":1,"function":{"arguments":"Paris\"}"}}]}`,
		`{} tool_calls`,
	}
	if !slices.Equal(deltas, want) {
		t.Fatalf("deltas\n%s\nwant\n%s", strings.Join(deltas, "\n"), strings.Join(want, "\n"))
	}
}

// Images reach an upstream that takes them as the client sent them; the
// offline model refuses them, and tools, by the field's name, before any
// work (the stateless chats store nothing either way).
func TestClientsImages(t *testing.T) {
	base, _, up, key, mainKey := ocServe(t)
	ctx := context.Background()
	msg := openai.UserMessage([]openai.ChatCompletionContentPartUnionParam{
		openai.TextContentPart("What is in this picture?"),
		openai.ImageContentPart(openai.ChatCompletionContentPartImageImageURLParam{URL: "https://img.test/cat.png", Detail: "low"}),
	})
	oc := openai.NewClient(option.WithBaseURL(base+"/v1"), option.WithAPIKey(key), option.WithMaxRetries(0))
	res, err := oc.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "agent", Messages: []openai.ChatCompletionMessageParamUnion{msg}})
	if err != nil || res.Choices[0].Message.Content != "Sunny, and it is noon." {
		t.Fatalf("%v %+v", err, res)
	}
	bodies := up.requests()
	got, _ := json.Marshal(bodies[0]["messages"])
	if want := `[{"content":[{"text":"What is in this picture?","type":"text"},{"image_url":{"detail":"low","url":"https://img.test/cat.png"}` +
		`,"type":"image_url"}],"role":"user"}]`; string(got) != want {
		t.Fatalf("upstream messages\n%s\nwant\n%s", got, want)
	}

	offline := openai.NewClient(option.WithBaseURL(base+"/v1"), option.WithAPIKey(mainKey), option.WithMaxRetries(0))
	for _, tc := range []struct {
		name   string
		params openai.ChatCompletionNewParams
		param  string
	}{
		{"image", openai.ChatCompletionNewParams{Messages: []openai.ChatCompletionMessageParamUnion{msg}}, `messages[0].content[1].image_url`},
		{"tools", openai.ChatCompletionNewParams{Tools: ocTools, Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}}, `tools`},
	} {
		for _, streaming := range []bool{false, true} {
			var err error
			if streaming {
				s := offline.Chat.Completions.NewStreaming(ctx, tc.params)
				for s.Next() {
				}
				err = s.Err()
			} else {
				_, err = offline.Chat.Completions.New(ctx, tc.params)
			}
			var apiErr *openai.Error
			if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Type != "invalid_request_error" ||
				!strings.Contains(apiErr.Message, `"`+tc.param+`": the app's model "extractive" does not take `) {
				t.Fatalf("%s (stream %v): %v", tc.name, streaming, err)
			}
		}
	}
	if len(up.requests()) != 1 {
		t.Fatalf("the upstream was asked %d times", len(up.requests()))
	}
}

// GET /v1/models lists the apps a key may address, in OpenAI's shape, as
// the SDK reads it; other teams' apps never show.
func TestClientsModelList(t *testing.T) {
	base, s, _, agentKey, _ := ocServe(t)
	ctx := context.Background()
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, a := range []*chat.App{
		{ID: "helper", Name: "helper", TeamID: auth.DefaultTeam, CreateTime: created, UpdateTime: created},
		{ID: "secret", Name: "other team's", TeamID: "team-b", CreateTime: created, UpdateTime: created},
	} {
		if err := s.Chat.SaveApp(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	_, chatKey := ccKey(t, s, auth.KeySpec{Name: "agent", Scopes: auth.Scopes{auth.ScopeChat}})
	_, dataKey := ccKey(t, s, auth.KeySpec{Name: "data"})
	_, otherKey := ccKey(t, s, auth.KeySpec{Name: "b", TeamID: "team-b", Scopes: auth.Scopes{auth.ScopeChat}})
	for _, prefix := range []string{"/v1", "/api/v1"} {
		client := func(key string) *openai.Client {
			c := openai.NewClient(option.WithBaseURL(base+prefix), option.WithAPIKey(key), option.WithMaxRetries(0))
			return &c
		}
		ids := func(key string) []string {
			t.Helper()
			page, err := client(key).Models.List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, m := range page.Data {
				if m.Object != "model" || m.Created == 0 || m.OwnedBy == "" {
					t.Fatalf("model %s", m.RawJSON())
				}
				out = append(out, m.ID)
			}
			return out
		}
		if got := ids(agentKey); !slices.Equal(got, []string{"agent"}) {
			t.Fatalf("%s: app key sees %v", prefix, got)
		}
		if got := ids(chatKey); !slices.Equal(got, []string{"agent", "helper", chat.DefaultAppID}) {
			t.Fatalf("%s: chat key sees %v", prefix, got)
		}
		if got := ids(otherKey); !slices.Equal(got, []string{"secret"}) {
			t.Fatalf("%s: team-b's key sees %v", prefix, got)
		}
		m, err := client(chatKey).Models.Get(ctx, "helper")
		if err != nil || m.ID != "helper" || m.Created != created.Unix() || m.OwnedBy != auth.DefaultTeam {
			t.Fatalf("%s: get helper: %v %+v", prefix, err, m)
		}
		for _, c := range []struct {
			key, model string
			status     int
			code       string
		}{
			{chatKey, "secret", 404, "model_not_found"},  // another team's
			{agentKey, "helper", 404, "model_not_found"}, // not its app
			{dataKey, "", 403, "app_key_required"},
			{"cg-0123456789abcdefghijklmnopqrstuv", "", 401, "invalid_api_key"},
		} {
			var err error
			if c.model == "" {
				_, err = client(c.key).Models.List(ctx)
			} else {
				_, err = client(c.key).Models.Get(ctx, c.model)
			}
			var apiErr *openai.Error
			if !errors.As(err, &apiErr) || apiErr.StatusCode != c.status || apiErr.Code != c.code || apiErr.Message == "" {
				t.Fatalf("%s: %s with %s: %v", prefix, c.model, c.code, err)
			}
		}
	}
	// The raw list, exactly.
	req, _ := http.NewRequest("GET", base+"/v1/models", nil)
	req.Header.Set("Authorization", "Bearer "+agentKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var list map[string]any
	if err := json.Unmarshal(raw, &list); err != nil || list["object"] != "list" || len(list["data"].([]any)) != 1 {
		t.Fatalf("%d %s", resp.StatusCode, raw)
	}
	if keys := slices.Sorted(maps.Keys(list["data"].([]any)[0].(map[string]any))); !slices.Equal(keys, []string{"created", "id", "object", "owned_by"}) {
		t.Fatalf("model keys %v", keys)
	}
}

// Unknown routes under /v1 and /api/v1 answer in OpenAI's error shape, so
// an SDK shows their message; other unknown routes keep the envelope.
func TestUnknownOpenAIRoutes(t *testing.T) {
	base, _, _, key, _ := ocServe(t)
	oc := openai.NewClient(option.WithBaseURL(base+"/v1"), option.WithAPIKey(key), option.WithMaxRetries(0))
	_, err := oc.Embeddings.New(context.Background(), openai.EmbeddingNewParams{Model: "x",
		Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("hi")}})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 || apiErr.Type != "invalid_request_error" ||
		!strings.Contains(apiErr.Message, "POST /v1/embeddings") {
		t.Fatalf("embeddings: %v", err)
	}
	for _, c := range []struct {
		method, path string
		status       int
		want         string
	}{
		{"GET", "/v1/nothing", 404, `{"error":{"message":"route GET /v1/nothing not found","type":"invalid_request_error","code":"not_found","param":null}}`},
		{"POST", "/api/v1/audio/speech", 404, `{"error":{"message":"route POST /api/v1/audio/speech not found","type":"invalid_request_error","code":"not_found","param":null}}`},
		{"GET", "/v1/chat/completions", 405, `{"error":{"message":"GET /v1/chat/completions: use POST","type":"invalid_request_error","code":"method_not_allowed","param":null}}`},
		{"GET", "/api/nothing", 404, `"code":404`},
		{"GET", "/v1", 404, `"code":404`}, // not under /v1/
	} {
		req, _ := http.NewRequest(c.method, base+c.path, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || !strings.Contains(string(b), c.want) {
			t.Fatalf("%s %s: %d %s", c.method, c.path, resp.StatusCode, b)
		}
		if c.status == 405 && resp.Header.Get("Allow") != "POST" {
			t.Fatalf("%s %s: Allow %q", c.method, c.path, resp.Header.Get("Allow"))
		}
	}
}

// A tool-calling app refuses what it cannot carry out, in OpenAI's shape,
// naming the field, before the upstream is asked: tools in a conversation
// kept by chatId (its history keeps text turns only), and malformed tools.
func TestClientsToolBadInputs(t *testing.T) {
	base, _, up, key, _ := ocServe(t)
	const tools = `"tools":[{"type":"function","function":{"name":"get_weather"}}]`
	for _, c := range []struct{ body, want string }{
		{`{"chatId":"c1",` + tools + `,"messages":[{"role":"user","content":"weather?"}]}`, `"chatId": a conversation kept by chatId stores text turns only`},
		{`{"sessionId":"s1","messages":[{"role":"user","content":"weather?"},{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"get_weather","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c","content":"sunny"}]}`, `"chatId": a conversation kept by chatId`},
		{`{"tools":[{"type":"function","function":{"description":"no name"}}],"messages":[{"role":"user","content":"hi"}]}`, `"tools[0].function.name": is required`},
		{`{` + tools + `,"tool_choice":{"type":"function"},"messages":[{"role":"user","content":"hi"}]}`, `"tool_choice": must be`},
		{`{"messages":[{"role":"user","content":"hi"},{"role":"tool","tool_call_id":"c","content":"sunny"}]}`, `"messages[1].tool_call_id": "c" names no tool call of an earlier assistant message`},
	} {
		for _, stream := range []string{`"stream":false,`, `"stream":true,`} {
			status, body := ccRaw(t, base, key, "{"+stream+c.body[1:])
			var oe struct {
				Error struct{ Message, Type, Code string } `json:"error"`
			}
			if status != 400 || json.Unmarshal([]byte(body), &oe) != nil || oe.Error.Type != "invalid_request_error" || !strings.Contains(oe.Error.Message, c.want) {
				t.Fatalf("%s: %d %s", c.body, status, body)
			}
		}
	}
	if n := len(up.requests()); n != 0 {
		t.Fatalf("the upstream was asked %d times", n)
	}
	if _, e := envCall(t, "GET", base+"/api/core/chat/getHistories?appId=agent", key, ""); e.Code != 200 || !strings.Contains(string(e.Data), `"total":0`) {
		t.Fatalf("conversations stored: %+v", e)
	}
}
