package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chatgate/chatgate/internal/boltx"
	"github.com/chatgate/chatgate/server"
)

func sxWrite(t *testing.T, yaml string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "chatgate.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSrvLoadConfig(t *testing.T) {
	cfg, err := server.LoadConfig(sxWrite(t, "server:\n  addr: 127.0.0.1:7000\n  shutdown_timeout: 5s\nauth:\n  key_prefix: zz-\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.Addr != "127.0.0.1:7000" || cfg.Server.Data != server.DefaultData ||
		time.Duration(cfg.Server.ShutdownTimeout) != 5*time.Second || cfg.Auth.KeyPrefix != "zz-" {
		t.Fatalf("loaded %+v", cfg.Server)
	}
	for _, c := range []struct{ name, yaml, want string }{
		{"unknown top-level field", "sever:\n  addr: x\n", "sever"},
		{"unknown nested field", "server:\n  adress: 127.0.0.1:1\n", "adress"},
		{"unknown account field", "channels:\n  api:\n    accounts:\n      a:\n        apikey: x\n", "apikey"},
		{"bad duration", "server:\n  shutdown_timeout: soon\n", "duration"},
		{"wrong type", "server:\n  max_body_bytes: lots\n", "line 2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := server.LoadConfig(sxWrite(t, c.yaml))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("LoadConfig: %v, want an error naming %q", err, c.want)
			}
		})
	}
	if _, err := server.LoadConfig(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Fatal("a missing file loaded")
	}
	cfg, err = server.LoadConfig("")
	if err != nil || cfg.Server.Addr != server.DefaultAddr || cfg.Server.Data != server.DefaultData {
		t.Fatalf("no file: %+v %v", cfg.Server, err)
	}
}

