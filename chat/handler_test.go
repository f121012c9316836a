package chat_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/chat"
)

// gateway is the chat routes behind a real auth.Authenticator, mounted as
// server/server.go mounts them (Register), on a loopback httptest server or,
// for tests in a synctest bubble, called in process.
type gateway struct {
	t      *testing.T
	url    string
	client *http.Client
	engine *chat.Engine
	store  *chat.MemoryStore
	keys   map[string]string // app1, app2, global, admin, other (team t2's admin)
	// close stops the server, its client's connections and the
	// authenticator; it runs at cleanup too, and may run twice.
	close func()
}

type gatewayConfig struct {
	opts      chat.HandlerOptions
	models    map[string]chat.Model // default: script (app1) and script2 (app2)
	apps      []*chat.App           // default: app1, app2 and kb (extractive, datasets d1)
	retriever chat.Retriever
	usage     chat.UsageRecorder
	// inProcess calls the routes without a network, so that the gateway
	// works in a synctest bubble; it buffers every response whole.
	inProcess bool
	// flushes, when set with inProcess, counts the handler's flushes.
	flushes *atomic.Int64
}

var (
	answer1 = []string{"The ", "answer ", "is 42."}
	answer2 = []string{"I am ", "app two."}
)

func newGateway(t *testing.T, cfg gatewayConfig) *gateway {
	t.Helper()
	ctx := context.Background()
	if cfg.opts.Logger == nil {
		cfg.opts.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.models == nil {
		cfg.models = map[string]chat.Model{"script": &scriptModel{pieces: answer1}, "script2": &scriptModel{pieces: answer2}}
	}
	if cfg.apps == nil {
		cfg.apps = []*chat.App{
			{ID: "app1", Name: "App one", Model: "script", SystemPrompt: "Be brief, {{name}}."},
			{ID: "app2", Name: "App two", Model: "script2"},
			{ID: "kb", Name: "KB", Model: chat.ExtractiveModelName, DatasetIDs: []string{"d1"}, Search: chat.SearchSettings{Limit: 2, Similarity: 0.3}},
		}
	}
	models := new(chat.Models)
	models.Register(chat.ExtractiveModelName, chat.Extractive{})
	for name, m := range cfg.models {
		models.Register(name, m)
	}
	if err := testTokens.Warm(); err != nil { // so counting adds no silence to streams
		t.Fatal(err)
	}
	store := chat.NewMemoryStore()
	e := chat.NewEngine(chat.EngineOptions{Apps: store, History: store, Models: models, Retriever: cfg.retriever,
		Usage: cfg.usage, Tokens: testTokens, Logger: cfg.opts.Logger})
	for _, a := range cfg.apps {
		if err := e.SaveApp(ctx, a); err != nil {
			t.Fatal(err)
		}
	}

	keyStore := auth.NewMemoryStore()
	authn := auth.NewAuthenticator(keyStore, auth.Options{})
	mgr := auth.NewManager(keyStore, authn)
	g := &gateway{t: t, engine: e, store: store, keys: map[string]string{}}
	for name, spec := range map[string]auth.KeySpec{
		"app1":   {Name: "app1", AppID: "app1"},
		"app2":   {Name: "app2", AppID: "app2"},
		"kb":     {Name: "kb", AppID: "kb"},
		"global": {Name: "global"},
		"admin":  {Name: "admin", Scopes: auth.Scopes{auth.ScopeAdmin}},
		"other":  {Name: "other", TeamID: "t2", Scopes: auth.Scopes{auth.ScopeAdmin}},
	} {
		_, secret, err := mgr.Create(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		g.keys[name] = secret
	}

	mux := http.NewServeMux()
	chat.NewHandler(e, cfg.opts).Register(mux, authn)
	tr := &http.Transport{}
	g.client = &http.Client{Transport: tr, Timeout: 20 * time.Second}
	if cfg.inProcess {
		g.url, g.client.Transport = "http://chat.test", handlerTransport{mux, cfg.flushes}
		g.close = func() { _ = authn.Close(context.Background()) }
	} else {
		srv := httptest.NewServer(mux)
		g.url = srv.URL
		g.close = func() {
			tr.CloseIdleConnections()
			srv.Close()
			_ = authn.Close(context.Background())
		}
	}
	t.Cleanup(g.close)
	return g
}

func (g *gateway) request(ctx context.Context, method, path, key, body string) (*http.Response, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, g.url+path, rd)
	if err != nil {
		return nil, err
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+g.keys[key])
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return g.client.Do(req)
}

// do sends a request as the named key and returns the response and its body.
func (g *gateway) do(method, path, key, body string) (*http.Response, []byte) {
	g.t.Helper()
	resp, err := g.request(context.Background(), method, path, key, body)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		g.t.Fatal(err)
	}
	return resp, b
}

func (g *gateway) chat(key, body string) (*http.Response, []byte) {
	g.t.Helper()
	return g.do(http.MethodPost, "/api/v1/chat/completions", key, body)
}

// conversations returns how many conversations app has in team default.
func (g *gateway) conversations(app string) int {
	g.t.Helper()
	_, total, err := g.store.Conversations(context.Background(), auth.DefaultTeam, app, 0, 1000)
	if err != nil {
		g.t.Fatal(err)
	}
	return total
}

// handlerTransport serves requests with a handler in process, as a server
// on loopback would.
type handlerTransport struct {
	h       http.Handler
	flushes *atomic.Int64 // may be nil
}

// countingRecorder counts the handler's flushes.
type countingRecorder struct {
	*httptest.ResponseRecorder
	n *atomic.Int64
}

func (c countingRecorder) Flush() { c.n.Add(1); c.ResponseRecorder.Flush() }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.RemoteAddr, r.RequestURI = "127.0.0.1:1", req.URL.RequestURI()
	if r.Body == nil {
		r.Body = http.NoBody
	}
	defer r.Body.Close()
	rec := httptest.NewRecorder()
	if t.flushes != nil {
		t.h.ServeHTTP(countingRecorder{rec, t.flushes}, r)
	} else {
		t.h.ServeHTTP(rec, r)
	}
	return rec.Result(), nil
}

