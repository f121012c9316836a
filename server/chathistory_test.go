package server_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/chatgate/chatgate/internal/postgres/pgtest"
	"github.com/chatgate/chatgate/server"
)

// The history routes of FastGPT's chat.mdx ("对话 CRUD"), sent as the doc
// writes them, on the embedded store and on Postgres.

// hsBackends runs fn on a server on each store, with an app key of main.
func hsBackends(t *testing.T, fn func(t *testing.T, base, key string)) {
	for _, pg := range []bool{false, true} {
		name := "embedded"
		if pg {
			name = "postgres"
		}
		t.Run(name, func(t *testing.T) {
			var dsn string
			if pg {
				dsn = pgtest.DSN(t)
			}
			base, _ := sdkServer(t, func(c *server.Config) { c.Storage.DSN = dsn })
			fn(t, base, sdkKey(t, base, map[string]any{"name": "app", "appId": "main"}))
		})
	}
}

// hsChat sends a chat completion and fails unless it answers 200.
func hsChat(t *testing.T, base, key, body string) {
	t.Helper()
	if resp, raw := curl(t, "POST", base+"/api/v1/chat/completions", key, body); resp.StatusCode != 200 {
		t.Fatalf("chat %s: %d %s", body, resp.StatusCode, raw)
	}
}

// hsOK calls an envelope route and returns its data, failing unless 200.
func hsOK(t *testing.T, method, url, key, body string) json.RawMessage {
	t.Helper()
	_, e := envCall(t, method, url, key, body)
	if e.Code != 200 {
		t.Fatalf("%s %s %s: %+v", method, url, body, e)
	}
	return e.Data
}

// hsState is all the app's history, through today's GET routes, to show a
// refused call changed nothing.
func hsState(t *testing.T, base, key, app string) string {
	t.Helper()
	var list struct {
		List []struct {
			ChatID string `json:"chatId"`
		} `json:"list"`
	}
	hist := hsOK(t, "GET", base+"/api/core/chat/getHistories?pageSize=100&appId="+app, key, "")
	_ = json.Unmarshal(hist, &list)
	var b strings.Builder
	b.Write(hist)
	for _, c := range list.List {
		b.Write(hsOK(t, "GET", base+"/api/core/chat/getPaginationRecords?pageSize=100&appId="+app+"&chatId="+url.QueryEscape(c.ChatID), key, ""))
	}
	return b.String()
}

type hsConv struct {
	ChatID      string `json:"chatId"`
	AppID       string `json:"appId"`
	Title       string `json:"title"`
	CustomTitle string `json:"customTitle"`
	Top         bool   `json:"top"`
	CustomUID   string `json:"customUid"`
}

func hsList(t *testing.T, base, key, body string) (ids []string, convs []hsConv, total int) {
	t.Helper()
	var d struct {
		List  []hsConv `json:"list"`
		Total int      `json:"total"`
	}
	if err := json.Unmarshal(hsOK(t, "POST", base+"/api/core/chat/getHistories", key, body), &d); err != nil {
		t.Fatal(err)
	}
	for _, c := range d.List {
		ids = append(ids, c.ChatID)
	}
	return ids, d.List, d.Total
}

type hsRecord struct {
	ID     string `json:"_id"`
	DataID string `json:"dataId"`
	Obj    string `json:"obj"`
	Value  []struct {
		Type string `json:"type"`
		Text struct {
			Content string `json:"content"`
		} `json:"text"`
	} `json:"value"`
	CustomFeedbacks      *[]string `json:"customFeedbacks"`
	UserGoodFeedback     string    `json:"userGoodFeedback"`
	UserBadFeedback      string    `json:"userBadFeedback"`
	LLMModuleAccount     *int      `json:"llmModuleAccount"`
	TotalQuoteList       *[]any    `json:"totalQuoteList"`
	TotalRunningTime     *float64  `json:"totalRunningTime"`
	HistoryPreviewLength *int      `json:"historyPreviewLength"`
}

