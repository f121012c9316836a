package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/server"
)

// The curl calls below are copied from /work/shared/reference/ as written.
// crRun parses them and sends what curl would send, with only the host and
// the Bearer key changed.

// 001 (FastGPT, "Api Key 使用与鉴权"): 发起应用对话示例.
const crCurlAuthPage = `curl --location --request POST 'https://api.fastgpt.in/api/v1/chat/completions' \
--header 'Authorization: Bearer fastgpt-xxxxxx' \
--header 'Content-Type: application/json' \
--data-raw '{
    "chatId": "111",
    "stream": false,
    "detail": false,
    "messages": [
        {
            "content": "导演是谁",
            "role": "user"
        }
    ]
}'`

// 002 (FastGPT OpenAPI): 发起对话, 请求示例.
const crCurlOpenAPI = `curl --location --request POST 'https://fastgpt.run/api/v1/chat/completions' \
--header 'Authorization: Bearer apikey' \
--header 'Content-Type: application/json' \
--data-raw '{
"chatId":"111",
"stream":false,
"detail": false,
"variables": {
"cTime": "2022/2/2 22:22"
},
"messages": [
{
"content": "导演是谁",
"role": "user"
}
]
}'`

// 003 (agent API channel): Chat API (OpenAI 兼容).
const crCurlChannelStream = `curl -X POST http://localhost:9527/api/v1/chat/completions \
  -H "Authorization: Bearer your-api-key" \
  -H "Content-Type: application/json" \
  -d '{
    "model": "main",
    "messages": [
      {"role": "user", "content": "你好"}
    ],
    "stream": true
  }'`

// 003: 会话管理, 第一次请求 and 后续请求.
const crCurlSessionFirst = `curl -X POST http://localhost:9527/api/v1/chat/completions \
  -H "Authorization: Bearer your-api-key" \
  -H "Content-Type: application/json" \
  -d '{
    "model": "main",
    "messages": [{"role": "user", "content": "我叫张三"}],
    "sessionId": "session-001"
  }'`

const crCurlSessionNext = `curl -X POST http://localhost:9527/api/v1/chat/completions \
  -H "Authorization: Bearer your-api-key" \
  -H "Content-Type: application/json" \
  -d '{
    "model": "main",
    "messages": [{"role": "user", "content": "我叫什么名字?"}],
    "sessionId": "session-001"
  }'`

// 003: 清除会话, written as a bare HTTP request.
const crHTTPSessionClear = `POST /api/v1/sessions/clear
Content-Type: application/json

{
  "agentId": "main",
  "sessionKey": "session-001"
}`

// 003: the YAML of 配置 (single and multiple accounts) and 绑定配置, merged
// into one file.
const crChannelYAML = `
channels:
  api:
    enabled: true
    accounts:
      account01:
        name: "外部系统"
        enabled: true
        api_key: "your-api-key"
        dm_policy: "allow" # 私聊策略
        group_policy: "allow" # 群聊策略
      # 管理员账号
      admin:
        name: "管理员"
        enabled: true
        api_key: "admin-secret-key"
        dm_policy: "allow"
        group_policy: "allow"
      # 只读账号
      readonly:
        name: "只读用户"
        enabled: true
        api_key: "readonly-key"
        dm_policy: "allow"
        group_policy: "disabled"
bindings:
  - agent_id: "main"
    match:
      default: true
      channel: "api"
      account_id: "account01"
`

// crCall is a parsed curl command or bare HTTP request.
type crCall struct {
	method, url string
	header      http.Header
	body        string
}

// crShellWords splits a shell command line: single quotes are literal,
// double quotes take backslash escapes, backslash-newline continues.
func crShellWords(t *testing.T, s string) []string {
	t.Helper()
	var (
		words []string
		cur   strings.Builder
		in    bool
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s) && s[i+1] == '\n':
			i++
		case c == ' ' || c == '\t' || c == '\n':
			if in {
				words, in = append(words, cur.String()), false
				cur.Reset()
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				t.Fatalf("unterminated ' in %q", s)
			}
			cur.WriteString(s[i+1 : i+1+j])
			i, in = i+1+j, true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				cur.WriteByte(s[i])
			}
			in = true
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if in {
		words = append(words, cur.String())
	}
	return words
}

