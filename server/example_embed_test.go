package server_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"

	"github.com/chatgate/chatgate/server"
)

// A program can run the reference server in-process: build a Config, New,
// and Serve on a listener of its own.
func Example() {
	dir, _ := os.MkdirTemp("", "chatgate-example")
	defer os.RemoveAll(dir)

	cfg := server.Config{RootKey: "example-admin-key", Stderr: io.Discard}
	cfg.Server.Data = dir
	cfg.Logging.Level = "error"
	s, err := server.New(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }() // Serve closes s when ctx ends

	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err == nil {
		fmt.Println(resp.Status)
		resp.Body.Close()
	}
	cancel()
	fmt.Println(<-done)
	// Output:
	// 200 OK
	// <nil>
}
