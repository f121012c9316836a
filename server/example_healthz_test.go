package server_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/chatgate/chatgate/server"
)

// A program serves the reference server on a listener of its own: build a
// Config, call New, and Serve until the context is cancelled, which shuts
// down gracefully and closes the database.
func ExampleServer_Serve() {
	dir, err := os.MkdirTemp("", "chatgate-serve")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	cfg := server.Config{RootKey: "my-admin-key", Stderr: io.Discard}
	cfg.Server.Data = dir
	cfg.Logging.Level = "error"
	s, err := server.New(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	defer cancel()

	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		fmt.Println(err)
		return
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.Status)
	fmt.Println(strings.TrimSpace(string(body)))

	cancel()
	fmt.Println("serve:", <-done)
	// Output:
	// 200 OK
	// {"status":"ok"}
	// serve: <nil>
}