func hsRecords(t *testing.T, base, key, body string) ([]hsRecord, int) {
	t.Helper()
	var d struct {
		List  []hsRecord `json:"list"`
		Total int        `json:"total"`
	}
	if err := json.Unmarshal(hsOK(t, "POST", base+"/api/core/chat/getPaginationRecords", key, body), &d); err != nil {
		t.Fatal(err)
	}
	return d.List, d.Total
}

// The doc's chat request, with its responseChatItemId.
const hsDocChat = `{
    "chatId": "my_chatId",
    "stream": false,
    "detail": false,
    "responseChatItemId": "my_responseChatItemId",
    "variables": {
        "uid": "asdfadsfasfd2323",
        "name": "张三"
    },
    "messages": [
        {
            "role": "user",
            "content": "导演是谁"
        }
    ]
}`

func TestHistoryRoutesAsDocumented(t *testing.T) {
	hsBackends(t, func(t *testing.T, base, key string) {
		hsChat(t, base, key, `{"chatId":"older","messages":[{"role":"user","content":"你好"}]}`)
		hsChat(t, base, key, hsDocChat)
		recsBody := `{
    "appId": "main",
    "chatId": "my_chatId",
    "offset": 0,
    "pageSize": 10,
    "loadCustomFeedbacks": true
}`
		t.Run("completions/responseChatItemId", func(t *testing.T) {
			recs, total := hsRecords(t, base, key, recsBody)
			if total != 2 || recs[1].DataID != "my_responseChatItemId" || recs[1].ID != "my_responseChatItemId" || recs[0].DataID == "" {
				t.Fatalf("records %+v total %d", recs, total)
			}
		})
		t.Run("getHistories", func(t *testing.T) {
			ids, convs, total := hsList(t, base, key, `{
    "appId": "main",
    "offset": 0,
    "pageSize": 20,
    "source": "api"
}`)
			if total != 2 || strings.Join(ids, ",") != "my_chatId,older" || convs[0].AppID != "main" || convs[0].Title != "导演是谁" || convs[0].Top || convs[0].CustomTitle != "" {
				t.Fatalf("getHistories: %v %+v %d", ids, convs, total)
			}
			// the page is the doc's offset and pageSize
			if ids, _, total := hsList(t, base, key, `{"appId":"main","offset":1,"pageSize":1,"source":"api"}`); total != 2 || strings.Join(ids, ",") != "older" {
				t.Fatalf("second page: %v %d", ids, total)
			}
		})
		t.Run("updateHistory/customTitle", func(t *testing.T) {
			if d := hsOK(t, "POST", base+"/api/core/chat/updateHistory", key, `{
    "appId": "main",
    "chatId": "my_chatId",
    "customTitle": "自定义标题"
}`); string(d) != "null" {
				t.Fatalf("data %s", d)
			}
			_, convs, _ := hsList(t, base, key, `{"appId":"main"}`)
			if convs[0].ChatID != "my_chatId" || convs[0].CustomTitle != "自定义标题" || convs[0].Title != "导演是谁" {
				t.Fatalf("renamed: %+v", convs)
			}
		})
		t.Run("updateHistory/top", func(t *testing.T) {
			hsOK(t, "POST", base+"/api/core/chat/updateHistory", key, `{
    "appId": "main",
    "chatId": "older",
    "top": true
}`)
			// pinned first, though my_chatId is newer; and a new turn does not undo it
			hsChat(t, base, key, `{"chatId":"my_chatId","messages":[{"role":"user","content":"再问一次"}]}`)
			ids, convs, _ := hsList(t, base, key, `{"appId":"main"}`)
			if strings.Join(ids, ",") != "older,my_chatId" || !convs[0].Top || convs[1].Top || convs[1].CustomTitle != "自定义标题" {
				t.Fatalf("pinned: %+v", convs)
			}
		})
		t.Run("getPaginationRecords", func(t *testing.T) {
			recs, total := hsRecords(t, base, key, recsBody)
			if total != 4 || len(recs) != 4 {
				t.Fatalf("%d records of %d", len(recs), total)
			}
			q, a := recs[0], recs[1]
			if q.Obj != "Human" || len(q.Value) != 1 || q.Value[0].Type != "text" || q.Value[0].Text.Content != "导演是谁" ||
				q.CustomFeedbacks == nil || len(*q.CustomFeedbacks) != 0 || q.LLMModuleAccount != nil {
				t.Fatalf("question %+v", q)
			}
			if a.Obj != "AI" || a.Value[0].Text.Content == "" || a.LLMModuleAccount == nil || *a.LLMModuleAccount != 1 ||
				a.TotalQuoteList == nil || a.TotalRunningTime == nil || a.HistoryPreviewLength == nil || *a.HistoryPreviewLength < 2 {
				t.Fatalf("answer %+v", a)
			}
			// without loadCustomFeedbacks there are none to list
			if recs, _ := hsRecords(t, base, key, `{"appId":"main","chatId":"my_chatId","offset":3,"pageSize":10}`); len(recs) != 1 || recs[0].CustomFeedbacks != nil {
				t.Fatalf("the last record alone: %+v", recs)
			}
		})
		t.Run("init", func(t *testing.T) {
			var d struct {
				ChatID    string         `json:"chatId"`
				AppID     string         `json:"appId"`
				Variables map[string]any `json:"variables"`
				App       struct {
					Name       string         `json:"name"`
					ChatModels []string       `json:"chatModels"`
					ChatConfig map[string]any `json:"chatConfig"`
				} `json:"app"`
			}
			_ = json.Unmarshal(hsOK(t, "GET", base+"/api/core/chat/init?appId=main&chatId=my_chatId", key, ""), &d)
			if d.ChatID != "my_chatId" || d.AppID != "main" || d.Variables["name"] != "张三" || d.Variables["uid"] != "asdfadsfasfd2323" ||
				d.App.Name == "" || len(d.App.ChatModels) != 1 || d.App.ChatConfig == nil {
				t.Fatalf("init: %+v", d)
			}
		})
		t.Run("getResData", func(t *testing.T) {
			var mods []struct {
				ModuleName string `json:"moduleName"`
				Answer     string `json:"answer"`
			}
			_ = json.Unmarshal(hsOK(t, "GET", base+"/api/core/chat/getResData?appId=main&chatId=my_chatId&dataId=my_responseChatItemId", key, ""), &mods)
			if len(mods) != 1 || mods[0].ModuleName != "AI Chat" || mods[0].Answer == "" {
				t.Fatalf("getResData: %+v", mods)
			}
			recs, _ := hsRecords(t, base, key, recsBody)
			if d := hsOK(t, "GET", base+"/api/core/chat/getResData?appId=main&chatId=my_chatId&dataId="+recs[0].DataID, key, ""); string(d) != "[]" {
				t.Fatalf("a question's: %s", d)
			}
		})
		t.Run("updateUserFeedback", func(t *testing.T) {
			hsOK(t, "POST", base+"/api/core/chat/feedback/updateUserFeedback", key, `{
    "appId": "main",
    "chatId": "my_chatId",
    "dataId": "my_responseChatItemId",
    "userGoodFeedback": "yes"
}`)
			if recs, _ := hsRecords(t, base, key, recsBody); recs[1].UserGoodFeedback != "yes" || recs[1].UserBadFeedback != "" {
				t.Fatalf("liked: %+v", recs[1])
			}
			// the doc's dislike; the like, left out, is withdrawn
			hsOK(t, "POST", base+"/api/core/chat/feedback/updateUserFeedback", key, `{
    "appId": "main",
    "chatId": "my_chatId",
    "dataId": "my_responseChatItemId",
    "userBadFeedback": "yes"
}`)
			if recs, _ := hsRecords(t, base, key, recsBody); recs[1].UserGoodFeedback != "" || recs[1].UserBadFeedback != "yes" {
				t.Fatalf("disliked: %+v", recs[1])
			}
		})
		t.Run("item/delete", func(t *testing.T) {
			recs, _ := hsRecords(t, base, key, recsBody)
			if d := hsOK(t, "DELETE", base+"/api/core/chat/item/delete?contentId="+recs[0].DataID+"&chatId=my_chatId&appId=main", key, ""); string(d) != "null" {
				t.Fatalf("data %s", d)
			}
			after, total := hsRecords(t, base, key, recsBody)
			if total != 3 || after[0].DataID != "my_responseChatItemId" || after[2].DataID != recs[3].DataID {
				t.Fatalf("after deleting the first question: %+v %d", after, total)
			}
			// the chat goes on after the records left
			hsChat(t, base, key, `{"chatId":"my_chatId","messages":[{"role":"user","content":"第三个问题"}]}`)
			if after, total := hsRecords(t, base, key, recsBody); total != 5 || after[3].Value[0].Text.Content != "第三个问题" {
				t.Fatalf("after another turn: %+v %d", after, total)
			}
		})
		t.Run("delHistory", func(t *testing.T) {
			if d := hsOK(t, "DELETE", base+"/api/core/chat/delHistory?chatId=my_chatId&appId=main", key, ""); string(d) != "null" {
				t.Fatalf("data %s", d)
			}
			if ids, _, _ := hsList(t, base, key, `{"appId":"main"}`); strings.Join(ids, ",") != "older" {
				t.Fatalf("left: %v", ids)
			}
			if _, e := envCall(t, "POST", base+"/api/core/chat/getPaginationRecords", key, recsBody); e.Code != 404 {
				t.Fatalf("records of a deleted chat: %+v", e)
			}
			// nothing of it is left: the same chatId starts afresh
			hsChat(t, base, key, hsDocChat)
			if recs, total := hsRecords(t, base, key, recsBody); total != 2 || recs[0].Value[0].Text.Content != "导演是谁" {
				t.Fatalf("my_chatId again: %+v %d", recs, total)
			}
		})
		t.Run("clearHistories", func(t *testing.T) {
			if d := hsOK(t, "DELETE", base+"/api/core/chat/clearHistories?appId=main", key, ""); string(d) != "null" {
				t.Fatalf("data %s", d)
			}
			if ids, _, total := hsList(t, base, key, `{"appId":"main"}`); total != 0 || len(ids) != 0 {
				t.Fatalf("left: %v", ids)
			}
			// clearing nothing is not an error
			hsOK(t, "DELETE", base+"/api/core/chat/clearHistories?appId=main", key, "")
		})
	})
}