func TestSrvApplyEnv(t *testing.T) {
	env := map[string]string{
		"CHATGATE_ADDR":     "127.0.0.1:8123",
		"CHATGATE_DATA":     "/srv/chatgate",
		"CHATGATE_ROOT_KEY": "env-root-key-123",
		"CHATGATE_QA_MODEL": "qa-writer",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cfg, err := server.LoadConfig(sxWrite(t, "server:\n  addr: 127.0.0.1:7000\n  data: /from/file\ndataset:\n  qa_model: file-model\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ApplyEnv(lookup)
	if cfg.Server.Addr != "127.0.0.1:8123" || cfg.Server.Data != "/srv/chatgate" || cfg.RootKey != "env-root-key-123" ||
		cfg.Dataset.QAModel != "qa-writer" {
		t.Fatalf("after env: addr %q data %q root %q qa %q", cfg.Server.Addr, cfg.Server.Data, cfg.RootKey, cfg.Dataset.QAModel)
	}
	// unset and empty variables leave the file's values
	env = map[string]string{"CHATGATE_ADDR": "", "CHATGATE_QA_MODEL": ""}
	cfg, _ = server.LoadConfig(sxWrite(t, "server:\n  addr: 127.0.0.1:7000\n  data: /from/file\ndataset:\n  qa_model: file-model\n"))
	cfg.ApplyEnv(lookup)
	if cfg.Server.Addr != "127.0.0.1:7000" || cfg.Server.Data != "/from/file" || cfg.RootKey != "" || cfg.Dataset.QAModel != "file-model" {
		t.Fatalf("empty env changed the config: %+v root %q qa %q", cfg.Server, cfg.RootKey, cfg.Dataset.QAModel)
	}
}

const sxChannelYAML = `
channels:
  api:
    enabled: true
    accounts:
      partner:
        name: Partner
        enabled: true
        api_key: partner-config-secret-1
      reader:
        enabled: true
        api_key: reader-config-secret-1
        scopes: [dataset:read]
      gone:
        enabled: false
        api_key: gone-config-secret-1
bindings:
  - agent_id: main
    match:
      channel: api
      account_id: partner
`

func TestSrvConfigKeys(t *testing.T) {
	cfg, err := server.LoadConfig(sxWrite(t, sxChannelYAML))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Server.Data = t.TempDir()
	base, _ := xtServe(t, cfg)

	// the bound account chats with its app
	req, _ := http.NewRequest("POST", base+"/api/v1/chat/completions", strings.NewReader(`{"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer partner-config-secret-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"chat.completion"`) {
		t.Fatalf("config key chat: %d %s", resp.StatusCode, body)
	}
	r := xtDo(t, "GET", base+"/api/support/openapi/me", "Bearer partner-config-secret-1", "")
	var me struct {
		Key struct{ AppID, Source, Name string }
	}
	if r.status != 200 || json.Unmarshal(r.env.Data, &me) != nil || me.Key.AppID != "main" || me.Key.Source != "config" || me.Key.Name != "Partner" {
		t.Fatalf("me: %s", r.raw)
	}
	// the reader account has its own scopes and no chat
	if r := xtDo(t, "GET", base+"/api/support/openapi/me", "Bearer reader-config-secret-1", ""); r.status != 200 || !strings.Contains(r.raw, "dataset:read") {
		t.Fatalf("reader me: %s", r.raw)
	}
	// the disabled account's key is refused
	if r := xtDo(t, "GET", base+"/api/support/openapi/me", "Bearer gone-config-secret-1", ""); r.status != 401 || r.env.StatusText != "api_key_disabled" {
		t.Fatalf("disabled account: %s", r.raw)
	}

	// the API refuses to change config keys
	r = xtDo(t, "GET", base+"/api/support/openapi/list", xtBearer(xtAdmin), "")
	var keys []struct{ ID, Name, Source string }
	if err := json.Unmarshal(r.env.Data, &keys); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, k := range keys {
		if k.Source == "config" {
			ids = append(ids, k.ID)
		}
	}
	if len(ids) != 3 {
		t.Fatalf("config keys listed: %s", r.raw)
	}
	if strings.Contains(r.raw, "config-secret") {
		t.Fatal("list shows a config key's secret")
	}
	before := xtSnapshot(t, base)
	for _, id := range ids {
		for _, c := range []struct{ method, path, body string }{
			{"PUT", "/api/support/openapi/update", `{"id":"` + id + `","disabled":true}`},
			{"PUT", "/api/support/openapi/update", `{"id":"` + id + `","limit":{"rpm":5}}`},
			{"DELETE", "/api/support/openapi/delete?id=" + id, ""},
			{"POST", "/api/support/openapi/rotate", `{"id":"` + id + `"}`},
		} {
			r := xtDo(t, c.method, base+c.path, xtBearer(xtAdmin), c.body)
			if r.status != 409 || r.env.StatusText != "key_managed_by_config" {
				t.Errorf("%s %s on config key: %s", c.method, c.path, r.raw)
			}
		}
	}
	if after := xtSnapshot(t, base); after != before {
		t.Fatalf("refused changes changed the keys:\n%s\n%s", before, after)
	}
	if r := xtDo(t, "GET", base+"/api/support/openapi/me", "Bearer partner-config-secret-1", ""); r.status != 200 {
		t.Fatalf("config key after refused changes: %s", r.raw)
	}
}

var sxKeyRe = regexp.MustCompile(`\bcg-[0-9A-Za-z]{20,}\b`)

func TestSrvGeneratedRootKey(t *testing.T) {
	dir := t.TempDir()
	var first bytes.Buffer
	cfg := server.Config{Stderr: &first}
	cfg.Server.Data = dir
	cfg.Logging.Level = "error"
	s, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	keys := sxKeyRe.FindAllString(first.String(), -1)
	if len(keys) != 1 {
		t.Fatalf("first start printed %d keys:\n%s", len(keys), first.String())
	}
	root := keys[0]
	srv := &http.Server{Handler: s.Handler()}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	base := "http://" + ln.Addr().String()
	r := xtDo(t, "POST", base+"/api/support/openapi/create", xtBearer(root), `{"name":"made-by-root"}`)
	if r.status != 200 {
		t.Fatalf("root key cannot create: %s", r.raw)
	}
	_ = srv.Close()
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	var second bytes.Buffer
	cfg.Stderr = &second
	base2, _ := xtServeNoRoot(t, cfg)
	if second.Len() != 0 {
		t.Fatalf("second start printed: %q", second.String())
	}
	if r := xtDo(t, "GET", base2+"/api/support/openapi/list", xtBearer(root), ""); r.status != 200 || !strings.Contains(r.raw, "made-by-root") {
		t.Fatalf("root key after restart: %s", r.raw)
	}
}

// xtServeNoRoot is xtServe without a root key, so the server keeps or makes its own.
func xtServeNoRoot(t *testing.T, cfg server.Config) (string, *server.Server) {
	t.Helper()
	s, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
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

// sxSample returns the value of the metric line that starts with sample, or -1.
func sxSample(body, sample string) float64 {
	for _, l := range strings.Split(body, "\n") {
		if rest, ok := strings.CutPrefix(l, sample+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}

func TestSrvHealthzMetrics404(t *testing.T) {
	base, _ := xtServe(t, server.Config{})
	get := func(path, authz string) (int, string) {
		req, _ := http.NewRequest("GET", base+path, nil)
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for range 3 {
		if code, body := get("/healthz", ""); code != 200 || !strings.Contains(body, `"ok"`) {
			t.Fatalf("healthz: %d %s", code, body)
		}
	}
	for range 2 {
		if code, _ := get("/api/support/openapi/list", "Bearer wrong-key-abcdef"); code != 401 {
			t.Fatalf("wrong key: %d", code)
		}
	}
	if code, _ := get("/api/support/openapi/list", ""); code != 401 {
		t.Fatalf("no key: %d", code)
	}
	if code, _ := get("/api/support/openapi/list", xtBearer(xtAdmin)); code != 200 {
		t.Fatalf("admin list: %d", code)
	}
	r := xtDo(t, "GET", base+"/no/such/route", xtBearer(xtAdmin), "")
	if r.status != 404 || r.env.StatusText != "not_found" || r.env.Message == "" {
		t.Fatalf("unknown route: %s", r.raw)
	}
	r = xtDo(t, "POST", base+"/api/nothing/here", "", `{}`)
	if r.status != 404 || r.env.StatusText != "not_found" {
		t.Fatalf("unknown route: %s", r.raw)
	}

	code, m := get("/metrics", "")
	if code != 200 {
		t.Fatalf("metrics: %d", code)
	}
	for _, c := range []struct {
		sample string
		want   float64
	}{
		{`chatgate_http_requests_total{code="200",route="GET /healthz"}`, 3},
		{`chatgate_http_requests_total{code="401",route="GET /api/support/openapi/list"}`, 3},
		{`chatgate_http_requests_total{code="200",route="GET /api/support/openapi/list"}`, 1},
		{`chatgate_auth_failures_total{reason="invalid_api_key"}`, 3},
		{`chatgate_http_request_duration_seconds_count{route="GET /healthz"}`, 3},
		{`chatgate_http_request_duration_seconds_bucket{route="GET /healthz",le="+Inf"}`, 3},
		{`chatgate_http_request_duration_seconds_count{route="GET /api/support/openapi/list"}`, 4},
	} {
		if got := sxSample(m, c.sample); got != c.want {
			t.Errorf("%s = %v, want %v", c.sample, got, c.want)
		}
	}
	if !strings.Contains(m, "# TYPE chatgate_http_request_duration_seconds histogram") {
		t.Error("no latency histogram")
	}
	if strings.Contains(m, "/no/such/route") || strings.Contains(m, "/api/nothing/here") {
		t.Error("metrics label a raw path")
	}
	var notFound float64
	for _, l := range strings.Split(m, "\n") {
		if strings.HasPrefix(l, "chatgate_http_requests_total{") && strings.Contains(l, `code="404"`) {
			f := strings.Fields(l)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			notFound += v
		}
	}
	if notFound != 2 {
		t.Errorf("404s counted: %v, want 2\n", notFound)
	}
}

func TestSrvDataDirLocked(t *testing.T) {
	dir := t.TempDir()
	cfg := server.Config{RootKey: xtAdmin, Stderr: io.Discard}
	cfg.Server.Data = dir
	cfg.Logging.Level = "error"
	s, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	start := time.Now()
	s2, err := server.New(cfg)
	took := time.Since(start)
	if err == nil {
		s2.Close(context.Background())
		t.Fatal("a second server opened the same data directory")
	}
	if !errors.Is(err, boltx.ErrLocked) {
		t.Fatalf("second New: %v, want boltx.ErrLocked in the chain", err)
	}
	if took > 3*time.Second {
		t.Fatalf("second New took %v", took)
	}
	// once the first is closed, the directory opens again
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	s3, err := server.New(cfg)
	if err != nil {
		t.Fatalf("after Close: %v", err)
	}
	s3.Close(context.Background())
}

func TestSrvCloseFlushesUsage(t *testing.T) {
	dir := t.TempDir()
	cfg := server.Config{RootKey: xtAdmin, Stderr: io.Discard}
	cfg.Server.Data = dir
	cfg.Logging.Level = "error"
	cfg.Auth.FlushInterval = server.Duration(time.Hour) // only Close writes usage back
	s, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	base := "http://" + ln.Addr().String()

	id, key := xtCreate(t, base, `{"name":"used","appId":"main"}`)
	idle, _ := xtCreate(t, base, `{"name":"idle"}`)
	req, _ := http.NewRequest("POST", base+"/api/v1/chat/completions", strings.NewReader(`{"messages":[{"role":"user","content":"hello"}]}`))
	req.Header.Set("Authorization", xtBearer(key))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("chat: %d", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}

	base2, _ := xtServe(t, cfg)
	r := xtDo(t, "GET", base2+"/api/support/openapi/list", xtBearer(xtAdmin), "")
	var keys []struct {
		ID           string
		UsagePoints  float64    `json:"usagePoints"`
		LastUsedTime *time.Time `json:"lastUsedTime"`
	}
	if err := json.Unmarshal(r.env.Data, &keys); err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, k := range keys {
		switch k.ID {
		case id:
			seen++
			if k.LastUsedTime == nil || time.Since(*k.LastUsedTime) > time.Minute || k.UsagePoints <= 0 {
				t.Errorf("used key after reopen: lastUsed %v points %v", k.LastUsedTime, k.UsagePoints)
			}
		case idle:
			seen++
			if k.LastUsedTime != nil || k.UsagePoints != 0 {
				t.Errorf("idle key after reopen: lastUsed %v points %v", k.LastUsedTime, k.UsagePoints)
			}
		}
	}
	if seen != 2 {
		t.Fatalf("keys after reopen: %s", r.raw)
	}
}
