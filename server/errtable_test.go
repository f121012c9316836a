package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/server"
)

const xtAdmin = "xt-admin-key-for-the-error-table"

// xtServe builds a real server with server.New on a fresh data directory
// and serves it on a loopback listener until the test ends.
func xtServe(t *testing.T, cfg server.Config) (string, *server.Server) {
	t.Helper()
	if cfg.Server.Data == "" {
		cfg.Server.Data = t.TempDir()
	}
	if cfg.RootKey == "" {
		cfg.RootKey = xtAdmin
	}
	if cfg.Stderr == nil {
		cfg.Stderr = io.Discard
	}
	cfg.Logging.Level = "error"
	s, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = s.Close(context.Background())
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after cancel")
		}
	})
	return "http://" + ln.Addr().String(), s
}

type xtEnvelope struct {
	Code       int             `json:"code"`
	StatusText string          `json:"statusText"`
	Message    string          `json:"message"`
	Data       json.RawMessage `json:"data"`
}

type xtResult struct {
	status int
	header http.Header
	raw    string
	env    xtEnvelope
}

// xtDo sends a request with the Authorization header as given (none when
// empty) and decodes the envelope; it fails the test if the body is not an
// envelope whose code equals the HTTP status.
func xtDo(t *testing.T, method, url, authz, body string) xtResult {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := xtResult{status: resp.StatusCode, header: resp.Header, raw: string(b)}
	if err := json.Unmarshal(b, &r.env); err != nil {
		t.Fatalf("%s %s: HTTP %d, not an envelope: %s", method, url, resp.StatusCode, b)
	}
	if r.env.Code != resp.StatusCode {
		t.Fatalf("%s %s: HTTP %d but envelope code %d: %s", method, url, resp.StatusCode, r.env.Code, b)
	}
	return r
}

func xtBearer(k string) string { return "Bearer " + k }

// xtCreate creates a key through the API and returns its id and secret.
func xtCreate(t *testing.T, base, body string) (string, string) {
	t.Helper()
	r := xtDo(t, "POST", base+"/api/support/openapi/create", xtBearer(xtAdmin), body)
	var d struct{ ID, Key string }
	if r.status != 200 || json.Unmarshal(r.env.Data, &d) != nil || d.ID == "" || d.Key == "" {
		t.Fatalf("create %s: %s", body, r.raw)
	}
	return d.ID, d.Key
}

// xtSnapshot is the key list as the admin sees it, minus the fields that
// using a key changes.
func xtSnapshot(t *testing.T, base string) string {
	t.Helper()
	r := xtDo(t, "GET", base+"/api/support/openapi/list", xtBearer(xtAdmin), "")
	if r.status != 200 {
		t.Fatalf("list: %s", r.raw)
	}
	var keys []map[string]any
	if err := json.Unmarshal(r.env.Data, &keys); err != nil {
		t.Fatal(err)
	}
	if len(keys) == 0 {
		t.Fatal("empty key list")
	}
	for _, k := range keys {
		delete(k, "lastUsedTime")
		delete(k, "usagePoints")
	}
	b, _ := json.Marshal(keys)
	return string(b)
}

// xtFlipChecksum changes one character of a generated key's checksum (the
// last six characters), keeping it base62 so only the checksum is wrong.
func xtFlipChecksum(k string) string {
	i := len(k) - 3
	c := byte('a')
	if k[i] == 'a' {
		c = 'b'
	}
	return k[:i] + string(c) + k[i+1:]
}

