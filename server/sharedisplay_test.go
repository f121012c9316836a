package server_test

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/dataset"
	"github.com/chatgate/chatgate/server"
)

const sdFact = "The director of Suzume is Makoto Shinkai."

// sdVisit is what a visitor's detail chat showed.
type sdVisit struct {
	nodes    []string          // flowNodeStatus names (stream)
	quotes   []chat.Quote      // the AI Chat module's quotes
	complete []json.RawMessage // its completeMessages
	answer   string
}

// sdChat asks the link's app, with detail, streaming or not.
func sdChat(t *testing.T, base, shareID string, stream bool) sdVisit {
	t.Helper()
	extra := `,"detail":true`
	if stream {
		extra += `,"stream":true`
	}
	resp, body := curl(t, "POST", base+"/api/v1/chat/completions", "",
		`{"shareId":"`+shareID+`","authToken":"alice"`+extra+`,"messages":[{"role":"user","content":"who is the director of suzume"}]}`)
	if resp.StatusCode != 200 {
		t.Fatalf("visitor chat: %d %s", resp.StatusCode, body)
	}
	var (
		v    sdVisit
		mods []chat.ModuleResponse
		raw  []struct {
			CompleteMessages []json.RawMessage `json:"completeMessages"`
		}
		data string
	)
	if !stream {
		var out struct {
			Choices []struct {
				Message struct{ Content string } `json:"message"`
			} `json:"choices"`
			ResponseData json.RawMessage `json:"responseData"`
		}
		if err := json.Unmarshal([]byte(body), &out); err != nil {
			t.Fatal(err)
		}
		v.answer, data = out.Choices[0].Message.Content, string(out.ResponseData)
	} else {
		event := ""
		for _, line := range strings.Split(body, "\n") {
			switch {
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				d := strings.TrimPrefix(line, "data: ")
				switch event {
				case "flowNodeStatus":
					var n chat.NodeStatus
					_ = json.Unmarshal([]byte(d), &n)
					v.nodes = append(v.nodes, n.Name)
				case "flowResponses":
					data = d
				case "answer":
					var c struct {
						Choices []struct {
							Delta struct{ Content string } `json:"delta"`
						} `json:"choices"`
					}
					if json.Unmarshal([]byte(d), &c) == nil && len(c.Choices) > 0 {
						v.answer += c.Choices[0].Delta.Content
					}
				}
			}
		}
	}
	if json.Unmarshal([]byte(data), &mods) != nil || json.Unmarshal([]byte(data), &raw) != nil || len(mods) != 2 {
		t.Fatalf("module responses %q in\n%s", data, body)
	}
	v.quotes, v.complete = mods[1].QuoteList, raw[1].CompleteMessages
	if v.answer != sdFact || len(v.quotes) == 0 {
		t.Fatalf("answer %q, %d quotes", v.answer, len(v.quotes))
	}
	return v
}

