package server_test

import (
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/chatgate/chatgate/server"
)

// usageList returns the team's usage records through the API.
func usageList(t *testing.T, base, query string) []map[string]any {
	t.Helper()
	_, e := envCall(t, "GET", base+"/api/support/usage/list?pageSize=2000&"+query, sdkAdmin, "")
	var d struct {
		List []map[string]any `json:"list"`
	}
	if err := json.Unmarshal(e.Data, &d); err != nil {
		t.Fatal(err)
	}
	return d.List
}

// A chat is priced, recorded and shows its price in responseData.
func TestChatIsBilled(t *testing.T) {
	base, _ := sdkServer(t, nil)
	_, key := createKeyFull(t, base, `{"name":"app","appId":"main"}`)
	resp, body := curl(t, "POST", base+"/api/v1/chat/completions", key, `{"detail":true,"messages":[{"role":"user","content":"hello there"}]}`)
	var c struct {
		ResponseData []struct {
			ModuleName string  `json:"moduleName"`
			Price      float64 `json:"price"`
		} `json:"responseData"`
	}
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &c) != nil || len(c.ResponseData) == 0 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	recs := usageList(t, base, "appId=main")
	if len(recs) != 1 || recs[0]["module"] != "AI Chat" || recs[0]["source"] != "chat" || recs[0]["keyId"] == "" {
		t.Fatalf("usage: %v", recs)
	}
	points := recs[0]["points"].(float64)
	if d := c.ResponseData[0].Price - points*100000; points <= 0 || d > 1e-6 || d < -1e-6 {
		t.Fatalf("price %v for %v points", c.ResponseData[0].Price, points)
	}
}

// 50 chats at once against a key whose quota covers a few: each chat that
// started within the quota finishes, and the overspend is bounded by what
// was in flight; afterwards the key is refused.
func TestConcurrentQuota(t *testing.T) {
	base, _ := sdkServer(t, nil)
	const question = `{"messages":[{"role":"user","content":"how are you doing today my friend"}]}`
	// the price of one chat, measured on a key without a quota
	_, probe := createKeyFull(t, base, `{"name":"probe","appId":"main"}`)
	curl(t, "POST", base+"/api/v1/chat/completions", probe, question)
	one := usageList(t, base, "")[0]["points"].(float64)
	quota := 5.5 * one
	id, key := createKeyFull(t, base, `{"name":"capped","appId":"main","limit":{"maxUsagePoints":`+strconvF(quota)+`}}`)

	var ok, refused, other atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 50 {
		wg.Go(func() {
			<-start
			resp, body := curl(t, "POST", base+"/api/v1/chat/completions", key, question)
			switch {
			case resp.StatusCode == 200:
				ok.Add(1)
			case resp.StatusCode == 429 && strings.Contains(body, "insufficient_quota"):
				refused.Add(1)
			default:
				other.Add(1)
				t.Errorf("%d %s", resp.StatusCode, body)
			}
		})
	}
	close(start)
	wg.Wait()
	spent := 0.0
	for _, r := range usageList(t, base, "keyId="+id) {
		spent += r["points"].(float64)
	}
	overspend := spent - quota
	t.Logf("quota %.4f points (%.1f chats): %d answered, %d refused; spent %.4f, overspent %.4f (%.1f chats)",
		quota, quota/one, ok.Load(), refused.Load(), spent, max(overspend, 0), max(overspend, 0)/one)
	if ok.Load() < 6 || ok.Load()+refused.Load() != 50 {
		t.Fatalf("%d answered, %d refused", ok.Load(), refused.Load())
	}
	if n := float64(ok.Load()); spent < n*one-1e-9 || spent > n*one+1e-9 {
		t.Fatalf("spent %v for %v answered chats of %v", spent, n, one)
	}
	// A chat is admitted while the points used plus the expected cost of
	// the chats already running stay under the quota, so the last one
	// admitted overspends by less than one chat's cost.
	if overspend > one+1e-9 {
		t.Fatalf("overspent %v, more than one chat (%v)", overspend, one)
	}
	if resp, body := curl(t, "POST", base+"/api/v1/chat/completions", key, question); resp.StatusCode != 429 || !strings.Contains(body, "insufficient_quota") {
		t.Fatalf("after the quota: %d %s", resp.StatusCode, body)
	}
}

func strconvF(f float64) string { b, _ := json.Marshal(f); return string(b) }

// An app's budget stops its chats, whatever key they come with.
func TestAppBudget(t *testing.T) {
	base, _ := sdkServer(t, func(c *server.Config) {
		c.Apps = []server.AppConfig{{ID: "budgeted", Name: "b", Model: "extractive", MaxUsagePoints: 0.0001}}
	})
	_, key := createKeyFull(t, base, `{"name":"app","appId":"budgeted"}`)
	q := `{"messages":[{"role":"user","content":"hi"}]}`
	if resp, body := curl(t, "POST", base+"/api/v1/chat/completions", key, q); resp.StatusCode != 200 {
		t.Fatalf("first chat: %d %s", resp.StatusCode, body)
	}
	resp, body := curl(t, "POST", base+"/api/v1/chat/completions", key, q)
	var e openAIErr
	if resp.StatusCode != 429 || json.Unmarshal([]byte(body), &e) != nil || e.Error.Code != "insufficient_quota" || e.Error.Type != "insufficient_quota" {
		t.Fatalf("over budget: %d %s", resp.StatusCode, body)
	}
}
