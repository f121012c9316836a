package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/billing"
	"github.com/chatgate/chatgate/server"
)

// hyFixture is a server with one of everything, for bad requests to leave
// alone.
type hyFixture struct {
	run                    svRunning
	root                   string // Authorization header of the root key
	appKey                 string // an app key of main, for the history routes
	dataset, coll, data    string
	link, bill, secondTeam string
}

func hyStart(t *testing.T) *hyFixture {
	t.Helper()
	run := svStart(t, svConfig(t.TempDir()))
	f := &hyFixture{run: run, root: "Bearer " + etRoot, secondTeam: "t2"}
	ok := func(method, path, body string) json.RawMessage {
		t.Helper()
		r := etDo(t, method, run.base+path, f.root, body)
		if r.status != 200 {
			t.Fatalf("%s %s: %d %s", method, path, r.status, r.raw)
		}
		return r.env.Data
	}
	str := func(raw json.RawMessage) string {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			t.Fatalf("not a string: %s", raw)
		}
		return s
	}
	f.dataset = str(ok("POST", "/api/core/dataset/create", `{"name":"kb"}`))
	f.coll = str(ok("POST", "/api/core/dataset/collection/create", `{"datasetId":"`+f.dataset+`","name":"manual"}`))
	ok("POST", "/api/core/dataset/data/pushData", `{"collectionId":"`+f.coll+`","data":[{"q":"What is chatgate?","a":"A gateway."}]}`)
	waitFor(t, "training", 10*time.Second, func() bool {
		list, total, err := run.s.Datasets.DataList(context.Background(), auth.DefaultTeam, f.coll, 0, 10)
		if err != nil || total != 1 {
			return false
		}
		f.data = list[0].ID
		d, _ := run.s.Datasets.Collection(context.Background(), auth.DefaultTeam, f.coll)
		return d.TrainingAmount == 0
	})
	var link struct{ ShareID string }
	_ = json.Unmarshal(ok("POST", "/api/support/outLink/create", `{"appId":"main","name":"pub"}`), &link)
	f.link = link.ShareID
	f.bill = str(ok("POST", "/api/common/bill/createTrainingBill", `{"name":"nightly","datasetId":"`+f.dataset+`"}`))
	var k struct{ Key string }
	_ = json.Unmarshal(ok("POST", "/api/support/openapi/create", `{"name":"main app","appId":"main"}`), &k)
	f.appKey = k.Key
	ok("POST", "/api/support/openapi/create", `{"name":"t2 admin","teamId":"t2","scopes":["admin"]}`)
	if resp, body := curl(t, "POST", run.base+"/api/v1/chat/completions", f.appKey, `{"chatId":"c1","messages":[{"role":"user","content":"What is chatgate?"}]}`); resp.StatusCode != 200 {
		t.Fatalf("chat: %d %s", resp.StatusCode, body)
	}
	return f
}

