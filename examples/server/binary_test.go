package main

import (
	"bytes"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestBinary builds the reference server, runs it as a real process, checks
// that the key CLI refuses to share its database, and stops it with SIGTERM.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "chatgate")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	data := filepath.Join(dir, "data")
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "-addr", addr, "-data", data)
	cmd.Env = append(cmd.Environ(), "CHATGATE_ROOT_KEY=binary-test-root-key")
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("never healthy: %v\n%s", err, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	start := time.Now()
	out, err := exec.Command(bin, "-data", data, "keys", "list").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "locked") || time.Since(start) > 5*time.Second {
		t.Fatalf("keys list beside a running server: %v after %v\n%s", err, time.Since(start), out)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no exit 10 s after SIGTERM\n%s", stderr.String())
	}
	// with the server gone, the CLI works on the same data
	if out, err := exec.Command(bin, "-data", data, "keys", "list").CombinedOutput(); err != nil || !strings.Contains(string(out), "root") {
		t.Fatalf("keys list after stop: %v\n%s", err, out)
	}
}
