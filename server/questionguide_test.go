package server_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/chatgate/chatgate/billing"
	"github.com/chatgate/chatgate/internal/postgres/pgtest"
	"github.com/chatgate/chatgate/server"
)

// FastGPT's 猜你想问, both routes as chat.mdx writes them, through the real
// chat/llm OpenAI client to a loopback OpenAI-compatible model: v2 reads the
// conversation's last turns, the old route the messages it is sent; each
// call is billed once to the key; the offline model refuses by name.
func TestQuestionGuideAsDocumented(t *testing.T) {
	for _, pg := range []bool{false, true} {
		name := map[bool]string{false: "embedded", true: "postgres"}[pg]
		t.Run(name, func(t *testing.T) {
			up := newFakeUpstream(t, []string{"```json\n", `["你对AI有什么看法？", `, `"想了解AI的应用吗？"]`, "\n```"})
			var dsn string
			if pg {
				dsn = pgtest.DSN(t)
			}
			base, _ := sdkServer(t, func(c *server.Config) {
				c.Storage.DSN = dsn
				c.OpenAIBaseURL = up.URL + "/v1"
			})
			key := sdkKey(t, base, map[string]any{"name": "app", "appId": "main"})
			hsChat(t, base, key, `{"chatId":"guide-1","messages":[{"role":"user","content":"导演是谁"}]}`)
			hsChat(t, base, key, `{"chatId":"guide-1","messages":[{"role":"user","content":"主角是谁"}]}`)
			up.mu.Lock()
			up.seen = nil
			up.mu.Unlock()

			before := blUsageN(t, base)
			want := []string{"你对AI有什么看法？", "想了解AI的应用吗？"}
			check := func(what string, data json.RawMessage, history ...string) {
				t.Helper()
				var qs []string
				if err := json.Unmarshal(data, &qs); err != nil || !slices.Equal(qs, want) {
					t.Fatalf("%s: data %s; want %q", what, data, want)
				}
				up.mu.Lock()
				defer up.mu.Unlock()
				if len(up.seen) != 1 {
					t.Fatalf("%s: %d upstream calls", what, len(up.seen))
				}
				for _, h := range history {
					if !strings.Contains(up.seen[0], h) {
						t.Fatalf("%s: the model was not shown %q: %s", what, h, up.seen[0])
					}
				}
				if strings.Contains(up.seen[0], key) {
					t.Fatalf("%s: the chatgate key reached the upstream", what)
				}
				up.seen = nil
			}
			data := hsOK(t, "POST", base+"/api/core/ai/agent/v2/createQuestionGuide", key, `{
    "appId": "main",
    "chatId": "guide-1",
    "questionGuide": {
        "open": true,
        "model": "gpt-5",
        "customPrompt": "你是一个智能助手，请根据用户的问题生成猜你想问。"
    }
}`)
			check("v2", data, "导演是谁", "主角是谁", "你是一个智能助手，请根据用户的问题生成猜你想问。", `"model":"gpt-5"`)

			old := `{
    "messages":[
        {
            "role": "user",
            "content": "你好"
        },
        {
            "role": "assistant",
            "content": "你好！有什么我可以帮助你的吗？"
        }
    ]
}`
			// the old route names no model: the app's is the offline one,
			// which cannot write questions
			if _, e := envCall(t, "POST", base+"/api/core/ai/agent/createQuestionGuide", key, old); e.Code != 400 || e.StatusText != "question_guide_unavailable" {
				t.Fatalf("old route on the offline model: %+v", e)
			}
			hsOK(t, "PUT", base+"/api/core/app/update", sdkAdmin, `{"id":"main","model":"gpt-4o-mini"}`)
			data = hsOK(t, "POST", base+"/api/core/ai/agent/createQuestionGuide", key, old)
			check("old route", data, "你好！有什么我可以帮助你的吗？", `"model":"gpt-4o-mini"`)

			// refused by name, nothing asked, nothing billed
			for _, c := range []struct{ path, body, field string }{
				{"v2/createQuestionGuide", `{"appId":"main","chatId":"guide-1","shareId":"s1","outLinkUid":"u"}`, "shareId"},
				{"v2/createQuestionGuide", `{"appId":"main"}`, "chatId"},
				{"v2/createQuestionGuide", `{"appId":"main","chatId":"guide-1","questionGuide":{"open":true,"customPrompt":"` + strings.Repeat("x", 5000) + `"}}`, "questionGuide.customPrompt"},
				{"createQuestionGuide", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}]}`, "messages[0]"},
			} {
				if _, e := envCall(t, "POST", base+"/api/core/ai/agent/"+c.path, key, c.body); e.Code != 400 || !strings.Contains(e.Message, c.field) {
					t.Fatalf("%s %s: %+v; want 400 naming %s", c.path, c.body, e, c.field)
				}
			}
			if _, e := envCall(t, "POST", base+"/api/core/ai/agent/v2/createQuestionGuide", key, `{"appId":"main","chatId":"never-was"}`); e.Code != 404 {
				t.Fatalf("unknown chat: %+v", e)
			}
			// switched off: nothing to suggest, nothing asked
			data = hsOK(t, "POST", base+"/api/core/ai/agent/v2/createQuestionGuide", key, `{"appId":"main","chatId":"guide-1","questionGuide":{"open":false}}`)
			if string(data) != "[]" {
				t.Fatalf("open:false answered %s", data)
			}
			up.mu.Lock()
			n := len(up.seen)
			up.mu.Unlock()
			if n != 0 {
				t.Fatalf("%d upstream calls for refused or switched-off guides", n)
			}
			// each guide that was answered is one usage record of its model
			var guides []string
			for _, r := range blUsageList(t, base)[before:] {
				guides = append(guides, r.Module+"/"+r.Model)
				if r.InputTokens == 0 || r.OutputTokens == 0 || r.Points <= 0 || r.AppID != "main" || r.KeyID == "" {
					t.Fatalf("guide usage %+v; want its tokens and points, on the key and app", r)
				}
			}
			if !slices.Equal(guides, []string{"Question Guide/gpt-5", "Question Guide/gpt-4o-mini"}) {
				t.Fatalf("usage records after the chats: %q", guides)
			}
		})
	}
}

// blUsageList is the ledger, oldest first, through the admin key.
func blUsageList(t *testing.T, base string) []billing.Record {
	t.Helper()
	var p blUsagePage
	blCall(t, "GET", base+"/api/support/usage/list?pageSize=2000", sdkAdmin, "", &p)
	slices.SortStableFunc(p.List, func(a, b billing.Record) int { return a.Time.Compare(b.Time) })
	return p.List
}

func blUsageN(t *testing.T, base string) int { return len(blUsageList(t, base)) }
