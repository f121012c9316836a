package server_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/chatgate/chatgate/server"
)

// atApp returns the name of the app appId as key's team sees it, or the
// status and statusText it was refused with.
func atApp(t *testing.T, base, key, appID string) (name string, e envelope) {
	t.Helper()
	_, e = envCall(t, "GET", base+"/api/core/app/detail?appId="+appID, key, "")
	var a struct{ Name, TeamID string }
	if e.Code == 200 {
		if err := json.Unmarshal(e.Data, &a); err != nil {
			t.Fatal(err)
		}
	}
	return a.Name, e
}

func atAppNames(t *testing.T, base, key string) []string {
	t.Helper()
	_, e := envCall(t, "GET", base+"/api/core/app/list", key, "")
	var apps []struct{ ID, Name string }
	if e.Code != 200 || json.Unmarshal(e.Data, &apps) != nil {
		t.Fatalf("list: %+v", e)
	}
	var out []string
	for _, a := range apps {
		out = append(out, a.ID+"="+a.Name)
	}
	return out
}

// App ids are scoped to their team: two teams each create app "x", each
// sees, chats with and deletes only its own; another team's id answers as
// a missing one; and a team's own id taken is still a conflict.
func TestAppIDsPerTeam(t *testing.T) {
	base, _ := sdkServer(t, nil)
	_, admin2 := createKeyFull(t, base, `{"name":"t2 admin","teamId":"t2","scopes":["admin"]}`)

	if _, e := envCall(t, "POST", base+"/api/core/app/create", sdkAdmin, `{"id":"x","name":"Default X"}`); e.Code != 200 {
		t.Fatalf("default creates x: %+v", e)
	}
	// Before team t2 has an x, default's x is as missing to it as any.
	_, missing := atApp(t, base, admin2, "x")
	_, never := atApp(t, base, admin2, "never-created")
	if missing.Code != 404 || missing.StatusText != never.StatusText || missing.Message != never.Message {
		t.Fatalf("another team's app: %+v; a missing one: %+v", missing, never)
	}
	if _, e := envCall(t, "POST", base+"/api/core/app/create", admin2, `{"id":"x","name":"T2 X"}`); e.Code != 200 {
		t.Fatalf("t2 creates x beside default's: %+v", e)
	}
	before := atAppNames(t, base, admin2)
	if _, e := envCall(t, "POST", base+"/api/core/app/create", admin2, `{"id":"x","name":"again"}`); e.Code != 409 || e.StatusText != "conflict" {
		t.Fatalf("t2 creates x twice: %+v", e)
	}
	if after := atAppNames(t, base, admin2); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Fatalf("a refused create changed the list: %v -> %v", before, after)
	}
	for key, want := range map[string]string{sdkAdmin: "Default X", admin2: "T2 X"} {
		if name, e := atApp(t, base, key, "x"); name != want {
			t.Fatalf("detail x: %q %+v; want %q", name, e, want)
		}
	}
	if got := atAppNames(t, base, sdkAdmin); strings.Join(got, ",") != "main=Main,x=Default X" {
		t.Fatalf("default's apps: %v", got)
	}
	if got := atAppNames(t, base, admin2); strings.Join(got, ",") != "x=T2 X" {
		t.Fatalf("t2's apps: %v", got)
	}

	// Each team's app key chats with its own x, and keeps its own history.
	_, chat1 := createKeyFull(t, base, `{"name":"default x","appId":"x"}`)
	_, chat2 := createKeyFull(t, base, `{"name":"t2 x","appId":"x","teamId":"t2"}`)
	for _, k := range []string{chat1, chat2, chat2} {
		if resp, body := curl(t, "POST", base+"/api/v1/chat/completions", k, `{"chatId":"c`+k[len(k)-4:]+`","messages":[{"role":"user","content":"hi"}]}`); resp.StatusCode != 200 {
			t.Fatalf("chat: %d %s", resp.StatusCode, body)
		}
	}
	if h1, h2 := histories(t, base, chat1, "x"), histories(t, base, chat2, "x"); h1 != 1 || h2 != 1 {
		t.Fatalf("histories: default's x %d, t2's x %d; want 1 each", h1, h2)
	}

	// A share link names an app of its own team only.
	if _, e := envCall(t, "POST", base+"/api/support/outLink/create", admin2, `{"appId":"main","name":"theirs"}`); e.Code != 400 || !strings.Contains(e.Message, `"appId"`) {
		t.Fatalf("t2 links default's main: %+v", e)
	}
	if _, e := envCall(t, "POST", base+"/api/support/outLink/create", admin2, `{"appId":"x","name":"ours"}`); e.Code != 200 {
		t.Fatalf("t2 links its own x: %+v", e)
	}

	// Deleting t2's x leaves default's x and its history.
	if _, e := envCall(t, "DELETE", base+"/api/core/app/del?appId=x", admin2, ""); e.Code != 200 {
		t.Fatalf("t2 deletes x: %+v", e)
	}
	if _, e := atApp(t, base, admin2, "x"); e.Code != 404 {
		t.Fatalf("t2's deleted x: %+v", e)
	}
	if name, e := atApp(t, base, sdkAdmin, "x"); name != "Default X" {
		t.Fatalf("default's x after t2 deleted its own: %q %+v", name, e)
	}
	if h := histories(t, base, chat1, "x"); h != 1 {
		t.Fatalf("default's x history after t2's delete: %d", h)
	}
	if _, e := envCall(t, "DELETE", base+"/api/core/app/del?appId=x", admin2, ""); e.Code != 404 {
		t.Fatalf("t2 deletes x again: %+v", e)
	}
}

