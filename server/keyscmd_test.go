package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/internal/boltx"
	"github.com/chatgate/chatgate/server"
)

// kcRun runs one key subcommand on cfg's data directory.
func kcRun(t *testing.T, cfg server.Config, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := server.KeysCommand(context.Background(), cfg, args, &out)
	return out.String(), err
}

func kcMust(t *testing.T, cfg server.Config, args ...string) string {
	t.Helper()
	out, err := kcRun(t, cfg, args...)
	if err != nil {
		t.Fatalf("keys %q: %v\n%s", args, err, out)
	}
	return out
}

var (
	kcIDLine   = regexp.MustCompile(`(?m)^id:\s+(\S+)$`)
	kcNameLine = regexp.MustCompile(`(?m)^name:\s+(.+)$`)
	kcKeyLine  = regexp.MustCompile(`(?m)^key:\s+(\S+)$`)
	kcHintLine = regexp.MustCompile(`(?m)^hint:\s+(\S+)$`)
)

// kcCreated parses what create and rotate print: the id and the key, once.
func kcCreated(t *testing.T, out string) (id, key string) {
	t.Helper()
	i, k := kcIDLine.FindStringSubmatch(out), kcKeyLine.FindStringSubmatch(out)
	if i == nil || k == nil || !strings.Contains(out, "shown this once") {
		t.Fatalf("unexpected output:\n%s", out)
	}
	return i[1], k[1]
}

func kcList(t *testing.T, cfg server.Config, args ...string) []auth.KeyView {
	t.Helper()
	out := kcMust(t, cfg, append([]string{"list", "-json"}, args...)...)
	var vs []auth.KeyView
	if err := json.Unmarshal([]byte(out), &vs); err != nil {
		t.Fatalf("list -json: %v\n%s", err, out)
	}
	return vs
}

func kcFind(vs []auth.KeyView, id string) *auth.KeyView {
	for i := range vs {
		if vs[i].ID == id {
			return &vs[i]
		}
	}
	return nil
}

