package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chatgate/chatgate/internal/boltx"
	"github.com/chatgate/chatgate/server"
)

// kxRun runs the keys command on dir and returns its output.
func kxRun(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	cfg := server.Config{}
	cfg.Server.Data = dir
	var out bytes.Buffer
	err := server.KeysCommand(context.Background(), cfg, args, &out)
	return out.String(), err
}

func kxMust(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := kxRun(t, dir, args...)
	if err != nil {
		t.Fatalf("keys %v: %v\n%s", args, err, out)
	}
	return out
}

type kxView struct {
	ID     string   `json:"id"`
	Name   string   `json:"name"`
	Hint   string   `json:"hint"`
	AppID  string   `json:"appId"`
	TeamID string   `json:"teamId"`
	Scopes []string `json:"scopes"`
	Limit  struct {
		ExpiredTime    *time.Time `json:"expiredTime"`
		MaxUsagePoints float64    `json:"maxUsagePoints"`
		RPM            int        `json:"rpm"`
	} `json:"limit"`
	AllowedIPs []string `json:"allowedIPs"`
	Source     string   `json:"source"`
}

func kxList(t *testing.T, dir string) map[string]kxView {
	t.Helper()
	out := kxMust(t, dir, "list", "-json")
	var vs []kxView
	if err := json.Unmarshal([]byte(out), &vs); err != nil {
		t.Fatalf("list -json: %v\n%s", err, out)
	}
	m := map[string]kxView{}
	for _, v := range vs {
		m[v.Name] = v
	}
	return m
}

var (
	kxIDRe  = regexp.MustCompile(`(?m)^id:\s+(\S+)$`)
	kxKeyRe = regexp.MustCompile(`(?m)^key:\s+(\S+)$`)
)

func kxField(t *testing.T, re *regexp.Regexp, out string) string {
	t.Helper()
	m := re.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no %s in output:\n%s", re, out)
	}
	return m[1]
}

