package server_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chatgate/chatgate/server"
)

// The agent API channel's documented configuration, as written, plus
// its binding of account01 to the agent "main".
const channelYAML = `
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

func refServer(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "chatgate.yaml")
	if err := os.WriteFile(path, []byte(channelYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := server.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	base, _ := sdkServer(t, func(c *server.Config) {
		cfg.Server.Data, cfg.RootKey, cfg.Stderr, cfg.Logging = c.Server.Data, c.RootKey, c.Stderr, c.Logging
		*c = cfg
	})
	return base
}

// curl sends what a documented curl call sends: only host and key changed.
func curl(t *testing.T, method, url, key, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, string(out)
}

// sseData returns the data: payloads of an SSE body, with the event name
// each followed.
func sseData(t *testing.T, body string) (events []string, data []string) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	event := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			events = append(events, event)
			data = append(data, strings.TrimPrefix(line, "data: "))
			event = ""
		case line == "" || strings.HasPrefix(line, ":"):
		default:
			t.Fatalf("not SSE: %q", line)
		}
	}
	return events, data
}

func TestAgentChannelExamples(t *testing.T) {
	base := refServer(t)
	url := base + "/api/v1/chat/completions"

	// Chat API (OpenAI 兼容), stream: true
	resp, body := curl(t, "POST", url, "your-api-key", `{
"model": "main",
"messages": [
{"role": "user", "content": "你好"}
],
"stream": true
}`)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("stream: %d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	_, data := sseData(t, body)
	if len(data) < 3 || data[len(data)-1] != "[DONE]" {
		t.Fatalf("stream events: %q", data)
	}
	var sawStop bool
	for _, d := range data[:len(data)-1] {
		var ch struct {
			ID      string `json:"id"`
			Choices []struct {
				Delta        struct{ Content *string } `json:"delta"`
				FinishReason *string                   `json:"finish_reason"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(d), &ch); err != nil || !strings.HasPrefix(ch.ID, "chatcmpl-") {
			t.Fatalf("chunk %s: %v", d, err)
		}
		if len(ch.Choices) == 1 && ch.Choices[0].FinishReason != nil && *ch.Choices[0].FinishReason == "stop" {
			sawStop = true
		}
	}
	if !sawStop {
		t.Fatalf("no finish_reason stop in %q", data)
	}

	// 非流式响应, and the sessionId conversation of 会话管理
	for _, msg := range []string{"我叫张三", "我叫什么名字?"} {
		resp, body = curl(t, "POST", url, "your-api-key", `{
"model": "main",
"messages": [{"role": "user", "content": "`+msg+`"}],
"sessionId": "session-001"
}`)
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
		}
		if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &c) != nil || c.Object != "chat.completion" ||
			c.Model != "main" || c.Created == 0 || len(c.Choices) != 1 || c.Choices[0].Message.Role != "assistant" ||
			c.Choices[0].FinishReason != "stop" {
			t.Fatalf("%s: %d %s", msg, resp.StatusCode, body)
		}
	}
	// the session holds both turns
	resp, body = curl(t, "GET", base+"/api/core/chat/getPaginationRecords?appId=main&chatId=session-001", "your-api-key", "")
	var recs struct {
		Code int `json:"code"`
		Data struct {
			List []struct {
				Obj   string `json:"obj"`
				Value string `json:"value"`
			} `json:"list"`
			Total int `json:"total"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &recs); err != nil || recs.Code != 200 || recs.Data.Total != 4 ||
		recs.Data.List[0].Value != "我叫张三" {
		t.Fatalf("records: %d %s", resp.StatusCode, body)
	}

	// 清除会话
	resp, body = curl(t, "POST", base+"/api/v1/sessions/clear", "your-api-key", `{
"agentId": "main",
"sessionKey": "session-001"
}`)
	if resp.StatusCode != 200 {
		t.Fatalf("sessions/clear: %d %s", resp.StatusCode, body)
	}
	resp, _ = curl(t, "GET", base+"/api/core/chat/getPaginationRecords?appId=main&chatId=session-001", "your-api-key", "")
	if resp.StatusCode != 404 {
		t.Fatalf("records after clear: %d", resp.StatusCode)
	}

	// the read-only account's group_policy does not stop its direct chats
	if resp, body = curl(t, "POST", url, "readonly-key", `{"model":"main","messages":[{"role":"user","content":"你好"}]}`); resp.StatusCode != 200 {
		t.Fatalf("readonly: %d %s", resp.StatusCode, body)
	}
}

// FastGPT's chat examples: chatId history, variables, detail, in both
// shapes.
func TestFastGPTChatExamples(t *testing.T) {
	base, _ := sdkServer(t, nil)
	key := sdkKey(t, base, map[string]any{"name": "app", "appId": "main"})
	url := base + "/api/v1/chat/completions"

	resp, body := curl(t, "POST", url, key, `{
    "chatId": "abcd",
    "stream": false,
    "detail": false,
    "variables": {
        "uid": "asdfadsfasfd2323",
        "name": "张三"
    },
    "messages": [
        {
            "content": "导演是谁",
            "role": "user"
        }
    ]
}`)
	if resp.StatusCode != 200 || strings.Contains(body, "responseData") || !strings.Contains(body, `"chat.completion"`) {
		t.Fatalf("detail=false: %d %s", resp.StatusCode, body)
	}

	resp, body = curl(t, "POST", url, key, `{"chatId":"abcd","stream":false,"detail":true,"messages":[{"content":"导演是谁","role":"user"}]}`)
	var nd struct {
		ResponseData []struct {
			ModuleName       string `json:"moduleName"`
			Tokens           int    `json:"tokens"`
			CompleteMessages []struct {
				Obj, Value string
			} `json:"completeMessages"`
		} `json:"responseData"`
		Usage struct {
			TotalTokens int `json:"total_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal([]byte(body), &nd); err != nil || len(nd.ResponseData) == 0 || nd.Usage.TotalTokens == 0 {
		t.Fatalf("detail=true: %d %s", resp.StatusCode, body)
	}
	ai := nd.ResponseData[len(nd.ResponseData)-1]
	if ai.ModuleName != "AI Chat" || ai.Tokens == 0 || len(ai.CompleteMessages) < 3 { // two turns of history, then the question
		t.Fatalf("AI Chat module: %+v", ai)
	}

	resp, body = curl(t, "POST", url, key, `{"chatId":"abcd","stream":true,"detail":true,"messages":[{"content":"导演是谁","role":"user"}]}`)
	events, data := sseData(t, body)
	seen := map[string]bool{}
	for i, ev := range events {
		seen[ev] = true
		if ev == "flowResponses" && !strings.HasPrefix(data[i], "[") {
			t.Fatalf("flowResponses is not an array: %s", data[i])
		}
	}
	if resp.StatusCode != 200 || !seen["flowNodeStatus"] || !seen["answer"] || !seen["flowResponses"] ||
		events[len(events)-1] != "answer" || data[len(data)-1] != "[DONE]" {
		t.Fatalf("detail stream events %q\n%s", events, body)
	}

	// the history routes see the conversation
	resp, body = curl(t, "GET", base+"/api/core/chat/getHistories?appId=main", key, "")
	if resp.StatusCode != 200 || !strings.Contains(body, `"chatId":"abcd"`) {
		t.Fatalf("getHistories: %d %s", resp.StatusCode, body)
	}
}