func crParseCurl(t *testing.T, cmd string) crCall {
	t.Helper()
	w := crShellWords(t, cmd)
	if len(w) == 0 || w[0] != "curl" {
		t.Fatalf("not a curl command: %q", cmd)
	}
	c := crCall{header: http.Header{}}
	hasBody := false
	for i := 1; i < len(w); i++ {
		next := func() string {
			i++
			if i >= len(w) {
				t.Fatalf("%s without a value", w[i-1])
			}
			return w[i]
		}
		switch w[i] {
		case "--location", "-L":
		case "--request", "-X":
			c.method = next()
		case "--header", "-H":
			k, v, ok := strings.Cut(next(), ":")
			if !ok {
				t.Fatalf("bad header %q", w[i])
			}
			c.header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
		case "--data-raw", "-d", "--data":
			c.body, hasBody = next(), true
		default:
			if strings.HasPrefix(w[i], "-") {
				t.Fatalf("curl option %s is not handled", w[i])
			}
			c.url = w[i]
		}
	}
	if c.method == "" {
		c.method = http.MethodGet
		if hasBody {
			c.method = http.MethodPost
		}
	}
	return c
}

func crParseHTTP(t *testing.T, raw string) crCall {
	t.Helper()
	head, body, _ := strings.Cut(raw, "\n\n")
	lines := strings.Split(head, "\n")
	method, path, ok := strings.Cut(lines[0], " ")
	if !ok {
		t.Fatalf("bad request line %q", lines[0])
	}
	c := crCall{method: method, url: "http://localhost" + path, header: http.Header{}, body: body}
	for _, l := range lines[1:] {
		k, v, _ := strings.Cut(l, ":")
		c.header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	return c
}

// crRun sends c to base with key in place of the documented one; key ""
// keeps the documented key. It returns the status, headers and body.
func crRun(t *testing.T, c crCall, base, key string) (int, http.Header, string) {
	t.Helper()
	u, err := url.Parse(c.url)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := url.Parse(base)
	u.Scheme, u.Host = b.Scheme, b.Host
	req, err := http.NewRequest(c.method, u.String(), strings.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = c.header.Clone()
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(out)
}

// crSSE splits an SSE body into (event, data) pairs, failing on anything
// that is not SSE.
func crSSE(t *testing.T, body string) (events, data []string) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	ev := ""
	for sc.Scan() {
		switch l := sc.Text(); {
		case strings.HasPrefix(l, "event: "):
			ev = strings.TrimPrefix(l, "event: ")
		case strings.HasPrefix(l, "data: "):
			events, data = append(events, ev), append(data, strings.TrimPrefix(l, "data: "))
			ev = ""
		case l == "" || strings.HasPrefix(l, ":"):
		default:
			t.Fatalf("not SSE: %q in\n%s", l, body)
		}
	}
	return events, data
}

// crKeys fails unless obj has every key.
func crKeys(t *testing.T, what string, obj map[string]any, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if _, ok := obj[k]; !ok {
			t.Fatalf("%s has no %q: %v", what, k, obj)
		}
	}
}

func crObject(t *testing.T, what, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("%s is not a JSON object: %v\n%s", what, err, s)
	}
	return m
}

// crChunk checks an OpenAI chunk as the documents show it and returns its
// id, delta content (nil when absent) and finish reason ("" for null).
func crChunk(t *testing.T, s string) (id string, content *string, finish string) {
	t.Helper()
	m := crObject(t, "chunk", s)
	crKeys(t, "chunk", m, "id", "object", "created", "choices")
	if m["object"] != "chat.completion.chunk" {
		t.Fatalf("chunk object %v", m["object"])
	}
	choices, _ := m["choices"].([]any)
	if len(choices) != 1 {
		t.Fatalf("chunk has %d choices: %s", len(choices), s)
	}
	ch := choices[0].(map[string]any)
	crKeys(t, "choice", ch, "delta", "index", "finish_reason")
	if c, ok := ch["delta"].(map[string]any)["content"].(string); ok {
		content = &c
	}
	finish, _ = ch["finish_reason"].(string)
	id, _ = m["id"].(string)
	return id, content, finish
}

// The documented quotes of FastGPT's responseData sample, put into a
// knowledge base so that the chat examples can answer as documented.
var crMovieQuotes = []map[string]string{
	{"q": "本作的主人公是谁?", "a": "本作的主人公是名叫铃芽的少女。", "source": "手动修改"},
	{"q": "电影《铃芽之旅》男主角是谁?", "a": "电影《铃芽之旅》男主角是宗像草太,由松村北斗配音。", "source": ""},
	{"q": "电影《铃芽之旅》的导演是谁?22", "a": "电影《铃芽之旅》的导演是新海诚。", "source": "手动修改"},
}