func TestKeysCmdLifecycle(t *testing.T) {
	dir := t.TempDir()

	out := kxMust(t, dir, "create", "-name", "ci", "-app", "main")
	ciID, ciKey := kxField(t, kxIDRe, out), kxField(t, kxKeyRe, out)
	if !strings.HasPrefix(ciKey, "cg-") || !strings.Contains(out, "shown this once") {
		t.Fatalf("create output:\n%s", out)
	}

	out = kxMust(t, dir, "create", "-name", "ops", "-scopes", "dataset:read, billing:read", "-rpm", "30",
		"-max-points", "12.5", "-expires", "720h", "-allow-ip", "10.0.0.0/8,192.168.1.7", "-team", "blue")
	opsID, opsKey := kxField(t, kxIDRe, out), kxField(t, kxKeyRe, out)

	out = kxMust(t, dir, "create", "-name", "dated", "-expires", "2099-01-02T03:04:05Z")
	datedID := kxField(t, kxIDRe, out)

	out = kxMust(t, dir, "import", "-name", "legacy", "-key", "legacy-secret-123", "-scopes", "admin")
	if !strings.Contains(out, "hint:") || strings.Contains(out, "legacy-secret-123") {
		t.Fatalf("import output shows the key or no hint:\n%s", out)
	}

	ks := kxList(t, dir)
	ci, ops, dated, legacy := ks["ci"], ks["ops"], ks["dated"], ks["legacy"]
	if ci.ID != ciID || ci.AppID != "main" || strings.Join(ci.Scopes, ",") != "chat" || ci.Source != "generated" {
		t.Errorf("ci: %+v", ci)
	}
	if ops.ID != opsID || ops.TeamID != "blue" || strings.Join(ops.Scopes, ",") != "billing:read,dataset:read" ||
		ops.Limit.RPM != 30 || ops.Limit.MaxUsagePoints != 12.5 || ops.Limit.ExpiredTime == nil ||
		time.Until(*ops.Limit.ExpiredTime) < 719*time.Hour || time.Until(*ops.Limit.ExpiredTime) > 721*time.Hour ||
		strings.Join(ops.AllowedIPs, ",") != "10.0.0.0/8,192.168.1.7/32" {
		t.Errorf("ops: %+v", ops)
	}
	if dated.ID != datedID || dated.Limit.ExpiredTime == nil || !dated.Limit.ExpiredTime.Equal(time.Date(2099, 1, 2, 3, 4, 5, 0, time.UTC)) ||
		dated.Limit.MaxUsagePoints != -1 {
		t.Errorf("dated: %+v", dated)
	}
	if legacy.Source != "imported" || strings.Join(legacy.Scopes, ",") != "admin" {
		t.Errorf("legacy: %+v", legacy)
	}
	for _, k := range []string{ciKey, opsKey, "legacy-secret-123"} {
		if l := kxMust(t, dir, "list"); strings.Contains(l, k) {
			t.Fatalf("list shows a key:\n%s", l)
		}
	}
	table := kxMust(t, dir, "list")
	for _, want := range []string{"ID", "NAME", "ci", "ops", "legacy", "main", "imported"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	if l := kxMust(t, dir, "list", "-json", "-team", "blue"); !strings.Contains(l, `"ops"`) || strings.Contains(l, `"ci"`) {
		t.Errorf("list -team blue:\n%s", l)
	}
	if l := kxMust(t, dir, "list", "-json", "-app", "main"); !strings.Contains(l, `"ci"`) || strings.Contains(l, `"ops"`) {
		t.Errorf("list -app main:\n%s", l)
	}

	// rotate ci with a grace period, and ops with none; revoke dated
	out = kxMust(t, dir, "rotate", "-id", ciID, "-grace", "1h")
	ciNew := kxField(t, kxKeyRe, out)
	if ciNew == ciKey || kxField(t, kxIDRe, out) != ciID {
		t.Fatalf("rotate output:\n%s", out)
	}
	out = kxMust(t, dir, "rotate", "-id", opsID)
	opsNew := kxField(t, kxKeyRe, out)
	if out := kxMust(t, dir, "revoke", "-id", datedID); !strings.Contains(out, datedID) {
		t.Fatalf("revoke output: %s", out)
	}
	if _, ok := kxList(t, dir)["dated"]; ok {
		t.Fatal("revoked key still listed")
	}
	if _, err := kxRun(t, dir, "revoke", "-id", datedID); err == nil {
		t.Fatal("revoking a revoked key succeeded")
	}

	// the keys the command wrote work (or not) on a server over the same data
	base, _ := xtServe(t, server.Config{Server: server.ServerConfig{Data: dir}})
	for _, c := range []struct {
		name, key  string
		status     int
		statusText string
	}{
		{"ci new", ciNew, 200, ""},
		{"ci old within grace", ciKey, 200, ""},
		{"legacy import", "legacy-secret-123", 200, ""},
		{"ops old, no grace", opsKey, 401, "invalid_api_key"},
		{"ops new, IP outside allow-list", opsNew, 403, "ip_not_allowed"},
	} {
		r := xtDo(t, "GET", base+"/api/support/openapi/me", xtBearer(c.key), "")
		if r.status != c.status || r.env.StatusText != c.statusText {
			t.Errorf("%s: %s", c.name, r.raw)
		}
	}
	if r := xtDo(t, "GET", base+"/api/support/openapi/list", xtBearer("legacy-secret-123"), ""); r.status != 200 {
		t.Errorf("imported admin key cannot list: %s", r.raw)
	}
}

func TestKeysCmdBadFlags(t *testing.T) {
	dir := t.TempDir()
	out := kxMust(t, dir, "create", "-name", "keep")
	id := kxField(t, kxIDRe, out)
	before := kxMust(t, dir, "list", "-json")

	for _, c := range []struct {
		name string
		args []string
		msg  string
	}{
		{"no command", nil, "usage"},
		{"unknown command", []string{"frobnicate"}, "unknown command"},
		{"unknown flag", []string{"list", "-nope"}, "nope"},
		{"extra argument", []string{"list", "extra"}, "unexpected argument"},
		{"flag of wrong type", []string{"create", "-name", "x", "-rpm", "many"}, "rpm"},
		{"create without name", []string{"create"}, "name"},
		{"import without key", []string{"import", "-name", "x"}, "key"},
		{"import short key", []string{"import", "-name", "x", "-key", "abc"}, "key"},
		{"import with generated prefix", []string{"import", "-name", "x", "-key", "cg-notachecksum"}, "key"},
		{"zero points", []string{"create", "-name", "x", "-max-points", "0"}, "max-points"},
		{"bad expiry", []string{"create", "-name", "x", "-expires", "soon"}, "expires"},
		{"negative duration", []string{"create", "-name", "x", "-expires", "-1h"}, "expires"},
		{"bad CIDR", []string{"create", "-name", "x", "-allow-ip", "10.0.0.0/33"}, "allow-ip"},
		{"bad scope", []string{"create", "-name", "x", "-scopes", "root"}, "scope"},
		{"negative rpm", []string{"create", "-name", "x", "-rpm", "-2"}, "rpm"},
		{"revoke without id", []string{"revoke"}, "-id"},
		{"rotate without id", []string{"rotate"}, "-id"},
		{"revoke unknown id", []string{"revoke", "-id", "nope"}, "not found"},
		{"rotate unknown id", []string{"rotate", "-id", "nope"}, "not found"},
		{"rotate bad grace", []string{"rotate", "-id", id, "-grace", "forever"}, "grace"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := kxRun(t, dir, c.args...)
			if err == nil {
				t.Fatalf("keys %v succeeded:\n%s", c.args, out)
			}
			if msg := err.Error() + out; !strings.Contains(strings.ToLower(msg), strings.ToLower(c.msg)) {
				t.Errorf("keys %v: %v (output %q), want a mention of %q", c.args, err, out, c.msg)
			}
		})
	}
	if after := kxMust(t, dir, "list", "-json"); after != before {
		t.Fatalf("failed commands changed the keys:\n%s\n%s", before, after)
	}
	if out := kxMust(t, dir, "help"); !strings.Contains(out, "rotate") {
		t.Errorf("help: %s", out)
	}
}

func TestKeysCmdRefusedWhileServerRuns(t *testing.T) {
	dir := t.TempDir()
	base, _ := xtServe(t, server.Config{Server: server.ServerConfig{Data: dir}})
	before := xtSnapshot(t, base)
	for _, args := range [][]string{{"list"}, {"create", "-name", "x"}} {
		start := time.Now()
		out, err := kxRun(t, dir, args...)
		took := time.Since(start)
		if err == nil {
			t.Fatalf("keys %v succeeded while the server runs:\n%s", args, out)
		}
		if took > 3*time.Second {
			t.Errorf("keys %v took %v to fail", args, took)
		}
		if !errors.Is(err, boltx.ErrLocked) {
			t.Errorf("keys %v: %v, want boltx.ErrLocked", args, err)
		}
		msg := strings.ToLower(err.Error())
		if !strings.Contains(msg, "database") || !(strings.Contains(msg, "in use") || strings.Contains(msg, "locked")) {
			t.Errorf("message does not say the database is in use: %v", err)
		}
	}
	if after := xtSnapshot(t, base); after != before {
		t.Fatalf("keys changed:\n%s\n%s", before, after)
	}
}