// state is everything a refused request must leave alone, across both
// teams: keys (without use), the audit trail of changes, apps, links,
// datasets with their collections, training and data, chat history and
// the usage ledger.
func (f *hyFixture) state(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	s := f.run.s
	ks, err := s.Keys.List(ctx, auth.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range ks {
		k.UsagePoints, k.LastUsedTime = 0, time.Time{}
	}
	evs, _ := s.Keys.Audit(ctx, auth.AuditQuery{Limit: 10000})
	var changes []auth.AuditEvent
	for _, e := range evs {
		if !strings.HasPrefix(string(e.Action), "auth.") {
			changes = append(changes, e)
		}
	}
	out := map[string]any{"keys": ks, "changes": changes}
	for _, team := range []string{auth.DefaultTeam, f.secondTeam} {
		ds, _ := s.Datasets.Datasets(ctx, team)
		var colls, data []any
		for _, d := range ds {
			cs, _ := s.Datasets.Collections(ctx, team, d.ID)
			colls = append(colls, cs)
			for _, c := range cs {
				list, total, _ := s.Datasets.DataList(ctx, team, c.ID, 0, 1000)
				data = append(data, list, total)
			}
		}
		links, _ := s.Share.Links(ctx, team, "")
		recs, total, _ := s.Billing.Ledger().List(ctx, billing.Filter{TeamID: team})
		out[team] = []any{ds, colls, data, links, recs, total}
	}
	r := etDo(t, "GET", f.run.base+"/api/core/app/list", f.root, "")
	out["apps"] = r.env.Data
	hist := etDo(t, "GET", f.run.base+"/api/core/chat/getHistories?appId=main", "Bearer "+f.appKey, "")
	out["histories"] = hist.env.Data
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// hyOpenAI sends a chat call and returns its status and OpenAI error.
func hyOpenAI(t *testing.T, url, authz, body string) (int, openAIErr, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var e openAIErr
	_ = json.Unmarshal(raw, &e)
	return resp.StatusCode, e, string(raw)
}

// Every bad input named by the issue, on every route family, gets a 400
// invalid_request naming the field, and changes nothing: NUL, invalid
// UTF-8, 10 MiB values, ids outside the charset, duplicated query
// parameters and two aliases of one parameter that disagree.
func TestInputHygiene(t *testing.T) {
	f := hyStart(t)
	ds, coll, data, link, bill := f.dataset, f.coll, f.data, f.link, f.bill
	huge := strings.Repeat("x", 10<<20)
	long := strings.Repeat("名", 201)
	bad := "\xff\xfe"
	for _, tc := range []struct {
		method, path, body, field string
	}{
		// datasets
		{"POST", "/api/core/dataset/create", `{"name":"a\u0000b"}`, "name"},
		{"POST", "/api/core/dataset/create", `{"name":"` + bad + `"}`, "name"},
		{"POST", "/api/core/dataset/create", `{"name":"` + huge + `"}`, "name"},
		{"POST", "/api/core/dataset/create", `{"name":"` + long + `"}`, "name"},
		{"POST", "/api/core/dataset/create", `{"name":"ok","intro":"` + huge + `"}`, "intro"},
		{"GET", "/api/core/dataset/detail?id=a%00b", "", "id"},
		{"GET", "/api/core/dataset/detail?id=" + ds + "%20x", "", "id"},
		{"GET", "/api/core/dataset/detail?id=%FF", "", "id"},
		{"GET", "/api/core/dataset/detail?id=" + ds + "&id=" + ds, "", "id"},
		{"DELETE", "/api/core/dataset/delete?id=" + ds + "&datasetId=other", "", "datasetId"},
		{"POST", "/api/core/dataset/collection/create", `{"datasetId":"` + ds + `","name":"a\u0000"}`, "name"},
		{"POST", "/api/core/dataset/collection/create", `{"datasetId":"a\u0000` + ds + `","name":"n"}`, "datasetId"},
		{"POST", "/api/core/dataset/collection/create/text", `{"datasetId":"` + ds + `","name":"n\u0000","text":"hello"}`, "name"},
		{"POST", "/api/core/dataset/collection/create/text", `{"datasetId":"` + ds + `","name":"n","text":"nul \u0000 inside"}`, "text"},
		{"POST", "/api/core/dataset/collection/create/text", `{"datasetId":"` + ds + `","name":"n","text":"t` + bad + `"}`, "text"},
		{"POST", "/api/core/dataset/collection/create/text", `{"datasetId":"` + ds + `","name":"n","text":"hello","prompt":"` + huge + `"}`, "prompt"},
		{"POST", "/api/core/dataset/collection/create/text", `{"datasetId":"` + ds + `","name":"n","text":"hello","billId":"b\u0000"}`, "billId"},
		// more chunks than one push may queue: refused before the collection is made
		{"POST", "/api/core/dataset/collection/create/text", `{"datasetId":"` + ds + `","name":"n","chunkSize":16,"text":"` +
			strings.Repeat("word ", 40000) + `"}`, "text"},
		{"GET", "/api/core/dataset/collection/list?datasetId=" + ds + "&id=" + coll, "", "id"},
		{"GET", "/api/core/dataset/collection/detail?id=" + coll + "&id=x", "", "id"},
		{"POST", "/api/core/dataset/data/pushData", `{"collectionId":"` + coll + `","data":[{"q":"fine"},{"q":"s","source":"` + huge + `"}]}`, "data[1].source"},
		{"POST", "/api/core/dataset/data/pushData", `{"collectionId":"` + coll + `","data":[{"q":"fine","file_id":"a\u0000b"}]}`, "data[0].file_id"},
		{"POST", "/api/core/dataset/data/pushData", `{"collectionId":"` + coll + `","data":[{"q":"fine"},{"q":"ok"},{"q":"x` + bad + `"}]}`, "data[2].q"},
		{"POST", "/api/core/dataset/data/pushData", `{"collectionId":"` + coll + `","data":[{"q":"fine","indexes":[` +
			strings.TrimSuffix(strings.Repeat(`"i",`, 51), ",") + `]}]}`, "data[0].indexes"},
		{"POST", "/api/core/dataset/data/pushData", `{"collectionId":"` + coll + `","prompt":"p\u0000","data":[{"q":"fine"}]}`, "prompt"},
		{"POST", "/api/core/dataset/data/pushData", `{"collectionId":"` + coll + `","billId":"` + huge + `","data":[{"q":"fine"}]}`, "billId"},
		{"POST", "/api/core/dataset/data/pushData", `{"collectionId":"c\u0000","data":[{"q":"fine"}]}`, "collectionId"},
		{"PUT", "/api/core/dataset/data/update", `{"id":"` + data + `\u0000","q":"new"}`, "id"},
		{"PUT", "/api/core/dataset/data/update", `{"id":"` + data + `","dataId":"other","q":"new"}`, "dataId"},
		{"PUT", "/api/core/dataset/data/update", `{"id":"` + data + `","q":"new ` + bad + `"}`, "q"},
		{"DELETE", "/api/core/dataset/data/delete?id=" + data + "&dataId=other", "", "dataId"},
		{"GET", "/api/core/dataset/data/list?collectionId=" + coll + "&offset=0&offset=1", "", "offset"},
		{"POST", "/api/core/dataset/searchTest", `{"datasetId":"` + ds + `\u0000","text":"q"}`, "datasetId"},
		// apps
		{"POST", "/api/core/app/create", `{"name":"a\u0000b"}`, "name"},
		{"POST", "/api/core/app/create", `{"name":"` + bad + `"}`, "name"},
		{"POST", "/api/core/app/create", `{"name":"` + long + `"}`, "name"},
		{"POST", "/api/core/app/create", `{"name":"n","systemPrompt":"p\u0000"}`, "systemPrompt"},
		{"POST", "/api/core/app/create", `{"name":"n","datasetIds":["` + ds + `","a b"]}`, "datasetIds[1]"},
		{"POST", "/api/core/app/create", `{"name":"n","model":"two\nlines"}`, "model"},
		{"GET", "/api/core/app/detail?appId=main%00", "", "appId"},
		{"GET", "/api/core/app/detail?appId=main&appId=other", "", "appId"},
		{"PUT", "/api/core/app/update", `{"id":"main","name":"\u0000"}`, "name"},
		{"PUT", "/api/core/app/update", `{"id":"main","appId":"other","name":"x"}`, "appId"},
		{"DELETE", "/api/core/app/del?appId=main%20", "", "appId"},
		// chat history
		{"GET", "/api/core/chat/getHistories?appId=main&appId=main", "", "appId"},
		{"GET", "/api/core/chat/getHistories?appId=ma%00in", "", "appId"},
		{"GET", "/api/core/chat/getPaginationRecords?appId=main&chatId=c%00", "", "chatId"},
		{"POST", "/api/v1/sessions/clear", `{"agentId":"main","sessionKey":"c1\u0000"}`, "sessionKey"},
		{"POST", "/api/v1/sessions/clear", `{"agentId":"main\u0000","sessionKey":"c1"}`, "agentId"},
		// share links
		{"POST", "/api/support/outLink/create", `{"appId":"main","name":"n\u0000"}`, "name"},
		{"POST", "/api/support/outLink/create", `{"appId":"ma in","name":"n"}`, "appId"},
		{"POST", "/api/support/outLink/create", `{"appId":"main","name":"` + bad + `"}`, "name"},
		{"GET", "/api/support/outLink/list?appId=%00", "", "appId"},
		{"PUT", "/api/support/outLink/update", `{"shareId":"` + link + `","name":"\u0000"}`, "name"},
		{"PUT", "/api/support/outLink/update", `{"shareId":"` + link + `\u0000","name":"x"}`, "shareId"},
		{"DELETE", "/api/support/outLink/delete?id=" + link + "&shareId=other", "", "shareId"},
		// keys
		{"POST", "/api/support/openapi/create", `{"name":"n\u0000"}`, "name"},
		{"POST", "/api/support/openapi/create", `{"name":"` + bad + `"}`, "name"},
		{"POST", "/api/support/openapi/create", `{"name":"` + long + `"}`, "name"},
		{"POST", "/api/support/openapi/create", `{"name":"n","appId":"main\u0000"}`, "appId"},
		{"POST", "/api/support/openapi/create", `{"name":"n","teamId":"a b"}`, "teamId"},
		{"POST", "/api/support/openapi/import", `{"name":"n\u0000","key":"a-fine-key-1"}`, "name"},
		{"PUT", "/api/support/openapi/update", `{"id":"x\u0000","name":"n"}`, "id"},
		{"DELETE", "/api/support/openapi/delete?id=%00", "", "id"},
		{"GET", "/api/support/openapi/list?appId=main&appId=other", "", "appId"},
		{"GET", "/api/support/openapi/audit?keyId=%00", "", "keyId"},
		// bills and usage
		{"POST", "/api/common/bill/createTrainingBill", `{"name":"n\u0000"}`, "name"},
		{"POST", "/api/common/bill/createTrainingBill", `{"name":"n","datasetId":"a b"}`, "datasetId"},
		{"GET", "/api/common/bill/detail?id=" + bill + "&billId=other", "", "billId"},
		{"GET", "/api/common/bill/detail?id=%00", "", "id"},
		{"GET", "/api/support/usage/list?appId=%00", "", "appId"},
		{"GET", "/api/support/usage/summary?keyId=a&keyId=b", "", "keyId"},
	} {
		before := f.state(t)
		authz := f.root
		if strings.Contains(tc.path, "/chat/get") || strings.Contains(tc.path, "sessions/clear") {
			authz = "Bearer " + f.appKey
			if strings.Contains(tc.body, "agentId\":\"main\\u0000") || strings.Contains(tc.path, "ma%00in") {
				authz = f.root // a global key names the app
			}
		}
		r := etDo(t, tc.method, f.run.base+tc.path, authz, tc.body)
		what := tc.method + " " + tc.path
		if len(what) > 120 {
			what = what[:120] + "…"
		}
		if r.status != 400 || r.env.StatusText != "invalid_request" || !strings.Contains(r.env.Message, `"`+tc.field+`"`) {
			t.Errorf("%s %.200s: %d %.300s; want 400 invalid_request naming %q", what, tc.body, r.status, r.raw, tc.field)
			continue
		}
		if after := f.state(t); after != before {
			t.Errorf("%s %.200s: the refused request changed the state", what, tc.body)
		}
	}
	// A query string that cannot be parsed is refused too, not half read.
	before := f.state(t)
	r := etDo(t, "DELETE", f.run.base+"/api/core/dataset/delete?id="+ds+"&x=%zz", f.root, "")
	if r.status != 400 || !strings.Contains(r.env.Message, "malformed query") {
		t.Errorf("malformed query: %d %s", r.status, r.raw)
	}
	if f.state(t) != before {
		t.Error("a malformed query deleted the dataset")
	}
}

// The chat routes answer the same bad inputs in OpenAI's shape, keyed and
// through a share link, and store nothing.
func TestInputHygieneChat(t *testing.T) {
	f := hyStart(t)
	bad := "\xff\xfe"
	for _, tc := range []struct {
		name, url, authz, body, field string
	}{
		{"invalid UTF-8 in a message", "/api/v1/chat/completions", "Bearer " + f.appKey,
			`{"messages":[{"role":"user","content":"hi"},{"role":"user","content":"a` + bad + `"}]}`, "messages[1].content"},
		{"NUL in chatId", "/api/v1/chat/completions", "Bearer " + f.appKey, `{"chatId":"c\u0000","messages":[{"role":"user","content":"hi"}]}`, "chatId"},
		{"app named with NUL", "/api/v1/chat/completions", f.root, `{"model":"main\u0000","messages":[{"role":"user","content":"hi"}]}`, "model"},
		{"duplicate query parameter", "/api/v1/chat/completions?appId=a&appId=b", "Bearer " + f.appKey, `{"messages":[{"role":"user","content":"hi"}]}`, "appId"},
		{"duplicate query parameter, SDK path", "/v1/chat/completions?x=1&x=2", "Bearer " + f.appKey, `{"messages":[{"role":"user","content":"hi"}]}`, "x"},
		{"share link: invalid UTF-8 shareId", "/api/v1/chat/completions", "", `{"shareId":"` + f.link + bad + `","messages":[{"role":"user","content":"hi"}]}`, "shareId"},
		{"share link: NUL in shareId", "/api/v1/chat/completions", "", `{"shareId":"` + f.link + `\u0000","messages":[{"role":"user","content":"hi"}]}`, "shareId"},
		{"share link: shareId in body and query differ", "/api/v1/chat/completions?shareId=other", "", `{"shareId":"` + f.link + `","messages":[{"role":"user","content":"hi"}]}`, "shareId"},
		{"share link: NUL in authToken", "/api/v1/chat/completions", "", `{"shareId":"` + f.link + `","authToken":"t\u0000","messages":[{"role":"user","content":"hi"}]}`, "authToken"},
	} {
		before := f.state(t)
		status, e, raw := hyOpenAI(t, f.run.base+tc.url, tc.authz, tc.body)
		if status != 400 || e.Error.Code != "invalid_request" || e.Error.Type != "invalid_request_error" || !strings.Contains(e.Error.Message, `"`+tc.field+`"`) {
			t.Errorf("%s: %d %s; want a 400 in OpenAI's shape naming %q", tc.name, status, raw, tc.field)
			continue
		}
		if after := f.state(t); after != before {
			t.Errorf("%s: the refused chat changed the state", tc.name)
		}
	}
	// the keyless init route, in the envelope
	for _, c := range [][2]string{{"", `{"shareId":"` + f.link + `\u0000"}`}, {"", `{"shareId":"` + f.link + bad + `"}`},
		{"?shareId=other", `{"shareId":"` + f.link + `"}`}, {"?shareId=a&shareId=b", `{}`}} {
		query, body := c[0], c[1]
		r := etDo(t, "POST", f.run.base+"/api/core/chat/outLink/init"+query, "", body)
		if r.status != 400 || !strings.Contains(r.env.Message, `"shareId"`) {
			t.Errorf("init %q: %d %s", body, r.status, r.raw)
		}
	}
}

// collection/create/text that is refused leaves no collection behind: a
// bill that does not exist (or is another team's) is found before the
// collection is made, and a text that would queue more chunks than a push
// may is refused before too. A good one stores the collection with its
// chunks queued, together.
func TestTextCollectionRefusedLeavesNothing(t *testing.T) {
	f := hyStart(t)
	_, t2bill := func() (int, string) {
		var k struct{ Key string }
		r := etDo(t, "POST", f.run.base+"/api/support/openapi/create", f.root, `{"name":"t2 writer","teamId":"t2","scopes":["dataset:write"]}`)
		_ = json.Unmarshal(r.env.Data, &k)
		r = etDo(t, "POST", f.run.base+"/api/common/bill/createTrainingBill", "Bearer "+k.Key, `{"name":"theirs"}`)
		var id string
		_ = json.Unmarshal(r.env.Data, &id)
		return r.status, id
	}()
	for _, tc := range []struct {
		name, body string
		status     int
	}{
		{"unknown bill", `{"datasetId":"` + f.dataset + `","name":"n","text":"hello there","billId":"000000000000000000000000"}`, 404},
		{"another team's bill", `{"datasetId":"` + f.dataset + `","name":"n","text":"hello there","billId":"` + t2bill + `"}`, 404},
		{"too many chunks", `{"datasetId":"` + f.dataset + `","name":"n","chunkSize":16,"text":"` + strings.Repeat("word ", 40000) + `"}`, 400},
		{"unknown dataset", `{"datasetId":"000000000000000000000000","name":"n","text":"hello there"}`, 404},
	} {
		before := f.state(t)
		r := etDo(t, "POST", f.run.base+"/api/core/dataset/collection/create/text", f.root, tc.body)
		if r.status != tc.status {
			t.Errorf("%s: %d %s; want %d", tc.name, r.status, r.raw, tc.status)
		}
		if after := f.state(t); after != before {
			t.Errorf("%s: the refused request left something behind", tc.name)
		}
	}
	r := etDo(t, "POST", f.run.base+"/api/core/dataset/collection/create/text", f.root,
		`{"datasetId":"`+f.dataset+`","name":"doc","chunkSize":16,"billId":"`+f.bill+`","text":"`+hyWords(200)+`"}`)
	var res struct {
		CollectionID string `json:"collectionId"`
		Results      struct {
			InsertLen int `json:"insertLen"`
		} `json:"results"`
	}
	if r.status != 200 || json.Unmarshal(r.env.Data, &res) != nil || res.Results.InsertLen < 2 {
		t.Fatalf("good text collection: %d %s", r.status, r.raw)
	}
	d, err := f.run.s.Datasets.Collection(context.Background(), auth.DefaultTeam, res.CollectionID)
	if err != nil || d.TrainingAmount+d.DataAmount != res.Results.InsertLen {
		t.Fatalf("collection %+v, %v: its %d chunks are not all queued or trained", d, err, res.Results.InsertLen)
	}
}

// hyWords returns n distinct words, so that no two chunks repeat.
func hyWords(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "w%d ", i)
	}
	return b.String()
}