const crMovieAnswer = "电影《铃芽之旅》的导演是新海诚。"

// crEnvelope calls a FastGPT-style route and returns the envelope's data.
func crEnvelope(t *testing.T, method, url, key, body string) json.RawMessage {
	t.Helper()
	status, _, out := crRun(t, crCall{method: method, url: url, header: http.Header{"Content-Type": {"application/json"}}, body: body}, url, key)
	var env struct {
		Code       int             `json:"code"`
		StatusText *string         `json:"statusText"`
		Data       json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal([]byte(out), &env); err != nil || status != 200 || env.Code != 200 || env.StatusText == nil {
		t.Fatalf("%s %s: %d %s", method, url, status, out)
	}
	return env.Data
}

// crMovieServer runs a server whose app "movie" answers from the movie
// knowledge base with the documented system prompt plus a {{cTime}}
// variable, and returns the base URL and an app key for it.
func crMovieServer(t *testing.T, mutate func(*server.Config)) (string, string) {
	t.Helper()
	const admin = "cr-admin-key-0123456789abcdef"
	base, s := ccServe(t, func(c *server.Config) {
		c.RootKey = admin
		if mutate != nil {
			mutate(c)
		}
	})
	_, global := ccKey(t, s, auth.KeySpec{Name: "global"})
	var dsID, colID string
	_ = json.Unmarshal(crEnvelope(t, "POST", base+"/api/core/dataset/create", global, `{"name":"铃芽之旅"}`), &dsID)
	_ = json.Unmarshal(crEnvelope(t, "POST", base+"/api/core/dataset/collection/create", global,
		fmt.Sprintf(`{"datasetId":%q,"name":"手动录入"}`, dsID)), &colID)
	push, _ := json.Marshal(map[string]any{"collectionId": colID, "mode": "index", "data": crMovieQuotes})
	var pr struct {
		InsertLen int `json:"insertLen"`
	}
	_ = json.Unmarshal(crEnvelope(t, "POST", base+"/api/core/dataset/data/pushData", global, string(push)), &pr)
	if pr.InsertLen != len(crMovieQuotes) {
		t.Fatalf("pushData inserted %d", pr.InsertLen)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var d struct {
			TrainingAmount, DataAmount, FailedAmount int
		}
		_ = json.Unmarshal(crEnvelope(t, "GET", base+"/api/core/dataset/collection/detail?id="+colID, global, ""), &d)
		if d.TrainingAmount == 0 && d.DataAmount == len(crMovieQuotes) {
			break
		}
		if d.FailedAmount > 0 || time.Now().After(deadline) {
			t.Fatalf("training: %+v", d)
		}
	}
	app, _ := json.Marshal(map[string]any{"id": "movie", "name": "铃芽之旅", "model": "extractive", "maxTokens": 2050,
		"systemPrompt": "你仅回答关于电影《玲芽之旅》的问题,其余问题直接回复: 我不清楚。现在时间: {{cTime}}",
		"datasetIds":   []string{dsID}, "search": map[string]any{"limit": 3, "similarity": 0.1}})
	crEnvelope(t, "POST", base+"/api/core/app/create", admin, string(app))
	_, key := ccKey(t, s, auth.KeySpec{Name: "movie", AppID: "movie"})
	return base, key
}

// FastGPT's chat examples (001 and 002), as written, in each response
// shape the OpenAPI page shows: stream with detail=false and detail=true,
// and stream=false with detail=true; then the conversation they built,
// through getHistories and getPaginationRecords.
func TestReferenceFastGPTChat(t *testing.T) {
	base, key := crMovieServer(t, nil)
	openAPI := crParseCurl(t, crCurlOpenAPI)
	if openAPI.method != "POST" || openAPI.header.Get("Authorization") != "Bearer apikey" || !strings.Contains(openAPI.body, `"cTime"`) {
		t.Fatalf("parsed %+v", openAPI)
	}

	// stream=false, detail=false: a chat.completion, no responseData.
	for _, cmd := range []string{crCurlAuthPage, crCurlOpenAPI} {
		status, hdr, body := crRun(t, crParseCurl(t, cmd), base, key)
		if status != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
			t.Fatalf("%d %s\n%s", status, hdr.Get("Content-Type"), body)
		}
		m := crObject(t, "completion", body)
		crKeys(t, "completion", m, "id", "object", "created", "model", "choices", "usage")
		if _, ok := m["responseData"]; ok {
			t.Fatalf("detail=false answered responseData: %s", body)
		}
		crKeys(t, "usage", m["usage"].(map[string]any), "prompt_tokens", "completion_tokens", "total_tokens")
		ch := m["choices"].([]any)[0].(map[string]any)
		crKeys(t, "choice", ch, "message", "finish_reason", "index")
		msg := ch["message"].(map[string]any)
		if msg["role"] != "assistant" || msg["content"] != crMovieAnswer || ch["finish_reason"] != "stop" {
			t.Fatalf("answer %v, want %q", ch, crMovieAnswer)
		}
	}

	// detail=false 响应: bare data lines, no events.
	c := openAPI
	c.body = strings.Replace(c.body, `"stream":false`, `"stream":true`, 1)
	status, hdr, body := crRun(t, c, base, key)
	if status != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("stream: %d %s\n%s", status, hdr.Get("Content-Type"), body)
	}
	events, data := crSSE(t, body)
	var text strings.Builder
	for i, d := range data {
		if events[i] != "" {
			t.Fatalf("detail=false stream has event %q", events[i])
		}
		if d == "[DONE]" {
			if i != len(data)-1 {
				t.Fatalf("[DONE] is not last")
			}
			continue
		}
		if _, content, _ := crChunk(t, d); content != nil {
			text.WriteString(*content)
		}
	}
	if text.String() != crMovieAnswer || data[len(data)-1] != "[DONE]" {
		t.Fatalf("stream answered %q\n%s", text.String(), body)
	}

	// detail=true 响应: answer events, module status, module responses.
	c.body = strings.Replace(c.body, `"detail": false`, `"detail": true`, 1)
	_, _, body = crRun(t, c, base, key)
	responses := crDetailStream(t, body, "flowResponses")
	crModules(t, responses, "2022/2/2 22:22")

	// stream=false,detail=true 响应.
	c = openAPI
	c.body = strings.Replace(c.body, `"detail": false`, `"detail": true`, 1)
	status, _, body = crRun(t, c, base, key)
	m := crObject(t, "completion", body)
	crKeys(t, "completion", m, "responseData", "id", "model", "usage", "choices")
	rd, _ := json.Marshal(m["responseData"])
	if status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	crModules(t, string(rd), "2022/2/2 22:22")

	// 为 undefined 时: no chatId, nothing stored.
	c.body = strings.Replace(c.body, `"chatId":"111",`, ``, 1)
	// The variables still fill the prompt.
	if status, _, body = crRun(t, c, base, key); status != 200 || !strings.Contains(body, crMovieAnswer) ||
		!strings.Contains(body, "现在时间: 2022/2/2 22:22") {
		t.Fatalf("stateless: %d %s", status, body)
	}
	// 为非空字符串时: history comes from the store and only the last of
	// messages is the question; the earlier one sent here is not used.
	c.body = `{"chatId":"111","detail":true,"messages":[{"role":"user","content":"not part of the chat"},{"role":"assistant","content":"nor this"},{"role":"user","content":"男主角是谁"}]}`
	status, _, body = crRun(t, c, base, key)
	if status != 200 || strings.Contains(body, "not part of the chat") || !strings.Contains(body, "宗像草太") {
		t.Fatalf("chatId turn: %d %s", status, body)
	}

	// The conversation: six turns under chatId 111, none of them the stateless one.
	var hist struct {
		List  []map[string]any `json:"list"`
		Total int              `json:"total"`
	}
	_ = json.Unmarshal(crEnvelope(t, "GET", base+"/api/core/chat/getHistories?appId=movie", key, ""), &hist)
	if hist.Total != 1 || len(hist.List) != 1 {
		t.Fatalf("getHistories: %+v", hist)
	}
	h := hist.List[0]
	crKeys(t, "history", h, "chatId", "title", "updateTime", "appId")
	if h["chatId"] != "111" || h["title"] != "导演是谁" || h["appId"] != "movie" {
		t.Fatalf("history %v", h)
	}
	if v, _ := h["variables"].(map[string]any); v["cTime"] != "2022/2/2 22:22" {
		t.Fatalf("history variables %v", h["variables"])
	}
	var recs struct {
		List  []map[string]any `json:"list"`
		Total int              `json:"total"`
	}
	_ = json.Unmarshal(crEnvelope(t, "GET", base+"/api/core/chat/getPaginationRecords?appId=movie&chatId=111&offset=10&pageSize=4", key, ""), &recs)
	if recs.Total != 12 || len(recs.List) != 2 {
		t.Fatalf("getPaginationRecords: total %d, %d on the page", recs.Total, len(recs.List))
	}
	human, ai := recs.List[0], recs.List[1]
	crKeys(t, "record", human, "dataId", "obj", "value", "time")
	crKeys(t, "record", ai, "dataId", "obj", "value", "time", "responseData")
	if human["obj"] != "Human" || human["value"] != "男主角是谁" || ai["obj"] != "AI" || !strings.Contains(ai["value"].(string), "宗像草太") {
		t.Fatalf("last turn %v / %v", human, ai)
	}
	// The turn's completeMessages hold the stored history, not the request's.
	mods, _ := json.Marshal(ai["responseData"])
	if !strings.Contains(string(mods), `"obj":"AI","value":"`+crMovieAnswer) || strings.Contains(string(mods), "not part of the chat") {
		t.Fatalf("stored responseData %s", mods)
	}
	// Another app's key reads nothing of it.
	_, _, body = crRun(t, crCall{method: "GET", url: base + "/api/core/chat/getPaginationRecords?appId=movie&chatId=111", header: http.Header{}}, base, "cg-wrong-key-0123456789abcdefghij")
	if !strings.Contains(body, "invalid_api_key") {
		t.Fatalf("records with a bad key: %s", body)
	}
}

