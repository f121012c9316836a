package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatgate/chatgate/internal/boltx"
	"github.com/chatgate/chatgate/server"
	"github.com/chatgate/chatgate/shareauth"
)

// What a visitor is told whatever went wrong with a link's auth host.
const (
	hookFailedText = "share_auth_failed"
	hookFailedMsg  = "the share link's auth server could not verify this visitor"
)

// watchedServer is a loopback server that counts the connections it
// accepts and the requests it serves.
type watchedServer struct {
	*httptest.Server
	conns, reqs atomic.Int32
}

func newWatchedServer(t *testing.T, h http.Handler) *watchedServer {
	ws := &watchedServer{}
	ws.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws.reqs.Add(1)
		h.ServeHTTP(w, r)
	}))
	ws.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			ws.conns.Add(1)
		}
	}
	ws.Start()
	t.Cleanup(ws.Close)
	return ws
}

func (ws *watchedServer) port() string { return strconv.Itoa(ws.Listener.Addr().(*net.TCPAddr).Port) }

func shareInit(t *testing.T, base, shareID, token string) (*http.Response, string) {
	return curl(t, "POST", base+"/api/core/chat/outLink/init", "", `{"shareId":"`+shareID+`","authToken":"`+token+`"}`)
}

// wantHookFailed checks an init answer and a chat answer are the generic
// one, and returns their bodies.
func wantHookFailed(t *testing.T, base, shareID, what string) (initBody, chatBody string) {
	t.Helper()
	resp, initBody := shareInit(t, base, shareID, "alice")
	var e envelope
	if resp.StatusCode != 401 || json.Unmarshal([]byte(initBody), &e) != nil || e.StatusText != hookFailedText || e.Message != hookFailedMsg {
		t.Fatalf("%s: init answered %d %s", what, resp.StatusCode, initBody)
	}
	resp, chatBody = shareChat(t, base, shareID, "alice", "")
	var oe openAIErr
	if resp.StatusCode != 401 || json.Unmarshal([]byte(chatBody), &oe) != nil || oe.Error.Code != hookFailedText || oe.Error.Message != hookFailedMsg {
		t.Fatalf("%s: chat answered %d %s", what, resp.StatusCode, chatBody)
	}
	return initBody, chatBody
}

func linkList(t *testing.T, base string) string {
	t.Helper()
	_, e := envCall(t, "GET", base+"/api/support/outLink/list", sdkAdmin, "")
	return string(e.Data)
}

// With no allow-list, a hookUrl naming an internal address is refused at
// create and update; so are credentials, a query and a fragment.
func TestShareHookURLRefused(t *testing.T) {
	host := newWatchedServer(t, &authHost{allow: map[string]bool{"alice": true}})
	base, _ := sdkServer(t, nil)
	keep, _ := createLink(t, base, `{"appId":"main","name":"keep","limit":{"hookUrl":"https://auth.example.com/base"}}`)
	before := linkList(t, base)
	for _, u := range []string{
		host.URL, // 127.0.0.1:<port>
		"http://[::1]:" + host.port(), "http://127.1:" + host.port(), "http://2130706433",
		"http://169.254.169.254/latest/meta-data", "http://[::ffff:169.254.169.254]", "http://[fe80::1%25lo]",
		"http://10.0.0.1", "http://192.168.1.1", "http://172.16.0.1", "http://100.64.0.1", "http://0.0.0.0", "http://[::]",
		"http://224.0.0.1", "http://255.255.255.255",
		"https://user:pw@auth.example.com", "https://auth.example.com/?next=http://10.0.0.1", "https://auth.example.com/#x",
		"file:///etc/passwd", "gopher://auth.example.com",
	} {
		for _, c := range [][3]string{
			{"POST", "/api/support/outLink/create", `{"appId":"main","name":"x","limit":{"hookUrl":"` + u + `"}}`},
			{"PUT", "/api/support/outLink/update", `{"shareId":"` + keep + `","limit":{"hookUrl":"` + u + `"}}`},
		} {
			if _, e := envCall(t, c[0], base+c[1], sdkAdmin, c[2]); e.Code != 400 || !strings.Contains(e.Message, "limit.hookUrl") {
				t.Fatalf("%s hookUrl %s: %+v", c[0], u, e)
			}
		}
	}
	if after := linkList(t, base); after != before {
		t.Fatalf("refused hookUrls changed the links:\n%s\n%s", before, after)
	}
	if n := host.conns.Load(); n != 0 {
		t.Fatalf("the hook server saw %d connections", n)
	}
}