// TestKeysCommandLifecycle runs every subcommand with every flag, parses
// what each prints, and then checks through a server started on the same
// data directory that each key works, and is limited, as the flags said.
func TestKeysCommandLifecycle(t *testing.T) {
	dir := t.TempDir()
	cfg := server.Config{}
	cfg.Server.Data = dir

	out := kcMust(t, cfg, "create", "-name", "ci", "-app", "main", "-scopes", "dataset:read, chat", "-rpm", "2",
		"-max-points", "5", "-expires", "2099-01-02T03:04:05Z", "-allow-ip", "127.0.0.1,10.0.0.0/8")
	ciID, ciKey := kcCreated(t, out)
	if n := kcNameLine.FindStringSubmatch(out); n == nil || n[1] != "ci" {
		t.Fatalf("create printed:\n%s", out)
	}
	if len(ciKey) != 3+43+6 || !strings.HasPrefix(ciKey, "cg-") || etChecksum(ciKey[:len(ciKey)-6]) != ciKey[len(ciKey)-6:] {
		t.Fatalf("created key %q is not a checksummed generated key", ciKey)
	}
	before := time.Now()
	globalID, _ := kcCreated(t, kcMust(t, cfg, "create", "-name", "global", "-team", "t2", "-expires", "720h"))
	after := time.Now()
	_, expiredKey := kcCreated(t, kcMust(t, cfg, "create", "-name", "expired", "-expires", "2001-01-01T00:00:00Z"))
	_, fencedKey := kcCreated(t, kcMust(t, cfg, "create", "-name", "fenced", "-allow-ip", "10.0.0.0/8"))
	goneID, goneKey := kcCreated(t, kcMust(t, cfg, "create", "-name", "gone"))
	swapID, swapKey := kcCreated(t, kcMust(t, cfg, "create", "-name", "swapped"))
	out = kcMust(t, cfg, "import", "-name", "legacy", "-key", "legacy-secret-1", "-scopes", "admin")
	legacyID := kcIDLine.FindStringSubmatch(out)
	if legacyID == nil || kcHintLine.FindStringSubmatch(out) == nil || strings.Contains(out, "legacy-secret-1") ||
		kcKeyLine.MatchString(out) {
		t.Fatalf("import printed:\n%s", out)
	}

	all := kcList(t, cfg)
	if len(all) != 7 {
		t.Fatalf("listed %d keys: %+v", len(all), all)
	}
	ci := kcFind(all, ciID)
	wantExp := time.Date(2099, 1, 2, 3, 4, 5, 0, time.UTC)
	if ci == nil || ci.Name != "ci" || ci.AppID != "main" || ci.TeamID != auth.DefaultTeam || ci.Scopes.String() != "[chat dataset:read]" ||
		ci.Limit.RPM != 2 || ci.Limit.MaxUsagePoints != 5 || ci.Limit.ExpiredTime == nil || !ci.Limit.ExpiredTime.Equal(wantExp) ||
		!slices.Equal(ci.AllowedIPs, []string{"127.0.0.1/32", "10.0.0.0/8"}) || ci.Source != auth.SourceGenerated || ci.Disabled ||
		ci.Hint != ciKey[:7]+"..."+ciKey[len(ciKey)-4:] {
		t.Fatalf("ci listed as %+v", ci)
	}
	g := kcFind(all, globalID)
	if g == nil || g.TeamID != "t2" || g.AppID != "" || g.Scopes.String() != "[billing:read dataset:read dataset:write]" ||
		g.Limit.MaxUsagePoints != -1 || g.Limit.RPM != 0 || g.Limit.ExpiredTime == nil ||
		g.Limit.ExpiredTime.Before(before.Add(720*time.Hour).Truncate(time.Second)) || g.Limit.ExpiredTime.After(after.Add(720*time.Hour)) {
		t.Fatalf("global listed as %+v", g)
	}
	if l := kcFind(all, legacyID[1]); l == nil || l.Source != auth.SourceImported || l.Scopes.String() != "[admin]" {
		t.Fatalf("legacy listed as %+v", l)
	}
	if vs := kcList(t, cfg, "-app", "main"); len(vs) != 1 || vs[0].ID != ciID {
		t.Fatalf("list -app main: %+v", vs)
	}
	if vs := kcList(t, cfg, "-team", "t2"); len(vs) != 1 || vs[0].ID != globalID {
		t.Fatalf("list -team t2: %+v", vs)
	}
	text := kcMust(t, cfg, "list")
	lines := strings.Split(strings.TrimSpace(text), "\n")
	if len(lines) != 8 || strings.Join(strings.Fields(lines[0]), " ") != "ID NAME HINT TEAM APP SCOPES SOURCE DISABLED" {
		t.Fatalf("list:\n%s", text)
	}
	var ciRow, globalRow []string
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		switch f[0] {
		case ciID:
			ciRow = f
		case globalID:
			globalRow = f
		}
	}
	if strings.Join(ciRow[1:], " ") != "ci "+ci.Hint+" default main chat,dataset:read generated false" ||
		strings.Join(globalRow[1:], " ") != "global "+g.Hint+" t2 - billing:read,dataset:read,dataset:write generated false" {
		t.Fatalf("list rows %q %q", ciRow, globalRow)
	}
	for _, secret := range []string{ciKey, expiredKey, fencedKey, "legacy-secret-1"} {
		if strings.Contains(text, secret) {
			t.Fatal("list printed a key")
		}
	}

	// rotate with a grace period: both keys work; without: only the new one
	out = kcMust(t, cfg, "rotate", "-id", ciID, "-grace", "1h")
	rid, ciNew := kcCreated(t, out)
	if rid != ciID || ciNew == ciKey || !strings.Contains(out, "1h0m0s") {
		t.Fatalf("rotate printed:\n%s", out)
	}
	rid, swapNew := kcCreated(t, kcMust(t, cfg, "rotate", "-id", swapID))
	if rid != swapID || swapNew == swapKey {
		t.Fatal("rotate without -grace")
	}
	if out := kcMust(t, cfg, "revoke", "-id", goneID); strings.TrimSpace(out) != "revoked "+goneID {
		t.Fatalf("revoke printed %q", out)
	}
	if kcFind(kcList(t, cfg), goneID) != nil {
		t.Fatal("the revoked key is still listed")
	}

	// The audit trail has each change, made by the CLI (no actor), and no secret.
	run := svStart(t, svConfig(dir))
	evs, err := run.s.Keys.Audit(context.Background(), auth.AuditQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	count := map[auth.AuditAction]int{}
	for _, e := range evs {
		if e.KeyID != auth.RootKeyID {
			count[e.Action]++
		}
		if e.ActorKeyID != "" && e.KeyID != auth.RootKeyID {
			t.Fatalf("a CLI change has an actor: %+v", e)
		}
	}
	if count[auth.AuditKeyCreated] != 6 || count[auth.AuditKeyImported] != 1 || count[auth.AuditKeyRotated] != 2 || count[auth.AuditKeyRevoked] != 1 {
		t.Fatalf("audit: %v", count)
	}
	raw, _ := json.Marshal(evs)
	for _, secret := range []string{ciKey, ciNew, "legacy-secret-1"} {
		if strings.Contains(string(raw), secret) {
			t.Fatal("the audit trail holds a key")
		}
	}

	me := func(key string) etResult {
		return etDo(t, "GET", run.base+"/api/support/openapi/me", "Bearer "+key, "")
	}
	// the old and new ci keys share one rate limit of 2 a minute
	r := me(ciKey)
	var d struct {
		Principal auth.Principal
		Key       auth.KeyView
	}
	if r.status != 200 || json.Unmarshal(r.env.Data, &d) != nil || d.Principal.KeyID != ciID || d.Principal.AppID != "main" ||
		d.Key.Limit.MaxUsagePoints != 5 {
		t.Fatalf("old ci key in its grace period: %d %s", r.status, r.raw)
	}
	if r := me(ciNew); r.status != 200 {
		t.Fatalf("new ci key: %d %s", r.status, r.raw)
	}
	if r := me(ciNew); r.status != 429 || r.env.StatusText != "rate_limit_exceeded" {
		t.Fatalf("third call at -rpm 2: %d %s", r.status, r.raw)
	}
	for _, tc := range []struct {
		name, key, authz string
		status           int
		statusText       string
	}{
		{"rotated without grace", swapKey, "", 401, "invalid_api_key"},
		{"revoked", goneKey, "", 401, "invalid_api_key"},
		{"expired", expiredKey, "", 401, "api_key_expired"},
		{"fenced", fencedKey, "", 403, "ip_not_allowed"},
		{"rotated, new", swapNew, "", 200, ""},
		{"imported admin", "legacy-secret-1", "", 200, ""},
	} {
		if r := me(tc.key); r.status != tc.status || r.env.StatusText != tc.statusText {
			t.Errorf("%s: %d %s", tc.name, r.status, r.raw)
		}
	}
	// scopes: the imported key is an admin, the ci key is not
	if r := etDo(t, "GET", run.base+"/api/support/openapi/list", "Bearer legacy-secret-1", ""); r.status != 200 {
		t.Fatalf("imported admin on list: %d %s", r.status, r.raw)
	}
	if r := etDo(t, "GET", run.base+"/api/support/openapi/list", "Bearer "+swapNew, ""); r.status != 403 || r.env.StatusText != "scope_denied" {
		t.Fatalf("global key on list: %d %s", r.status, r.raw)
	}
}

