package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// bxBuffer is a bytes.Buffer safe to read while a process writes to it.
type bxBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *bxBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *bxBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// bxEnv is the environment without CHATGATE_* and OPENAI_* variables.
func bxEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CHATGATE_") && !strings.HasPrefix(kv, "OPENAI_") {
			env = append(env, kv)
		}
	}
	return env
}

func bxFreeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestBinaryServeRefuseCLIAndSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "chatgate-server")
	build := exec.Command(goBin, "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	data := t.TempDir()
	addr := bxFreeAddr(t)
	var stdout, stderr bxBuffer
	cmd := exec.Command(bin, "-addr", addr, "-data", data)
	cmd.Env = append(bxEnv(), "CHATGATE_ROOT_KEY=bx-admin-key-123")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = cmd.Process.Kill()
			<-exited
		}
	})

	// poll /healthz until the server answers
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		select {
		case err := <-exited:
			killed = true
			t.Fatalf("server exited before serving: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no healthy server at %s: %v\n%s", addr, err, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	// the key CLI on the same data directory fails fast
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cli := exec.CommandContext(ctx, bin, "-data", data, "keys", "list")
	cli.Env = bxEnv()
	start := time.Now()
	out, err := cli.CombinedOutput()
	took := time.Since(start)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("keys list while serving: %v\n%s", err, out)
	}
	if took > 3*time.Second {
		t.Errorf("keys list took %v to fail", took)
	}
	if msg := strings.ToLower(string(out)); !strings.Contains(msg, "database") || !(strings.Contains(msg, "locked") || strings.Contains(msg, "in use")) {
		t.Errorf("keys list output does not say the database is in use:\n%s", out)
	}

	// SIGTERM: a clean exit within 10 s
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		killed = true
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
		}
		if cmd.ProcessState.ExitCode() != 0 {
			t.Fatalf("exit code %d", cmd.ProcessState.ExitCode())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no exit within 10 s of SIGTERM\n%s", stderr.String())
	}

	// the data directory is free again: the CLI now works on it
	cli = exec.Command(bin, "-data", data, "keys", "list")
	cli.Env = bxEnv()
	if out, err := cli.CombinedOutput(); err != nil || !strings.Contains(string(out), "root") {
		t.Fatalf("keys list after exit: %v\n%s", err, out)
	}
}