// The older name of the module-responses event, for clients written
// against the OpenAPI page's sample.
func TestReferenceAppStreamResponse(t *testing.T) {
	base, key := crMovieServer(t, func(c *server.Config) { c.Chat.ResponsesEvent = "appStreamResponse" })
	c := crParseCurl(t, crCurlOpenAPI)
	c.body = strings.NewReplacer(`"stream":false`, `"stream":true`, `"detail": false`, `"detail": true`).Replace(c.body)
	_, _, body := crRun(t, c, base, key)
	crModules(t, crDetailStream(t, body, "appStreamResponse"), "2022/2/2 22:22")
	if strings.Contains(body, "flowResponses") {
		t.Fatalf("both names sent:\n%s", body)
	}
}

// crDetailStream checks a detail=true stream and returns the module
// responses event's data.
func crDetailStream(t *testing.T, body, respEvent string) string {
	t.Helper()
	events, data := crSSE(t, body)
	var (
		text      strings.Builder
		responses string
		nodes     []string
		ids       = map[string]bool{}
		stop      bool
	)
	// The OpenAPI page's sample sends appStreamResponse after [DONE];
	// FastGPT today sends flowResponses before it.
	last := len(data) - 1
	if respEvent == "appStreamResponse" {
		if events[last] != respEvent {
			t.Fatalf("%s is not last:\n%s", respEvent, body)
		}
		last--
	}
	for i, ev := range events {
		switch ev {
		case "answer":
			if data[i] == "[DONE]" {
				if i != last {
					t.Fatalf("[DONE] is not where it belongs (%d of %d):\n%s", i, len(data), body)
				}
				continue
			}
			id, content, finish := crChunk(t, data[i])
			ids[id] = true
			if content != nil {
				text.WriteString(*content)
			}
			stop = stop || finish == "stop"
		case "flowNodeStatus":
			n := crObject(t, "flowNodeStatus", data[i])
			crKeys(t, "flowNodeStatus", n, "status", "name")
			nodes = append(nodes, n["name"].(string))
		case respEvent:
			if responses != "" {
				t.Fatalf("two %s events", respEvent)
			}
			responses = data[i]
		case "updateVariables":
			crObject(t, "updateVariables", data[i])
		default:
			t.Fatalf("unexpected event %q (data %s)", ev, data[i])
		}
	}
	if text.String() != crMovieAnswer || !stop || len(ids) != 1 || data[last] != "[DONE]" || events[last] != "answer" {
		t.Fatalf("detail stream answered %q (stop %v, ids %v)\n%s", text.String(), stop, ids, body)
	}
	if strings.Join(nodes, ",") != "KB Search,AI Chat" {
		t.Fatalf("flowNodeStatus names %q", nodes)
	}
	if responses == "" {
		t.Fatalf("no %s event:\n%s", respEvent, body)
	}
	return responses
}

