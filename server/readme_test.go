package server_test

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chatgate/chatgate/server"
)

// readmeBlocks returns README.md's fenced code blocks of a language, in
// order.
func readmeBlocks(t *testing.T, lang string) []string {
	t.Helper()
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var (
		out []string
		cur *strings.Builder
	)
	for _, line := range strings.Split(string(raw), "\n") {
		switch {
		case cur == nil && line == "```"+lang:
			cur = new(strings.Builder)
		case cur != nil && line == "```":
			out = append(out, cur.String())
			cur = nil
		case cur != nil:
			cur.WriteString(line + "\n")
		}
	}
	return out
}

// The README's shell examples, run as a newcomer would paste them, in
// order, into one shell (bash, curl and jq) against a server configured
// with the README's share block: every call answers 200 but the one the
// README says is refused, the offline model answers 导演是谁 from the
// knowledge base once the README attaches it to the app, and both share
// links, without and with examples/shareauth-host, let their visitor in.
// Only the host and ports change; blocks that run go commands on the data
// directory (the quickstart, the key CLI, development) are left out.
func TestReadmeExamplesRunAsWritten(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs examples/shareauth-host; skipped with -short")
	}
	for _, tool := range []string{"bash", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the README's examples need %s, which is not installed", tool)
		}
	}
	var share server.ShareConfig
	for _, y := range readmeBlocks(t, "yaml") {
		if strings.Contains(y, "allow_hosts") {
			p := filepath.Join(t.TempDir(), "share.yaml")
			if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
				t.Fatal(err)
			}
			loaded, err := server.LoadConfig(p)
			if err != nil {
				t.Fatalf("the README's share config: %v", err)
			}
			share = loaded.Share
		}
	}
	if len(share.AllowHosts) == 0 {
		t.Fatal("the README shows no share.allow_hosts block")
	}
	base := blStart(t, t.TempDir(), func(cfg *server.Config) { cfg.Share = share })
	addr := strings.TrimPrefix(base, "http://")
	hostLn, err := net.Listen("tcp", "127.0.0.1:0") // a free port for the auth host
	if err != nil {
		t.Fatal(err)
	}
	hostAddr := hostLn.Addr().String()
	hostLn.Close()

	tmp := t.TempDir()
	var script strings.Builder
	script.WriteString(`set -euo pipefail
# every response is logged as "<status> <body on one line>"
curl() {
	local body status
	body=$(mktemp)
	status=$(command curl -o "$body" -w '%{http_code}' "$@") || { echo "curl $* failed" >&2; rm -f "$body"; return 1; }
	printf '%s %s\n' "$status" "$(tr -d '\n' < "$body")" >> "$LOG"
	cat "$body"
	rm -f "$body"
}
`)
	blocks := 0
	for _, b := range readmeBlocks(t, "sh") {
		if strings.Contains(b, "go run ") || strings.Contains(b, "go test ") {
			continue
		}
		blocks++
		for _, line := range strings.Split(b, "\n") {
			if strings.HasPrefix(line, "ADMIN=") {
				continue // the test's own admin key stands in for the printed one
			}
			line = strings.ReplaceAll(line, "127.0.0.1:9527", addr)
			line = strings.ReplaceAll(line, "127.0.0.1:9700", hostAddr)
			line = strings.ReplaceAll(line, "/tmp/shareauth-host", filepath.Join(tmp, "shareauth-host"))
			script.WriteString(line + "\n")
		}
	}
	if blocks < 5 {
		t.Fatalf("found %d runnable shell blocks in the README", blocks)
	}
	logPath := filepath.Join(tmp, "responses.log")
	rctx, rcancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer rcancel()
	cmd := exec.CommandContext(rctx, "bash", "-c", script.String())
	cmd.Dir = ".." // the README's commands run from the repository's root
	cmd.Env = append(os.Environ(), "LOG="+logPath, "ADMIN="+blRoot)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // the backgrounded host dies with it
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// a file, not a pipe: the host the script leaves running would hold a
	// pipe open, and Wait with it
	outf, err := os.Create(filepath.Join(tmp, "output"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = outf, outf
	err = cmd.Run()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	outf.Close()
	out, _ := os.ReadFile(outf.Name())
	if err != nil {
		t.Fatalf("the README's examples failed: %v\n%s\nscript:\n%s", err, out, script.String())
	}

	f, err := os.Open(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		calls, answered, denied int
		sc                      = bufio.NewScanner(f)
		chat                    = regexp.MustCompile(`"object":"chat\.completion"`)
	)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		status, body, _ := strings.Cut(sc.Text(), " ")
		calls++
		switch {
		case status == "403" && strings.Contains(body, `"share_auth_denied"`) && strings.Contains(body, "token not allowed"):
			denied++ // the README's refused visitor
		case status != "200":
			t.Errorf("a README call answered %s: %s", status, body)
		case chat.MatchString(body) && strings.Contains(body, "新海诚"):
			answered++
		}
	}
	if denied != 1 {
		t.Errorf("%d refused visitors; the README shows one", denied)
	}
	// the app chat after attaching the dataset, and both share links
	if answered != 3 {
		t.Errorf("%d chats answered 导演是谁 from the knowledge base; want 3 (the key, the open link, the hosted link)", answered)
	}
	if t.Failed() {
		t.Logf("%d calls; output:\n%s", calls, out)
	}
}
