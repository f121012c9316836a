package server_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chatgate/chatgate/internal/postgres/pgtest"
	"github.com/chatgate/chatgate/server"
)

// With its Postgres stopped, a server answers the requests that need it
// 503 storage_unavailable, at once rather than hanging, acknowledges
// nothing, and says so on /healthz; once Postgres is back it serves again
// without a restart.
func TestPostgresOutage(t *testing.T) {
	pg := pgtest.StartServer(t)
	base := blStart(t, t.TempDir(), func(c *server.Config) { c.Storage.DSN = pg.DSN })

	_, appKey := blKey(t, base, map[string]any{"name": "before", "appId": "main"})
	chat := `{"messages":[{"role":"user","content":"hello"}]}`
	if st, raw := blDo(t, "POST", base+"/api/v1/chat/completions", appKey, chat); st != 200 {
		t.Fatalf("chat before the outage: %d %s", st, raw)
	}

	// load in flight when Postgres stops: every call is answered, 200 or
	// 503, and none hangs
	stopLoad := make(chan struct{})
	loadDone := make(chan error, 1)
	go func() {
		var bad error
		for n := 0; ; n++ {
			select {
			case <-stopLoad:
				loadDone <- bad
				return
			default:
			}
			start := time.Now()
			st, raw := blDo(t, "POST", base+"/api/v1/chat/completions", appKey, chat)
			if (st != 200 && st != 503) || time.Since(start) > 10*time.Second {
				bad = fmt.Errorf("call %d under load: %d after %v: %s", n, st, time.Since(start), raw)
			}
		}
	}()
	time.Sleep(200 * time.Millisecond) // the load is running
	pg.Stop()
	time.Sleep(500 * time.Millisecond) // and meets the outage
	close(stopLoad)
	if err := <-loadDone; err != nil {
		t.Error(err)
	}
	for _, c := range []struct{ method, path, key, body string }{
		{"POST", "/api/support/openapi/create", blRoot, `{"name":"during","appId":"main"}`},
		{"GET", "/api/support/openapi/list", blRoot, ""},
		{"POST", "/api/v1/chat/completions", appKey, chat},
		{"GET", "/api/core/dataset/list", blRoot, ""},
		{"GET", "/api/support/usage/list", blRoot, ""},
	} {
		start := time.Now()
		st, raw := blDo(t, c.method, base+c.path, c.key, c.body)
		took := time.Since(start)
		if st != 503 || !strings.Contains(string(raw), "storage_unavailable") {
			t.Errorf("%s %s with Postgres down: %d %s; want 503 storage_unavailable", c.method, c.path, st, raw)
		}
		if took > 10*time.Second {
			t.Errorf("%s %s took %v to fail", c.method, c.path, took)
		}
	}
	if st, _ := blDo(t, "GET", base+"/healthz", "", ""); st != 503 {
		t.Errorf("/healthz with Postgres down: %d, want 503", st)
	}

	pg.Start()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if st, _ := blDo(t, "GET", base+"/healthz", "", ""); st == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("/healthz did not recover once Postgres was back")
		}
	}
	if st, raw := blDo(t, "POST", base+"/api/v1/chat/completions", appKey, chat); st != 200 {
		t.Fatalf("chat after the outage: %d %s", st, raw)
	}
	var keys []struct{ Name string }
	blCall(t, "GET", base+"/api/support/openapi/list", blRoot, "", &keys)
	raw, _ := json.Marshal(keys)
	if strings.Contains(string(raw), `"during"`) || !strings.Contains(string(raw), `"before"`) {
		t.Fatalf("keys after the outage: %s; the key refused during it must not exist", raw)
	}
}
