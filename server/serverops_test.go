package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chatgate/chatgate/internal/boltx"
	"github.com/chatgate/chatgate/server"
)

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) string {
		p := filepath.Join(dir, "c.yaml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg, err := server.LoadConfig(write("server:\n  addr: 127.0.0.1:1234\nlogging:\n  level: warn\ndataset:\n  qaModel: gpt-x\n"))
	if err != nil || cfg.Server.Addr != "127.0.0.1:1234" || cfg.Dataset.QAModelCamel != "gpt-x" {
		t.Fatalf("%+v %v", cfg.Server, err)
	}
	if _, err := server.LoadConfig(write("server:\n  adress: x\n")); err == nil || !strings.Contains(err.Error(), "adress") {
		t.Fatalf("unknown field: %v", err)
	}
	if _, err := server.LoadConfig(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Fatal("a missing file loaded")
	}
	env := map[string]string{"CHATGATE_ADDR": "0.0.0.0:1", "CHATGATE_DATA": "/d", "CHATGATE_ROOT_KEY": "root-key", "CHATGATE_QA_MODEL": "qa"}
	cfg.ApplyEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if cfg.Server.Addr != "0.0.0.0:1" || cfg.Server.Data != "/d" || cfg.RootKey != "root-key" || cfg.Dataset.QAModel != "qa" {
		t.Fatalf("ApplyEnv: %+v root=%q qa=%q", cfg.Server, cfg.RootKey, cfg.Dataset.QAModel)
	}
}

func TestConfigKeys(t *testing.T) {
	base, _ := sdkServer(t, func(c *server.Config) {
		c.Channels.API.Enabled = true
		c.Channels.API.Accounts = map[string]server.Account{
			"on":  {Name: "on", Enabled: true, APIKey: "account-on-key"},
			"off": {Name: "off", Enabled: false, APIKey: "account-off-key"},
		}
		c.Bindings = []server.Binding{{AgentID: "main", Match: server.BindingMatch{Channel: "api", AccountID: "on"}}}
	})
	if resp, body := curl(t, "POST", base+"/api/v1/chat/completions", "account-on-key", `{"messages":[{"role":"user","content":"hi"}]}`); resp.StatusCode != 200 {
		t.Fatalf("config key: %d %s", resp.StatusCode, body)
	}
	if resp, _ := curl(t, "POST", base+"/api/v1/chat/completions", "account-off-key", `{"messages":[{"role":"user","content":"hi"}]}`); resp.StatusCode != 401 {
		t.Fatalf("disabled account: %d", resp.StatusCode)
	}
	_, e := envCall(t, "GET", base+"/api/support/openapi/list", sdkAdmin, "")
	var keys []struct {
		ID, Name, Source string
	}
	_ = json.Unmarshal(e.Data, &keys)
	var cfgID string
	for _, k := range keys {
		if k.Source == "config" && k.Name == "on" {
			cfgID = k.ID
		}
	}
	if cfgID == "" {
		t.Fatalf("no config key listed: %s", e.Data)
	}
	before := keySnapshot(t, base)
	for _, c := range [][3]string{
		{"PUT", "/api/support/openapi/update", `{"id":"` + cfgID + `","name":"renamed"}`},
		{"DELETE", "/api/support/openapi/delete?id=" + cfgID, ""},
		{"POST", "/api/support/openapi/rotate", `{"id":"` + cfgID + `","graceSeconds":0}`},
	} {
		if _, e := envCall(t, c[0], base+c[1], sdkAdmin, c[2]); e.Code != 409 || e.StatusText != "key_managed_by_config" {
			t.Fatalf("%s %s: %+v", c[0], c[1], e)
		}
	}
	if keySnapshot(t, base) != before {
		t.Fatal("refused changes changed the keys")
	}
}

func openServer(t *testing.T, dir, root string, stderr io.Writer) (*server.Server, error) {
	cfg := server.Config{RootKey: root, Stderr: stderr}
	cfg.Server.Data = dir
	cfg.Logging.Level = "error"
	return server.New(cfg)
}

func TestRootKeyShownOnce(t *testing.T) {
	dir := t.TempDir()
	var first bytes.Buffer
	s, err := openServer(t, dir, "", &first)
	if err != nil {
		t.Fatal(err)
	}
	key := regexp.MustCompile(`cg-[0-9A-Za-z]{49}`).FindString(first.String())
	if key == "" {
		t.Fatalf("no key printed: %q", first.String())
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	var second bytes.Buffer
	s, err = openServer(t, dir, "", &second)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	if second.Len() != 0 {
		t.Fatalf("second start printed %q", second.String())
	}
	// the printed key is the admin key
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	defer func() { cancel(); <-done }()
	if _, e := envCall(t, "GET", "http://"+ln.Addr().String()+"/api/support/openapi/list", key, ""); e.Code != 200 {
		t.Fatalf("printed key: %+v", e)
	}
}

func TestSecondServerFailsFast(t *testing.T) {
	dir := t.TempDir()
	s, err := openServer(t, dir, sdkAdmin, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	start := time.Now()
	_, err = openServer(t, dir, sdkAdmin, io.Discard)
	if !errors.Is(err, boltx.ErrLocked) || time.Since(start) > 3*time.Second {
		t.Fatalf("second server: %v after %v", err, time.Since(start))
	}
	var out bytes.Buffer
	cfg := server.Config{}
	cfg.Server.Data = dir
	start = time.Now()
	err = server.KeysCommand(context.Background(), cfg, []string{"list"}, &out)
	if !errors.Is(err, boltx.ErrLocked) || !strings.Contains(err.Error(), "server running") || time.Since(start) > 3*time.Second {
		t.Fatalf("keys list while running: %v after %v", err, time.Since(start))
	}
}

func TestHealthzMetricsNotFound(t *testing.T) {
	base, _ := sdkServer(t, nil)
	if resp, body := curl(t, "GET", base+"/healthz", "", ""); resp.StatusCode != 200 {
		t.Fatalf("healthz: %d %s", resp.StatusCode, body)
	}
	curl(t, "GET", base+"/api/support/openapi/me", "wrong-key", "")
	curl(t, "GET", base+"/api/support/openapi/me", sdkAdmin, "")
	if _, e := envCall(t, "GET", base+"/api/nothing/here", sdkAdmin, ""); e.Code != 404 || e.StatusText != "not_found" {
		t.Fatalf("unknown route: %+v", e)
	}
	_, body := curl(t, "GET", base+"/metrics", "", "")
	for _, want := range []string{
		`chatgate_http_requests_total{code="200",route="GET /api/support/openapi/me"} 1`,
		`chatgate_http_requests_total{code="401",route="GET /api/support/openapi/me"} 1`,
		`chatgate_auth_failures_total{reason="invalid_api_key"} 1`,
		`chatgate_http_request_duration_seconds_bucket{route="GET /api/support/openapi/me",le="+Inf"} 2`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if t.Failed() {
		t.Log(body)
	}
}

// Close flushes the usage counted in memory: after a restart the key shows
// its last use and points.
func TestShutdownFlushesUsage(t *testing.T) {
	dir := t.TempDir()
	cfg := server.Config{RootKey: sdkAdmin, Stderr: io.Discard}
	cfg.Server.Data = dir
	cfg.Logging.Level = "error"
	cfg.Auth.FlushInterval = server.Duration(time.Hour)
	run := func(fn func(base string)) {
		s, err := server.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Serve(ctx, ln) }()
		fn("http://" + ln.Addr().String())
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	var keyID string
	run(func(base string) {
		var key string
		keyID, key = createKeyFull(t, base, `{"name":"used","appId":"main"}`)
		if resp, _ := curl(t, "POST", base+"/api/v1/chat/completions", key, `{"messages":[{"role":"user","content":"hi"}]}`); resp.StatusCode != 200 {
			t.Fatal("chat failed")
		}
	})
	run(func(base string) {
		_, e := envCall(t, "GET", base+"/api/support/openapi/list", sdkAdmin, "")
		var keys []struct {
			ID           string
			UsagePoints  float64
			LastUsedTime string
		}
		_ = json.Unmarshal(e.Data, &keys)
		for _, k := range keys {
			if k.ID == keyID {
				if k.UsagePoints <= 0 || k.LastUsedTime == "" {
					t.Fatalf("after restart: %+v", k)
				}
				return
			}
		}
		t.Fatalf("key gone: %s", e.Data)
	})
}

func TestKeysCommand(t *testing.T) {
	dir := t.TempDir()
	cfg := server.Config{}
	cfg.Server.Data = dir
	ctx := context.Background()
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := server.KeysCommand(ctx, cfg, args, &out)
		return out.String(), err
	}
	out, err := run("create", "-name", "ci", "-app", "main", "-scopes", "chat", "-rpm", "60", "-max-points", "5",
		"-expires", "720h", "-allow-ip", "127.0.0.1/32")
	if err != nil {
		t.Fatal(err)
	}
	id := regexp.MustCompile(`id:\s+(\S+)`).FindStringSubmatch(out)
	key := regexp.MustCompile(`key:\s+(cg-\S+)`).FindStringSubmatch(out)
	if id == nil || key == nil {
		t.Fatalf("create printed %q", out)
	}
	if _, err := run("import", "-name", "legacy", "-key", "legacy-secret-1"); err != nil {
		t.Fatal(err)
	}
	out, err = run("list", "-json")
	if err != nil {
		t.Fatal(err)
	}
	var keys []struct {
		ID, Name, AppID string
		Limit           struct {
			RPM            int     `json:"rpm"`
			MaxUsagePoints float64 `json:"maxUsagePoints"`
			ExpiredTime    string  `json:"expiredTime"`
		}
		AllowedIPs []string
	}
	if err := json.Unmarshal([]byte(out), &keys); err != nil || len(keys) != 2 {
		t.Fatalf("list: %v %s", err, out)
	}
	ci := keys[0]
	if ci.Name != "ci" || ci.AppID != "main" || ci.Limit.RPM != 60 || ci.Limit.MaxUsagePoints != 5 || ci.Limit.ExpiredTime == "" ||
		len(ci.AllowedIPs) != 1 || strings.Contains(out, key[1]) {
		t.Fatalf("listed %+v\n%s", ci, out)
	}
	if out, err = run("rotate", "-id", id[1], "-grace", "1h"); err != nil || !strings.Contains(out, "cg-") {
		t.Fatalf("rotate: %v %s", err, out)
	}
	if out, err = run("revoke", "-id", id[1]); err != nil || !strings.Contains(out, "revoked") {
		t.Fatalf("revoke: %v %s", err, out)
	}
	for _, bad := range [][]string{
		{}, {"explode"}, {"create"}, {"create", "-name", "x", "-max-points", "0"}, {"create", "-name", "x", "-expires", "soon"},
		{"create", "-name", "x", "-allow-ip", "nope"}, {"import", "-name", "x", "-key", "abc"}, {"revoke"}, {"rotate", "-id", "missing"},
		{"list", "stray"}, {"create", "-bogus"},
	} {
		if _, err := run(bad...); err == nil {
			t.Errorf("keys %q succeeded", bad)
		}
	}
	if out, _ = run("list", "-json"); strings.Count(out, `"id"`) != 1 {
		t.Fatalf("bad commands changed the keys: %s", out)
	}
}
