package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// cleanEnv is the test's environment without any CHATGATE_* or OPENAI_* variable.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CHATGATE_") && !strings.HasPrefix(kv, "OPENAI_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// proc is the reference server running as a process.
type proc struct {
	cmd    *exec.Cmd
	stderr *lockedBuffer
	exited chan error
	base   string
}

var listening = regexp.MustCompile(`msg="chatgate listening" addr=(127\.0\.0\.1:\d+)`)

// startServer runs the binary and waits until it has logged its address
// and answers /healthz. With -addr 127.0.0.1:0 the kernel picks the port and
// the server's log says which.
func startServer(t *testing.T, bin string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), stderr: new(lockedBuffer), exited: make(chan error, 1)}
	p.cmd.Env = env
	p.cmd.Stderr = p.stderr
	p.cmd.Stdout = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for p.base == "" {
		if m := listening.FindStringSubmatch(p.stderr.String()); m != nil {
			p.base = "http://" + m[1]
			break
		}
		select {
		case err := <-p.exited:
			t.Fatalf("the server exited at start: %v\n%s", err, p.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no listening address logged:\n%s", p.stderr.String())
		}
	}
	for {
		resp, err := http.Get(p.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("never healthy: %v\n%s", err, p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop signals the server and expects a clean exit within a few seconds.
func (p *proc) stop(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		if err != nil {
			t.Fatalf("exit after %v: %v\n%s", sig, err, p.stderr.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no exit 5 s after %v\n%s", sig, p.stderr.String())
	}
	if !strings.Contains(p.stderr.String(), "chatgate shutting down") {
		t.Fatalf("no shutdown logged:\n%s", p.stderr.String())
	}
}

func call(t *testing.T, method, url, key, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// runCLI runs the binary to completion and returns its output and exit code.
func runCLI(t *testing.T, bin string, env []string, args ...string) (stdout, stderr string, code int, took time.Duration) {
	t.Helper()
	var o, e bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, &o, &e
	start := time.Now()
	err := cmd.Run()
	took = time.Since(start)
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatal(err)
	}
	return o.String(), e.String(), code, took
}

// TestServerProcess builds the reference server and runs it as operators
// do: first start prints the admin key once, the key CLI refuses to share
// the database with a running server, SIGTERM and SIGINT stop it cleanly,
// the CLI then creates a key that the restarted server accepts, and flags
// override the environment, which overrides the file.
func TestServerProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	bin := buildServer(t, dir)
	data := filepath.Join(dir, "data")

	// first start, no CHATGATE_ROOT_KEY: the admin key is printed once
	p := startServer(t, bin, cleanEnv(), "-addr", "127.0.0.1:0", "-data", data)
	admins := regexp.MustCompile(`(?m)^\s+(cg-[0-9A-Za-z]{49})$`).FindAllStringSubmatch(p.stderr.String(), -1)
	if len(admins) != 1 {
		t.Fatalf("admin key notice:\n%s", p.stderr.String())
	}
	admin := admins[0][1]
	if status, body := call(t, "GET", p.base+"/api/support/openapi/list", admin, ""); status != 200 || strings.Contains(body, admin) {
		t.Fatalf("list with the printed key: %d %s", status, body)
	}

	// the key CLI beside the running server fails at once, exit status 1
	stdout, stderr, code, took := runCLI(t, bin, cleanEnv(), "-data", data, "keys", "create", "-name", "sneaky")
	if code != 1 || took > 3*time.Second || !strings.HasPrefix(stderr, "chatgate: keys create:") ||
		!strings.Contains(stderr, "locked by another process") || stdout != "" {
		t.Fatalf("keys create beside the server: exit %d after %v\nstdout %q\nstderr %q", code, took, stdout, stderr)
	}
	p.stop(t, syscall.SIGTERM)

	// with the server stopped, the CLI works on the same data
	stdout, stderr, code, _ = runCLI(t, bin, cleanEnv(), "-data", data, "keys", "create", "-name", "ci", "-app", "main",
		"-rpm", "60", "-expires", "720h", "-allow-ip", "127.0.0.1/32")
	m := regexp.MustCompile(`(?m)^key:\s+(cg-\S+)$`).FindStringSubmatch(stdout)
	if code != 0 || m == nil {
		t.Fatalf("keys create: exit %d\n%s%s", code, stdout, stderr)
	}
	ciKey := m[1]
	stdout, _, code, _ = runCLI(t, bin, cleanEnv(), "-data", data, "keys", "list")
	if code != 0 || strings.Count(stdout, "\n") != 3 || strings.Contains(stdout, ciKey) || strings.Contains(stdout, admin) {
		t.Fatalf("keys list: exit %d\n%s", code, stdout)
	}

	// Second start. The file says port 1 and another data directory, the
	// environment overrides the address (port 0) and names a third data
	// directory, and the -data flag wins over both.
	cfgFile := filepath.Join(dir, "chatgate.yaml")
	if err := os.WriteFile(cfgFile, []byte("server:\n  addr: 127.0.0.1:1\n  data: "+filepath.Join(dir, "from-file")+"\nlogging:\n  format: text\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := cleanEnv("CHATGATE_ADDR=127.0.0.1:0", "CHATGATE_DATA="+filepath.Join(dir, "from-env"), "CHATGATE_CONFIG="+cfgFile)
	p = startServer(t, bin, env, "-data", data)
	if regexp.MustCompile(`cg-[0-9A-Za-z]{49}`).MatchString(p.stderr.String()) {
		t.Fatalf("the second start printed a key:\n%s", p.stderr.String())
	}
	status, body := call(t, "GET", p.base+"/api/support/openapi/me", ciKey, "")
	var me struct {
		Data struct {
			Principal struct {
				AppID  string   `json:"appId"`
				Scopes []string `json:"scopes"`
			} `json:"principal"`
			Key struct {
				Limit struct {
					RPM int `json:"rpm"`
				} `json:"limit"`
				AllowedIPs []string `json:"allowedIPs"`
			} `json:"key"`
		} `json:"data"`
	}
	if status != 200 || json.Unmarshal([]byte(body), &me) != nil || me.Data.Principal.AppID != "main" ||
		me.Data.Key.Limit.RPM != 60 || len(me.Data.Key.AllowedIPs) != 1 {
		t.Fatalf("the CLI's key on the restarted server: %d %s", status, body)
	}
	if status, body := call(t, "POST", p.base+"/api/v1/chat/completions", ciKey, `{"messages":[{"role":"user","content":"hi"}]}`); status != 200 {
		t.Fatalf("chat with the CLI's key: %d %s", status, body)
	}
	if status, _ := call(t, "GET", p.base+"/api/support/openapi/list", admin, ""); status != 200 {
		t.Fatalf("the first start's admin key: %d", status)
	}
	for _, unused := range []string{"from-file", "from-env"} {
		if _, err := os.Stat(filepath.Join(dir, unused)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s was used: %v", unused, err)
		}
	}
	p.stop(t, syscall.SIGINT)

	// a bad config file, or a stray argument, stops the start at once
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("server:\n  adress: 127.0.0.1:0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, code, took = runCLI(t, bin, cleanEnv(), "-config", bad, "-data", data)
	if code != 1 || !strings.Contains(stderr, "adress") || took > 5*time.Second {
		t.Fatalf("bad config: exit %d after %v\n%s", code, took, stderr)
	}
	_, stderr, code, _ = runCLI(t, bin, cleanEnv(), "-data", data, "serve")
	if code != 1 || !strings.Contains(stderr, `unexpected argument serve`) || !strings.Contains(stderr, "usage:") {
		t.Fatalf("stray argument: exit %d\n%s", code, stderr)
	}
}

// TestServerProcessStartUpFailures: a busy port stops the first start
// before it creates the data directory or prints an admin key (which a
// later start would not accept), and a CHATGATE_ROOT_KEY that replaces the
// printed key says so in the log, naming the replaced key by its hint.
func TestServerProcessStartUpFailures(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	bin := buildServer(t, dir)
	data := filepath.Join(dir, "data")
	anyKey := regexp.MustCompile(`cg-[0-9A-Za-z]{49}`)

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	stdout, stderr, code, _ := runCLI(t, bin, cleanEnv(), "-addr", busy.Addr().String(), "-data", data)
	if code != 1 || !strings.Contains(stderr, "address already in use") || anyKey.MatchString(stdout+stderr) {
		t.Fatalf("start on a busy port: exit %d\nstdout %q\nstderr %q", code, stdout, stderr)
	}
	if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the failed start created %s: %v", data, err)
	}

	// Now the first start proper: its key is printed once.
	p := startServer(t, bin, cleanEnv(), "-addr", "127.0.0.1:0", "-data", data)
	first := anyKey.FindString(p.stderr.String())
	if first == "" {
		t.Fatalf("no admin key printed:\n%s", p.stderr.String())
	}
	p.stop(t, syscall.SIGTERM)

	const chosen = "operator-chosen-root-key"
	p = startServer(t, bin, cleanEnv("CHATGATE_ROOT_KEY="+chosen), "-addr", "127.0.0.1:0", "-data", data)
	log := p.stderr.String()
	hint := first[:7] + "..." + first[len(first)-4:]
	if !strings.Contains(log, "level=WARN") || !strings.Contains(log, "CHATGATE_ROOT_KEY replaces the stored root key") ||
		!strings.Contains(log, "replaced_hint="+hint) || strings.Contains(log, first) || strings.Contains(log, chosen) {
		t.Fatalf("the replacement is not logged as it should be (hint %s):\n%s", hint, log)
	}
	if status, _ := call(t, "GET", p.base+"/api/support/openapi/list", first, ""); status != 401 {
		t.Fatalf("the replaced key: %d", status)
	}
	if status, _ := call(t, "GET", p.base+"/api/support/openapi/list", chosen, ""); status != 200 {
		t.Fatalf("the chosen key: %d", status)
	}
	p.stop(t, syscall.SIGTERM)

	// The same key again is no news.
	p = startServer(t, bin, cleanEnv("CHATGATE_ROOT_KEY="+chosen), "-addr", "127.0.0.1:0", "-data", data)
	if strings.Contains(p.stderr.String(), "replaces the stored root key") {
		t.Fatalf("a start with the same root key warned:\n%s", p.stderr.String())
	}
	p.stop(t, syscall.SIGTERM)
}

// buildServer builds the reference server into dir and returns its path.
func buildServer(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "chatgate")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}