// crModules checks responseData against the documented sample's fields.
func crModules(t *testing.T, responseData, cTime string) {
	t.Helper()
	var mods []map[string]any
	if err := json.Unmarshal([]byte(responseData), &mods); err != nil || len(mods) != 2 {
		t.Fatalf("responseData %v: %s", err, responseData)
	}
	kb, ai := mods[0], mods[1]
	crKeys(t, "KB Search", kb, "moduleName", "price", "model", "tokens", "similarity", "limit")
	if kb["moduleName"] != "KB Search" || kb["limit"] != 3.0 || kb["similarity"] != 0.1 {
		t.Fatalf("KB Search %v", kb)
	}
	crKeys(t, "AI Chat", ai, "moduleName", "price", "model", "tokens", "question", "answer", "maxToken", "quoteList", "completeMessages")
	if ai["moduleName"] != "AI Chat" || ai["answer"] != crMovieAnswer || ai["maxToken"] != 2050.0 || ai["tokens"].(float64) <= 0 {
		t.Fatalf("AI Chat %v", ai)
	}
	quotes := ai["quoteList"].([]any)
	if len(quotes) == 0 || len(quotes) > 3 {
		t.Fatalf("quoteList %v", quotes)
	}
	for _, q := range quotes {
		crKeys(t, "quote", q.(map[string]any), "dataset_id", "id", "q", "a", "source")
	}
	var objs []string
	sawTime := false
	for _, m := range ai["completeMessages"].([]any) {
		cm := m.(map[string]any)
		crKeys(t, "completeMessage", cm, "obj", "value")
		objs = append(objs, cm["obj"].(string))
		sawTime = sawTime || (cm["obj"] == "System" && strings.Contains(cm["value"].(string), "现在时间: "+cTime))
	}
	if !sawTime || objs[0] != "System" || objs[len(objs)-2] != "Human" || objs[len(objs)-1] != "AI" {
		t.Fatalf("completeMessages %v (variable substituted: %v)", ai["completeMessages"], sawTime)
	}
}