// A name that resolves to loopback passes create (what it resolves to
// can change) and is refused when chatgate connects; so is a link stored
// before the create check existed. The host hears nothing.
func TestShareHookBlockedAtConnect(t *testing.T) {
	host := newWatchedServer(t, &authHost{allow: map[string]bool{"alice": true}})
	dir := t.TempDir()
	db, err := boltx.Open(filepath.Join(dir, server.DBFile), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	st, err := shareauth.NewBoltStore(db)
	if err != nil {
		t.Fatal(err)
	}
	legacy := &shareauth.Link{ID: "legacy-metadata-link", TeamID: "default", AppID: "main", Name: "old",
		Limit: shareauth.Limit{HookURL: "http://169.254.169.254/latest"}, Secret: "cgs_legacy", CreateTime: time.Now()}
	if err := st.PutLink(context.Background(), legacy); err != nil {
		t.Fatal(err)
	}
	db.Close()
	base, _ := sdkServer(t, func(c *server.Config) { c.Server.Data = dir })

	named, _ := createLink(t, base, `{"appId":"main","name":"named","limit":{"hookUrl":"http://localhost:`+host.port()+`"}}`)
	i1, c1 := wantHookFailed(t, base, named, "localhost")
	i2, c2 := wantHookFailed(t, base, legacy.ID, "169.254.169.254")
	if i1 != i2 || c1 != c2 {
		t.Fatalf("blocked answers differ:\n%s\n%s\n%s\n%s", i1, i2, c1, c2)
	}
	if n := host.conns.Load(); n != 0 {
		t.Fatalf("the hook server saw %d connections", n)
	}
	if _, m := curl(t, "GET", base+"/metrics", "", ""); !strings.Contains(m, `chatgate_share_hook_failures_total{cause="blocked"} 4`) {
		t.Fatalf("metrics lack the 4 blocked calls:\n%s", grepLines(m, "chatgate_share_hook"))
	}
}

// A listed auth host that answers a redirect is not followed: the target
// gets nothing (no signed body, no signature) and the visitor the generic
// answer.
func TestShareHookRedirectNotFollowed(t *testing.T) {
	target := newWatchedServer(t, &authHost{allow: map[string]bool{"alice": true}})
	hop := newWatchedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+r.URL.Path, http.StatusFound)
	}))
	hop307 := newWatchedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+r.URL.Path, http.StatusTemporaryRedirect) // would resend the body
	}))
	base, _ := sdkServer(t, func(c *server.Config) { c.Share.AllowHosts = []string{"127.0.0.1/32"} })
	for _, h := range []*watchedServer{hop, hop307} {
		id, _ := createLink(t, base, `{"appId":"main","name":"hop","limit":{"hookUrl":"`+h.URL+`"}}`)
		wantHookFailed(t, base, id, "redirect")
		if h.reqs.Load() != 2 {
			t.Fatalf("the redirecting host got %d calls, want init and start", h.reqs.Load())
		}
	}
	if n := target.conns.Load(); n != 0 {
		t.Fatalf("the redirect target saw %d connections", n)
	}
}

