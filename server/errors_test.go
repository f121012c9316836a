package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/server"
)

// etRoot is the root key of the servers in this file.
const etRoot = "errors-test-root-key"

// etServe starts the real server on a fresh data directory, served on a
// loopback listener, and stops it (which closes it) when the test ends.
func etServe(t *testing.T, mutate func(*server.Config)) (string, *server.Server) {
	t.Helper()
	cfg := server.Config{RootKey: etRoot, Stderr: io.Discard}
	cfg.Server.Data = t.TempDir()
	cfg.Logging.Level = "error"
	if mutate != nil {
		mutate(&cfg)
	}
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
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String(), s
}

// etResult is one answer: its status, headers, raw body and the envelope.
type etResult struct {
	status int
	header http.Header
	raw    string
	env    struct {
		Code       int             `json:"code"`
		StatusText string          `json:"statusText"`
		Message    string          `json:"message"`
		Data       json.RawMessage `json:"data"`
	}
}

// etDo sends one request; authz is the whole Authorization header (none when
// empty). It checks what every answer of the key API must hold: a JSON
// envelope with only FastGPT's fields, whose code is the HTTP status.
func etDo(t *testing.T, method, url, authz, body string, extra ...string) etResult {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(extra); i += 2 {
		req.Header.Set(extra[i], extra[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := etResult{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s %s: Content-Type %q: %s", method, url, ct, raw)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		t.Fatalf("%s %s: not a JSON object: %d %s", method, url, resp.StatusCode, raw)
	}
	for k := range fields {
		if !slices.Contains([]string{"code", "statusText", "message", "data"}, k) {
			t.Fatalf("%s %s: envelope has field %q: %s", method, url, k, raw)
		}
	}
	for _, k := range []string{"code", "statusText", "message"} {
		if _, ok := fields[k]; !ok {
			t.Fatalf("%s %s: envelope lacks %q: %s", method, url, k, raw)
		}
	}
	_ = json.Unmarshal(raw, &r.env)
	if r.env.Code != resp.StatusCode {
		t.Fatalf("%s %s: HTTP %d but envelope code %d: %s", method, url, resp.StatusCode, r.env.Code, raw)
	}
	return r
}

// etState is everything a failed request must leave alone: every key of
// every team with its live usage, and the audit trail of changes. Auth
// failures are audited by design, so auth.* events are not part of it.
// The usage of skipUsage, a key that authenticated and was then refused
// further on, may change: it was used.
func etState(t *testing.T, s *server.Server, skipUsage string) string {
	t.Helper()
	ctx := context.Background()
	ks, err := s.Keys.List(ctx, auth.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		Key       *auth.Key
		Points    float64
		LastUsed  time.Time
		Retired   int
		UpdatedAt time.Time
	}
	rows := make([]row, 0, len(ks))
	for _, k := range ks {
		r := row{Key: k, Points: k.UsagePoints, LastUsed: k.LastUsedTime, Retired: len(k.Retired), UpdatedAt: k.UpdateTime}
		if k.ID == skipUsage {
			r.Points, r.LastUsed = 0, time.Time{}
		}
		rows = append(rows, r)
	}
	evs, err := s.Keys.Audit(ctx, auth.AuditQuery{Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	var changes []auth.AuditEvent
	for _, e := range evs {
		if !strings.HasPrefix(string(e.Action), "auth.") {
			changes = append(changes, e)
		}
	}
	b, err := json.Marshal(struct {
		Keys    []row
		Changes []auth.AuditEvent
	}{rows, changes})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// etWellFormed returns a key of the generated shape, with a valid checksum,
// that no server has issued: prefix, 43 base62 digits, 6 base62 digits of
// the CRC32 of what precedes them (DESIGN.md section 4).
func etWellFormed(body byte) string {
	signed := "cg-" + strings.Repeat(string(body), 43)
	return signed + etChecksum(signed)
}

func etChecksum(signed string) string {
	const digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	v := uint64(crc32.ChecksumIEEE([]byte(signed)))
	out := make([]byte, 6)
	for i := 5; i >= 0; i-- {
		out[i] = digits[v%62]
		v /= 62
	}
	return string(out)
}

// etKey creates a key through the manager, as a program embedding the server would.
func etKey(t *testing.T, s *server.Server, spec auth.KeySpec) (*auth.Key, string) {
	t.Helper()
	k, secret, err := s.Keys.Create(context.Background(), spec)
	if err != nil {
		t.Fatalf("create %+v: %v", spec, err)
	}
	return k, secret
}

// TestKeyAPIAuthErrors sends every authentication row of the README's error
// table to every route of the key API, with a body that would succeed for a
// good admin key, and checks the status, the envelope, the Retry-After
// header, that the failure is audited under its reason, and that nothing
// else in the store changed: no key created, changed, rotated, revoked or
// marked used.
//
// Every row comes from 127.0.0.1, far more than the failure throttle allows
// in a minute; it is turned off here so each row gets its own answer, and
// tested on its own (TestAuthFailureThrottle).
func TestKeyAPIAuthErrors(t *testing.T) {
	base, s := etServe(t, func(cfg *server.Config) { cfg.Auth.FailureLimitPerMinute = -1 })
	ctx := context.Background()
	admin := auth.Scopes{auth.ScopeAdmin}

	ops, opsKey := etKey(t, s, auth.KeySpec{Name: "ops", Scopes: admin})
	victim, _ := etKey(t, s, auth.KeySpec{Name: "victim"})
	reader, readerKey := etKey(t, s, auth.KeySpec{Name: "reader"}) // default global scopes: no admin
	app, appKey := etKey(t, s, auth.KeySpec{Name: "app", AppID: "main"})
	revoked, revokedKey := etKey(t, s, auth.KeySpec{Name: "revoked", Scopes: admin})
	if err := s.Keys.Revoke(ctx, "", revoked.ID, ""); err != nil {
		t.Fatal(err)
	}
	rotated, rotatedKey := etKey(t, s, auth.KeySpec{Name: "rotated", Scopes: admin})
	if _, _, err := s.Keys.Rotate(ctx, "", rotated.ID, 0, ""); err != nil {
		t.Fatal(err)
	}
	graced, gracedKey := etKey(t, s, auth.KeySpec{Name: "graced", Scopes: admin})
	if _, _, err := s.Keys.Rotate(ctx, "", graced.ID, 400*time.Millisecond, ""); err != nil {
		t.Fatal(err)
	}
	gracedEnd := time.Now().Add(400 * time.Millisecond)
	disabled, disabledKey := etKey(t, s, auth.KeySpec{Name: "disabled", Scopes: admin})
	yes := true
	if _, err := s.Keys.Update(ctx, "", disabled.ID, auth.KeyUpdate{Disabled: &yes}); err != nil {
		t.Fatal(err)
	}
	expired, expiredKey := etKey(t, s, auth.KeySpec{Name: "expired", Scopes: admin,
		Limit: auth.Limit{ExpiredTime: time.Now().Add(-time.Minute)}})
	fenced, fencedKey := etKey(t, s, auth.KeySpec{Name: "fenced", Scopes: admin,
		AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	spent, spentKey := etKey(t, s, auth.KeySpec{Name: "spent", Scopes: admin, Limit: auth.Limit{MaxUsagePoints: 1}})
	if err := s.Authn.Charge(ctx, spent.ID, 1); err != nil {
		t.Fatal(err)
	}
	slow, slowKey := etKey(t, s, auth.KeySpec{Name: "slow", Scopes: admin, Limit: auth.Limit{RPM: 1}})

	me := base + "/api/support/openapi/me"
	// Before: each limited key works while inside its limit.
	for _, k := range []string{opsKey, gracedKey, slowKey} {
		if r := etDo(t, "GET", me, "Bearer "+k, ""); r.status != 200 {
			t.Fatalf("a good key: %d %s", r.status, r.raw)
		}
	}
	if d := time.Until(gracedEnd); d > 0 {
		time.Sleep(d + 50*time.Millisecond)
	}

	// A real key whose checksum no longer matches: one body digit changed.
	i := len("cg-") + 10
	swap := byte('A')
	if opsKey[i] == 'A' {
		swap = 'B'
	}
	badChecksum := opsKey[:i] + string(swap) + opsKey[i+1:]
	if got := etChecksum(opsKey[:len(opsKey)-6]); got != opsKey[len(opsKey)-6:] {
		t.Fatalf("the key format changed: checksum of %q is %s", opsKey, got)
	}

	type route struct{ method, path, body string }
	routes := []route{
		{"POST", "/api/support/openapi/create", `{"name":"intruder","scopes":["admin"]}`},
		{"POST", "/api/support/openapi/import", `{"name":"intruder","key":"intruder-key-1"}`},
		{"GET", "/api/support/openapi/list", ""},
		{"PUT", "/api/support/openapi/update", `{"id":"` + victim.ID + `","disabled":true}`},
		{"DELETE", "/api/support/openapi/delete?id=" + victim.ID, ""},
		{"POST", "/api/support/openapi/rotate", `{"id":"` + victim.ID + `","graceSeconds":0}`},
		{"GET", "/api/support/openapi/audit", ""},
		{"GET", "/api/support/openapi/me", ""},
	}
	cases := []struct {
		name       string
		authz      string
		keyID      string // the key the failure is audited under; "" when none is known
		status     int
		statusText string
		skipMe     bool     // /me needs no scope
		skipUsage  string   // a key that authenticated before the refusal
		headers    []string // extra request headers
		msg        string   // what the message must say: the 401s tell their causes apart
	}{
		{name: "no header", status: 401, statusText: "invalid_api_key", msg: "API key is missing: send the header Authorization: Bearer <API key>"},
		{name: "empty bearer", authz: "Bearer ", status: 401, statusText: "invalid_api_key", msg: "API key is missing"},
		{name: "basic scheme", authz: "Basic " + opsKey, status: 401, statusText: "invalid_api_key", msg: "Authorization header is not a Bearer token"},
		{name: "no scheme", authz: opsKey, status: 401, statusText: "invalid_api_key", msg: "Authorization header is not a Bearer token"},
		{name: "two tokens", authz: "Bearer " + opsKey + " " + opsKey, status: 401, statusText: "invalid_api_key", msg: "API key is malformed: the Bearer value must be one key, without spaces"},
		{name: "non-ASCII token", authz: "Bearer ключ-ключ-ключ", status: 401, statusText: "invalid_api_key", msg: "API key is malformed: a key holds printable ASCII characters only"},
		{name: "too short", authz: "Bearer abcd", status: 401, statusText: "invalid_api_key", msg: "API key is malformed: a key has 5 to 256 characters"},
		{name: "unknown imported-style key", authz: "Bearer never-issued-key", status: 401, statusText: "invalid_api_key", msg: "API key is not recognised"},
		{name: "unknown well-formed key", authz: "Bearer " + etWellFormed('z'), status: 401, statusText: "invalid_api_key", msg: "API key is not recognised"},
		{name: "bad checksum", authz: "Bearer " + badChecksum, status: 401, statusText: "invalid_api_key", msg: "API key is malformed: its checksum does not match"},
		{name: "truncated key", authz: "Bearer " + opsKey[:len(opsKey)-1], status: 401, statusText: "invalid_api_key", msg: "API key is malformed: it carries the prefix of generated keys but not their length"},
		{name: "revoked", authz: "Bearer " + revokedKey, status: 401, statusText: "invalid_api_key", msg: "API key is not recognised"},
		{name: "rotated without grace", authz: "Bearer " + rotatedKey, status: 401, statusText: "invalid_api_key", msg: "API key is not recognised"},
		{name: "rotated past grace", authz: "Bearer " + gracedKey, status: 401, statusText: "invalid_api_key", keyID: graced.ID, msg: "API key is not recognised"},
		{name: "disabled", authz: "Bearer " + disabledKey, status: 401, statusText: "api_key_disabled", keyID: disabled.ID},
		{name: "expired", authz: "Bearer " + expiredKey, status: 401, statusText: "api_key_expired", keyID: expired.ID},
		{name: "ip not allowed", authz: "Bearer " + fencedKey, status: 403, statusText: "ip_not_allowed", keyID: fenced.ID},
		{name: "ip spoofed by an untrusted peer", authz: "Bearer " + fencedKey, status: 403, statusText: "ip_not_allowed",
			keyID: fenced.ID, headers: []string{"X-Forwarded-For", "10.1.2.3", "X-Real-IP", "10.1.2.3"}},
		{name: "global key without admin", authz: "Bearer " + readerKey, status: 403, statusText: "scope_denied",
			keyID: reader.ID, skipMe: true, skipUsage: reader.ID, msg: "API key lacks the scope this route needs: admin"},
		{name: "app key", authz: "Bearer " + appKey, status: 403, statusText: "scope_denied",
			keyID: app.ID, skipMe: true, skipUsage: app.ID, msg: "API key lacks the scope this route needs: admin"},
		{name: "points spent", authz: "Bearer " + spentKey, status: 429, statusText: "insufficient_quota", keyID: spent.ID},
		{name: "rate limited", authz: "Bearer " + slowKey, status: 429, statusText: "rate_limit_exceeded", keyID: slow.ID},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, rt := range routes {
				if tc.skipMe && strings.HasSuffix(rt.path, "/me") {
					continue
				}
				before := etState(t, s, tc.skipUsage)
				r := etDo(t, rt.method, base+rt.path, tc.authz, rt.body, tc.headers...)
				if r.status != tc.status || r.env.StatusText != tc.statusText || r.env.Message == "" || !strings.HasPrefix(r.env.Message, tc.msg) {
					t.Fatalf("%s %s: %d %s; want %d %s %q", rt.method, rt.path, r.status, r.raw, tc.status, tc.statusText, tc.msg)
				}
				if len(r.env.Data) != 0 && string(r.env.Data) != "null" {
					t.Fatalf("%s %s: an error carries data: %s", rt.method, rt.path, r.raw)
				}
				if strings.Contains(r.raw, opsKey) || (tc.authz != "" && len(tc.authz) > 12 && strings.Contains(r.raw, strings.TrimPrefix(tc.authz, "Bearer "))) {
					t.Fatalf("%s %s: the answer repeats the key: %s", rt.method, rt.path, r.raw)
				}
				ra := r.header.Get("Retry-After")
				if tc.statusText == "rate_limit_exceeded" {
					if n, err := strconv.Atoi(ra); err != nil || n < 1 || n > 60 {
						t.Fatalf("%s %s: Retry-After %q; want 1-60 seconds", rt.method, rt.path, ra)
					}
				} else if ra != "" {
					t.Fatalf("%s %s: Retry-After %q on %s", rt.method, rt.path, ra, tc.statusText)
				}
				if after := etState(t, s, tc.skipUsage); after != before {
					t.Fatalf("%s %s changed the store:\nbefore %s\nafter  %s", rt.method, rt.path, before, after)
				}
			}
			if tc.keyID != "" {
				etWaitAudit(t, s, tc.keyID, tc.statusText)
			}
		})
	}
	// The victim survived every attempt, unchanged and not rotated.
	if k, err := s.Keys.Get(ctx, "", victim.ID); err != nil || k.Disabled || k.Hash != victim.Hash {
		t.Fatalf("victim: %+v %v", k, err)
	}
	if r := etDo(t, "GET", me, "Bearer "+opsKey, ""); r.status != 200 || !strings.Contains(string(r.env.Data), ops.ID) {
		t.Fatalf("ops after the table: %d %s", r.status, r.raw)
	}
}

// etWaitAudit waits for the audit trail to record a failure of keyID for
// reason; failures are written asynchronously, in batches.
func etWaitAudit(t *testing.T, s *server.Server, keyID, reason string) {
	t.Helper()
	action := auth.AuditAuthFailed
	if reason == "scope_denied" {
		action = auth.AuditScopeDenied
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		evs, err := s.Keys.Audit(context.Background(), auth.AuditQuery{KeyID: keyID, Action: action})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if action == auth.AuditScopeDenied || e.Reason == reason {
				if e.RemoteIP != "127.0.0.1" {
					t.Fatalf("audit event %+v: remote IP", e)
				}
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s/%s audit event for %s: %+v", action, reason, keyID, evs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestKeyAPIRequestErrors sends bad bodies, fields and ids to each key API
// route with a good admin key: 400 invalid_request naming the field (or 404
// and 409 where the README's table says so), and no change in the store.
func TestKeyAPIRequestErrors(t *testing.T) {
	base, s := etServe(t, nil)
	ctx := context.Background()
	ops, opsKey := etKey(t, s, auth.KeySpec{Name: "ops", Scopes: auth.Scopes{auth.ScopeAdmin}})
	victim, _ := etKey(t, s, auth.KeySpec{Name: "victim"})
	foreign, _ := etKey(t, s, auth.KeySpec{Name: "foreign", TeamID: "other-team"})
	_, taken := etKey(t, s, auth.KeySpec{Name: "taken"})
	v, f := victim.ID, foreign.ID
	bigName := strings.Repeat("n", 70<<10)

	for _, tc := range []struct {
		method, path, body string
		status             int
		statusText, field  string
	}{
		// create
		{"POST", "create", `{"name":5}`, 400, "invalid_request", `"name"`},
		{"POST", "create", `{"name":"x","colour":"red"}`, 400, "invalid_request", `"colour"`},
		{"POST", "create", `{}`, 400, "invalid_request", `"name"`},
		{"POST", "create", `{"name":"   "}`, 400, "invalid_request", `"name"`},
		{"POST", "create", `{"name":"` + strings.Repeat("n", 201) + `"}`, 400, "invalid_request", `"name"`},
		{"POST", "create", `{"name":"x","appId":7}`, 400, "invalid_request", `"appId"`},
		{"POST", "create", `{"name":"x","scopes":"admin"}`, 400, "invalid_request", `"scopes"`},
		{"POST", "create", `{"name":"x","scopes":["root"]}`, 400, "invalid_request", `"scopes"`},
		{"POST", "create", `{"name":"x","limit":{"rpm":-1}}`, 400, "invalid_request", `"limit.rpm"`},
		{"POST", "create", `{"name":"x","limit":{"rpm":"fast"}}`, 400, "invalid_request", `"limit.rpm"`},
		{"POST", "create", `{"name":"x","limit":{"rpm":1.5}}`, 400, "invalid_request", `"limit.rpm"`},
		{"POST", "create", `{"name":"x","limit":{"maxUsagePoints":0}}`, 400, "invalid_request", `"limit.maxUsagePoints"`},
		{"POST", "create", `{"name":"x","limit":{"maxUsagePoints":-2}}`, 400, "invalid_request", `"limit.maxUsagePoints"`},
		{"POST", "create", `{"name":"x","limit":{"expiredTime":"soon"}}`, 400, "invalid_request", `"limit.expiredTime"`},
		{"POST", "create", `{"name":"x","limit":{"expiredTime":"2027-01-02"}}`, 400, "invalid_request", `"limit.expiredTime"`},
		{"POST", "create", `{"name":"x","limit":{"burst":3}}`, 400, "invalid_request", `"burst"`},
		{"POST", "create", `{"name":"x","allowedIPs":["not-an-ip"]}`, 400, "invalid_request", `"allowedIPs"`},
		{"POST", "create", `{"name":"x","allowedIPs":"10.0.0.0/8"}`, 400, "invalid_request", `"allowedIPs"`},
		{"POST", "create", `{"name":"x","teamId":"other-team"}`, 400, "invalid_request", `"teamId"`},
		{"POST", "create", `{"name":"x","key":"abcdefgh"}`, 400, "invalid_request", `"key"`},
		{"POST", "create", ``, 400, "invalid_request", "empty"},
		{"POST", "create", `{"name":`, 400, "invalid_request", "truncated"},
		{"POST", "create", `{"name" "x"}`, 400, "invalid_request", "malformed"},
		{"POST", "create", `{"name":"x"} {"name":"y"}`, 400, "invalid_request", "single JSON value"},
		{"POST", "create", `[{"name":"x"}]`, 400, "invalid_request", "object"},
		{"POST", "create", `{"name":"` + bigName + `"}`, 400, "invalid_request", "exceeds"},
		// import
		{"POST", "import", `{"name":"x","key":"abcd"}`, 400, "invalid_request", `"key"`},
		{"POST", "import", `{"name":"x"}`, 400, "invalid_request", `"key"`},
		{"POST", "import", `{"name":"x","key":"has a space"}`, 400, "invalid_request", `"key"`},
		{"POST", "import", `{"name":"x","key":"cg-notagenerated"}`, 400, "invalid_request", `"key"`},
		{"POST", "import", `{"name":"x","key":"` + strings.Repeat("k", 257) + `"}`, 400, "invalid_request", `"key"`},
		{"POST", "import", `{"key":"fine-key-123"}`, 400, "invalid_request", `"name"`},
		// a key some key already has: the same 400 as any bad key, no hint that it exists
		{"POST", "import", `{"name":"again","key":"` + taken + `"}`, 400, "invalid_request", `"key": cannot be imported; choose another key`},
		// update
		{"PUT", "update", `{"name":"x"}`, 400, "invalid_request", `"id"`},
		{"PUT", "update", `{"id":"` + v + `","name":""}`, 400, "invalid_request", `"name"`},
		{"PUT", "update", `{"id":"` + v + `","name":7}`, 400, "invalid_request", `"name"`},
		{"PUT", "update", `{"id":"` + v + `","scopes":["bogus"]}`, 400, "invalid_request", `"scopes"`},
		{"PUT", "update", `{"id":"` + v + `","scopes":[]}`, 400, "invalid_request", `"scopes"`},
		{"PUT", "update", `{"id":"` + v + `","limit":{"rpm":-5}}`, 400, "invalid_request", `"limit.rpm"`},
		{"PUT", "update", `{"id":"` + v + `","limit":{"maxUsagePoints":0}}`, 400, "invalid_request", `"limit.maxUsagePoints"`},
		{"PUT", "update", `{"id":"` + v + `","limit":{"expiredTime":"tomorrow"}}`, 400, "invalid_request", `"limit.expiredTime"`},
		{"PUT", "update", `{"id":"` + v + `","allowedIPs":["300.1.1.1"]}`, 400, "invalid_request", `"allowedIPs"`},
		{"PUT", "update", `{"id":"` + v + `","disabled":"yes"}`, 400, "invalid_request", `"disabled"`},
		{"PUT", "update", `{"id":"` + v + `","appId":"main"}`, 400, "invalid_request", `"appId"`},
		{"PUT", "update", `{"id":"` + v + `"}`, 400, "invalid_request", "nothing to update"},
		{"PUT", "update", `{"id":"missing","name":"x"}`, 404, "not_found", ""},
		{"PUT", "update", `{"id":"` + f + `","name":"x"}`, 404, "not_found", ""},
		{"PUT", "update", `{"id":"` + f + `","limit":{"rpm":1}}`, 404, "not_found", ""},
		{"PUT", "update", `{"id":"root","name":"x"}`, 409, "key_managed_by_config", ""},
		// delete
		{"DELETE", "delete", ``, 400, "invalid_request", `"id"`},
		{"DELETE", "delete?id=" + ops.ID, ``, 400, "invalid_request", `"id"`},
		{"DELETE", "delete?id=missing", ``, 404, "not_found", ""},
		{"DELETE", "delete?id=" + f, ``, 404, "not_found", ""},
		{"DELETE", "delete?id=root", ``, 409, "key_managed_by_config", ""},
		// rotate
		{"POST", "rotate", `{"graceSeconds":0}`, 400, "invalid_request", `"id"`},
		{"POST", "rotate", `{"id":"` + v + `","graceSeconds":-1}`, 400, "invalid_request", `"graceSeconds"`},
		{"POST", "rotate", `{"id":"` + v + `","graceSeconds":99999999}`, 400, "invalid_request", `"graceSeconds"`},
		{"POST", "rotate", `{"id":"` + v + `","graceSeconds":"1h"}`, 400, "invalid_request", `"graceSeconds"`},
		{"POST", "rotate", `{"id":"` + v + `","grace":60}`, 400, "invalid_request", `"grace"`},
		{"POST", "rotate", `{"id":"missing","graceSeconds":0}`, 404, "not_found", ""},
		{"POST", "rotate", `{"id":"` + f + `","graceSeconds":0}`, 404, "not_found", ""},
		{"POST", "rotate", `{"id":"root","graceSeconds":0}`, 409, "key_managed_by_config", ""},
		// audit
		{"GET", "audit?limit=0", ``, 400, "invalid_request", `"limit"`},
		{"GET", "audit?limit=abc", ``, 400, "invalid_request", `"limit"`},
		{"GET", "audit?limit=1001", ``, 400, "invalid_request", `"limit"`},
		// unknown routes and methods under the key API
		{"GET", "create", ``, 405, "method_not_allowed", "use POST"},
		{"POST", "nothing", `{}`, 404, "not_found", ""},
	} {
		name := tc.method + " " + tc.path + " " + tc.body
		if len(name) > 80 {
			name = name[:80]
		}
		t.Run(name, func(t *testing.T) {
			before := etState(t, s, ops.ID)
			r := etDo(t, tc.method, base+"/api/support/openapi/"+tc.path, "Bearer "+opsKey, tc.body)
			if r.status != tc.status || r.env.StatusText != tc.statusText || r.env.Message == "" {
				t.Fatalf("%d %s; want %d %s", r.status, r.raw, tc.status, tc.statusText)
			}
			if tc.field != "" && !strings.Contains(r.env.Message, tc.field) {
				t.Fatalf("message %q does not name %s", r.env.Message, tc.field)
			}
			if strings.Contains(r.raw, taken) || len(r.raw) > 2000 {
				t.Fatalf("the answer repeats the request: %.300s", r.raw)
			}
			if after := etState(t, s, ops.ID); after != before {
				t.Fatalf("a refused request changed the store:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
	// the same calls with good bodies work, so the table tested the bodies
	for _, c := range [][3]string{
		{"PUT", "update", `{"id":"` + v + `","name":"renamed","limit":{"rpm":5,"maxUsagePoints":3,"expiredTime":"2099-01-01T00:00:00Z"},"allowedIPs":["127.0.0.1"]}`},
		{"POST", "rotate", `{"id":"` + v + `","graceSeconds":60}`},
		{"GET", "audit?limit=1000", ``},
		{"POST", "import", `{"name":"fine","key":"fine-key-123"}`},
		{"DELETE", "delete?id=" + v, ``},
	} {
		if r := etDo(t, c[0], base+"/api/support/openapi/"+c[1], "Bearer "+opsKey, c[2]); r.status != 200 {
			t.Fatalf("%s %s: %d %s", c[0], c[1], r.status, r.raw)
		}
	}
	if _, err := s.Keys.Get(ctx, "", v); err == nil {
		t.Fatal("the victim survived its deletion")
	}
	var foundForeign bool
	ks, _ := s.Keys.List(ctx, auth.Filter{TeamID: "other-team"})
	for _, k := range ks {
		foundForeign = foundForeign || (k.ID == f && k.Name == "foreign")
	}
	if !foundForeign {
		t.Fatal("another team's key changed")
	}
}

// TestKeyAPIBodyLimit checks the server-wide body limit on the key API: a
// body over it is refused as a bad request before any handler reads it.
func TestKeyAPIBodyLimit(t *testing.T) {
	base, s := etServe(t, func(c *server.Config) { c.Server.MaxBodyBytes = 512 })
	ops, opsKey := etKey(t, s, auth.KeySpec{Name: "ops", Scopes: auth.Scopes{auth.ScopeAdmin}})
	before := etState(t, s, ops.ID)
	body := fmt.Sprintf(`{"name":%q}`, strings.Repeat("x", 600))
	r := etDo(t, "POST", base+"/api/support/openapi/create", "Bearer "+opsKey, body)
	if r.status != 400 || r.env.StatusText != "invalid_request" || !strings.Contains(r.env.Message, "512") {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	if after := etState(t, s, ops.ID); after != before {
		t.Fatalf("the oversized body changed the store:\nbefore %s\nafter  %s", before, after)
	}
	if r := etDo(t, "POST", base+"/api/support/openapi/create", "Bearer "+opsKey, `{"name":"small"}`); r.status != 200 {
		t.Fatalf("a small body: %d %s", r.status, r.raw)
	}
}
