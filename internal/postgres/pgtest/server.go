package pgtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"testing"
)

// Server is a Postgres server a test started on a data directory and port
// of its own, so that it may stop it and start it again mid-test.
type Server struct {
	// DSN connects to the server's postgres database.
	DSN string

	t      testing.TB
	bin    string
	dir    string
	port   int
	asUser []string // runuser prefix when the test runs as root
}

// StartServer initialises and starts a private Postgres server, stopped
// when t ends. It skips t where the Postgres tests do not run (Env unset)
// or no server binaries are installed.
func StartServer(t testing.TB) *Server {
	t.Helper()
	if os.Getenv(Env) == "" {
		t.Skip(Env + " is not set: no Postgres to test against")
	}
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		t.Skip("no Postgres server binaries (initdb) to start a private server with")
	}
	s := &Server{t: t, bin: filepath.Dir(bins[len(bins)-1])}
	base, err := os.MkdirTemp("", "chatgate-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	s.dir = base
	if u, err := user.Current(); err == nil && u.Uid == "0" {
		// postgres refuses to run as root
		s.asUser = []string{"runuser", "-u", "postgres", "--"}
		if out, err := exec.Command("chown", "postgres", base).CombinedOutput(); err != nil {
			t.Fatalf("chown: %v %s", err, out)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s.run("initdb", "-D", filepath.Join(base, "data"), "-A", "trust", "-U", "postgres")
	s.Start()
	t.Cleanup(func() { s.stop(false) })
	s.DSN = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.port)
	return s
}

// Start starts the server again after Stop, on the same data and port.
func (s *Server) Start() {
	s.t.Helper()
	s.run("pg_ctl", "-D", filepath.Join(s.dir, "data"), "-l", filepath.Join(s.dir, "log"), "-w", "start",
		"-o", fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1", s.port, s.dir))
}

// Stop stops the server at once, cutting its connections.
func (s *Server) Stop() { s.t.Helper(); s.stop(true) }

func (s *Server) stop(must bool) {
	cmd := exec.Command(s.cmd("pg_ctl")[0], append(s.cmd("pg_ctl")[1:], "-D", filepath.Join(s.dir, "data"), "-m", "immediate", "-w", "stop")...)
	if out, err := cmd.CombinedOutput(); err != nil && must {
		s.t.Fatalf("pg_ctl stop: %v\n%s", err, out)
	}
}

func (s *Server) cmd(name string) []string {
	return append(append([]string{}, s.asUser...), filepath.Join(s.bin, name))
}

func (s *Server) run(name string, args ...string) {
	s.t.Helper()
	c := s.cmd(name)
	out, err := exec.Command(c[0], append(c[1:], args...)...).CombinedOutput()
	if err != nil {
		s.t.Fatalf("%s: %v\n%s", name, err, out)
	}
}
