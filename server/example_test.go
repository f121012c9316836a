package server_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/server"
)

// A service can embed the reference server: build a Config, call New, mount
// its Handler beside routes of its own (protected by the same keys through
// s.Authn), and serve on a listener it owns. Since it does not call Serve,
// it calls Close itself, which flushes key usage and closes the database.
func ExampleServer_Handler() {
	dir, err := os.MkdirTemp("", "chatgate-embed")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	cfg := server.Config{RootKey: "embed-admin-key", Stderr: io.Discard}
	cfg.Server.Data = dir
	cfg.Logging.Level = "error"
	s, err := server.New(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close(context.Background())

	// An app key for a partner, made in Go; its secret is shown only here.
	_, secret, err := s.Keys.Create(context.Background(), auth.KeySpec{Name: "partner", AppID: "main"})
	if err != nil {
		fmt.Println(err)
		return
	}

	mux := http.NewServeMux()
	mux.Handle("/", s.Handler()) // chatgate's routes: /healthz, /api/..., /v1/...
	mux.Handle("GET /my/hello", s.Authn.Require(auth.ScopeChat, http.HandlerFunc(
		func(w http.ResponseWriter, r *http.Request) {
			p, _ := auth.FromContext(r.Context())
			fmt.Fprintf(w, "hello %s, app %s", p.KeyName, p.AppID)
		})))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	hs := &http.Server{Handler: mux}
	go hs.Serve(ln)
	defer hs.Shutdown(context.Background())
	base := "http://" + ln.Addr().String()

	get := func(path, key string) {
		req, _ := http.NewRequest("GET", base+path, nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		fmt.Printf("GET %s: %s %s\n", path, resp.Status, body)
	}
	get("/healthz", "")
	get("/my/hello", secret)
	get("/my/hello", "")
	// Output:
	// GET /healthz: 200 OK {"status":"ok"}
	//
	// GET /my/hello: 200 OK hello partner, app main
	// GET /my/hello: 401 Unauthorized {"code":401,"statusText":"invalid_api_key","message":"API key is missing: send the header Authorization: Bearer <API key>"}
}