// customUid (FastGPT) and user (OpenAI) make a chat one end user's: lists
// filter by it, and another end user's chatId does not exist for them,
// on any route; nothing refused changes anything.
func TestHistoryEndUsers(t *testing.T) {
	hsBackends(t, func(t *testing.T, base, key string) {
		hsChat(t, base, key, `{"chatId":"a1","customUid":"alice","messages":[{"role":"user","content":"one"}]}`)
		hsChat(t, base, key, `{"chatId":"a2","user":"alice","messages":[{"role":"user","content":"two"}]}`)
		hsChat(t, base, key, `{"chatId":"b1","user":"bob","messages":[{"role":"user","content":"three"}]}`)
		hsChat(t, base, key, `{"chatId":"n1","messages":[{"role":"user","content":"four"}]}`)
		// alice goes on in her own chat
		hsChat(t, base, key, `{"chatId":"a1","customUid":"alice","messages":[{"role":"user","content":"five"}]}`)

		if ids, convs, total := hsList(t, base, key, `{"appId":"main","offset":0,"pageSize":20,"source":"api","customUid":"alice"}`); total != 2 || strings.Join(ids, ",") != "a1,a2" || convs[0].CustomUID != "alice" {
			t.Fatalf("alice's: %v %+v", ids, convs)
		}
		if ids, _, _ := hsList(t, base, key, `{"appId":"main","customUid":"bob"}`); strings.Join(ids, ",") != "b1" {
			t.Fatalf("bob's: %v", ids)
		}
		// the key sees every chat of its app without naming an end user
		if _, _, total := hsList(t, base, key, `{"appId":"main"}`); total != 4 {
			t.Fatalf("all: %d", total)
		}
		if d := hsOK(t, "GET", base+"/api/core/chat/getHistories?appId=main&customUid=bob", key, ""); !strings.Contains(string(d), `"b1"`) || strings.Contains(string(d), `"a1"`) {
			t.Fatalf("GET getHistories for bob: %s", d)
		}

		before := hsState(t, base, key, "main")
		// alice names bob's chat, and a chat of nobody's
		resp, raw := curl(t, "POST", base+"/api/v1/chat/completions", key, `{"chatId":"b1","customUid":"alice","messages":[{"role":"user","content":"mine?"}]}`)
		if resp.StatusCode != 404 || !strings.Contains(raw, `chat not found for customUid \"alice\"`) || !strings.Contains(raw, `"error"`) {
			t.Fatalf("alice chatting in bob's chat: %d %s", resp.StatusCode, raw)
		}
		if resp, raw := curl(t, "POST", base+"/api/v1/chat/completions", key, `{"chatId":"n1","user":"alice","stream":true,"messages":[{"role":"user","content":"mine?"}]}`); resp.StatusCode != 404 {
			t.Fatalf("alice streaming in a chat of nobody's: %d %s", resp.StatusCode, raw)
		}
		for _, c := range []struct{ method, path, body string }{
			{"POST", "/api/core/chat/getPaginationRecords", `{"appId":"main","chatId":"b1","offset":0,"pageSize":10,"customUid":"alice"}`},
			{"GET", "/api/core/chat/getPaginationRecords?appId=main&chatId=b1&customUid=alice", ""},
			{"POST", "/api/core/chat/updateHistory", `{"appId":"main","chatId":"b1","customTitle":"taken","customUid":"alice"}`},
			{"POST", "/api/core/chat/updateHistory", `{"appId":"main","chatId":"n1","top":true,"customUid":"alice"}`},
			{"DELETE", "/api/core/chat/delHistory?appId=main&chatId=b1&customUid=alice", ""},
			{"DELETE", "/api/core/chat/item/delete?appId=main&chatId=b1&contentId=x&customUid=alice", ""},
			{"POST", "/api/core/chat/feedback/updateUserFeedback", `{"appId":"main","chatId":"b1","dataId":"x","userBadFeedback":"yes","customUid":"alice"}`},
			{"GET", "/api/core/chat/init?appId=main&chatId=b1&customUid=alice", ""},
			{"GET", "/api/core/chat/getResData?appId=main&chatId=b1&dataId=x&customUid=alice", ""},
		} {
			_, e := envCall(t, c.method, base+c.path, key, c.body)
			if e.Code != 404 || e.Message != `chat not found for customUid "alice"` {
				t.Errorf("%s %s %s: %+v", c.method, c.path, c.body, e)
			}
		}
		// customUid and user that disagree
		if resp, raw := curl(t, "POST", base+"/api/v1/chat/completions", key, `{"chatId":"a1","customUid":"alice","user":"bob","messages":[{"role":"user","content":"who?"}]}`); resp.StatusCode != 400 || !strings.Contains(raw, "differs from customUid") {
			t.Fatalf("customUid and user disagree: %d %s", resp.StatusCode, raw)
		}
		// a responseChatItemId the chat holds already
		var a1 []hsRecord
		a1, _ = hsRecords(t, base, key, `{"appId":"main","chatId":"a1"}`)
		dup := fmt.Sprintf(`{"chatId":"a1","customUid":"alice","responseChatItemId":%q,"messages":[{"role":"user","content":"again"}]}`, a1[1].DataID)
		if resp, raw := curl(t, "POST", base+"/api/v1/chat/completions", key, dup); resp.StatusCode != 409 || !strings.Contains(raw, "responseChatItemId") {
			t.Fatalf("a responseChatItemId in use: %d %s", resp.StatusCode, raw)
		}
		if after := hsState(t, base, key, "main"); after != before {
			t.Fatalf("refused calls changed the history:\n%s\n%s", before, after)
		}

		// alice's own chat is hers on every route
		hsOK(t, "POST", base+"/api/core/chat/updateHistory", key, `{"appId":"main","chatId":"a1","top":true,"customUid":"alice"}`)
		hsOK(t, "GET", base+"/api/core/chat/init?appId=main&chatId=a1&customUid=alice", key, "")
		// clearing alice's leaves bob's and nobody's
		hsOK(t, "DELETE", base+"/api/core/chat/clearHistories?appId=main&customUid=alice", key, "")
		if ids, _, _ := hsList(t, base, key, `{"appId":"main"}`); strings.Join(ids, ",") != "n1,b1" {
			t.Fatalf("after clearing alice's: %v", ids)
		}
	})
}