// checkOpenAIError checks an OpenAI-shaped error: the status, JSON content
// type, exactly {"error":{message,type,code,param}} with string fields.
func checkOpenAIError(t *testing.T, resp *http.Response, body []byte, status int, typ, code, msgHas string) {
	t.Helper()
	if resp.StatusCode != status || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("status %d (%s), want %d: %s", resp.StatusCode, resp.Header.Get("Content-Type"), status, body)
	}
	var e map[string]map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&e); err != nil || len(e) != 1 || e["error"] == nil {
		t.Fatalf("not an OpenAI error: %s (%v)", body, err)
	}
	if rest, _ := io.ReadAll(dec.Buffered()); len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("bytes after the error: %q", body)
	}
	for _, k := range []string{"message", "type", "code"} {
		if _, ok := e["error"][k].(string); !ok {
			t.Fatalf("error.%s is not a string: %s", k, body)
		}
	}
	if e["error"]["type"] != typ || e["error"]["code"] != code || !strings.Contains(e["error"]["message"].(string), msgHas) {
		t.Fatalf("error %s, want type %s code %s message with %q", body, typ, code, msgHas)
	}
}

// envelope is FastGPT's response shape.
type envelope struct {
	Code       int             `json:"code"`
	StatusText string          `json:"statusText"`
	Message    string          `json:"message"`
	Data       json.RawMessage `json:"data"`
}

func decodeEnvelope(t *testing.T, resp *http.Response, body []byte, status int) envelope {
	t.Helper()
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatalf("not an envelope: %s", body)
	}
	if resp.StatusCode != status || env.Code != status {
		t.Fatalf("status %d, code %d, want %d: %s", resp.StatusCode, env.Code, status, body)
	}
	return env
}

func checkEnvelopeError(t *testing.T, resp *http.Response, body []byte, status int, statusText, msgHas string) {
	t.Helper()
	env := decodeEnvelope(t, resp, body, status)
	if env.StatusText != statusText || !strings.Contains(env.Message, msgHas) {
		t.Fatalf("error %s, want %s with %q", body, statusText, msgHas)
	}
}

// sseEvent is one server-sent event: its name (empty for none) and data.
type sseEvent struct {
	name, data string
}

// parseSSE splits a stream into events, failing on anything that is not
// `[event: name\n]data: ...\n\n` or a `: comment\n\n` block; it returns the
// events and the number of comments.
func parseSSE(t *testing.T, body string) ([]sseEvent, int) {
	t.Helper()
	if !strings.HasSuffix(body, "\n\n") {
		t.Fatalf("stream does not end with a blank line: %q", body)
	}
	var (
		events   []sseEvent
		comments int
	)
	for _, block := range strings.Split(strings.TrimSuffix(body, "\n\n"), "\n\n") {
		lines := strings.Split(block, "\n")
		if strings.HasPrefix(lines[0], ":") && len(lines) == 1 {
			comments++
			continue
		}
		var ev sseEvent
		if name, ok := strings.CutPrefix(lines[0], "event: "); ok && len(lines) == 2 {
			ev.name, lines = name, lines[1:]
		}
		data, ok := strings.CutPrefix(lines[0], "data: ")
		if !ok || len(lines) != 1 {
			t.Fatalf("malformed SSE block %q in\n%s", block, body)
		}
		if data != "[DONE]" && !json.Valid([]byte(data)) {
			t.Fatalf("data is not JSON: %q", data)
		}
		ev.data = data
		events = append(events, ev)
	}
	return events, comments
}