// The reported case: a team id holding NUL ("default\x00main") made the
// history key of its app's chats start with team default's prefix, so
// another team's chat title showed in default's history list. A key for
// such a team is now refused at creation with a 400 naming teamId, and
// nothing is created; so is one declared in the config file, and an app
// declared for one.
func TestTeamIDWithNULRefused(t *testing.T) {
	f := hyStart(t)
	for _, team := range []string{"default\\u0000main", "default\\u0000main\\u0000x", "default\\u0000", "\\u0000"} {
		before := f.state(t)
		r := etDo(t, "POST", f.run.base+"/api/support/openapi/create", f.root, `{"name":"intruder","teamId":"`+team+`","scopes":["admin"]}`)
		if r.status != 400 || r.env.StatusText != "invalid_request" || !strings.Contains(r.env.Message, `"teamId"`) {
			t.Fatalf("key for team %s: %d %s", team, r.status, r.raw)
		}
		if after := f.state(t); after != before {
			t.Fatalf("the refused key for team %s changed the state", team)
		}
	}
	ks, _ := f.run.s.Keys.List(context.Background(), auth.Filter{})
	for _, k := range ks {
		if strings.ContainsRune(k.TeamID, 0) {
			t.Fatalf("a key of team %q exists", k.TeamID)
		}
	}
	// default's history holds its own chat only
	r := etDo(t, "GET", f.run.base+"/api/core/chat/getHistories?appId=main", "Bearer "+f.appKey, "")
	var h struct {
		List []struct{ TeamID, ChatID string }
	}
	if json.Unmarshal(r.env.Data, &h) != nil || len(h.List) != 1 || h.List[0].TeamID != auth.DefaultTeam || h.List[0].ChatID != "c1" {
		t.Fatalf("default's history: %s", r.raw)
	}

	// The config file cannot declare one either: the server does not start.
	for name, mutate := range map[string]func(*server.Config){
		"account": func(c *server.Config) {
			c.Channels.API.Enabled = true
			c.Channels.API.Accounts = map[string]server.Account{"a": {Name: "a", Enabled: true, APIKey: "account-key-1", Team: "default\x00main"}}
		},
		"app": func(c *server.Config) {
			c.Apps = []server.AppConfig{{ID: "x", Team: "default\x00main", Model: "extractive"}}
		},
	} {
		cfg := svConfig(t.TempDir())
		cfg.Stderr, cfg.Logging.Level = io.Discard, "error"
		mutate(&cfg)
		s, err := server.New(cfg)
		if err == nil {
			_ = s.Close(context.Background())
			t.Fatalf("config %s with a NUL team: the server started", name)
		}
		if !strings.Contains(err.Error(), `"teamId"`) {
			t.Fatalf("config %s with a NUL team: %v does not name teamId", name, err)
		}
	}
}