// Bad inputs answer clear errors in the envelope and change nothing.
func TestHistoryBadInputs(t *testing.T) {
	hsBackends(t, func(t *testing.T, base, key string) {
		hsChat(t, base, key, `{"chatId":"c1","messages":[{"role":"user","content":"hello"}]}`)
		hsOK(t, "POST", base+"/api/core/app/create", sdkAdmin, `{"id":"other","name":"other","model":"extractive"}`)
		otherKey := sdkKey(t, base, map[string]any{"name": "other", "appId": "other"})
		hsChat(t, base, otherKey, `{"chatId":"o1","messages":[{"role":"user","content":"hello"}]}`)
		noChat := sdkKey(t, base, map[string]any{"name": "reader", "scopes": []string{"dataset:read"}})
		recs, _ := hsRecords(t, base, key, `{"appId":"main","chatId":"c1"}`)
		answer := recs[1].DataID
		before, beforeOther := hsState(t, base, key, "main"), hsState(t, base, otherKey, "other")

		for _, c := range []struct {
			method, path, body string
			key                string
			code               int
			says               string
		}{
			// missing appId, chatId, record ids
			{"POST", "/api/core/chat/getHistories", `{"offset":0,"pageSize":20}`, key, 400, `"appId": is required`},
			{"POST", "/api/core/chat/getPaginationRecords", `{"appId":"main","offset":0,"pageSize":10}`, key, 400, `"chatId": is required`},
			{"POST", "/api/core/chat/updateHistory", `{"chatId":"c1","customTitle":"x"}`, key, 400, `"appId": is required`},
			{"POST", "/api/core/chat/updateHistory", `{"appId":"main","customTitle":"x"}`, key, 400, `"chatId": is required`},
			{"DELETE", "/api/core/chat/delHistory?chatId=c1", "", key, 400, `"appId": is required`},
			{"DELETE", "/api/core/chat/delHistory?appId=main", "", key, 400, `"chatId": is required`},
			{"DELETE", "/api/core/chat/clearHistories", "", key, 400, `"appId": is required`},
			{"DELETE", "/api/core/chat/item/delete?appId=main&chatId=c1", "", key, 400, `"contentId": is required`},
			{"DELETE", "/api/core/chat/item/delete?appId=main&contentId=" + answer, "", key, 400, `"chatId": is required`},
			{"POST", "/api/core/chat/feedback/updateUserFeedback", `{"appId":"main","chatId":"c1","userGoodFeedback":"yes"}`, key, 400, `"dataId": is required`},
			{"POST", "/api/core/chat/feedback/updateUserFeedback", `{"appId":"main","dataId":"x","userGoodFeedback":"yes"}`, key, 400, `"chatId": is required`},
			{"GET", "/api/core/chat/init?appId=main", "", key, 400, `"chatId": is required`},
			{"GET", "/api/core/chat/init?chatId=c1", "", key, 400, `"appId": is required`},
			{"GET", "/api/core/chat/getResData?appId=main&chatId=c1", "", key, 400, `"dataId": is required`},
			// wrong values
			{"POST", "/api/core/chat/updateHistory", `{"appId":"main","chatId":"c1"}`, key, 400, "give customTitle or top"},
			{"POST", "/api/core/chat/updateHistory", `{"appId":"main","chatId":"c1","customTitle":"a\nb"}`, key, 400, `"customTitle"`},
			{"POST", "/api/core/chat/updateHistory", `{"appId":"main","chatId":"c1","top":"yes"}`, key, 400, `top`},
			{"POST", "/api/core/chat/getHistories", `{"appId":"main","source":"web"}`, key, 400, `"source"`},
			{"POST", "/api/core/chat/getHistories", `{"appId":"main","pageSize":0}`, key, 400, `pageSize`},
			{"POST", "/api/core/chat/getPaginationRecords", `{"appId":"main","chatId":"c1","offset":-1}`, key, 400, `offset`},
			{"POST", "/api/core/chat/getHistories", `{"appId":"main","shareId":"x"}`, key, 400, `shareId`},
			// another app than the key's, and an app that does not exist
			{"POST", "/api/core/chat/getHistories", `{"appId":"other"}`, key, 404, "app not found"},
			{"POST", "/api/core/chat/getPaginationRecords", `{"appId":"other","chatId":"o1"}`, key, 404, "app not found"},
			{"POST", "/api/core/chat/updateHistory", `{"appId":"other","chatId":"o1","top":true}`, key, 404, "app not found"},
			{"DELETE", "/api/core/chat/delHistory?appId=other&chatId=o1", "", key, 404, "app not found"},
			{"DELETE", "/api/core/chat/clearHistories?appId=other", "", key, 404, "app not found"},
			{"DELETE", "/api/core/chat/item/delete?appId=other&chatId=o1&contentId=x", "", key, 404, "app not found"},
			{"POST", "/api/core/chat/feedback/updateUserFeedback", `{"appId":"other","chatId":"o1","dataId":"x","userGoodFeedback":"yes"}`, key, 404, "app not found"},
			{"GET", "/api/core/chat/init?appId=other&chatId=o1", "", key, 404, "app not found"},
			{"GET", "/api/core/chat/getResData?appId=other&chatId=o1&dataId=x", "", key, 404, "app not found"},
			// a chat or a record that does not exist
			{"DELETE", "/api/core/chat/delHistory?appId=main&chatId=missing", "", key, 404, "chat not found"},
			{"POST", "/api/core/chat/updateHistory", `{"appId":"main","chatId":"missing","customTitle":"x"}`, key, 404, "chat not found"},
			{"DELETE", "/api/core/chat/item/delete?appId=main&chatId=c1&contentId=missing", "", key, 404, "record not found"},
			{"DELETE", "/api/core/chat/item/delete?appId=main&chatId=missing&contentId=" + answer, "", key, 404, "chat not found"},
			{"POST", "/api/core/chat/feedback/updateUserFeedback", `{"appId":"main","chatId":"c1","dataId":"missing","userGoodFeedback":"yes"}`, key, 404, "record not found"},
			{"GET", "/api/core/chat/init?appId=main&chatId=missing", "", key, 404, "chat not found"},
			{"GET", "/api/core/chat/getResData?appId=main&chatId=c1&dataId=missing", "", key, 404, "record not found"},
			// a key that may not chat
			{"POST", "/api/core/chat/getHistories", `{"appId":"main"}`, noChat, 403, "app key"},
			{"DELETE", "/api/core/chat/clearHistories?appId=main", "", noChat, 403, "app key"},
			// no key
			{"DELETE", "/api/core/chat/clearHistories?appId=main", "", "", 401, ""},
		} {
			_, e := envCall(t, c.method, base+c.path, c.key, c.body)
			if e.Code != c.code || !strings.Contains(e.Message, c.says) {
				t.Errorf("%s %s %s: %+v, want %d saying %q", c.method, c.path, c.body, e, c.code, c.says)
			}
		}
		if after := hsState(t, base, key, "main"); after != before {
			t.Fatalf("refused calls changed main's history:\n%s\n%s", before, after)
		}
		if after := hsState(t, base, otherKey, "other"); after != beforeOther {
			t.Fatalf("refused calls changed other's history:\n%s\n%s", beforeOther, after)
		}
	})
}

// POST /api/v1/sessions/clear without a key is refused as every keyed
// route is: 401 invalid_api_key in the envelope; nothing is cleared.
func TestSessionsClearWithoutKey(t *testing.T) {
	hsBackends(t, func(t *testing.T, base, key string) {
		hsChat(t, base, key, `{"sessionId":"session-001","messages":[{"role":"user","content":"hello"}]}`)
		before := hsState(t, base, key, "main")
		for _, auth := range []string{"", "not-a-key"} {
			resp, e := envCall(t, "POST", base+"/api/v1/sessions/clear", auth, `{"agentId":"main","sessionKey":"session-001"}`)
			if resp.StatusCode != 401 || e.StatusText != "invalid_api_key" || e.Message == "" || e.Data != nil {
				t.Fatalf("key %q: %d %+v", auth, resp.StatusCode, e)
			}
		}
		if after := hsState(t, base, key, "main"); after != before {
			t.Fatalf("a refused clear changed the history:\n%s\n%s", before, after)
		}
	})
}
