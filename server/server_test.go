package server_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/internal/boltx"
	"github.com/chatgate/chatgate/server"
)

// svRunning is a server serving on a loopback listener.
type svRunning struct {
	base string
	s    *server.Server
	stop func() error // cancels Serve and returns its error
}

// svStart builds a server from cfg and serves it on a loopback listener.
// The server is stopped when the test ends unless stop was called.
func svStart(t *testing.T, cfg server.Config) svRunning {
	t.Helper()
	if cfg.Stderr == nil {
		cfg.Stderr = io.Discard
	}
	if cfg.Logging.Level == "" {
		cfg.Logging.Level = "error"
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
	var stopped bool
	var serveErr error
	stop := func() error {
		if !stopped {
			stopped = true
			cancel()
			serveErr = <-done
		}
		return serveErr
	}
	t.Cleanup(func() { _ = stop() })
	return svRunning{base: "http://" + ln.Addr().String(), s: s, stop: stop}
}

func svConfig(dir string) server.Config {
	cfg := server.Config{RootKey: etRoot}
	cfg.Server.Data = dir
	return cfg
}

func svWriteFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "chatgate.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// The example file shipped beside the binary loads as written, with the
// strict decoder, and declares the README's account bound to app main.
func TestExampleConfigFileLoads(t *testing.T) {
	cfg, err := server.LoadConfig("../examples/server/chatgate.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.Addr != "127.0.0.1:9527" || cfg.Server.Data != "./data" ||
		time.Duration(cfg.Server.ShutdownTimeout) != 30*time.Second || cfg.Server.MaxBodyBytes != 1<<20 ||
		time.Duration(cfg.Server.BodyReadTimeout) != 30*time.Second ||
		time.Duration(cfg.Auth.FlushInterval) != 5*time.Second || cfg.Auth.KeyPrefix != "cg-" ||
		cfg.Logging.Level != "info" || cfg.Logging.Format != "text" {
		t.Fatalf("loaded %+v %+v %+v", cfg.Server, cfg.Auth, cfg.Logging)
	}
	keys, err := cfg.ConfigKeys()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 {
		t.Fatalf("config keys: %+v", keys)
	}
	k := keys[0]
	if k.Account != "account01" || k.Name != "外部系统" || !k.Enabled || k.Secret != "your-api-key" || k.AppID != "main" ||
		len(k.Scopes) != 1 || k.Scopes[0] != auth.ScopeChat || k.Meta["dm_policy"] != "allow" || k.Meta["group_policy"] != "allow" {
		t.Fatalf("config key %+v", k)
	}
}

func TestLoadConfigDefaultsAndErrors(t *testing.T) {
	for _, path := range []string{"", svWriteFile(t, ""), svWriteFile(t, "# only a comment\n")} {
		cfg, err := server.LoadConfig(path)
		if err != nil {
			t.Fatalf("%q: %v", path, err)
		}
		if cfg.Server.Addr != server.DefaultAddr || cfg.Server.Data != server.DefaultData ||
			time.Duration(cfg.Server.ShutdownTimeout) != 30*time.Second || cfg.Server.MaxBodyBytes != 1<<20 {
			t.Fatalf("%q: defaults %+v", path, cfg.Server)
		}
	}
	cfg, err := server.LoadConfig(svWriteFile(t, "server:\n  addr: 127.0.0.1:1\n  shutdown_timeout: 2s\n  max_body_bytes: 100\n"))
	if err != nil || cfg.Server.Addr != "127.0.0.1:1" || time.Duration(cfg.Server.ShutdownTimeout) != 2*time.Second ||
		cfg.Server.MaxBodyBytes != 100 || cfg.Server.Data != server.DefaultData {
		t.Fatalf("%+v %v", cfg.Server, err)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"server:\n  adress: x\n", "adress"},
		{"serverr:\n  addr: x\n", "serverr"},
		{"channels:\n  api:\n    enabled: true\n    accounts:\n      a:\n        apikey: k\n", "apikey"},
		{"bindings:\n  - agent: main\n", "agent"},
		{"server:\n  shutdown_timeout: soon\n", "soon"},
		{"server:\n  max_body_bytes: lots\n", "lots"},
		{"auth:\n  trusted_proxies: 10.0.0.0/8\n", "line 2"},
		{"server: [1, 2]\n", "server"},
		{"server:\n  addr: [\n", "yaml"},
		{"root_key: secret\n", "root_key"}, // the root key is never read from the file
	} {
		_, err := server.LoadConfig(svWriteFile(t, tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v; want one naming %s", tc.yaml, err, tc.want)
		}
	}
	if _, err := server.LoadConfig(filepath.Join(t.TempDir(), "missing.yaml")); err == nil || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

// The process environment overrides the file; empty variables do not.
func TestApplyEnvFromProcess(t *testing.T) {
	path := svWriteFile(t, "server:\n  addr: 127.0.0.1:1111\n  data: /from/file\n")
	t.Setenv("CHATGATE_ADDR", "127.0.0.1:2222")
	t.Setenv("CHATGATE_DATA", "")
	t.Setenv("CHATGATE_ROOT_KEY", "root-from-env")
	cfg, err := server.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ApplyEnv(os.LookupEnv)
	if cfg.Server.Addr != "127.0.0.1:2222" || cfg.Server.Data != "/from/file" || cfg.RootKey != "root-from-env" {
		t.Fatalf("after env: %+v root=%q", cfg.Server, cfg.RootKey)
	}
	dir := t.TempDir()
	t.Setenv("CHATGATE_DATA", dir)
	cfg.ApplyEnv(os.LookupEnv)
	if cfg.Server.Data != dir {
		t.Fatalf("CHATGATE_DATA: %q", cfg.Server.Data)
	}
}

// CHATGATE_ROOT_KEY becomes the admin key: it works on admin routes, is
// stored hashed only, nothing is printed, and a new value replaces the old.
func TestRootKeyFromEnv(t *testing.T) {
	dir := t.TempDir()
	const first, second = "root-from-env-1", "root-from-env-2"
	t.Setenv("CHATGATE_ROOT_KEY", first)
	t.Setenv("CHATGATE_DATA", dir)
	cfg, err := server.LoadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	cfg.ApplyEnv(os.LookupEnv)
	var stderr bytes.Buffer
	cfg.Stderr = &stderr
	run := svStart(t, cfg)
	r := etDo(t, "POST", run.base+"/api/support/openapi/create", "Bearer "+first, `{"name":"made-by-root","appId":"main"}`)
	var made struct{ ID, Key string }
	if r.status != 200 || json.Unmarshal(r.env.Data, &made) != nil || made.Key == "" {
		t.Fatalf("create with the env root key: %d %s", r.status, r.raw)
	}
	r = etDo(t, "GET", run.base+"/api/support/openapi/me", "Bearer "+first, "")
	var me struct {
		Principal auth.Principal
		Key       auth.KeyView
	}
	if r.status != 200 || json.Unmarshal(r.env.Data, &me) != nil || me.Principal.KeyID != auth.RootKeyID ||
		me.Principal.Source != auth.SourceRoot || !me.Principal.Has(auth.ScopeAdmin) || strings.Contains(r.raw, first) {
		t.Fatalf("me: %s", r.raw)
	}
	if stderr.Len() != 0 {
		t.Fatalf("printed with CHATGATE_ROOT_KEY set: %q", stderr.String())
	}
	if err := run.stop(); err != nil {
		t.Fatal(err)
	}
	svNoSecretOnDisk(t, dir, first, made.Key)

	// A new CHATGATE_ROOT_KEY replaces the old one at the next start.
	t.Setenv("CHATGATE_ROOT_KEY", second)
	cfg.ApplyEnv(os.LookupEnv)
	run = svStart(t, cfg)
	if r := etDo(t, "GET", run.base+"/api/support/openapi/list", "Bearer "+first, ""); r.status != 401 || r.env.StatusText != "invalid_api_key" {
		t.Fatalf("the replaced root key: %d %s", r.status, r.raw)
	}
	r = etDo(t, "GET", run.base+"/api/support/openapi/list", "Bearer "+second, "")
	if r.status != 200 || !strings.Contains(r.raw, made.ID) || strings.Count(r.raw, `"source":"root"`) != 1 {
		t.Fatalf("the new root key: %d %s", r.status, r.raw)
	}
	// and the key the old root made still works
	if r := etDo(t, "GET", run.base+"/api/support/openapi/me", "Bearer "+made.Key, ""); r.status != 200 {
		t.Fatalf("a key made by the old root: %d %s", r.status, r.raw)
	}
	if err := run.stop(); err != nil {
		t.Fatal(err)
	}
	svNoSecretOnDisk(t, dir, second, made.Key)

	// A root key too short to import is refused at start, naming the problem.
	bad := cfg
	bad.RootKey = "abc"
	if _, err := server.New(bad); err == nil || !strings.Contains(err.Error(), "root key") {
		t.Fatalf("short root key: %v", err)
	}
}

// svNoSecretOnDisk checks that no file of the data directory holds a key in
// clear, while the database does hold its SHA-256.
func svNoSecretOnDisk(t *testing.T, dir string, secrets ...string) {
	t.Helper()
	db, err := os.ReadFile(filepath.Join(dir, server.DBFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, sec := range secrets {
		sum := sha256.Sum256([]byte(sec))
		if !bytes.Contains(db, []byte(hex.EncodeToString(sum[:]))) {
			t.Fatalf("the database lacks the hash of a live key")
		}
	}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, sec := range secrets {
			if bytes.Contains(b, []byte(sec)) {
				return fmt.Errorf("%s holds a key in clear", p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Without CHATGATE_ROOT_KEY the first start prints a generated admin key,
// with a valid checksum, once; it works; later starts print nothing.
func TestGeneratedRootKeyPrintedOnce(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	cfg := svConfig(dir)
	cfg.RootKey = ""
	cfg.Stderr = &out
	run := svStart(t, cfg)
	keys := regexp.MustCompile(`cg-[0-9A-Za-z]+`).FindAllString(out.String(), -1)
	if len(keys) != 1 || len(keys[0]) != 3+43+6 || etChecksum(keys[0][:len(keys[0])-6]) != keys[0][len(keys[0])-6:] {
		t.Fatalf("printed %q", out.String())
	}
	key := keys[0]
	if !strings.Contains(out.String(), "shown this once") {
		t.Fatalf("the notice does not say the key is shown once: %q", out.String())
	}
	r := etDo(t, "GET", run.base+"/api/support/openapi/list", "Bearer "+key, "")
	if r.status != 200 || strings.Contains(r.raw, key) || !strings.Contains(r.raw, key[:7]+"...") {
		t.Fatalf("list with the printed key: %d %s", r.status, r.raw)
	}
	if err := run.stop(); err != nil {
		t.Fatal(err)
	}
	svNoSecretOnDisk(t, dir, key)
	out.Reset()
	run = svStart(t, cfg)
	if out.Len() != 0 {
		t.Fatalf("second start printed %q", out.String())
	}
	if r := etDo(t, "GET", run.base+"/api/support/openapi/me", "Bearer "+key, ""); r.status != 200 {
		t.Fatalf("the printed key after a restart: %d %s", r.status, r.raw)
	}
}

// The agent API channel's accounts, read from YAML, become keys bound by
// the bindings; the API cannot change them; a disabled account is refused;
// an account removed from the file stops working at the next start.
func TestConfigFileKeys(t *testing.T) {
	const yaml = `
channels:
  api:
    enabled: true
    accounts:
      account01:
        name: "外部系统"
        enabled: true
        api_key: "account01-key"
        dm_policy: "allow"
        group_policy: "allow"
      account02:
        name: "second"
        enabled: true
        api_key: "account02-key"
      account03:
        name: "off"
        enabled: false
        api_key: "account03-key"
      account04:
        enabled: true
        api_key: "account04-key"
        dm_policy: "disabled"
        scopes: [chat, dataset:read]
apps:
  - id: second-app
    name: Second
bindings:
  - agent_id: "second-app"
    match: {default: true, channel: "api"}
  - agent_id: "main"
    match: {channel: "api", account_id: "account01"}
`
	path := svWriteFile(t, yaml)
	cfg, err := server.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg.Server.Data, cfg.RootKey, cfg.Stderr = dir, etRoot, io.Discard
	cfg.Logging.Level = "error"
	run := svStart(t, cfg)
	base := run.base

	me := func(key string) (int, auth.Principal, etResult) {
		r := etDo(t, "GET", base+"/api/support/openapi/me", "Bearer "+key, "")
		var d struct{ Principal auth.Principal }
		_ = json.Unmarshal(r.env.Data, &d)
		return r.status, d.Principal, r
	}
	for _, tc := range []struct {
		key, id, name, app string
		scopes             string
	}{
		{"account01-key", "cfg-account01", "外部系统", "main", "[chat]"},
		{"account02-key", "cfg-account02", "second", "second-app", "[chat]"},
		{"account04-key", "cfg-account04", "account04", "second-app", "[dataset:read]"},
	} {
		status, p, r := me(tc.key)
		if status != 200 || p.KeyID != tc.id || p.KeyName != tc.name || p.AppID != tc.app || p.Scopes.String() != tc.scopes ||
			p.Source != auth.SourceConfig || p.TeamID != auth.DefaultTeam {
			t.Fatalf("%s: %d %s", tc.key, status, r.raw)
		}
	}
	if status, _, r := me("account03-key"); status != 401 || r.env.StatusText != "api_key_disabled" {
		t.Fatalf("disabled account: %d %s", status, r.raw)
	}
	// a bound account chats with its app
	resp, body := svPost(t, base+"/api/v1/chat/completions", "account01-key", `{"messages":[{"role":"user","content":"hi"}]}`)
	if resp.StatusCode != 200 || !strings.Contains(body, "chat.completion") {
		t.Fatalf("config key chat: %d %s", resp.StatusCode, body)
	}
	// dm_policy disabled took chat away
	if resp, body := svPost(t, base+"/api/v1/chat/completions", "account04-key", `{"messages":[{"role":"user","content":"hi"}]}`); resp.StatusCode != 403 {
		t.Fatalf("dm_policy disabled, chat: %d %s", resp.StatusCode, body)
	}

	root := "Bearer " + etRoot
	before := etState(t, run.s, auth.RootKeyID)
	for _, id := range []string{"cfg-account01", "cfg-account03"} {
		for _, c := range [][3]string{
			{"PUT", "update", `{"id":"` + id + `","name":"renamed"}`},
			{"PUT", "update", `{"id":"` + id + `","disabled":true}`},
			{"PUT", "update", `{"id":"` + id + `","disabled":false}`},
			{"PUT", "update", `{"id":"` + id + `","limit":{"rpm":1}}`},
			{"PUT", "update", `{"id":"` + id + `","scopes":["admin"]}`},
			{"DELETE", "delete?id=" + id, ""},
			{"POST", "rotate", `{"id":"` + id + `","graceSeconds":60}`},
		} {
			r := etDo(t, c[0], base+"/api/support/openapi/"+c[1], root, c[2])
			if r.status != 409 || r.env.StatusText != "key_managed_by_config" {
				t.Fatalf("%s %s %s: %d %s", c[0], c[1], c[2], r.status, r.raw)
			}
		}
	}
	// importing a config account's key as another key is refused too, as
	// any bad key is, without telling that the account has it
	if r := etDo(t, "POST", base+"/api/support/openapi/import", root, `{"name":"thief","key":"account01-key","scopes":["admin"]}`); r.status != 400 ||
		r.env.StatusText != "invalid_request" || !strings.Contains(r.raw, `cannot be imported`) || strings.Contains(r.raw, "account") {
		t.Fatalf("import of a config key: %d %s", r.status, r.raw)
	}
	if after := etState(t, run.s, auth.RootKeyID); after != before {
		t.Fatalf("refused changes changed the store:\nbefore %s\nafter  %s", before, after)
	}
	r := etDo(t, "GET", base+"/api/support/openapi/list", root, "")
	if strings.Count(r.raw, `"source":"config"`) != 4 || strings.Contains(r.raw, "account01-key") {
		t.Fatalf("list: %s", r.raw)
	}
	if err := run.stop(); err != nil {
		t.Fatal(err)
	}
	svNoSecretOnDisk(t, dir, "account01-key", "account02-key")

	// Remove account01 and enable account03: the next start follows the file.
	cfg.Channels.API.Accounts = map[string]server.Account{
		"account02": cfg.Channels.API.Accounts["account02"],
		"account03": {Name: "off", Enabled: true, APIKey: "account03-key"},
	}
	run = svStart(t, cfg)
	base = run.base
	if status, _, r := me("account01-key"); status != 401 || r.env.StatusText != "invalid_api_key" {
		t.Fatalf("removed account: %d %s", status, r.raw)
	}
	if status, p, r := me("account03-key"); status != 200 || p.AppID != "second-app" {
		t.Fatalf("enabled account: %d %s", status, r.raw)
	}
	if status, _, r := me("account02-key"); status != 200 {
		t.Fatalf("kept account: %d %s", status, r.raw)
	}
	// A config key that would take over a key made through the API, or a
	// malformed one, stops the start with an error naming the account.
	made := etDo(t, "POST", base+"/api/support/openapi/import", root, `{"name":"api-made","key":"api-made-key"}`)
	if made.status != 200 {
		t.Fatalf("import: %s", made.raw)
	}
	if err := run.stop(); err != nil {
		t.Fatal(err)
	}
	for _, acc := range []server.Account{
		{Enabled: true, APIKey: "api-made-key"},
		{Enabled: true, APIKey: "abc"},
		{Enabled: true, APIKey: "  "},
		{Enabled: true, APIKey: "account09-key", DMPolicy: "sometimes"},
	} {
		bad := cfg
		bad.Channels.API.Accounts = map[string]server.Account{"account09": acc}
		s, err := server.New(bad)
		if err == nil {
			_ = s.Close(context.Background())
			t.Fatalf("account %+v accepted", acc)
		}
		if !strings.Contains(err.Error(), "channels.api.accounts.account09") {
			t.Fatalf("account %+v: %v", acc, err)
		}
	}
	// the refused starts changed nothing
	run = svStart(t, cfg)
	base = run.base
	if status, _, r := me("account02-key"); status != 200 {
		t.Fatalf("after refused starts: %d %s", status, r.raw)
	}
	if status, _, r := me("api-made-key"); status != 200 {
		t.Fatalf("the API key after refused starts: %d %s", status, r.raw)
	}
}

func svPost(t *testing.T, url, key, body string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func svGet(t *testing.T, url string, header ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// svMetric returns the value of the sample name{labels} in a Prometheus
// text exposition, or -1 when there is none.
func svMetric(body, sample string) float64 {
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, sample+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				return -1
			}
			return v
		}
	}
	return -1
}

func TestHealthzMetricsAndUnknownRoutes(t *testing.T) {
	base, s := etServe(t, nil)
	ctx := context.Background()
	_, good := etKey(t, s, auth.KeySpec{Name: "good", Scopes: auth.Scopes{auth.ScopeAdmin}})
	off, offKey := etKey(t, s, auth.KeySpec{Name: "off"})
	yes := true
	if _, err := s.Keys.Update(ctx, "", off.ID, auth.KeyUpdate{Disabled: &yes}); err != nil {
		t.Fatal(err)
	}
	_, readerKey := etKey(t, s, auth.KeySpec{Name: "reader"})
	_, slowKey := etKey(t, s, auth.KeySpec{Name: "slow", Limit: auth.Limit{RPM: 1}})

	// healthz needs no key, and ignores a bad one
	for _, h := range [][]string{nil, {"Authorization", "Bearer garbage"}} {
		status, body := svGet(t, base+"/healthz", h...)
		if status != 200 || strings.TrimSpace(body) != `{"status":"ok"}` {
			t.Fatalf("healthz %v: %d %s", h, status, body)
		}
	}
	me := base + "/api/support/openapi/me"
	etDo(t, "GET", me, "Bearer "+good, "")                                    // 200
	etDo(t, "GET", me, "Bearer "+good, "")                                    // 200
	etDo(t, "GET", me, "", "")                                                // 401 invalid_api_key
	etDo(t, "GET", me, "Bearer "+offKey, "")                                  // 401 api_key_disabled
	etDo(t, "GET", base+"/api/support/openapi/list", "Bearer "+readerKey, "") // 403 scope_denied
	etDo(t, "GET", me, "Bearer "+slowKey, "")                                 // 200
	if r := etDo(t, "GET", me, "Bearer "+slowKey, ""); r.status != 429 {      // 429 rate_limit_exceeded
		t.Fatalf("rpm 1, second call: %d", r.status)
	}
	// unknown routes answer the 404 envelope, with or without a key
	for i, p := range []string{"/nothing", "/api/nothing/here", "/api/support/openapi", "/v2/chat/completions", "/x/secret-path-1", "/x/secret-path-2"} {
		authz := ""
		if i%2 == 1 {
			authz = "Bearer " + good
		}
		r := etDo(t, "GET", base+p, authz, "")
		if r.status != 404 || r.env.StatusText != "not_found" || !strings.Contains(r.env.Message, p) {
			t.Fatalf("GET %s: %d %s", p, r.status, r.raw)
		}
	}
	// a route called with a method it does not take is told which it does
	if r := etDo(t, "POST", base+"/healthz", "", ""); r.status != 405 || r.env.StatusText != "method_not_allowed" || !strings.Contains(r.env.Message, "use GET") {
		t.Fatalf("POST /healthz: %d %s", r.status, r.raw)
	}
	if r := etDo(t, "GET", base+"/api/core/dataset/searchTest", "Bearer "+good, ""); r.status != 405 || !strings.Contains(r.env.Message, "use POST") {
		t.Fatalf("GET searchTest: %d %s", r.status, r.raw)
	}
	if r := etDo(t, "PATCH", base+"/api/core/chat/getHistories", "", ""); r.status != 405 || !strings.Contains(r.env.Message, "use GET or POST") {
		t.Fatalf("PATCH getHistories: %d %s", r.status, r.raw)
	}

	status, body := svGet(t, base+"/metrics")
	if status != 200 {
		t.Fatalf("metrics: %d", status)
	}
	const meRoute = `route="GET /api/support/openapi/me"`
	for sample, want := range map[string]float64{
		`chatgate_http_requests_total{code="200",route="GET /healthz"}`:                       2,
		`chatgate_http_requests_total{code="200",` + meRoute + `}`:                            3,
		`chatgate_http_requests_total{code="401",` + meRoute + `}`:                            2,
		`chatgate_http_requests_total{code="429",` + meRoute + `}`:                            1,
		`chatgate_http_requests_total{code="403",route="GET /api/support/openapi/list"}`:      1,
		`chatgate_http_requests_total{code="404",route="/"}`:                                  6,
		`chatgate_http_requests_total{code="405",route="/"}`:                                  3,
		`chatgate_auth_failures_total{reason="invalid_api_key"}`:                              1,
		`chatgate_auth_failures_total{reason="api_key_disabled"}`:                             1,
		`chatgate_auth_failures_total{reason="scope_denied"}`:                                 1,
		`chatgate_auth_failures_total{reason="rate_limit_exceeded"}`:                          1,
		`chatgate_http_request_duration_seconds_count{` + meRoute + `}`:                       6,
		`chatgate_http_request_duration_seconds_bucket{` + meRoute + `,le="+Inf"}`:            6,
		`chatgate_http_request_duration_seconds_count{route="GET /healthz"}`:                  2,
		`chatgate_http_request_duration_seconds_count{route="GET /api/support/openapi/list"}`: 1,
	} {
		if got := svMetric(body, sample); got != want {
			t.Errorf("%s = %v; want %v", sample, got, want)
		}
	}
	if v := svMetric(body, `chatgate_http_request_duration_seconds_sum{`+meRoute+`}`); v <= 0 || v > 10 {
		t.Errorf("latency sum %v", v)
	}
	// bucket counts are cumulative and end at the count
	var last float64
	for _, le := range []string{"0.0005", "0.001", "0.005", "0.1", "1", "10", "60", "+Inf"} {
		v := svMetric(body, `chatgate_http_request_duration_seconds_bucket{`+meRoute+`,le="`+le+`"}`)
		if v < last {
			t.Errorf("bucket le=%s: %v after %v", le, v, last)
		}
		last = v
	}
	for _, want := range []string{"go_goroutines ", "process_open_fds ", "# TYPE chatgate_http_request_duration_seconds histogram"} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// the label set stays bounded: no path, key or secret leaks into it
	for _, leak := range []string{"secret-path", "/nothing", good, readerKey, etRoot} {
		if strings.Contains(body, leak) {
			t.Errorf("metrics contain %q", leak)
		}
	}
	if t.Failed() {
		t.Log(body)
	}
}

// Shutdown waits for a request in flight: a create whose body is still
// arriving when shutdown starts is answered, and its key is kept.
func TestShutdownDrainsRequestsInFlight(t *testing.T) {
	dir := t.TempDir()
	run := svStart(t, svConfig(dir))
	conn, err := net.Dial("tcp", strings.TrimPrefix(run.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"name":"drained","appId":"main"}`
	head := fmt.Sprintf("POST /api/support/openapi/create HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", etRoot, len(body))
	if _, err := io.WriteString(conn, head+body[:10]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond) // the server is reading the body
	stopped := make(chan error, 1)
	go func() { stopped <- run.stop() }()
	time.Sleep(150 * time.Millisecond) // shutdown has begun
	select {
	case err := <-stopped:
		t.Fatalf("shutdown did not wait for the request in flight: %v", err)
	default:
	}
	if _, err := net.DialTimeout("tcp", strings.TrimPrefix(run.base, "http://"), time.Second); err == nil {
		t.Fatal("a new connection was accepted during shutdown")
	}
	if _, err := io.WriteString(conn, body[10:]); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	var created struct {
		Data struct{ ID, Key string }
	}
	if resp.StatusCode != 200 || json.Unmarshal(raw, &created) != nil || created.Data.Key == "" {
		t.Fatalf("drained request: %d %s", resp.StatusCode, raw)
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no return from Serve after the last request ended")
	}
	run = svStart(t, svConfig(dir))
	if r := etDo(t, "GET", run.base+"/api/support/openapi/me", "Bearer "+created.Data.Key, ""); r.status != 200 {
		t.Fatalf("the drained request's key after a restart: %d %s", r.status, r.raw)
	}
}

// A request that never ends is cut at the shutdown timeout; Serve returns,
// the database is closed, and what was used is flushed.
func TestShutdownTimeoutCutsStalledRequests(t *testing.T) {
	dir := t.TempDir()
	cfg := svConfig(dir)
	cfg.Server.ShutdownTimeout = server.Duration(300 * time.Millisecond)
	cfg.Auth.FlushInterval = server.Duration(time.Hour)
	run := svStart(t, cfg)
	k, key := etKey(t, run.s, auth.KeySpec{Name: "used"})
	t0 := time.Now().UTC()
	if r := etDo(t, "GET", run.base+"/api/support/openapi/me", "Bearer "+key, ""); r.status != 200 {
		t.Fatal(r.raw)
	}
	if err := run.s.Authn.Charge(context.Background(), k.ID, 2.5); err != nil {
		t.Fatal(err)
	}
	t1 := time.Now().UTC()
	conn, err := net.Dial("tcp", strings.TrimPrefix(run.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	head := fmt.Sprintf("POST /api/support/openapi/create HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 100\r\n\r\n{\"na", etRoot)
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	if err := run.stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if d := time.Since(start); d < 250*time.Millisecond || d > 3*time.Second {
		t.Fatalf("shutdown took %v with a 300ms timeout", d)
	}
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, err := conn.Read(make([]byte, 1)); err == nil {
		t.Fatalf("the stalled connection is still open (%d bytes)", n)
	}
	// usage reached the file: open it again with only what is on disk
	s, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	got, err := s.Keys.Get(context.Background(), "", k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.UsagePoints != 2.5 || got.LastUsedTime.Before(t0.Truncate(time.Millisecond)) || got.LastUsedTime.After(t1) {
		t.Fatalf("after reopening: points %v, last used %v (want 2.5, in [%v, %v])", got.UsagePoints, got.LastUsedTime, t0, t1)
	}
	if ks, _ := s.Keys.List(context.Background(), auth.Filter{}); len(ks) != 2 {
		t.Fatalf("the cut request created a key: %d keys", len(ks))
	}
}

// A second server on a data directory in use fails at once, saying why and
// where; the first keeps serving; once it stops, the directory is free.
func TestDataDirInUse(t *testing.T) {
	dir := t.TempDir()
	run := svStart(t, svConfig(dir))
	for range 2 {
		start := time.Now()
		s, err := server.New(svConfig(dir))
		if err == nil {
			_ = s.Close(context.Background())
			t.Fatal("a second server opened a data directory in use")
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("the second server took %v to fail", d)
		}
		msg := err.Error()
		if !errors.Is(err, boltx.ErrLocked) || !strings.Contains(msg, filepath.Join(dir, server.DBFile)) ||
			!strings.Contains(msg, "locked by another process") || !strings.Contains(msg, "server running") {
			t.Fatalf("unclear error: %v", err)
		}
	}
	if status, _ := svGet(t, run.base+"/healthz"); status != 200 {
		t.Fatalf("the first server after the attempts: %d", status)
	}
	if r := etDo(t, "GET", run.base+"/api/support/openapi/me", "Bearer "+etRoot, ""); r.status != 200 {
		t.Fatalf("the first server after the attempts: %d %s", r.status, r.raw)
	}
	if err := run.stop(); err != nil {
		t.Fatal(err)
	}
	s, err := server.New(svConfig(dir))
	if err != nil {
		t.Fatalf("after the first server stopped: %v", err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// Run on an address in use fails, and releases the data directory.
func TestRunAddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := svConfig(t.TempDir())
	cfg.Server.Addr = ln.Addr().String()
	cfg.Stderr, cfg.Logging.Level = io.Discard, "error"
	s, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background()) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "address already in use") {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run on a busy address did not return")
	}
	s2, err := server.New(cfg)
	if err != nil {
		t.Fatalf("the data directory stayed locked: %v", err)
	}
	_ = s2.Close(context.Background())
}
