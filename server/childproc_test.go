package server_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chatgate/chatgate/server"
)

// childServe is the body of a child test process: the reference server on
// cfg, on a loopback port it prints as "LISTEN addr" (or "ERROR ..."),
// until it is killed.
func childServe(cfg server.Config) {
	s, err := server.New(cfg)
	if err != nil {
		fmt.Printf("ERROR %v\n", err)
		os.Exit(3)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Printf("ERROR %v\n", err)
		os.Exit(3)
	}
	fmt.Printf("LISTEN %s\n", ln.Addr())
	_ = s.Serve(context.Background(), ln) // until killed
	os.Exit(0)
}

// child is a reference server running in a child process.
type child struct {
	cmd  *exec.Cmd
	base string
}

// startChild runs this test binary's test run (a child test that calls
// childServe) with env, and waits for the address it prints. Its output
// goes to files, never to pipes a killed child could leave open.
func startChild(t *testing.T, run string, env []string, n int) *child {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run="+run, "-test.count=1")
	cmd.Env = append(os.Environ(), env...)
	outf, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	errf, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = outf, errf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	outf.Close()
	errf.Close()
	c := &child{cmd: cmd}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		out, err := os.ReadFile(outf.Name())
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(strings.NewReader(string(out)))
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "LISTEN "); ok {
				c.base = "http://" + a
				return c
			}
			if strings.HasPrefix(sc.Text(), "ERROR ") {
				stderr, _ := os.ReadFile(errf.Name())
				t.Fatalf("child %d did not start: %s\n%s", n, sc.Text(), stderr)
			}
		}
	}
	stderr, _ := os.ReadFile(errf.Name())
	t.Fatalf("child %d did not print its address\n%s", n, stderr)
	return nil
}

// kill sends SIGKILL: no shutdown, no flush.
func (c *child) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = c.cmd.Wait()
	// the same client must not reuse connections to the dead process
	blClient.CloseIdleConnections()
}
