package server_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatgate/chatgate/server"
)

// authHost is an owner's auth server on loopback: it approves the tokens
// in allow, records every call, and can be slowed or stopped.
type authHost struct {
	mu     sync.Mutex
	calls  []hostCall
	allow  map[string]bool
	delay  time.Duration
	finish time.Duration // extra delay on /finish
	down   bool          // /finish answers 503
}

type hostCall struct {
	path, ts, sig string
	body          []byte
}

func (h *authHost) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	delay, down, fin := h.delay, h.down, h.finish
	h.mu.Unlock()
	if down && r.URL.Path == "/shareAuth/finish" {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	if r.URL.Path == "/shareAuth/finish" {
		delay += fin
	}
	select {
	case <-time.After(delay):
	case <-r.Context().Done():
		return
	}
	h.mu.Lock()
	h.calls = append(h.calls, hostCall{r.URL.Path, r.Header.Get("X-Chatgate-Timestamp"), r.Header.Get("X-Chatgate-Signature"), body})
	h.mu.Unlock()
	var req struct{ Token string }
	_ = json.Unmarshal(body, &req)
	w.Header().Set("Content-Type", "application/json")
	if h.allow[req.Token] {
		json.NewEncoder(w).Encode(map[string]any{"success": true, "message": "", "data": map[string]string{"uid": "uid-" + req.Token}})
		return
	}
	json.NewEncoder(w).Encode(map[string]any{"success": false, "message": "你没有权限"})
}

func (h *authHost) set(fn func(h *authHost)) { h.mu.Lock(); fn(h); h.mu.Unlock() }

func (h *authHost) callsTo(path string) []hostCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []hostCall
	for _, c := range h.calls {
		if c.path == path {
			out = append(out, c)
		}
	}
	return out
}

func createLink(t *testing.T, base, body string) (shareID, secret string) {
	t.Helper()
	_, e := envCall(t, "POST", base+"/api/support/outLink/create", sdkAdmin, body)
	var d struct{ ShareID, Secret string }
	if e.Code != 200 || json.Unmarshal(e.Data, &d) != nil || d.ShareID == "" || d.Secret == "" {
		t.Fatalf("create link: %+v", e)
	}
	return d.ShareID, d.Secret
}

func shareChat(t *testing.T, base, shareID, token, extra string) (*http.Response, string) {
	return curl(t, "POST", base+"/api/v1/chat/completions", "", `{"shareId":"`+shareID+`","authToken":"`+token+`"`+extra+`,"messages":[{"role":"user","content":"导演是谁"}]}`)
}

