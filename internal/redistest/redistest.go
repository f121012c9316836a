// Package redistest gives tests a Redis: the shared one CHATGATE_TEST_REDIS
// names, with a key prefix of each test's own, or a private server a test
// starts, stops and starts again on a port of its own.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Env names the variable holding the test Redis's address.
const Env = "CHATGATE_TEST_REDIS"

// Addr returns the test Redis's address, or skips t when Env is unset.
func Addr(t testing.TB) string {
	t.Helper()
	addr := os.Getenv(Env)
	if addr == "" {
		t.Skip(Env + " is not set: no Redis to test against")
	}
	return addr
}

// Prefix returns a key prefix no other test uses; the keys under it are
// deleted when t ends.
func Prefix(t testing.TB, rdb redis.UniversalClient) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	p := "chatgate-test:" + hex.EncodeToString(b) + ":"
	t.Cleanup(func() {
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, p+"*", 1000).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
	})
	return p
}

// Client returns a client of the test Redis, closed when t ends, and a key
// prefix of t's own.
func Client(t testing.TB) (*redis.Client, string) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: Addr(t)})
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("%s=%s does not answer: %v", Env, os.Getenv(Env), err)
	}
	t.Cleanup(func() { rdb.Close() })
	return rdb, Prefix(t, rdb)
}

// Server is a Redis server of one test, keeping nothing on disk, so that a
// restart loses every key, as a Redis without persistence does.
type Server struct {
	// Addr is where it listens, the same across restarts.
	Addr string

	t   testing.TB
	cmd *exec.Cmd
}

// StartServer starts a private Redis server, stopped when t ends. It skips
// t where the Redis tests do not run (Env unset) or redis-server is missing.
func StartServer(t testing.TB) *Server {
	t.Helper()
	Addr(t)
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("no redis-server to start a private server with")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), t: t}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// Start starts the server (again) and waits until it answers.
func (s *Server) Start() {
	s.t.Helper()
	_, port, _ := net.SplitHostPort(s.Addr)
	dir := s.t.TempDir()
	s.cmd = exec.Command("redis-server", "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no",
		"--dir", dir, "--logfile", "")
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("starting redis-server: %v", err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer rdb.Close()
	deadline := time.Now().Add(10 * time.Second)
	for rdb.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server on %s did not answer in 10s", s.Addr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Stop kills the server, losing every key; it is a no-op when stopped.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// String implements fmt.Stringer.
func (s *Server) String() string { return fmt.Sprintf("redis-server %s", s.Addr) }