// Refused training bills store nothing. The bill routes have no list, so
// the bbolt file is read once the server has stopped: it holds the one
// good bill only.
func TestRefusedBillsStoreNothing(t *testing.T) {
	dir := t.TempDir()
	run := svStart(t, svConfig(dir))
	root := "Bearer " + etRoot
	if r := etDo(t, "POST", run.base+"/api/common/bill/createTrainingBill", root, `{"name":"good"}`); r.status != 200 {
		t.Fatalf("good bill: %d %s", r.status, r.raw)
	}
	for _, body := range []string{`{"name":"n\u0000"}`, `{"name":"` + strings.Repeat("x", 201) + `"}`, `{"name":"\xff"}`, `{"datasetId":"a\u0000"}`} {
		if r := etDo(t, "POST", run.base+"/api/common/bill/createTrainingBill", root, body); r.status != 400 {
			t.Fatalf("%q: %d %s", body, r.status, r.raw)
		}
	}
	if err := run.stop(); err != nil {
		t.Fatal(err)
	}
	db, err := bbolt.Open(filepath.Join(dir, server.DBFile), 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var names []string
	_ = db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte("billing.bills")).ForEach(func(_, v []byte) error {
			var b billing.BillDetail
			_ = json.Unmarshal(v, &b)
			names = append(names, b.Name)
			return nil
		})
	})
	if fmt.Sprint(names) != "[good]" {
		t.Fatalf("bills on file: %q", names)
	}
}