// The command honours the configured key prefix, as the server does.
func TestKeysCommandKeyPrefix(t *testing.T) {
	cfg := svConfig(t.TempDir())
	cfg.Auth.KeyPrefix = "sk-"
	_, key := kcCreated(t, kcMust(t, cfg, "create", "-name", "prefixed"))
	if !strings.HasPrefix(key, "sk-") || len(key) != 3+43+6 {
		t.Fatalf("key %q", key)
	}
	run := svStart(t, cfg)
	if r := etDo(t, "GET", run.base+"/api/support/openapi/me", "Bearer "+key, ""); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
}

// Bad commands and flags fail with a message naming what is wrong, and
// change no key.
func TestKeysCommandBadInput(t *testing.T) {
	dir := t.TempDir()
	cfg := svConfig(dir)
	// a root key and a config key in the directory, as a server leaves them
	withAccount := cfg
	withAccount.Channels.API.Enabled = true
	withAccount.Channels.API.Accounts = map[string]server.Account{"acc": {Enabled: true, APIKey: "account-key-1"}}
	if err := svStart(t, withAccount).stop(); err != nil {
		t.Fatal(err)
	}
	id, _ := kcCreated(t, kcMust(t, cfg, "create", "-name", "kept"))
	kcMust(t, cfg, "import", "-name", "taken", "-key", "taken-key-1")
	before := kcMust(t, cfg, "list", "-json")

	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "usage: keys"},
		{[]string{"explode"}, `unknown command "explode"`},
		{[]string{"create"}, `"name"`},
		{[]string{"create", "-name", "  "}, `"name"`},
		{[]string{"create", "-name", "x", "-bogus"}, "bogus"},
		{[]string{"create", "-name", "x", "-rpm", "abc"}, "-rpm"},
		{[]string{"create", "-name", "x", "-rpm", "1.5"}, "-rpm"},
		{[]string{"create", "-name", "x", "-rpm", "-1"}, "rpm"},
		{[]string{"create", "-name", "x", "-max-points", "0"}, "-max-points"},
		{[]string{"create", "-name", "x", "-max-points", "-3"}, "-max-points"},
		{[]string{"create", "-name", "x", "-max-points", "lots"}, "-max-points"},
		{[]string{"create", "-name", "x", "-expires", "soon"}, "-expires"},
		{[]string{"create", "-name", "x", "-expires", "-1h"}, "-expires"},
		{[]string{"create", "-name", "x", "-expires", "2027-01-02"}, "-expires"},
		{[]string{"create", "-name", "x", "-allow-ip", "nope"}, "allow-ip"},
		{[]string{"create", "-name", "x", "-allow-ip", "10.0.0.0/8,300.0.0.1"}, "allow-ip"},
		{[]string{"create", "-name", "x", "-scopes", "chat,root"}, `"root"`},
		{[]string{"create", "-name", "x", "stray"}, `unexpected argument "stray"`},
		{[]string{"import", "-name", "x"}, `"key"`},
		{[]string{"import", "-name", "x", "-key", "abcd"}, `"key"`},
		{[]string{"import", "-name", "x", "-key", "cg-short"}, `"key"`},
		{[]string{"import", "-name", "x", "-key", "taken-key-1"}, `"key": cannot be imported`},
		{[]string{"import", "-name", "x", "-key", "account-key-1"}, `"key": cannot be imported`},
		{[]string{"import", "-key", "fresh-key-1"}, `"name"`},
		{[]string{"list", "stray"}, `unexpected argument "stray"`},
		{[]string{"list", "-json=maybe"}, "json"},
		{[]string{"revoke"}, "-id is required"},
		{[]string{"revoke", "-id", "missing"}, "not found"},
		{[]string{"revoke", "-id", auth.RootKeyID}, "config"},
		{[]string{"revoke", "-id", auth.ConfigKeyID("acc")}, "config"},
		{[]string{"rotate"}, "-id is required"},
		{[]string{"rotate", "-id", "missing"}, "not found"},
		{[]string{"rotate", "-id", id, "-grace", "abc"}, "-grace"},
		{[]string{"rotate", "-id", id, "-grace", "-1h"}, "graceSeconds"},
		{[]string{"rotate", "-id", id, "-grace", "721h"}, "graceSeconds"},
		{[]string{"rotate", "-id", auth.ConfigKeyID("acc")}, "config"},
	} {
		out, err := kcRun(t, cfg, tc.args...)
		if err == nil {
			t.Errorf("keys %q succeeded:\n%s", tc.args, out)
			continue
		}
		if !strings.Contains(err.Error()+out, tc.want) {
			t.Errorf("keys %q: %v\n%s\nwant a message naming %s", tc.args, err, out, tc.want)
		}
		if strings.Contains(err.Error()+out, "taken-key-1") || strings.Contains(err.Error()+out, "account-key-1") {
			t.Errorf("keys %q: the error repeats a key", tc.args)
		}
	}
	if after := kcMust(t, cfg, "list", "-json"); after != before {
		t.Fatalf("bad commands changed the keys:\nbefore %s\nafter  %s", before, after)
	}
	for _, help := range []string{"help", "-h", "--help"} {
		if out, err := kcRun(t, cfg, help); err != nil || !strings.Contains(out, "commands:") || !strings.Contains(out, "rotate") {
			t.Fatalf("keys %s: %v\n%s", help, err, out)
		}
	}
	// a subcommand's -h lists its flags
	out, err := kcRun(t, cfg, "create", "-h")
	if err != nil {
		t.Fatalf("keys create -h: %v", err)
	}
	for _, flag := range []string{"-name", "-app", "-team", "-scopes", "-expires", "-rpm", "-max-points", "-allow-ip"} {
		if !strings.Contains(out, flag) {
			t.Errorf("create -h lacks %s:\n%s", flag, out)
		}
	}
}