// chunk is an OpenAI chat.completion.chunk.
type chunk struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Choices []struct {
		Index int `json:"index"`
		Delta struct {
			Role    *string `json:"role"`
			Content *string `json:"content"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *chat.Usage `json:"usage"`
}

// streamSummary checks the OpenAI chunks of a stream that finished and
// returns the streamed text and the usage chunk, if any.
func streamSummary(t *testing.T, events []sseEvent, wantModel string) (string, *chat.Usage) {
	t.Helper()
	if len(events) == 0 || events[len(events)-1].data != "[DONE]" {
		t.Fatalf("the stream does not end with [DONE]: %+v", events)
	}
	var (
		text     strings.Builder
		usage    *chat.Usage
		id       string
		finished bool
		n        int
	)
	for _, ev := range events[:len(events)-1] {
		if ev.name != "" && ev.name != "answer" {
			continue
		}
		var c chunk
		if err := json.Unmarshal([]byte(ev.data), &c); err != nil {
			t.Fatal(err)
		}
		if c.Object != "chat.completion.chunk" || c.Model != wantModel || c.Created == 0 || !strings.HasPrefix(c.ID, "chatcmpl-") {
			t.Fatalf("chunk %s", ev.data)
		}
		if id == "" {
			id = c.ID
		} else if c.ID != id {
			t.Fatalf("chunk ids differ: %s and %s", id, c.ID)
		}
		if c.Usage != nil {
			if len(c.Choices) != 0 || !finished {
				t.Fatalf("usage chunk %s", ev.data)
			}
			usage = c.Usage
			continue
		}
		if len(c.Choices) != 1 || c.Choices[0].Index != 0 || finished {
			t.Fatalf("chunk %s", ev.data)
		}
		ch := c.Choices[0]
		if (ch.Delta.Role != nil) != (n == 0) || (ch.Delta.Role != nil && *ch.Delta.Role != "assistant") {
			t.Fatalf("role in chunk %d: %s", n, ev.data)
		}
		n++
		if ch.FinishReason != nil {
			if *ch.FinishReason != "stop" || ch.Delta.Content != nil {
				t.Fatalf("finish chunk %s", ev.data)
			}
			finished = true
			continue
		}
		if ch.Delta.Content == nil {
			t.Fatalf("chunk without content %s", ev.data)
		}
		text.WriteString(*ch.Delta.Content)
	}
	if !finished {
		t.Fatal("no finish_reason chunk")
	}
	return text.String(), usage
}

func TestCompletionsNonStream(t *testing.T) {
	g := newGateway(t, gatewayConfig{})
	for _, path := range []string{"/api/v1/chat/completions", "/v1/chat/completions"} {
		resp, body := g.do(http.MethodPost, path, "app1", `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
		}
		var out map[string]json.RawMessage
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatal(err)
		}
		keys := make([]string, 0, len(out))
		for k := range out {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if want := []string{"choices", "created", "id", "model", "object", "usage"}; !slices.Equal(keys, want) {
			t.Fatalf("keys %v, want %v: %s", keys, want, body)
		}
		var c struct {
			ID      string `json:"id"`
			Object  string `json:"object"`
			Created int64  `json:"created"`
			Model   string `json:"model"`
			Choices []struct {
				Index   int `json:"index"`
				Message struct {
					Role    string `json:"role"`
					Content string `json:"content"`
				} `json:"message"`
				FinishReason string `json:"finish_reason"`
			} `json:"choices"`
			Usage chat.Usage `json:"usage"`
		}
		if err := json.Unmarshal(body, &c); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(c.ID, "chatcmpl-") || c.Object != "chat.completion" || c.Model != "app1" ||
			time.Since(time.Unix(c.Created, 0)) > time.Minute || len(c.Choices) != 1 || c.Choices[0].Index != 0 ||
			c.Choices[0].Message.Role != "assistant" || c.Choices[0].Message.Content != "The answer is 42." ||
			c.Choices[0].FinishReason != "stop" || c.Usage.PromptTokens == 0 || c.Usage.CompletionTokens == 0 ||
			c.Usage.TotalTokens != c.Usage.PromptTokens+c.Usage.CompletionTokens {
			t.Fatalf("%s: %s", path, body)
		}
	}
	// content as text parts, as newer SDKs send it
	resp, body := g.chat("app1", `{"messages":[{"role":"user","content":[{"type":"text","text":"hi "},{"type":"text","text":"there"}]}]}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("text parts: %d %s", resp.StatusCode, body)
	}
	if g.conversations("app1") != 0 {
		t.Fatal("a chat without chatId was stored")
	}
}

func TestCompletionsNonStreamDetail(t *testing.T) {
	quotes := []chat.Quote{{DatasetID: "d1", ID: "x1", Q: "Who directed Suzume?", A: "Makoto Shinkai directed it.", Source: "films.txt", Score: 0.8}}
	g := newGateway(t, gatewayConfig{retriever: &fakeRetriever{result: chat.RetrieveResult{Quotes: quotes, Model: "embed", Tokens: 5}}})
	resp, body := g.chat("app1", `{"chatId":"c1","detail":true,"variables":{"name":"Ada"},"messages":[{"role":"user","content":"hi"}]}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	var out struct {
		Choices      []json.RawMessage `json:"choices"`
		ResponseData []map[string]any  `json:"responseData"`
		NewVariables map[string]any    `json:"newVariables"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	if len(out.ResponseData) != 1 || out.NewVariables["name"] != "Ada" {
		t.Fatalf("%s", body)
	}
	ai := out.ResponseData[0]
	for _, k := range []string{"moduleName", "price", "model", "tokens", "question", "answer", "completeMessages", "runningTime"} {
		if _, ok := ai[k]; !ok {
			t.Fatalf("AI Chat response lacks %s: %v", k, ai)
		}
	}
	cm, _ := ai["completeMessages"].([]any)
	if ai["moduleName"] != "AI Chat" || ai["model"] != "script" || ai["question"] != "hi" || ai["answer"] != "The answer is 42." || len(cm) != 3 ||
		cm[0].(map[string]any)["value"] != "Be brief, Ada." || cm[0].(map[string]any)["obj"] != "System" {
		t.Fatalf("AI Chat response %v", ai)
	}
	if g.conversations("app1") != 1 {
		t.Fatal("the chat was not stored")
	}

	// KB Search comes first, with its quotes in FastGPT's field names.
	resp, body = g.chat("kb", `{"detail":true,"messages":[{"role":"user","content":"who directed suzume"}]}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	kb := out.ResponseData[0]
	ql, _ := kb["quoteList"].([]any)
	if len(out.ResponseData) != 2 || kb["moduleName"] != "KB Search" || kb["similarity"] != 0.3 || kb["limit"] != 2.0 || len(ql) != 1 {
		t.Fatalf("%s", body)
	}
	q := ql[0].(map[string]any)
	if q["dataset_id"] != "d1" || q["id"] != "x1" || q["q"] != quotes[0].Q || q["a"] != quotes[0].A || q["source"] != "films.txt" || q["score"] != 0.8 {
		t.Fatalf("quote %v", q)
	}
	if !strings.Contains(string(body), `"content":"Makoto Shinkai directed it."`) {
		t.Fatalf("the extractive answer: %s", body)
	}
}

func TestCompletionsStream(t *testing.T) {
	g := newGateway(t, gatewayConfig{})
	for _, includeUsage := range []bool{false, true} {
		body := fmt.Sprintf(`{"stream":true,"stream_options":{"include_usage":%v},"messages":[{"role":"user","content":"hi"}]}`, includeUsage)
		resp, b := g.chat("app1", body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
		if ct, cc := resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"); !strings.HasPrefix(ct, "text/event-stream") || cc != "no-cache" {
			t.Fatalf("headers: Content-Type %q, Cache-Control %q", ct, cc)
		}
		events, _ := parseSSE(t, string(b))
		for _, ev := range events {
			if ev.name != "" {
				t.Fatalf("event name %q without detail", ev.name)
			}
		}
		text, usage := streamSummary(t, events, "app1")
		if text != "The answer is 42." {
			t.Fatalf("streamed %q", text)
		}
		if includeUsage != (usage != nil) {
			t.Fatalf("include_usage %v, usage chunk %+v", includeUsage, usage)
		}
		if usage != nil && (usage.PromptTokens == 0 || usage.CompletionTokens == 0 || usage.TotalTokens != usage.PromptTokens+usage.CompletionTokens) {
			t.Fatalf("usage %+v", usage)
		}
		if n := len(events); n != 3+1+1+btoi(includeUsage) { // 3 deltas, finish, [DONE], usage
			t.Fatalf("%d events:\n%s", n, b)
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestCompletionsStreamDetail(t *testing.T) {
	quotes := []chat.Quote{{DatasetID: "d1", ID: "x1", Q: "Who directed Suzume?", A: "Makoto Shinkai directed it.", Score: 0.8}}
	for _, respEvent := range []string{"", "appStreamResponse"} {
		g := newGateway(t, gatewayConfig{opts: chat.HandlerOptions{ResponsesEvent: respEvent},
			retriever: &fakeRetriever{result: chat.RetrieveResult{Quotes: quotes}}})
		if respEvent == "" {
			respEvent = "flowResponses"
		}
		resp, b := g.chat("kb", `{"stream":true,"detail":true,"chatId":"c1","variables":{"lang":"en"},"messages":[{"role":"user","content":"who directed suzume?"}]}`)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
		events, _ := parseSSE(t, string(b))
		var names []string
		for _, ev := range events {
			if len(names) == 0 || names[len(names)-1] != ev.name {
				names = append(names, ev.name)
			}
		}
		want, mods := []string{"updateVariables", "flowNodeStatus", "answer", respEvent, "answer"}, len(events)-2
		if respEvent == "appStreamResponse" { // after [DONE], as the older documents show it
			want, mods = []string{"updateVariables", "flowNodeStatus", "answer", respEvent}, len(events)-1
		}
		if !slices.Equal(names, want) {
			t.Fatalf("event names %v, want %v:\n%s", names, want, b)
		}
		if events[0].data != `{"lang":"en"}` || events[1].data != `{"status":"running","name":"KB Search"}` ||
			events[2].data != `{"status":"running","name":"AI Chat"}` {
			t.Fatalf("first events %+v", events[:3])
		}
		answerEvents := events
		if respEvent == "appStreamResponse" {
			answerEvents = events[:len(events)-1]
		}
		text, _ := streamSummary(t, answerEvents, "kb")
		if text != "Makoto Shinkai directed it." {
			t.Fatalf("streamed %q", text)
		}
		if respEvent == "appStreamResponse" && events[len(events)-2].data != "[DONE]" {
			t.Fatalf("%s does not follow [DONE]:\n%s", respEvent, b)
		}
		var got []chat.ModuleResponse
		if err := json.Unmarshal([]byte(events[mods].data), &got); err != nil || len(got) != 2 ||
			got[0].ModuleName != "KB Search" || got[1].ModuleName != "AI Chat" || got[1].Answer != text {
			t.Fatalf("%s: %s (%v)", respEvent, events[mods].data, err)
		}
		if g.conversations("kb") != 1 {
			t.Fatal("the streamed chat was not stored")
		}
	}
}

func TestCompletionsKeys(t *testing.T) {
	g := newGateway(t, gatewayConfig{})
	const q = `"messages":[{"role":"user","content":"hi"}]`

	// A global key cannot chat, whichever app it names.
	for _, body := range []string{`{` + q + `}`, `{"model":"app1",` + q + `}`, `{"stream":true,"model":"app1","chatId":"g",` + q + `}`} {
		resp, b := g.chat("global", body)
		checkOpenAIError(t, resp, b, http.StatusForbidden, "permission_error", "app_key_required", "app key")
	}
	if g.conversations("app1") != 0 {
		t.Fatal("a refused chat was stored")
	}

	// An app key talks to its own app, whatever "model" says.
	resp, b := g.chat("app1", `{"model":"app2","chatId":"mine",`+q+`}`)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"model":"app1"`) || !strings.Contains(string(b), "The answer is 42.") {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	resp, b = g.chat("app1", `{"model":"app2","stream":true,`+q+`}`)
	events, _ := parseSSE(t, string(b))
	if text, _ := streamSummary(t, events, "app1"); resp.StatusCode != http.StatusOK || text != "The answer is 42." {
		t.Fatalf("stream: %d %s", resp.StatusCode, b)
	}
	if g.conversations("app1") != 1 || g.conversations("app2") != 0 {
		t.Fatalf("history: app1 %d, app2 %d", g.conversations("app1"), g.conversations("app2"))
	}

	// A key with the chat scope and no app names the app in "model".
	resp, b = g.chat("admin", `{"model":"app2",`+q+`}`)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"model":"app2"`) || !strings.Contains(string(b), "I am app two.") {
		t.Fatalf("admin: %d %s", resp.StatusCode, b)
	}
	resp, b = g.chat("admin", `{`+q+`}`)
	checkOpenAIError(t, resp, b, http.StatusBadRequest, "invalid_request_error", "invalid_request", `"model"`)
	// another team's app is as missing as a missing one
	resp, b = g.chat("other", `{"model":"app1",`+q+`}`)
	checkOpenAIError(t, resp, b, http.StatusNotFound, "invalid_request_error", "app_not_found", "app not found")

	// No key, or a bad one: 401 in OpenAI's shape.
	resp, b = g.chat("", `{`+q+`}`)
	checkOpenAIError(t, resp, b, http.StatusUnauthorized, "authentication_error", "invalid_api_key", "")
	k := g.keys["app1"]
	last := "x"
	if strings.HasSuffix(k, last) {
		last = "y"
	}
	g.keys["forged"] = k[:len(k)-1] + last
	resp, b = g.chat("forged", `{`+q+`}`)
	checkOpenAIError(t, resp, b, http.StatusUnauthorized, "authentication_error", "invalid_api_key", "")
}

// TestCompletionsBadInputs: each bad request is a 400 in OpenAI's shape whose
// message names the field, the model is never asked and nothing is stored.
func TestCompletionsBadInputs(t *testing.T) {
	m := &scriptModel{pieces: answer1}
	g := newGateway(t, gatewayConfig{opts: chat.HandlerOptions{MaxBody: 4096},
		models: map[string]chat.Model{"script": m, "script2": m}})
	big := `{"chatId":"bad","messages":[{"role":"user","content":"` + strings.Repeat("x", 5000) + `"}]}`
	for _, tc := range []struct {
		name, body, msgHas string
	}{
		{"empty messages", `{"chatId":"bad","messages":[]}`, `"messages": must not be empty`},
		{"missing messages", `{"chatId":"bad","model":"app1"}`, `"messages": is required`},
		{"null messages", `{"chatId":"bad","messages":null}`, `"messages": is required`},
		{"messages not an array", `{"chatId":"bad","messages":{"role":"user","content":"hi"}}`, `"messages": must be an array`},
		{"wrong role", `{"chatId":"bad","messages":[{"role":"robot","content":"hi"}]}`, `"messages[0].role"`},
		{"missing role", `{"chatId":"bad","messages":[{"content":"hi"}]}`, `"messages[0].role": is required`},
		{"last message not the user's", `{"chatId":"bad","messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"yo"}]}`, `"messages": the last message must come from the user`},
		{"number content", `{"chatId":"bad","messages":[{"role":"user","content":42}]}`, `"messages[0].content": must be a string`},
		{"object content", `{"chatId":"bad","messages":[{"role":"system","content":"s"},{"role":"user","content":{"text":"hi"}}]}`, `"messages[1].content": must be a string`},
		{"missing content", `{"chatId":"bad","messages":[{"role":"user"}]}`, `"messages[0].content": is required`},
		{"image URL not a URL", `{"chatId":"bad","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}`, `"messages[0].content[0].image_url.url": must be an http(s) URL`},
		{"image without its URL", `{"messages":[{"role":"user","content":[{"type":"image_url"}]}]}`, `"messages[0].content[0].image_url.url": is required`},
		{"image detail", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://e.test/a.png","detail":"max"}}]}]}`, `"messages[0].content[0].image_url.detail"`},
		{"audio part", `{"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{}}]}]}`, `"messages[0].content[0]": only text and image_url parts`},
		// chat.mdx's image/file example: FastGPT's file_url part is refused by name, not dropped
		{"file_url part", `{"chatId":"abcd","stream":false,"messages":[{"role":"user","content":[{"type":"text","text":"导演是谁"},{"type":"file_url","name":"文件名","url":"https://example.com/a.pdf"}]}]}`, `"messages[0].content[1]": only text and image_url parts are supported (type "file_url")`},
		{"image in a system message", `{"messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"https://e.test/a.png"}}]},{"role":"user","content":"hi"}]}`, `"messages[0].content": image_url parts belong to user messages`},
		{"image to a text model", `{"messages":[{"role":"user","content":[{"type":"text","text":"what is it?"},{"type":"image_url","image_url":{"url":"https://e.test/a.png"}}]}]}`, `"messages[0].content[1].image_url": the app's model "script" does not take image_url`},
		{"tools to a text model", `{"tools":[{"type":"function","function":{"name":"f","parameters":{}}}],"messages":[{"role":"user","content":"hi"}]}`, `"tools": the app's model "script" does not take tools`},
		{"tool results to a text model", `{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c1","content":"42"}]}`, `"messages[1].tool_calls": the app's model "script" does not take tools`},
		{"tools not an array", `{"tools":{"type":"function"},"messages":[{"role":"user","content":"hi"}]}`, `"tools": must be an array`},
		{"tool type", `{"tools":[{"type":"retrieval"}],"messages":[{"role":"user","content":"hi"}]}`, `"tools[0].type": must be "function"`},
		{"tool without a name", `{"tools":[{"type":"function","function":{"parameters":{}}}],"messages":[{"role":"user","content":"hi"}]}`, `"tools[0].function.name": is required`},
		{"tool_choice unknown", `{"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"always","messages":[{"role":"user","content":"hi"}]}`, `"tool_choice": must be none, auto, required`},
		{"tool_choice without tools", `{"tool_choice":"required","messages":[{"role":"user","content":"hi"}]}`, `"tool_choice": needs tools`},
		{"parallel_tool_calls without tools", `{"parallel_tool_calls":false,"messages":[{"role":"user","content":"hi"}]}`, `"parallel_tool_calls": needs tools`},
		{"parallel_tool_calls not a boolean", `{"parallel_tool_calls":"no","messages":[{"role":"user","content":"hi"}]}`, `invalid field "parallel_tool_calls": must be a boolean`},
		{"tool message without its call", `{"messages":[{"role":"user","content":"hi"},{"role":"tool","content":"42"}]}`, `"messages[1].tool_call_id": is required`},
		{"tool_calls on a user message", `{"messages":[{"role":"user","content":"hi","tool_calls":[{"id":"c1","type":"function","function":{"name":"f"}}]}]}`, `"messages[0].tool_calls": only assistant messages`},
		{"tool call without an id", `{"messages":[{"role":"assistant","tool_calls":[{"type":"function","function":{"name":"f"}}]},{"role":"user","content":"hi"}]}`, `"messages[0].tool_calls[0].id": is required`},
		{"tool call without a name", `{"messages":[{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"arguments":"{}"}}]},{"role":"user","content":"hi"}]}`, `"messages[0].tool_calls[0].function.name": is required`},
		{"variables an array", `{"chatId":"bad","variables":["a"],"messages":[{"role":"user","content":"hi"}]}`, `"variables": must be an object`},
		{"variables a string", `{"chatId":"bad","variables":"a=b","messages":[{"role":"user","content":"hi"}]}`, `"variables": must be an object`},
		{"variables a number", `{"chatId":"bad","variables":1,"messages":[{"role":"user","content":"hi"}]}`, `"variables": must be an object`},
		{"oversized body", big, "body exceeds 4096 bytes"},
		{"malformed JSON", `{"chatId":"bad","messages":[`, "truncated JSON"},
		{"not JSON", `chatId=bad`, "malformed JSON"},
		{"two JSON values", `{"chatId":"bad","messages":[{"role":"user","content":"hi"}]} {}`, "single JSON object"},
		{"stream not a boolean", `{"chatId":"bad","stream":"yes","messages":[{"role":"user","content":"hi"}]}`, `invalid field "stream": must be a boolean`},
		{"temperature a string", `{"chatId":"bad","temperature":"hot","messages":[{"role":"user","content":"hi"}]}`, `invalid field "temperature": must be a number`},
		{"include_usage not a boolean", `{"chatId":"bad","stream_options":{"include_usage":1},"messages":[{"role":"user","content":"hi"}]}`, `invalid field "stream_options.include_usage": must be a boolean`},
		{"chatId a number", `{"chatId":7,"messages":[{"role":"user","content":"hi"}]}`, `invalid field "chatId": must be a string`},
		{"temperature out of range", `{"chatId":"bad","temperature":3,"messages":[{"role":"user","content":"hi"}]}`, `"temperature"`},
		{"max_tokens zero", `{"chatId":"bad","max_tokens":0,"messages":[{"role":"user","content":"hi"}]}`, `"max_tokens"`},
		{"chatId with a control character", `{"chatId":"a\u0001b","messages":[{"role":"user","content":"hi"}]}`, `"chatId"`},
		{"chatId and sessionId differ", `{"chatId":"bad","sessionId":"other","messages":[{"role":"user","content":"hi"}]}`, `"sessionId"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, stream := range []string{"", `"stream":true,`} {
				body := tc.body
				if stream != "" && !strings.Contains(body, `"stream"`) {
					body = "{" + stream + body[1:]
				}
				resp, b := g.chat("app1", body)
				checkOpenAIError(t, resp, b, http.StatusBadRequest, "invalid_request_error", "invalid_request", tc.msgHas)
			}
		})
	}
	// An unknown app is a 404, as another team's app is (DESIGN §3).
	for _, body := range []string{`{"model":"nope","chatId":"bad","messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"nope","stream":true,"chatId":"bad","messages":[{"role":"user","content":"hi"}]}`} {
		resp, b := g.chat("admin", body)
		checkOpenAIError(t, resp, b, http.StatusNotFound, "invalid_request_error", "app_not_found", "app not found")
	}
	if n := len(m.requests()); n != 0 {
		t.Fatalf("the model was asked %d times", n)
	}
	for _, app := range []string{"app1", "nope"} {
		if n := g.conversations(app); n != 0 {
			t.Fatalf("%s: %d conversations stored by bad requests", app, n)
		}
	}
}

func TestHistoryRoutes(t *testing.T) {
	g := newGateway(t, gatewayConfig{})
	for _, body := range []string{
		`{"chatId":"c1","messages":[{"role":"user","content":"first"}]}`,
		`{"chatId":"c1","messages":[{"role":"user","content":"second"}]}`,
		`{"sessionId":"c2","messages":[{"role":"user","content":"other"}]}`,
	} {
		if resp, b := g.chat("app1", body); resp.StatusCode != http.StatusOK {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
	}
	type list[T any] struct {
		List  []T `json:"list"`
		Total int `json:"total"`
	}
	histories := func(key, query string) list[chat.Conversation] {
		t.Helper()
		resp, b := g.do(http.MethodGet, "/api/core/chat/getHistories"+query, key, "")
		var l list[chat.Conversation]
		if err := json.Unmarshal(decodeEnvelope(t, resp, b, http.StatusOK).Data, &l); err != nil {
			t.Fatal(err)
		}
		return l
	}
	records := func(key, query string) list[chat.Record] {
		t.Helper()
		resp, b := g.do(http.MethodGet, "/api/core/chat/getPaginationRecords"+query, key, "")
		var l list[chat.Record]
		if err := json.Unmarshal(decodeEnvelope(t, resp, b, http.StatusOK).Data, &l); err != nil {
			t.Fatal(err)
		}
		return l
	}
	if h := histories("app1", ""); h.Total != 2 || len(h.List) != 2 || h.List[0].ChatID != "c2" || h.List[1].ChatID != "c1" ||
		h.List[1].Messages != 4 || h.List[1].Title != "first" || h.List[1].AppID != "app1" {
		t.Fatalf("histories %+v", h)
	}
	if h := histories("app1", "?appId=app1&offset=1&pageSize=1"); h.Total != 2 || len(h.List) != 1 || h.List[0].ChatID != "c1" {
		t.Fatalf("second page %+v", h)
	}
	if h := histories("admin", "?appId=app1"); h.Total != 2 {
		t.Fatalf("admin %+v", h)
	}
	if h := histories("app2", ""); h.Total != 0 || h.List == nil {
		t.Fatalf("app2 %+v", h)
	}
	r := records("app1", "?chatId=c1")
	if r.Total != 4 || len(r.List) != 4 || r.List[0].Obj != "Human" || r.List[0].Value != "first" || r.List[1].Obj != "AI" ||
		r.List[1].Value != "The answer is 42." || len(r.List[1].ResponseData) != 1 || r.List[2].Value != "second" {
		t.Fatalf("records %+v", r)
	}
	if r := records("app1", "?chatId=c1&offset=2&pageSize=1"); r.Total != 4 || len(r.List) != 1 || r.List[0].Value != "second" {
		t.Fatalf("records page %+v", r)
	}

	for _, tc := range []struct {
		key, path        string
		status           int
		statusText, what string
	}{
		{"app1", "/api/core/chat/getPaginationRecords", 400, "invalid_request", `"chatId"`},
		{"app1", "/api/core/chat/getPaginationRecords?chatId=nope", 404, "not_found", "chat not found"},
		{"app1", "/api/core/chat/getPaginationRecords?chatId=c1&appId=app2", 404, "not_found", "app not found"},
		{"app1", "/api/core/chat/getHistories?pageSize=0", 400, "invalid_request", `"pageSize"`},
		{"app1", "/api/core/chat/getHistories?pageSize=2001", 400, "invalid_request", `"pageSize"`},
		{"app1", "/api/core/chat/getHistories?offset=-1", 400, "invalid_request", `"offset"`},
		{"app1", "/api/core/chat/getHistories?appId=app2", 404, "not_found", "app not found"},
		{"global", "/api/core/chat/getHistories?appId=app1", 403, "app_key_required", "app key"},
		{"other", "/api/core/chat/getHistories?appId=app1", 404, "not_found", "app not found"},
		{"admin", "/api/core/chat/getHistories?appId=nope", 404, "not_found", "app not found"},
		{"admin", "/api/core/chat/getHistories", 400, "invalid_request", `invalid field "appId"`},
		{"admin", "/api/core/chat/getPaginationRecords?chatId=c1", 400, "invalid_request", `invalid field "appId"`},
		{"", "/api/core/chat/getHistories", 401, "invalid_api_key", ""},
	} {
		resp, b := g.do(http.MethodGet, tc.path, tc.key, "")
		checkEnvelopeError(t, resp, b, tc.status, tc.statusText, tc.what)
	}

	// Clearing a session deletes its history; clearing again still succeeds.
	for i, want := range []bool{true, false} {
		resp, b := g.do(http.MethodPost, "/api/v1/sessions/clear", "app1", `{"agentId":"app1","sessionKey":"c1"}`)
		var d struct {
			AgentID    string `json:"agentId"`
			SessionKey string `json:"sessionKey"`
			Deleted    bool   `json:"deleted"`
		}
		if err := json.Unmarshal(decodeEnvelope(t, resp, b, http.StatusOK).Data, &d); err != nil || d.AgentID != "app1" || d.SessionKey != "c1" || d.Deleted != want {
			t.Fatalf("clear %d: %s", i, b)
		}
	}
	resp, b := g.do(http.MethodGet, "/api/core/chat/getPaginationRecords?chatId=c1", "app1", "")
	checkEnvelopeError(t, resp, b, http.StatusNotFound, "not_found", "chat not found")
	if h := histories("app1", ""); h.Total != 1 || h.List[0].ChatID != "c2" {
		t.Fatalf("after clearing %+v", h)
	}
	// the next chat on the cleared session starts afresh
	if resp, b := g.chat("app1", `{"chatId":"c1","messages":[{"role":"user","content":"anew"}]}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	if r := records("app1", "?chatId=c1"); r.Total != 2 || r.List[0].Value != "anew" {
		t.Fatalf("after clearing and chatting %+v", r)
	}
	for _, tc := range []struct {
		key, body        string
		status           int
		statusText, what string
	}{
		{"app1", `{"agentId":"app1"}`, 400, "invalid_request", `"sessionKey"`},
		{"app1", `{"sessionKey":"c2","extra":1}`, 400, "invalid_request", `"extra"`},
		{"app1", `{"agentId":"app2","sessionKey":"c2"}`, 404, "not_found", "app not found"},
		{"global", `{"agentId":"app1","sessionKey":"c2"}`, 403, "app_key_required", "app key"},
		{"other", `{"agentId":"app1","sessionKey":"c2"}`, 404, "not_found", "app not found"},
		{"admin", `{"sessionKey":"c2"}`, 400, "invalid_request", `invalid field "agentId"`},
	} {
		resp, b := g.do(http.MethodPost, "/api/v1/sessions/clear", tc.key, tc.body)
		checkEnvelopeError(t, resp, b, tc.status, tc.statusText, tc.what)
	}
	if h := histories("app1", ""); h.Total != 2 {
		t.Fatalf("refused clears changed the history: %+v", h)
	}
	// an admin key names the app
	resp, b = g.do(http.MethodPost, "/api/v1/sessions/clear", "admin", `{"agentId":"app1","sessionKey":"c2"}`)
	if decodeEnvelope(t, resp, b, http.StatusOK); !strings.Contains(string(b), `"deleted":true`) {
		t.Fatalf("admin clear: %s", b)
	}
}

// TestAppRoutes runs in a synctest bubble, so an update's time moves by
// exactly the time that passed.
func TestAppRoutes(t *testing.T) { synctest.Test(t, testAppRoutes) }

func testAppRoutes(t *testing.T) {
	g := newGateway(t, gatewayConfig{inProcess: true})
	ctx := context.Background()
	if err := g.engine.SaveApp(ctx, &chat.App{ID: "fromconfig", Name: "Config", Source: "config"}); err != nil {
		t.Fatal(err)
	}
	appOf := func(resp *http.Response, b []byte) chat.App {
		t.Helper()
		var a chat.App
		if err := json.Unmarshal(decodeEnvelope(t, resp, b, http.StatusOK).Data, &a); err != nil {
			t.Fatal(err)
		}
		return a
	}

	created := appOf(g.do(http.MethodPost, "/api/core/app/create", "admin", `{"name":"  New app ","model":"script","systemPrompt":"Hi {{name}}"}`))
	if created.ID == "" || created.Name != "New app" || created.TeamID != auth.DefaultTeam || created.Model != "script" ||
		created.EmptyAnswer != chat.DefaultEmptyAnswer || created.CreateTime.IsZero() || created.Source != "" {
		t.Fatalf("created %+v", created)
	}
	if a := appOf(g.do(http.MethodGet, "/api/core/app/detail?appId="+created.ID, "admin", "")); a.ID != created.ID || a.SystemPrompt != "Hi {{name}}" {
		t.Fatalf("detail %+v", a)
	}
	if a := appOf(g.do(http.MethodPost, "/api/core/app/create", "admin", `{"id":"named","name":"Named"}`)); a.ID != "named" || a.Model != chat.ExtractiveModelName {
		t.Fatalf("named %+v", a)
	}
	// the new app can chat at once
	resp, b := g.chat("admin", `{"model":"`+created.ID+`","messages":[{"role":"user","content":"hi"}]}`)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "The answer is 42.") {
		t.Fatalf("chat with the new app: %d %s", resp.StatusCode, b)
	}

	resp, b = g.do(http.MethodGet, "/api/core/app/list", "admin", "")
	var apps []chat.App
	if err := json.Unmarshal(decodeEnvelope(t, resp, b, http.StatusOK).Data, &apps); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, a := range apps {
		ids = append(ids, a.ID)
	}
	if want := []string{"app1", "app2", "fromconfig", "kb", "named", created.ID}; !sameSet(ids, want) {
		t.Fatalf("list %v, want %v", ids, want)
	}

	time.Sleep(2 * time.Millisecond) // the bubble's clock: the update time moves by exactly this
	updated := appOf(g.do(http.MethodPut, "/api/core/app/update", "admin", `{"id":"`+created.ID+`","name":"Renamed","search":{"limit":7}}`))
	if updated.Name != "Renamed" || updated.Search.Limit != 7 || updated.SystemPrompt != "Hi {{name}}" ||
		!updated.CreateTime.Equal(created.CreateTime) || !updated.UpdateTime.After(created.UpdateTime) {
		t.Fatalf("updated %+v", updated)
	}
	if a := appOf(g.do(http.MethodPut, "/api/core/app/update", "admin", `{"appId":"named","emptyAnswer":"Nope."}`)); a.EmptyAnswer != "Nope." || a.Name != "Named" {
		t.Fatalf("update by appId %+v", a)
	}

	for _, tc := range []struct {
		method, path, key, body string
		status                  int
		statusText, what        string
	}{
		{"POST", "/api/core/app/create", "admin", `{"id":"named","name":"again"}`, 409, "conflict", "exists"},
		{"POST", "/api/core/app/create", "admin", `{"name":"x","model":"no-such-model"}`, 400, "invalid_request", `"model"`},
		{"POST", "/api/core/app/create", "admin", `{"name":""}`, 400, "invalid_request", `"name"`},
		{"POST", "/api/core/app/create", "admin", `{"id":"bad id","name":"x"}`, 400, "invalid_request", `"id"`},
		{"POST", "/api/core/app/create", "admin", `{"name":"x","search":{"mode":"magic"}}`, 400, "invalid_request", `"search.mode"`},
		{"POST", "/api/core/app/create", "admin", `{"name":"x","teamId":"t2"}`, 400, "invalid_request", `"teamId"`},
		{"POST", "/api/core/app/create", "admin", `{"name":"x","colour":"red"}`, 400, "invalid_request", `"colour"`},
		{"POST", "/api/core/app/create", "admin", `{"name":"x","maxTokens":"many"}`, 400, "invalid_request", `"maxTokens"`},
		{"PUT", "/api/core/app/update", "admin", `{"name":"x"}`, 400, "invalid_request", `"id"`},
		{"PUT", "/api/core/app/update", "admin", `{"id":"nope","name":"x"}`, 404, "not_found", "app not found"},
		{"PUT", "/api/core/app/update", "admin", `{"id":"named","teamId":"t2"}`, 400, "invalid_request", "cannot be changed"},
		{"PUT", "/api/core/app/update", "admin", `{"id":"named","colour":"red"}`, 400, "invalid_request", `"colour"`},
		{"PUT", "/api/core/app/update", "admin", `{"id":"named","temperature":5}`, 400, "invalid_request", `"temperature"`},
		{"PUT", "/api/core/app/update", "admin", `{"id":"fromconfig","name":"x"}`, 409, "app_managed_by_config", "config"},
		{"DELETE", "/api/core/app/del?appId=fromconfig", "admin", "", 409, "app_managed_by_config", "config"},
		{"DELETE", "/api/core/app/del?appId=nope", "admin", "", 404, "not_found", "app not found"},
		{"GET", "/api/core/app/detail?appId=nope", "admin", "", 404, "not_found", "app not found"},
		{"GET", "/api/core/app/detail?appId=app1", "other", "", 404, "not_found", "app not found"},
		{"PUT", "/api/core/app/update", "other", `{"id":"app1","name":"mine"}`, 404, "not_found", "app not found"},
		{"DELETE", "/api/core/app/del?appId=app1", "other", "", 404, "not_found", "app not found"},
		{"GET", "/api/core/app/list", "app1", "", 403, "scope_denied", "scope"},
		{"POST", "/api/core/app/create", "global", `{"name":"x"}`, 403, "scope_denied", "scope"},
	} {
		resp, b := g.do(tc.method, tc.path, tc.key, tc.body)
		checkEnvelopeError(t, resp, b, tc.status, tc.statusText, tc.what)
	}
	if a, _ := g.engine.App(ctx, auth.DefaultTeam, "app1"); a.Name != "App one" {
		t.Fatalf("another team changed app1: %+v", a)
	}
	resp, b = g.do(http.MethodGet, "/api/core/app/list", "other", "")
	if decodeEnvelope(t, resp, b, http.StatusOK); string(decodeEnvelope(t, resp, b, http.StatusOK).Data) != "[]" {
		t.Fatalf("team t2 sees %s", b)
	}

	// Deleting an app deletes its history; then it is gone.
	if resp, b := g.chat("admin", `{"model":"named","chatId":"c","messages":[{"role":"user","content":"hi"}]}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	resp, b = g.do(http.MethodDelete, "/api/core/app/del?appId=named", "admin", "")
	if decodeEnvelope(t, resp, b, http.StatusOK); !strings.Contains(string(b), `"appId":"named"`) {
		t.Fatalf("delete: %s", b)
	}
	resp, b = g.do(http.MethodGet, "/api/core/app/detail?appId=named", "admin", "")
	checkEnvelopeError(t, resp, b, http.StatusNotFound, "not_found", "app not found")
	if g.conversations("named") != 0 {
		t.Fatal("the deleted app's history remains")
	}
	resp, b = g.chat("admin", `{"model":"named","messages":[{"role":"user","content":"hi"}]}`)
	checkOpenAIError(t, resp, b, http.StatusNotFound, "invalid_request_error", "app_not_found", "app not found")
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