// A share link's showNodeStatus, showCompleteQuote (or showFullText) and
// showRawSource, taken on create and update and shown by list and init,
// decide what its visitors see of a detail chat, streamed or not; the
// owner's finish callback gets everything whatever they say.
func TestShareLinkDisplay(t *testing.T) {
	host := &authHost{allow: map[string]bool{"alice": true}}
	hs := httptest.NewServer(host)
	defer hs.Close()
	base, s := sdkServer(t, func(c *server.Config) { c.Share.AllowHosts = []string{"127.0.0.1/32"} })
	ccKnowledge(t, s, chat.DefaultAppID, []dataset.PushItem{{Q: "Who directed Suzume?", A: sdFact, Source: "suzume-faq.md"}})

	// FastGPT's defaults show the least.
	shareID, _ := createLink(t, base, `{"appId":"main","name":"d","responseDetail":true,"limit":{"hookUrl":"`+hs.URL+`"}}`)
	for _, stream := range []bool{false, true} {
		v := sdChat(t, base, shareID, stream)
		if len(v.nodes) != 0 || v.complete != nil {
			t.Fatalf("stream %v: node statuses %v, completeMessages %s", stream, v.nodes, v.complete)
		}
		for _, q := range v.quotes {
			if q.Q != "" || q.A != "" || q.Source != "" || q.ID == "" || q.DatasetID == "" {
				t.Fatalf("stream %v: quote shown as %+v", stream, q)
			}
		}
	}
	waitFor(t, "the finish callbacks", 5*time.Second, func() bool { return len(host.callsTo("/shareAuth/finish")) == 2 })
	for _, c := range host.callsTo("/shareAuth/finish") {
		if !strings.Contains(string(c.body), sdFact) || !strings.Contains(string(c.body), `"completeMessages"`) {
			t.Fatalf("the finish callback lost the quotes: %s", c.body)
		}
	}

	// Bad inputs change nothing.
	long := strings.Repeat("x", 10_001)
	for _, c := range []struct{ method, path, body, want string }{
		{"POST", "/api/support/outLink/create", `{"appId":"main","name":"bad","immediateResponse":"` + long + `"}`, `"immediateResponse"`},
		{"PUT", "/api/support/outLink/update", `{"shareId":"` + shareID + `","defaultResponse":"` + long + `"}`, `"defaultResponse"`},
		{"PUT", "/api/support/outLink/update", `{"shareId":"` + shareID + `","showNodeStatus":"yes"}`, `"showNodeStatus"`},
		{"POST", "/api/support/outLink/create", `{"appId":"main","name":"bad","showRawSource":1}`, `"showRawSource"`},
	} {
		before := sdLinks(t, base)
		resp, e := envCall(t, c.method, base+c.path, sdkAdmin, c.body)
		if resp.StatusCode != 400 || !strings.Contains(e.Message, c.want) {
			t.Fatalf("%s %s: %d %s", c.method, c.path, resp.StatusCode, e.Message)
		}
		if after := sdLinks(t, base); after != before {
			t.Fatalf("a refused %s changed the links:\n%s\n%s", c.path, before, after)
		}
	}

	// Shown, through FastGPT's other name for the complete quote.
	_, e := envCall(t, "PUT", base+"/api/support/outLink/update", sdkAdmin,
		`{"shareId":"`+shareID+`","showNodeStatus":true,"showFullText":true,"showRawSource":true,"immediateResponse":"one moment","defaultResponse":"try later"}`)
	var l map[string]any
	if e.Code != 200 || json.Unmarshal(e.Data, &l) != nil || l["showNodeStatus"] != true || l["showCompleteQuote"] != true ||
		l["showRawSource"] != true || l["immediateResponse"] != "one moment" || l["defaultResponse"] != "try later" {
		t.Fatalf("update: %+v", e)
	}
	if list := sdLinks(t, base); !strings.Contains(list, `"showCompleteQuote":true`) || !strings.Contains(list, `"defaultResponse":"try later"`) {
		t.Fatalf("list: %s", list)
	}
	if _, e := envCall(t, "POST", base+"/api/core/chat/outLink/init", "", `{"shareId":"`+shareID+`","authToken":"alice"}`); e.Code != 200 ||
		!strings.Contains(string(e.Data), `"showNodeStatus":true`) || !strings.Contains(string(e.Data), `"showCompleteQuote":true`) {
		t.Fatalf("init: %+v", e)
	}
	for _, stream := range []bool{false, true} {
		v := sdChat(t, base, shareID, stream)
		if (stream && strings.Join(v.nodes, ",") != "KB Search,AI Chat") || v.complete == nil || v.quotes[0].A != sdFact || v.quotes[0].Source != "suzume-faq.md" {
			t.Fatalf("stream %v: nodes %v, completeMessages %d, quote %+v", stream, v.nodes, len(v.complete), v.quotes[0])
		}
	}

	// Hidden again, one at a time: the quotes keep their text, lose their source.
	if _, e := envCall(t, "PUT", base+"/api/support/outLink/update", sdkAdmin, `{"shareId":"`+shareID+`","showRawSource":false}`); e.Code != 200 {
		t.Fatalf("update: %+v", e)
	}
	if v := sdChat(t, base, shareID, true); v.quotes[0].Source != "" || v.quotes[0].A != sdFact || len(v.nodes) != 2 {
		t.Fatalf("without the raw source: %+v, nodes %v", v.quotes[0], v.nodes)
	}
}

func sdLinks(t *testing.T, base string) string {
	t.Helper()
	_, e := envCall(t, "GET", base+"/api/support/outLink/list", sdkAdmin, "")
	if e.Code != 200 {
		t.Fatalf("list: %+v", e)
	}
	return string(e.Data)
}