func crChannelServer(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "chatgate.yaml")
	if err := os.WriteFile(path, []byte(crChannelYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := server.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	base, _ := ccServe(t, func(c *server.Config) {
		cfg.Server.Data, cfg.Stderr, cfg.Logging = c.Server.Data, c.Stderr, c.Logging
		*c = cfg
	})
	return base
}

// The agent API channel's examples (003), keys as configured in its YAML.
func TestReferenceAgentChannel(t *testing.T) {
	base := crChannelServer(t)

	// Chat API (OpenAI 兼容), stream: 流式响应.
	status, hdr, body := crRun(t, crParseCurl(t, crCurlChannelStream), base, "")
	if status != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("stream: %d %s\n%s", status, hdr.Get("Content-Type"), body)
	}
	events, data := crSSE(t, body)
	ids := map[string]bool{}
	stop := 0
	for i, d := range data {
		if events[i] != "" {
			t.Fatalf("event %q in a plain stream", events[i])
		}
		if d == "[DONE]" {
			continue
		}
		id, _, finish := crChunk(t, d)
		ids[id] = true
		if finish == "stop" {
			stop++
		}
	}
	var id string
	for id = range ids {
	}
	if len(ids) != 1 || !strings.HasPrefix(id, "chatcmpl-") || stop != 1 || data[len(data)-1] != "[DONE]" {
		t.Fatalf("stream chunks: ids %v, %d stops\n%s", ids, stop, body)
	}

	// 会话管理 with 非流式响应: two turns of session-001.
	for i, cmd := range []string{crCurlSessionFirst, crCurlSessionNext} {
		status, _, body := crRun(t, crParseCurl(t, cmd), base, "")
		m := crObject(t, "completion", body)
		crKeys(t, "completion", m, "id", "object", "created", "model", "choices")
		ch := m["choices"].([]any)[0].(map[string]any)
		crKeys(t, "choice", ch, "index", "message", "finish_reason")
		if status != 200 || m["object"] != "chat.completion" || m["model"] != "main" || !strings.HasPrefix(m["id"].(string), "chatcmpl-") ||
			ch["finish_reason"] != "stop" || ch["message"].(map[string]any)["role"] != "assistant" {
			t.Fatalf("turn %d: %d %s", i, status, body)
		}
	}
	// the agent remembers: the second turn's prompt held the first
	status, _, body = crRun(t, crCall{method: "POST", url: base + "/api/v1/chat/completions", header: http.Header{"Content-Type": {"application/json"}},
		body: `{"model":"main","sessionId":"session-001","detail":true,"messages":[{"role":"user","content":"再说一遍"}]}`}, base, "your-api-key")
	if status != 200 || !strings.Contains(body, `{"obj":"Human","value":"我叫张三"}`) || !strings.Contains(body, `{"obj":"Human","value":"我叫什么名字?"}`) {
		t.Fatalf("third turn does not see the session: %d %s", status, body)
	}
	var recs struct {
		Total int `json:"total"`
	}
	_ = json.Unmarshal(crEnvelope(t, "GET", base+"/api/core/chat/getPaginationRecords?appId=main&chatId=session-001", "your-api-key", ""), &recs)
	if recs.Total != 6 {
		t.Fatalf("session-001 holds %d records", recs.Total)
	}

	// 清除会话, then again (nothing left: still 200, deleted false).
	clear := crParseHTTP(t, crHTTPSessionClear)
	for _, deleted := range []bool{true, false} {
		status, _, body := crRun(t, clear, base, "your-api-key")
		var env struct {
			Code int `json:"code"`
			Data struct {
				AgentID    string `json:"agentId"`
				SessionKey string `json:"sessionKey"`
				Deleted    bool   `json:"deleted"`
			} `json:"data"`
		}
		if err := json.Unmarshal([]byte(body), &env); err != nil || status != 200 || env.Code != 200 ||
			env.Data.AgentID != "main" || env.Data.SessionKey != "session-001" || env.Data.Deleted != deleted {
			t.Fatalf("sessions/clear (deleted %v): %d %s", deleted, status, body)
		}
	}
	// the bare request, without a key, is refused
	if status, _, _ := crRun(t, clear, base, ""); status != 401 {
		t.Fatalf("sessions/clear without a key: %d", status)
	}
	// a new turn in the cleared session starts over
	crRun(t, crParseCurl(t, crCurlSessionNext), base, "")
	_ = json.Unmarshal(crEnvelope(t, "GET", base+"/api/core/chat/getPaginationRecords?appId=main&chatId=session-001", "your-api-key", ""), &recs)
	if recs.Total != 2 {
		t.Fatalf("session-001 after clear holds %d records", recs.Total)
	}

	// The other accounts of 多账号配置: admin has no binding and names the
	// agent in model; readonly's group_policy does not stop direct chats.
	for _, key := range []string{"admin-secret-key", "readonly-key"} {
		if status, _, body := crRun(t, crParseCurl(t, crCurlSessionFirst), base, key); status != 200 {
			t.Fatalf("%s: %d %s", key, status, body)
		}
	}
	// A key the YAML does not hold.
	if status, _, body := crRun(t, crParseCurl(t, crCurlChannelStream), base, "not-in-the-yaml"); status != 401 || !strings.Contains(body, `"error"`) {
		t.Fatalf("unknown key: %d %s", status, body)
	}

	// SDK 示例, Go: the program as documented, printing into a buffer.
	var out strings.Builder
	crGoExample(t, base+"/api/v1", &out)
	if out.Len() == 0 {
		t.Fatal("the Go example printed nothing")
	}
}

// crGoExample is the channel page's Go example with its base URL changed
// and fmt.Print writing to out. It indexes Choices[0] of every chunk, so a
// chunk without choices would panic it.
func crGoExample(t *testing.T, baseURL string, out io.Writer) {
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("the documented Go example panicked: %v", r)
		}
	}()
	config := goopenai.DefaultConfig("your-api-key")
	config.BaseURL = baseURL
	client := goopenai.NewClientWithConfig(config)

	stream, err := client.CreateChatCompletionStream(context.Background(), goopenai.ChatCompletionRequest{
		Model: "main",
		Messages: []goopenai.ChatCompletionMessage{
			{
				Role:    goopenai.ChatMessageRoleUser,
				Content: "你好",
			},
		},
		Stream: true,
	})
	if err != nil {
		panic(err)
	}
	defer stream.Close()

	for {
		response, err := stream.Recv()
		if err != nil {
			if err != io.EOF {
				t.Errorf("the example's stream ended with %v", err)
			}
			break
		}
		fmt.Fprint(out, response.Choices[0].Delta.Content)
	}
}