func waitFor(t *testing.T, what string, d time.Duration, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !ok(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestShareLinkCallbacks(t *testing.T) {
	host := &authHost{allow: map[string]bool{"alice": true}}
	hs := httptest.NewServer(host)
	defer hs.Close()
	base, _ := sdkServer(t, func(c *server.Config) {
		c.Share.HookTimeout = server.Duration(300 * time.Millisecond)
		c.Share.AllowHosts = []string{"127.0.0.1/32"}
	})
	shareID, secret := createLink(t, base, `{"appId":"main","name":"pub","limit":{"hookUrl":"`+hs.URL+`","maxUsagePoints":-1},"responseDetail":false}`)

	// the secret is never listed
	_, e := envCall(t, "GET", base+"/api/support/outLink/list", sdkAdmin, "")
	if strings.Contains(string(e.Data), secret) || !strings.Contains(string(e.Data), shareID) {
		t.Fatalf("list: %s", e.Data)
	}

	// init and an approved question
	if _, e := envCall(t, "POST", base+"/api/core/chat/outLink/init", "", `{"shareId":"`+shareID+`","authToken":"alice"}`); e.Code != 200 || !strings.Contains(string(e.Data), "uid-alice") {
		t.Fatalf("init: %+v", e)
	}
	resp, body := shareChat(t, base, shareID, "alice", `,"chatId":"c1","detail":true`)
	if resp.StatusCode != 200 || !strings.Contains(body, "chat.completion") || strings.Contains(body, "responseData") {
		t.Fatalf("approved chat (detail hidden): %d %s", resp.StatusCode, body)
	}
	// outLinkUid in the query works the same
	if resp, body := curl(t, "POST", base+"/api/v1/chat/completions?shareId="+shareID+"&outLinkUid=alice", "", `{"stream":true,"messages":[{"role":"user","content":"hi"}]}`); resp.StatusCode != 200 || !strings.Contains(body, "[DONE]") {
		t.Fatalf("query-string stream: %d %s", resp.StatusCode, body)
	}
	waitFor(t, "two finish callbacks", 5*time.Second, func() bool { return len(host.callsTo("/shareAuth/finish")) == 2 })
	fin := host.callsTo("/shareAuth/finish")[0]
	var fb struct {
		Token        string `json:"token"`
		ResponseData []struct {
			ModuleName string `json:"moduleName"`
		} `json:"responseData"`
	}
	if json.Unmarshal(fin.body, &fb) != nil || fb.Token != "alice" || len(fb.ResponseData) == 0 || fb.ResponseData[len(fb.ResponseData)-1].ModuleName != "AI Chat" {
		t.Fatalf("finish body %s", fin.body)
	}
	// share.mdx's fields to watch: each module's totalPoints and tokens,
	// with its moduleType, query and historyPreview
	var raw struct {
		ResponseData []map[string]any `json:"responseData"`
	}
	_ = json.Unmarshal(fin.body, &raw)
	ai := raw.ResponseData[len(raw.ResponseData)-1]
	if _, ok := ai["totalPoints"].(float64); !ok || ai["moduleType"] != "chatNode" || (ai["query"] != "hi" && ai["query"] != "导演是谁") ||
		ai["tokens"].(float64) <= 0 || len(ai["historyPreview"].([]any)) == 0 {
		t.Fatalf("finish module lacks share.mdx's fields: %v", ai)
	}
	// every callback is signed: sha256= hex HMAC-SHA256("<ts>.<body>") with the secret
	for _, c := range host.calls {
		m := hmac.New(sha256.New, []byte(secret))
		m.Write([]byte(c.ts + "." + string(c.body)))
		if want := "sha256=" + hex.EncodeToString(m.Sum(nil)); c.sig != want {
			t.Fatalf("%s signed %q, want %q", c.path, c.sig, want)
		}
	}
	if starts := host.callsTo("/shareAuth/start"); len(starts) != 2 || !strings.Contains(string(starts[0].body), `"question":"导演是谁"`) {
		t.Fatalf("start calls: %d", len(starts))
	}
	// the visitor's uid reaches usage
	if recs := usageList(t, base, ""); len(recs) == 0 || recs[0]["shareId"] != shareID {
		t.Fatalf("usage: %v", recs)
	}

	// denied: the host's message is passed through
	resp, body = shareChat(t, base, shareID, "mallory", "")
	var oe openAIErr
	if resp.StatusCode != 403 || json.Unmarshal([]byte(body), &oe) != nil || oe.Error.Code != "share_auth_denied" || oe.Error.Message != "你没有权限" {
		t.Fatalf("denied: %d %s", resp.StatusCode, body)
	}
	// no token on a link with an auth host
	if resp, body = shareChat(t, base, shareID, "", ""); resp.StatusCode != 401 {
		t.Fatalf("no token: %d %s", resp.StatusCode, body)
	}
	// a slow host fails closed
	host.set(func(h *authHost) { h.delay = time.Second })
	start := time.Now()
	if resp, body = shareChat(t, base, shareID, "alice", ""); resp.StatusCode != 401 || !strings.Contains(body, "share_auth_failed") || time.Since(start) > 900*time.Millisecond {
		t.Fatalf("slow host: %d %s after %v", resp.StatusCode, body, time.Since(start))
	}
	host.set(func(h *authHost) { h.delay = 0 })
	// a slow finish never delays the answer
	host.set(func(h *authHost) { h.finish = 2 * time.Second })
	start = time.Now()
	if resp, _ = shareChat(t, base, shareID, "alice", ""); resp.StatusCode != 200 || time.Since(start) > time.Second {
		t.Fatalf("answer took %v with a slow finish", time.Since(start))
	}
	host.set(func(h *authHost) { h.finish = 0 })
	// forged link id
	if resp, _ = shareChat(t, base, "no-such-link", "alice", ""); resp.StatusCode != 404 {
		t.Fatalf("unknown link: %d", resp.StatusCode)
	}
}

func TestShareLinkLimitsAndTeams(t *testing.T) {
	base, s := sdkServer(t, nil)
	expired, _ := createLink(t, base, `{"appId":"main","name":"old","limit":{"expiredTime":"2020-01-01T00:00:00Z"}}`)
	if resp, body := shareChat(t, base, expired, "x", ""); resp.StatusCode != 403 {
		t.Fatalf("expired: %d %s", resp.StatusCode, body)
	}
	qpm, _ := createLink(t, base, `{"appId":"main","name":"qpm","limit":{"qpm":2}}`)
	codes := []int{}
	for range 3 {
		resp, _ := shareChat(t, base, qpm, "x", "")
		codes = append(codes, resp.StatusCode)
	}
	if codes[0] != 200 || codes[1] != 200 || codes[2] != 429 {
		t.Fatalf("qpm 2: %v", codes)
	}
	points, _ := createLink(t, base, `{"appId":"main","name":"points","limit":{"maxUsagePoints":0.0001},"responseDetail":true}`)
	resp, body := shareChat(t, base, points, "x", `,"detail":true`)
	if resp.StatusCode != 200 || !strings.Contains(body, "responseData") {
		t.Fatalf("first chat with responseDetail: %d %s", resp.StatusCode, body)
	}
	if resp, body := shareChat(t, base, points, "x", ""); resp.StatusCode != 429 || !strings.Contains(body, "insufficient_quota") {
		t.Fatalf("points spent: %d %s", resp.StatusCode, body)
	}
	// another team's admin sees none of these links
	otherAdmin := sdkKey(t, base, map[string]any{"name": "b-admin", "teamId": "team-b", "scopes": []string{"admin"}})
	_, e := envCall(t, "GET", base+"/api/support/outLink/list", otherAdmin, "")
	if string(e.Data) != "[]" {
		t.Fatalf("team b lists %s", e.Data)
	}
	for _, c := range [][3]string{{"PUT", "/api/support/outLink/update", `{"shareId":"` + qpm + `","name":"mine"}`}, {"DELETE", "/api/support/outLink/delete?id=" + qpm, ""}} {
		if _, e := envCall(t, c[0], base+c[1], otherAdmin, c[2]); e.Code != 404 {
			t.Fatalf("team b %s: %+v", c[0], e)
		}
	}
	_ = s
}

// A finish the host cannot take is delivered once it is back, even across
// a restart of chatgate.
func TestShareFinishSurvivesRestart(t *testing.T) {
	host := &authHost{allow: map[string]bool{"alice": true}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: host}
	go hs.Serve(ln)
	defer hs.Close()
	dir := t.TempDir()
	cfg := server.Config{RootKey: sdkAdmin, Stderr: io.Discard}
	cfg.Server.Data = dir
	cfg.Logging.Level = "error"
	cfg.Share.AllowHosts = []string{"127.0.0.1/32"}
	run := func(fn func(base string)) {
		s, err := server.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Serve(ctx, l) }()
		fn("http://" + l.Addr().String())
		cancel()
		<-done
	}
	run(func(base string) {
		shareID, _ := createLink(t, base, `{"appId":"main","name":"pub","limit":{"hookUrl":"http://`+ln.Addr().String()+`"}}`)
		host.set(func(h *authHost) { h.down = true }) // /finish refuses
		resp, _ := shareChat(t, base, shareID, "alice", "")
		if resp.StatusCode != 200 {
			t.Fatal("chat failed")
		}
		time.Sleep(300 * time.Millisecond) // at least one attempt fails
	})
	if n := len(host.callsTo("/shareAuth/finish")); n != 0 {
		t.Fatalf("%d finishes taken while the host refused them", n)
	}
	host.set(func(h *authHost) { h.down = false })
	run(func(base string) {
		waitFor(t, "the finish after the restart", 10*time.Second, func() bool { return len(host.callsTo("/shareAuth/finish")) == 1 })
	})
}
