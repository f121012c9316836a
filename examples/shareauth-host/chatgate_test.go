package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatgate/chatgate/server"
)

const admin = "test-admin-key-for-the-shareauth-host-example"

// runChatgate serves a chatgate on loopback for the test's duration.
func runChatgate(t *testing.T, allow []string) string {
	t.Helper()
	cfg := server.Config{RootKey: admin, Stderr: io.Discard}
	cfg.Server.Data = t.TempDir()
	cfg.Logging.Level = "error"
	cfg.Share.AllowHosts = allow
	s, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

func post(t *testing.T, url, key, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// The example host on loopback, with 127.0.0.1/32 on chatgate's
// share.allow_hosts, admits a listed visitor through init and start, turns
// away another, and takes the signed finish; without the listing chatgate
// refuses to point a link at it.
func TestHostWithChatgate(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hookURL := "http://" + ln.Addr().String()
	link := `{"appId":"main","name":"public","limit":{"hookUrl":"` + hookURL + `"}}`

	if code, out := post(t, runChatgate(t, nil)+"/api/support/outLink/create", admin, link); code != 400 || !strings.Contains(out["message"].(string), "limit.hookUrl") {
		t.Fatalf("loopback hook without an allow-list: %d %v", code, out)
	}

	base := runChatgate(t, []string{"127.0.0.1/32"})
	code, out := post(t, base+"/api/support/outLink/create", admin, link)
	if code != 200 {
		t.Fatalf("create: %d %v", code, out)
	}
	data := out["data"].(map[string]any)
	shareID, secret := data["shareId"].(string), data["secret"].(string)

	var mu sync.Mutex
	var paths []string
	finished := make(chan struct{}, 1)
	host := NewHost(secret, map[string]bool{"alice": true})
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		host.ServeHTTP(rec, r)
		mu.Lock()
		paths = append(paths, r.URL.Path+" "+http.StatusText(rec.code()))
		mu.Unlock()
		if r.URL.Path == "/shareAuth/finish" && rec.code() == 200 {
			finished <- struct{}{}
		}
	})}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })

	if code, out := post(t, base+"/api/core/chat/outLink/init", "", `{"shareId":"`+shareID+`","authToken":"alice"}`); code != 200 || out["data"].(map[string]any)["uid"] != "user-alice" {
		t.Fatalf("init alice: %d %v", code, out)
	}
	if code, out := post(t, base+"/api/core/chat/outLink/init", "", `{"shareId":"`+shareID+`","authToken":"bob"}`); code != 403 || out["message"] != "token not allowed" {
		t.Fatalf("init bob: %d %v", code, out)
	}
	if code, out := post(t, base+"/api/v1/chat/completions", "", `{"shareId":"`+shareID+`","authToken":"alice","messages":[{"role":"user","content":"hi"}]}`); code != 200 {
		t.Fatalf("chat alice: %d %v", code, out)
	}
	select {
	case <-finished:
	case <-time.After(10 * time.Second):
		t.Fatal("no finish callback")
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"/shareAuth/init OK", "/shareAuth/init OK", "/shareAuth/start OK", "/shareAuth/finish OK"}; strings.Join(paths, ",") != strings.Join(want, ",") {
		t.Fatalf("host calls %v, want %v", paths, want)
	}
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(c int) { r.status = c; r.ResponseWriter.WriteHeader(c) }

func (r *statusRecorder) code() int {
	if r.status == 0 {
		return 200
	}
	return r.status
}
