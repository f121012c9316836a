package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/server"
)

// ahChat posts a chat request with the whole Authorization header authz
// and returns the status, the Retry-After header and the OpenAI error.
func ahChat(t *testing.T, base, authz string, extra ...string) (int, string, struct{ Message, Type, Code string }) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/api/v1/chat/completions", strings.NewReader(`{"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", authz)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(extra); i += 2 {
		req.Header.Set(extra[i], extra[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var body struct {
		Error struct{ Message, Type, Code string } `json:"error"`
	}
	if resp.StatusCode != 200 && json.Unmarshal(raw, &body) != nil {
		t.Fatalf("chat: %d %s", resp.StatusCode, raw)
	}
	return resp.StatusCode, resp.Header.Get("Retry-After"), body.Error
}

// ahFailures returns the stored auth.failed events by reason and address,
// summing their counts.
func ahFailures(t *testing.T, s *server.Server) map[string]int {
	t.Helper()
	evs, err := s.Keys.Audit(context.Background(), auth.AuditQuery{Action: auth.AuditAuthFailed, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int{}
	for _, e := range evs {
		m[e.Reason+" "+e.RemoteIP] += e.Count
	}
	return m
}

// TestAuthFailureThrottle: through the real server, a client address that
// sends more bad keys a minute than auth.failure_limit_per_minute gets 429
// too_many_auth_failures with Retry-After, on envelope and chat routes
// alike, while a valid key from the same address keeps working and other
// addresses (here told apart by X-Forwarded-For from a trusted proxy) are
// not affected. Nothing in the store changes, and the failures are in the
// audit trail as counts.
func TestAuthFailureThrottle(t *testing.T) {
	base, s := etServe(t, func(cfg *server.Config) {
		cfg.Auth.FailureLimitPerMinute = 5
		cfg.Auth.TrustedProxies = []string{"127.0.0.1/32"}
	})
	ops, opsKey := etKey(t, s, auth.KeySpec{Name: "ops", Scopes: auth.Scopes{auth.ScopeAdmin}})
	_, appKey := etKey(t, s, auth.KeySpec{Name: "app", AppID: "main"})
	me := base + "/api/support/openapi/me"
	from := func(ip string) []string { return []string{"X-Forwarded-For", ip} }
	before := etState(t, s, ops.ID)

	bad := []string{"", "Basic x", "Bearer never-issued-key", "Bearer " + etWellFormed('q'), "Bearer abcd"}
	for i, authz := range bad {
		if r := etDo(t, "GET", me, authz, "", from("203.0.113.1")...); r.status != 401 || r.env.StatusText != "invalid_api_key" {
			t.Fatalf("bad key %d of 5: %d %s", i+1, r.status, r.raw)
		}
	}
	r := etDo(t, "GET", me, "Bearer never-issued-key", "", from("203.0.113.1")...)
	if n, err := strconv.Atoi(r.header.Get("Retry-After")); r.status != 429 || r.env.StatusText != "too_many_auth_failures" ||
		err != nil || n < 1 || n > 60 || !strings.Contains(r.env.Message, "too many failed authentications") {
		t.Fatalf("the sixth bad key: %d Retry-After %q %s", r.status, r.header.Get("Retry-After"), r.raw)
	}
	// The chat route answers the throttle in OpenAI's shape.
	status, ra, oe := ahChat(t, base, "Bearer never-issued-key", from("203.0.113.1")...)
	if status != 429 || ra == "" || oe.Code != "too_many_auth_failures" {
		t.Fatalf("chat from the throttled address: %d %q %+v", status, ra, oe)
	}
	// Another client behind the same proxy is not throttled.
	if r := etDo(t, "GET", me, "Bearer never-issued-key", "", from("203.0.113.2")...); r.status != 401 {
		t.Fatalf("another client: %d %s", r.status, r.raw)
	}
	if after := etState(t, s, ops.ID); after != before {
		t.Fatalf("the failures changed the store:\nbefore %s\nafter  %s", before, after)
	}
	// A valid key from the throttled address passes, on both kinds of route.
	if r := etDo(t, "GET", me, "Bearer "+opsKey, "", from("203.0.113.1")...); r.status != 200 {
		t.Fatalf("a valid key from the throttled address: %d %s", r.status, r.raw)
	}
	if status, _, oe := ahChat(t, base, "Bearer "+appKey, from("203.0.113.1")...); status != 200 {
		t.Fatalf("chat with a valid key from the throttled address: %d %+v", status, oe)
	}
	got := ahFailures(t, s)
	if got["invalid_api_key 203.0.113.1"] != 5 || got["too_many_auth_failures 203.0.113.1"] != 2 || got["invalid_api_key 203.0.113.2"] != 1 {
		t.Fatalf("audit counts: %v", got)
	}
	// The metric counts every refusal under the statusText answered.
	_, _, metrics := ahGet(t, base+"/metrics")
	if !strings.Contains(metrics, `chatgate_auth_failures_total{reason="too_many_auth_failures"} 2`) {
		t.Fatalf("metrics lack the throttled requests:\n%s", grepLines(metrics, "auth_failures"))
	}
}

func ahGet(t *testing.T, url string) (int, http.Header, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// An app key without the chat scope is told which scope it lacks.
func TestChatScopeDeniedNamesChat(t *testing.T) {
	base, s := etServe(t, nil)
	_, key := etKey(t, s, auth.KeySpec{Name: "reader", AppID: "main", Scopes: auth.Scopes{auth.ScopeDatasetRead}})
	status, _, oe := ahChat(t, base, "Bearer "+key)
	if status != 403 || oe.Code != "scope_denied" || oe.Message != "API key lacks the scope this route needs: chat" {
		t.Fatalf("chat with an app key without chat: %d %+v", status, oe)
	}
	r := etDo(t, "GET", base+"/api/core/dataset/list", "Bearer "+key, "")
	if r.status != 200 {
		t.Fatalf("the same key on a route it may call: %d %s", r.status, r.raw)
	}
	_, globalKey := etKey(t, s, auth.KeySpec{Name: "global", Scopes: auth.Scopes{auth.ScopeDatasetRead}})
	r = etDo(t, "POST", base+"/api/core/dataset/create", "Bearer "+globalKey, `{"name":"kb"}`)
	if r.status != 403 || r.env.Message != "API key lacks the scope this route needs: dataset:write" {
		t.Fatalf("dataset create with a read-only key: %d %s", r.status, r.raw)
	}
}

// ahAccountYAML is an API-channel config with one account and a binding.
func ahAccountYAML(enabled, agent string) string {
	return "channels:\n" +
		"  api:\n" +
		"    enabled: true\n" +
		"    accounts:\n" +
		"      account01:\n" + // line 5
		"        name: \"外部系统\"\n" +
		enabled +
		"        api_key: \"your-api-key\"\n" +
		"bindings:\n" +
		"  - agent_id: \"" + agent + "\"\n" + // line 9 or 10
		"    match:\n" +
		"      account_id: \"account01\"\n"
}

// An account without enabled is refused when the file is loaded, naming the
// file, the line and the account; enabled: false is a disabled key as
// before, and unknown fields inside an account are still refused.
func TestConfigAccountNeedsEnabled(t *testing.T) {
	path := svWriteFile(t, ahAccountYAML("", "main"))
	_, err := server.LoadConfig(path)
	want := "config " + path + ": line 5: channels.api.accounts.account01: enabled is required (true or false)"
	if err == nil || err.Error() != want {
		t.Fatalf("LoadConfig = %v\nwant %s", err, want)
	}
	cfg, err := server.LoadConfig(svWriteFile(t, ahAccountYAML("        enabled: false\n", "main")))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := cfg.ConfigKeys()
	if err != nil || len(keys) != 1 || keys[0].Enabled || keys[0].AppID != "main" {
		t.Fatalf("enabled: false: %+v %v", keys, err)
	}
	for name, body := range map[string]string{
		"in an account": ahAccountYAML("        enabled: true\n        enabeld: true\n", "main"),
		"in a binding":  strings.Replace(ahAccountYAML("        enabled: true\n", "main"), "    match:", "    mach:", 1),
		"in a match":    strings.Replace(ahAccountYAML("        enabled: true\n", "main"), "account_id", "acount_id", 1),
		"in the channel": strings.Replace(ahAccountYAML("        enabled: true\n", "main"), "    enabled: true\n    accounts:",
			"    enabled: true\n    acounts: {}\n    accounts:", 1),
	} {
		_, err := server.LoadConfig(svWriteFile(t, body))
		typo := regexp.MustCompile(`line \d+: field (enabeld|mach|acount_id|acounts) not found in type server\.(Account|Binding|BindingMatch|APIChannel)`)
		if err == nil || !typo.MatchString(err.Error()) {
			t.Errorf("a typo %s: %v", name, err)
		}
	}
}

// ahDBKeys lists the key ids and audit actions stored in a data directory.
func ahDBKeys(t *testing.T, dir string) (keys, audit []string) {
	t.Helper()
	db, err := bbolt.Open(filepath.Join(dir, server.DBFile), 0o600, &bbolt.Options{ReadOnly: true})
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_ = db.View(func(tx *bbolt.Tx) error {
		if b := tx.Bucket([]byte("auth.keys")); b != nil {
			_ = b.ForEach(func(k, _ []byte) error { keys = append(keys, string(k)); return nil })
		}
		if b := tx.Bucket([]byte("auth.audit")); b != nil {
			_ = b.ForEach(func(_, v []byte) error {
				var e auth.AuditEvent
				_ = json.Unmarshal(v, &e)
				audit = append(audit, string(e.Action)+" "+e.KeyID)
				return nil
			})
		}
		return nil
	})
	return keys, audit
}

// A binding whose agent_id names no app of the account's team stops the
// start, naming the binding's line, before any key is stored or the admin
// key printed; a good binding then starts.
func TestConfigBindingToUnknownApp(t *testing.T) {
	dir := t.TempDir()
	var stderr bytes.Buffer
	start := func(body string, mutate func(*server.Config)) error {
		cfg, err := server.LoadConfig(svWriteFile(t, body))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Server.Data, cfg.Stderr, cfg.Logging.Level = dir, &stderr, "error"
		if mutate != nil {
			mutate(&cfg)
		}
		s, err := server.New(cfg)
		if err == nil {
			_ = s.Close(context.Background())
		}
		return err
	}
	body := ahAccountYAML("        enabled: true\n", "mian")
	err := start(body, nil)
	if err == nil || !regexp.MustCompile(`^config \S+chatgate\.yaml: line 10: bindings\[0\]\.agent_id: no app "mian" in team "default", which account account01 is in`).MatchString(err.Error()) {
		t.Fatalf("New with a binding to no app: %v", err)
	}
	keys, _ := ahDBKeys(t, dir)
	if len(keys) != 0 || stderr.Len() != 0 {
		t.Fatalf("a refused start stored keys %v or printed %q", keys, stderr.String())
	}

	// An app of another team is no app of the account's.
	other := body + "apps:\n  - id: mian\n    team: elsewhere\n    model: extractive\n"
	if err := start(other, nil); err == nil || !strings.Contains(err.Error(), `line 10: bindings[0].agent_id: no app "mian" in team "default"`) {
		t.Fatalf("New with a binding to another team's app: %v", err)
	}
	// A binding with no agent_id at all.
	if err := start(ahAccountYAML("        enabled: true\n", ""), nil); err == nil || !strings.Contains(err.Error(), "line 10: bindings[0].agent_id is required") {
		t.Fatalf("New with an empty agent_id: %v", err)
	}

	// The fixed file starts, prints the admin key once and loads the account.
	if err := start(ahAccountYAML("        enabled: true\n", "main"), func(c *server.Config) { c.RootKey = "" }); err != nil {
		t.Fatal(err)
	}
	keys, audit := ahDBKeys(t, dir)
	if fmt.Sprint(keys) != "[cfg-account01 root]" || !strings.Contains(stderr.String(), "created the admin key") {
		t.Fatalf("after a good start: keys %v, stderr %q", keys, stderr.String())
	}

	// A later bad start leaves the stored keys and their trail as they were.
	stderr.Reset()
	if err := start(ahAccountYAML("        enabled: true\n", "mian"), func(c *server.Config) { c.RootKey = "" }); err == nil {
		t.Fatal("a bad binding started")
	}
	keys2, audit2 := ahDBKeys(t, dir)
	if fmt.Sprint(keys2) != fmt.Sprint(keys) || fmt.Sprint(audit2) != fmt.Sprint(audit) || stderr.Len() != 0 {
		t.Fatalf("a refused start changed the store: keys %v -> %v, audit %v -> %v, stderr %q", keys, keys2, audit, audit2, stderr.String())
	}
}

// A config built in code has no lines: the error says so.
func TestConfigBindingInCode(t *testing.T) {
	cfg := server.Config{RootKey: etRoot, Stderr: io.Discard}
	cfg.Server.Data = t.TempDir()
	cfg.Logging.Level = "error"
	cfg.Channels.API.Enabled = true
	cfg.Channels.API.Accounts = map[string]server.Account{"partner": {Enabled: true, APIKey: "partner-key-1"}}
	cfg.Bindings = []server.Binding{{AgentID: "nope", Match: server.BindingMatch{AccountID: "partner"}}}
	_, err := server.New(cfg)
	want := `config (built in code, so no line to name): bindings[0].agent_id: no app "nope" in team "default", which account partner is in; declare it under apps: or create it first`
	if err == nil || err.Error() != want {
		t.Fatalf("New = %v\nwant %s", err, want)
	}
	if keys, _ := ahDBKeys(t, cfg.Server.Data); len(keys) != 0 {
		t.Fatalf("keys stored: %v", keys)
	}
}

// server.Run on a busy port fails before it creates anything: no data
// directory, no admin key printed.
func TestRunBindsFirst(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := filepath.Join(t.TempDir(), "data")
	stderr := new(ahBuffer)
	cfg := server.Config{Stderr: stderr}
	cfg.Server.Addr, cfg.Server.Data, cfg.Logging.Level = ln.Addr().String(), dir, "error"
	err = server.Run(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Run on a busy port: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) || stderr.Len() != 0 {
		t.Fatalf("Run on a busy port created %s (%v) or printed %q", dir, err, stderr.String())
	}

	// On a free port it serves, with the key printed after binding.
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.Run(ctx, cfg) }()
	base := "http://" + cfg.Server.Addr
	key := regexp.MustCompile(`(?m)^\s+(cg-\S+)$`)
	deadline := time.Now().Add(10 * time.Second)
	for stderr.Len() == 0 || !ahHealthy(base) {
		select {
		case err := <-done:
			t.Fatalf("Run: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("Run never served")
		}
	}
	m := key.FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("no key printed: %q", stderr.String())
	}
	if r := etDo(t, "GET", base+"/api/support/openapi/list", "Bearer "+m[1], ""); r.status != 200 {
		t.Fatalf("the printed key: %d %s", r.status, r.raw)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func ahHealthy(base string) bool {
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

// ahBuffer is a buffer a server writes to while the test reads it.
type ahBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *ahBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *ahBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *ahBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}

// The shipped example sets the failure and audit bounds to their defaults,
// and starts: its account has enabled, its binding names an existing app.
func TestExampleConfigAuthBounds(t *testing.T) {
	cfg, err := server.LoadConfig("../examples/server/chatgate.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Auth.FailureLimitPerMinute != auth.DefaultFailureLimitPerMinute ||
		time.Duration(cfg.Auth.AuditRetention) != auth.DefaultAuditRetention || cfg.Auth.AuditMaxEvents != auth.DefaultAuditMaxEvents {
		t.Fatalf("auth bounds %+v", cfg.Auth)
	}
	cfg.Server.Data, cfg.RootKey, cfg.Stderr, cfg.Logging.Level = t.TempDir(), etRoot, io.Discard, "error"
	s, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}
