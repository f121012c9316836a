package auth_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/chatgate/chatgate/auth"
)

// TestRateLimitConcurrentHTTP drives one key with a limit of 300 requests a
// minute through a real HTTP server from many goroutines at once. It runs
// in a synctest bubble, whose clock cannot move while a goroutine waits on
// the loopback socket, so the bucket never refills: exactly 300 requests
// may pass, whatever the interleaving, and every other one must be refused
// with 429.
func TestRateLimitConcurrentHTTP(t *testing.T) {
	synctest.Test(t, testRateLimitConcurrentHTTP)
}

func testRateLimitConcurrentHTTP(t *testing.T) {
	const (
		rpm        = 300
		goroutines = 50
		perG       = 200
	)
	frozen := time.Now()
	var failures atomic.Int64
	store := auth.NewMemoryStore()
	authn := auth.NewAuthenticator(store, auth.Options{
		FlushInterval: time.Hour,
		OnFailure: func(reason string) {
			if reason == "rate_limit_exceeded" {
				failures.Add(1)
			}
		},
	})
	t.Cleanup(func() { _ = authn.Close(ctx) })
	mgr := auth.NewManager(store, authn)
	k, secret, err := mgr.Create(ctx, auth.KeySpec{Name: "busy", AppID: "app-1", Limit: auth.Limit{RPM: rpm}})
	if err != nil {
		t.Fatal(err)
	}

	var served atomic.Int64
	mux := http.NewServeMux()
	mux.Handle("POST /v1/chat/completions", authn.Require(auth.ScopeChat, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, ok := auth.FromContext(r.Context()); !ok || p.KeyID != k.ID {
			http.Error(w, "no principal", http.StatusInternalServerError)
			return
		}
		served.Add(1)
		_, _ = io.WriteString(w, `{"ok":true}`)
	})))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	tr := &http.Transport{MaxIdleConns: goroutines * 2, MaxIdleConnsPerHost: goroutines * 2}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}

	var (
		ok, limited atomic.Int64
		wg          sync.WaitGroup
		start       = make(chan struct{})
		errOnce     sync.Once
		firstErr    string
	)
	fail := func(format string, args ...any) {
		errOnce.Do(func() { firstErr = fmt.Sprintf(format, args...) })
	}
	for range goroutines {
		wg.Go(func() {
			<-start
			for range perG {
				req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/chat/completions", nil)
				if err != nil {
					fail("NewRequest: %v", err)
					return
				}
				req.Header.Set("Authorization", "Bearer "+secret)
				resp, err := client.Do(req)
				if err != nil {
					fail("request: %v", err)
					return
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					fail("reading body: %v", err)
					return
				}
				switch resp.StatusCode {
				case http.StatusOK:
					ok.Add(1)
				case http.StatusTooManyRequests:
					limited.Add(1)
					var env struct {
						Code       int    `json:"code"`
						StatusText string `json:"statusText"`
						Message    string `json:"message"`
					}
					if err := json.Unmarshal(body, &env); err != nil {
						fail("429 body %q: %v", body, err)
						continue
					}
					if env.Code != 429 || env.StatusText != "rate_limit_exceeded" || env.Message == "" {
						fail("429 envelope = %+v", env)
					}
					ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
					if err != nil || ra <= 0 {
						fail("Retry-After = %q, want a positive number of seconds", resp.Header.Get("Retry-After"))
					}
				default:
					fail("status %d: %s", resp.StatusCode, body)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	if firstErr != "" {
		t.Fatal(firstErr)
	}
	total := int64(goroutines * perG)
	if got := ok.Load(); got != rpm {
		t.Errorf("%d requests got 200, want exactly %d", got, rpm)
	}
	if got := served.Load(); got != rpm {
		t.Errorf("the handler ran %d times, want %d", got, rpm)
	}
	if got := limited.Load(); got != total-rpm {
		t.Errorf("%d requests got 429, want %d", got, total-rpm)
	}
	if got := failures.Load(); got != total-rpm {
		t.Errorf("OnFailure saw %d rate-limit failures, want %d", got, total-rpm)
	}
	if last, err := authn.LastUsed(ctx, k.ID); err != nil || !last.Equal(frozen) {
		t.Errorf("LastUsed = %v, %v", last, err)
	}
}