// An app's budget counts its own team's spend only: another team's app of
// the same id spending does not use it up.
func TestAppBudgetPerTeam(t *testing.T) {
	base, _ := sdkServer(t, func(c *server.Config) {
		c.Apps = []server.AppConfig{{ID: "budgeted", Name: "b", Model: "extractive", MaxUsagePoints: 0.0001}}
	})
	_, admin2 := createKeyFull(t, base, `{"name":"t2 admin","teamId":"t2","scopes":["admin"]}`)
	if _, e := envCall(t, "POST", base+"/api/core/app/create", admin2, `{"id":"budgeted","name":"no budget"}`); e.Code != 200 {
		t.Fatalf("t2 creates budgeted: %+v", e)
	}
	_, theirs := createKeyFull(t, base, `{"name":"t2","appId":"budgeted","teamId":"t2"}`)
	_, ours := createKeyFull(t, base, `{"name":"default","appId":"budgeted"}`)
	q := `{"messages":[{"role":"user","content":"hi"}]}`
	for i := range 3 {
		if resp, body := curl(t, "POST", base+"/api/v1/chat/completions", theirs, q); resp.StatusCode != 200 {
			t.Fatalf("t2's chat %d: %d %s", i, resp.StatusCode, body)
		}
	}
	if resp, body := curl(t, "POST", base+"/api/v1/chat/completions", ours, q); resp.StatusCode != 200 {
		t.Fatalf("default's first chat, after t2's app of the same id spent: %d %s", resp.StatusCode, body)
	}
	resp, body := curl(t, "POST", base+"/api/v1/chat/completions", ours, q)
	var e openAIErr
	if resp.StatusCode != 429 || json.Unmarshal([]byte(body), &e) != nil || e.Error.Code != "insufficient_quota" {
		t.Fatalf("default's app over its budget: %d %s", resp.StatusCode, body)
	}
	if resp, body := curl(t, "POST", base+"/api/v1/chat/completions", theirs, q); resp.StatusCode != 200 {
		t.Fatalf("t2's app held by default's budget: %d %s", resp.StatusCode, body)
	}
}

// Importing a key that another team has answers exactly as importing one
// your own team has, and as any bad key: a 400 naming "key" that does not
// say it exists. Nothing is stored.
func TestImportGivesNoHintOfOtherTeamsKeys(t *testing.T) {
	base, _ := sdkServer(t, nil)
	_, admin2 := createKeyFull(t, base, `{"name":"t2 admin","teamId":"t2","scopes":["admin"]}`)
	for _, c := range [][2]string{{sdkAdmin, "default-team-secret-1"}, {admin2, "t2-team-secret-1"}} {
		if _, e := envCall(t, "POST", base+"/api/support/openapi/import", c[0], `{"name":"mine","key":"`+c[1]+`"}`); e.Code != 200 {
			t.Fatalf("import %s: %+v", c[1], e)
		}
	}
	list := func(key string) string { return keySnapshotAs(t, base, key) }
	before1, before2 := list(sdkAdmin), list(admin2)
	var answers []string
	for _, secret := range []string{"default-team-secret-1", "t2-team-secret-1", sdkAdmin} {
		_, e := envCall(t, "POST", base+"/api/support/openapi/import", admin2, `{"name":"probe","key":"`+secret+`"}`)
		if e.Code != 400 || e.StatusText != "invalid_request" || !strings.Contains(e.Message, `"key"`) {
			t.Fatalf("t2 imports %s: %+v", secret, e)
		}
		answers = append(answers, e.Message)
	}
	if answers[0] != answers[1] || answers[1] != answers[2] {
		t.Fatalf("another team's key, one's own and the root key answer differently: %q", answers)
	}
	for _, tell := range []string{"already", "registered", "exists", "in use"} {
		if strings.Contains(answers[0], tell) {
			t.Fatalf("the refusal tells the key exists: %q", answers[0])
		}
	}
	if list(sdkAdmin) != before1 || list(admin2) != before2 {
		t.Fatal("a refused import changed the keys")
	}
}