func TestErrTableKeyAPI(t *testing.T) {
	base, s := xtServe(t, server.Config{})
	ctx := context.Background()

	_, appKey := xtCreate(t, base, `{"name":"app","appId":"main"}`)
	_, good := xtCreate(t, base, `{"name":"good"}`)
	badChecksum := xtFlipChecksum(good)
	if badChecksum == good || len(badChecksum) != len(good) {
		t.Fatal("flip did not change the key")
	}
	revokedID, revoked := xtCreate(t, base, `{"name":"revoked"}`)
	if r := xtDo(t, "DELETE", base+"/api/support/openapi/delete?id="+revokedID, xtBearer(xtAdmin), ""); r.status != 200 {
		t.Fatalf("delete: %s", r.raw)
	}
	rotatedID, rotated := xtCreate(t, base, `{"name":"rotated"}`)
	r := xtDo(t, "POST", base+"/api/support/openapi/rotate", xtBearer(xtAdmin), `{"id":"`+rotatedID+`","graceSeconds":0}`)
	var rot struct{ Key string }
	if r.status != 200 || json.Unmarshal(r.env.Data, &rot) != nil || rot.Key == "" || rot.Key == rotated {
		t.Fatalf("rotate: %s", r.raw)
	}
	disabledID, disabled := xtCreate(t, base, `{"name":"disabled"}`)
	if r := xtDo(t, "PUT", base+"/api/support/openapi/update", xtBearer(xtAdmin), `{"id":"`+disabledID+`","disabled":true}`); r.status != 200 {
		t.Fatalf("disable: %s", r.raw)
	}
	_, expired, err := s.Keys.Create(ctx, auth.KeySpec{Name: "expired", Limit: auth.Limit{ExpiredTime: time.Now().Add(-time.Minute)}})
	if err != nil {
		t.Fatal(err)
	}
	_, fenced := xtCreate(t, base, `{"name":"fenced","allowedIPs":["10.0.0.0/8"]}`)
	_, thrifty := xtCreate(t, base, `{"name":"thrifty","appId":"main","limit":{"maxUsagePoints":0.0001}}`)
	_, slow := xtCreate(t, base, `{"name":"slow","limit":{"rpm":1}}`)

	// the keys that must work before they are broken, do
	for name, k := range map[string]string{"good": good, "rotated's new key": rot.Key, "slow": slow, "app": appKey} {
		if r := xtDo(t, "GET", base+"/api/support/openapi/me", xtBearer(k), ""); r.status != 200 {
			t.Fatalf("%s on /me: %s", name, r.raw)
		}
	}
	// spend thrifty's points: chat until the quota answers 429
	spent := false
	for i := 0; i < 20 && !spent; i++ {
		req, _ := http.NewRequest("POST", base+"/api/v1/chat/completions",
			strings.NewReader(`{"messages":[{"role":"user","content":"hello there, what can you do?"}]}`))
		req.Header.Set("Authorization", xtBearer(thrifty))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch resp.StatusCode {
		case 200:
		case 429:
			if !strings.Contains(string(b), "insufficient_quota") {
				t.Fatalf("chat 429 is not insufficient_quota: %s", b)
			}
			spent = true
		default:
			t.Fatalf("chat with thrifty: %d %s", resp.StatusCode, b)
		}
	}
	if !spent {
		t.Fatal("20 chats did not spend 0.0001 points")
	}

	type row struct {
		name, authz, statusText string
		status                  int
	}
	authRows := []row{
		{"no header", "", "invalid_api_key", 401},
		{"garbled header", "Token abc def", "invalid_api_key", 401},
		{"bearer without key", "Bearer ", "invalid_api_key", 401},
		{"unknown key", xtBearer("xt-unknown-imported-looking-key"), "invalid_api_key", 401},
		{"bad checksum", xtBearer(badChecksum), "invalid_api_key", 401},
		{"revoked", xtBearer(revoked), "invalid_api_key", 401},
		{"rotated past grace", xtBearer(rotated), "invalid_api_key", 401},
		{"disabled", xtBearer(disabled), "api_key_disabled", 401},
		{"expired", xtBearer(expired), "api_key_expired", 401},
		{"ip not allowed", xtBearer(fenced), "ip_not_allowed", 403},
		{"points spent", xtBearer(thrifty), "insufficient_quota", 429},
		{"rate limited", xtBearer(slow), "rate_limit_exceeded", 429},
	}
	routes := []struct{ method, path, body string }{
		{"GET", "/api/support/openapi/me", ""},
		{"GET", "/api/support/openapi/list", ""},
		{"POST", "/api/support/openapi/create", `{"name":"should-not-exist"}`},
		{"PUT", "/api/support/openapi/update", `{"id":"` + disabledID + `","disabled":false}`},
		{"POST", "/api/support/openapi/rotate", `{"id":"` + disabledID + `"}`},
		{"DELETE", "/api/support/openapi/delete?id=" + disabledID, ""},
	}

	before := xtSnapshot(t, base)
	check := func(t *testing.T, r xtResult, status int, statusText string) {
		t.Helper()
		if r.status != status || r.env.StatusText != statusText || r.env.Message == "" {
			t.Errorf("HTTP %d %s; want %d %s", r.status, r.raw, status, statusText)
		}
		if after := xtSnapshot(t, base); after != before {
			t.Fatalf("a failed request changed the keys:\nbefore %s\nafter  %s", before, after)
		}
	}
	for _, rw := range authRows {
		for _, rt := range routes {
			t.Run(rw.name+"/"+rt.method+" "+strings.TrimPrefix(rt.path, "/api/support/openapi/"), func(t *testing.T) {
				r := xtDo(t, rt.method, base+rt.path, rw.authz, rt.body)
				check(t, r, rw.status, rw.statusText)
				if rw.statusText == "rate_limit_exceeded" {
					ra, err := strconv.Atoi(r.header.Get("Retry-After"))
					if err != nil || ra < 1 || ra > 60 {
						t.Errorf("Retry-After %q, want 1..60 seconds", r.header.Get("Retry-After"))
					}
				} else if r.header.Get("Retry-After") != "" {
					t.Errorf("Retry-After %q on %s", r.header.Get("Retry-After"), rw.statusText)
				}
			})
		}
	}
	// an app key (scope chat) on every admin route of the key API
	for _, rt := range routes[1:] {
		t.Run("scope missing/"+rt.method+" "+rt.path, func(t *testing.T) {
			check(t, xtDo(t, rt.method, base+rt.path, xtBearer(appKey), rt.body), 403, "scope_denied")
		})
	}

	// bad bodies and fields: 400 invalid_request naming the field
	adm := xtBearer(xtAdmin)
	badRows := []struct{ name, method, path, body, field string }{
		{"name wrong type", "POST", "/api/support/openapi/create", `{"name":5}`, "name"},
		{"name missing", "POST", "/api/support/openapi/create", `{"appId":"main"}`, "name"},
		{"unknown field", "POST", "/api/support/openapi/create", `{"name":"x","colour":"red"}`, "colour"},
		{"negative rpm", "POST", "/api/support/openapi/create", `{"name":"x","limit":{"rpm":-1}}`, "limit.rpm"},
		{"zero points", "POST", "/api/support/openapi/create", `{"name":"x","limit":{"maxUsagePoints":0}}`, "limit.maxUsagePoints"},
		{"bad expiry", "POST", "/api/support/openapi/create", `{"name":"x","limit":{"expiredTime":"tomorrow"}}`, "limit.expiredTime"},
		{"bad CIDR", "POST", "/api/support/openapi/create", `{"name":"x","allowedIPs":["10.0.0.0/99"]}`, "allowedIPs"},
		{"bad scope", "POST", "/api/support/openapi/create", `{"name":"x","scopes":["root"]}`, "scopes"},
		{"key on create", "POST", "/api/support/openapi/create", `{"name":"x","key":"abcdefgh"}`, "key"},
		{"short import", "POST", "/api/support/openapi/import", `{"name":"x","key":"abc"}`, "key"},
		{"update without id", "PUT", "/api/support/openapi/update", `{"disabled":true}`, "id"},
		{"update disabled type", "PUT", "/api/support/openapi/update", `{"id":"` + disabledID + `","disabled":"yes"}`, "disabled"},
		{"update bad rpm", "PUT", "/api/support/openapi/update", `{"id":"` + disabledID + `","limit":{"rpm":-5}}`, "limit.rpm"},
		{"rotate negative grace", "POST", "/api/support/openapi/rotate", `{"id":"` + disabledID + `","graceSeconds":-1}`, "graceSeconds"},
		{"rotate without id", "POST", "/api/support/openapi/rotate", `{}`, "id"},
		{"delete without id", "DELETE", "/api/support/openapi/delete", ``, "id"},
		{"audit bad limit", "GET", "/api/support/openapi/audit?limit=0", ``, "limit"},
		{"malformed JSON", "POST", "/api/support/openapi/create", `{"name":`, ""},
		{"two JSON values", "POST", "/api/support/openapi/create", `{"name":"a"}{"name":"b"}`, ""},
	}
	for _, br := range badRows {
		t.Run("bad body/"+br.name, func(t *testing.T) {
			r := xtDo(t, br.method, base+br.path, adm, br.body)
			if br.field != "" && !strings.Contains(r.env.Message, `"`+br.field+`"`) {
				t.Errorf("message %q does not name the field %q", r.env.Message, br.field)
			}
			check(t, r, 400, "invalid_request")
		})
	}

	// the table is able to tell: a working key still works, and the
	// disabled key comes back once enabled
	if r := xtDo(t, "GET", base+"/api/support/openapi/me", xtBearer(good), ""); r.status != 200 {
		t.Fatalf("good key after the table: %s", r.raw)
	}
	if r := xtDo(t, "PUT", base+"/api/support/openapi/update", adm, `{"id":"`+disabledID+`","disabled":false}`); r.status != 200 {
		t.Fatalf("enable: %s", r.raw)
	}
	if r := xtDo(t, "GET", base+"/api/support/openapi/me", xtBearer(disabled), ""); r.status != 200 {
		t.Fatalf("re-enabled key: %s", r.raw)
	}
	if xtSnapshot(t, base) == before {
		t.Fatal("snapshot did not see the key being enabled")
	}
}

// TestErrTableExpiresThroughAPI creates a key through the API that expires a
// second from now and sees it pass, then fail with api_key_expired.
func TestErrTableExpiresThroughAPI(t *testing.T) {
	base, _ := xtServe(t, server.Config{})
	exp := time.Now().Add(time.Second).UTC().Format(time.RFC3339Nano)
	_, k := xtCreate(t, base, `{"name":"soon","limit":{"expiredTime":"`+exp+`"}}`)
	if r := xtDo(t, "GET", base+"/api/support/openapi/me", xtBearer(k), ""); r.status != 200 {
		t.Fatalf("before expiry: %s", r.raw)
	}
	time.Sleep(1200 * time.Millisecond)
	before := xtSnapshot(t, base)
	r := xtDo(t, "GET", base+"/api/support/openapi/me", xtBearer(k), "")
	if r.status != 401 || r.env.StatusText != "api_key_expired" {
		t.Fatalf("after expiry: %s", r.raw)
	}
	if after := xtSnapshot(t, base); after != before {
		t.Fatalf("changed:\n%s\n%s", before, after)
	}
}