// Whatever the host did (an error status, a closed port, too slow, a body
// that is no verdict, a redirect), the visitor's answer is the same bytes;
// a clean success:false still passes the host's message on.
func TestShareHookFailuresLookAlike(t *testing.T) {
	answer := func(status int, body string) *watchedServer {
		return newWatchedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(status)
			io.WriteString(w, body)
		}))
	}
	open500 := answer(500, `{"success":true}`)
	notJSON := answer(200, `<html>it works</html>`)
	noVerdict := answer(200, `{"status":"ok"}`)
	moved := answer(301, ``)
	slow := newWatchedServer(t, &authHost{allow: map[string]bool{"alice": true}, delay: 2 * time.Second})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	denier := newWatchedServer(t, &authHost{allow: map[string]bool{}})

	base, _ := sdkServer(t, func(c *server.Config) {
		c.Share.AllowHosts = []string{"127.0.0.1/32"}
		c.Share.HookTimeout = server.Duration(300 * time.Millisecond)
	})
	var first [2]string
	for i, u := range []string{open500.URL, closed, slow.URL, notJSON.URL, noVerdict.URL, moved.URL} {
		id, _ := createLink(t, base, `{"appId":"main","name":"l`+strconv.Itoa(i)+`","limit":{"hookUrl":"`+u+`"}}`)
		in, ch := wantHookFailed(t, base, id, u)
		if i == 0 {
			first = [2]string{in, ch}
		} else if in != first[0] || ch != first[1] {
			t.Fatalf("%s answered differently from an open port's 500:\n%s\n%s\n%s\n%s", u, in, first[0], ch, first[1])
		}
	}
	id, _ := createLink(t, base, `{"appId":"main","name":"deny","limit":{"hookUrl":"`+denier.URL+`"}}`)
	resp, body := shareInit(t, base, id, "mallory")
	var e envelope
	if resp.StatusCode != 403 || json.Unmarshal([]byte(body), &e) != nil || e.StatusText != "share_auth_denied" || e.Message != "你没有权限" {
		t.Fatalf("denied init: %d %s", resp.StatusCode, body)
	}
	resp, body = shareChat(t, base, id, "mallory", "")
	var oe openAIErr
	if resp.StatusCode != 403 || json.Unmarshal([]byte(body), &oe) != nil || oe.Error.Code != "share_auth_denied" || oe.Error.Message != "你没有权限" {
		t.Fatalf("denied chat: %d %s", resp.StatusCode, body)
	}
	// a host answering share.mdx's msg (its other name for message) has
	// its text shown too
	msgOnly := newWatchedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"success":false,"msg":"只有msg的拒绝"}`))
	}))
	id, _ = createLink(t, base, `{"appId":"main","name":"msg","limit":{"hookUrl":"`+msgOnly.URL+`"}}`)
	resp, body = shareInit(t, base, id, "mallory")
	if resp.StatusCode != 403 || json.Unmarshal([]byte(body), &e) != nil || e.StatusText != "share_auth_denied" || e.Message != "只有msg的拒绝" {
		t.Fatalf("denied by msg: %d %s", resp.StatusCode, body)
	}
	_, m := curl(t, "GET", base+"/metrics", "", "")
	for _, c := range []string{`cause="status"} 2`, `cause="unreachable"} 2`, `cause="timeout"} 2`, `cause="bad_answer"} 4`, `cause="redirect"} 2`} {
		if !strings.Contains(m, "chatgate_share_hook_failures_total{"+c) {
			t.Fatalf("metrics lack %s:\n%s", c, grepLines(m, "chatgate_share_hook"))
		}
	}
}

// Visitors need no key to make chatgate call a link's auth host, so init
// is rate-limited per link: the call past the burst is a 429 with
// Retry-After, never reaches the host, and another link is unaffected.
func TestShareInitRateLimit(t *testing.T) {
	host := &authHost{allow: map[string]bool{"alice": true}}
	hs := newWatchedServer(t, host)
	base, _ := sdkServer(t, func(c *server.Config) {
		c.Share.AllowHosts = []string{"127.0.0.1/32"}
		c.Share.InitPerMinute = 1 // 3 in any 3 minutes: no room again during the test
		c.Share.InitBurst = 3
	})
	a, _ := createLink(t, base, `{"appId":"main","name":"a","limit":{"hookUrl":"`+hs.URL+`"}}`)
	b, _ := createLink(t, base, `{"appId":"main","name":"b","limit":{"hookUrl":"`+hs.URL+`"}}`)
	for i := range 3 {
		if resp, body := shareInit(t, base, a, "alice"); resp.StatusCode != 200 {
			t.Fatalf("init %d: %d %s", i+1, resp.StatusCode, body)
		}
	}
	resp, body := shareInit(t, base, a, "alice")
	var e envelope
	ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	if resp.StatusCode != 429 || json.Unmarshal([]byte(body), &e) != nil || e.StatusText != "rate_limit_exceeded" || ra < 170 || ra > 180 {
		t.Fatalf("4th init: %d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if n := len(host.callsTo("/shareAuth/init")); n != 3 {
		t.Fatalf("the host got %d inits, want 3", n)
	}
	if resp, body := shareInit(t, base, b, "alice"); resp.StatusCode != 200 {
		t.Fatalf("another link's init: %d %s", resp.StatusCode, body)
	}
	// chats are bounded by the link's own qpm, not by the init limit
	if resp, body := shareChat(t, base, a, "alice", ""); resp.StatusCode != 200 {
		t.Fatalf("chat after the init limit: %d %s", resp.StatusCode, body)
	}
}

// maxUsagePoints means on share links what it means on keys: absent or -1
// unlimited (shown as -1), positive a quota, 0 refused.
func TestShareLinkMaxUsagePoints(t *testing.T) {
	base, _ := sdkServer(t, nil)
	points := func(data json.RawMessage) float64 {
		var l struct {
			Limit struct {
				MaxUsagePoints *float64 `json:"maxUsagePoints"`
			} `json:"limit"`
		}
		if json.Unmarshal(data, &l) != nil || l.Limit.MaxUsagePoints == nil {
			t.Fatalf("no limit.maxUsagePoints in %s", data)
		}
		return *l.Limit.MaxUsagePoints
	}
	create := func(limit string) (string, float64) {
		_, e := envCall(t, "POST", base+"/api/support/outLink/create", sdkAdmin, `{"appId":"main","name":"p","limit":`+limit+`}`)
		var d struct{ ShareID string }
		if e.Code != 200 || json.Unmarshal(e.Data, &d) != nil {
			t.Fatalf("create %s: %+v", limit, e)
		}
		return d.ShareID, points(e.Data)
	}
	for limit, want := range map[string]float64{`{}`: -1, `{"maxUsagePoints":-1}`: -1, `{"maxUsagePoints":2.5}`: 2.5} {
		if _, got := create(limit); got != want {
			t.Fatalf("create %s: maxUsagePoints %v, want %v", limit, got, want)
		}
	}
	// absent from the body: unlimited too
	_, e := envCall(t, "POST", base+"/api/support/outLink/create", sdkAdmin, `{"appId":"main","name":"p"}`)
	if e.Code != 200 || points(e.Data) != -1 {
		t.Fatalf("create without limit: %+v", e)
	}
	id, _ := create(`{"maxUsagePoints":2.5}`)
	update := func(limit string) envelope {
		_, e := envCall(t, "PUT", base+"/api/support/outLink/update", sdkAdmin, `{"shareId":"`+id+`","limit":`+limit+`}`)
		return e
	}
	if e := update(`{"maxUsagePoints":-1}`); e.Code != 200 || points(e.Data) != -1 {
		t.Fatalf("update to -1: %+v", e)
	}
	if e := update(`{"maxUsagePoints":7}`); e.Code != 200 || points(e.Data) != 7 {
		t.Fatalf("update to 7: %+v", e)
	}
	before := linkList(t, base)
	if !strings.Contains(before, `"maxUsagePoints":-1`) || !strings.Contains(before, `"maxUsagePoints":7`) {
		t.Fatalf("list: %s", before)
	}
	for _, v := range []string{"0", "-2", "-0.5", "0.0"} {
		if _, e := envCall(t, "POST", base+"/api/support/outLink/create", sdkAdmin, `{"appId":"main","name":"z","limit":{"maxUsagePoints":`+v+`}}`); e.Code != 400 || !strings.Contains(e.Message, "limit.maxUsagePoints") {
			t.Fatalf("create with %s: %+v", v, e)
		}
		if e := update(`{"maxUsagePoints":` + v + `}`); e.Code != 400 || !strings.Contains(e.Message, "limit.maxUsagePoints") {
			t.Fatalf("update with %s: %+v", v, e)
		}
	}
	if after := linkList(t, base); after != before {
		t.Fatalf("refused quotas changed the links:\n%s\n%s", before, after)
	}
	// an unlimited link is not stopped by spending
	unl, _ := create(`{"maxUsagePoints":-1}`)
	for range 2 {
		if resp, body := shareChat(t, base, unl, "x", ""); resp.StatusCode != 200 {
			t.Fatalf("unlimited link: %d %s", resp.StatusCode, body)
		}
	}
}