// While a server holds the database, every subcommand fails at once with a
// message that says the database is in use, and changes nothing.
func TestKeysCommandWhileServing(t *testing.T) {
	dir := t.TempDir()
	run := svStart(t, svConfig(dir))
	id, _ := etKey(t, run.s, auth.KeySpec{Name: "existing"})
	for _, args := range [][]string{
		{"create", "-name", "sneaky"},
		{"revoke", "-id", id.ID},
	} {
		start := time.Now()
		out, err := kcRun(t, svConfig(dir), args...)
		took := time.Since(start)
		if err == nil {
			t.Fatalf("keys %q beside a running server succeeded:\n%s", args, out)
		}
		if took > 3*time.Second {
			t.Fatalf("keys %q took %v to fail", args, took)
		}
		msg := err.Error()
		if !errors.Is(err, boltx.ErrLocked) || !strings.Contains(msg, "keys "+args[0]) ||
			!strings.Contains(msg, "database is locked by another process") || !strings.Contains(msg, "server running") {
			t.Fatalf("keys %q: unclear error %q", args, msg)
		}
	}
	if err := run.stop(); err != nil {
		t.Fatal(err)
	}
	vs := kcList(t, svConfig(dir))
	if kcFind(vs, id.ID) == nil || len(vs) != 2 {
		t.Fatalf("after the refused commands: %+v", vs)
	}
}
