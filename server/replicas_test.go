package server_test

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chatgate/chatgate/dataset"
	"github.com/chatgate/chatgate/internal/postgres/pgtest"
	"github.com/chatgate/chatgate/server"
)

// rpChildEnv, when set to a DSN, makes TestReplicaChild serve it.
const (
	rpChildEnv = "CHATGATE_REPLICA_CHILD_DSN"
	rpDirEnv   = "CHATGATE_REPLICA_CHILD_DIR"
	rpRoot     = blRoot
)

// TestReplicaChild is one replica of the replica tests: the reference
// server on Postgres, on a loopback port it prints.
func TestReplicaChild(t *testing.T) {
	dsn := os.Getenv(rpChildEnv)
	if dsn == "" {
		t.Skip("runs as a child of the replica tests")
	}
	childServe(rpChildConfig(dsn))
}

// rpChildConfig is a replica's configuration on dsn: the data directory
// rpDirEnv names, training at a remote model's pace.
func rpChildConfig(dsn string) server.Config {
	cfg := server.Config{RootKey: rpRoot, Stderr: io.Discard}
	cfg.Storage.DSN = dsn
	cfg.Server.Data = os.Getenv(rpDirEnv)
	cfg.Logging.Level = "error"
	cfg.Auth.FlushInterval = server.Duration(200 * time.Millisecond)
	cfg.Share.AllowHosts = []string{"127.0.0.1/32"}           // the test's auth host
	cfg.Storage.ClaimLease = server.Duration(5 * time.Second) // a killed replica's batch comes back soon
	// training at a remote model's pace, so that kills land mid-batch
	cfg.Dataset.ExtraEmbedders = map[string]dataset.Embedder{"paced": rpPaced{}}
	cfg.Dataset.VectorModel = "paced"
	return cfg
}

// rpPaced is the local embedder at a remote model's pace for batches:
// 300 ms a call of several texts (training), none for one (a query).
type rpPaced struct{ dataset.LocalEmbedder }

func (e rpPaced) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	if len(texts) > 1 {
		time.Sleep(300 * time.Millisecond)
	}
	return e.LocalEmbedder.Embed(ctx, texts)
}

// rpStart starts a replica on dsn.
func rpStart(t *testing.T, dsn string, n int) *child {
	t.Helper()
	return startChild(t, "^TestReplicaChild$", []string{rpChildEnv + "=" + dsn, rpDirEnv + "=" + t.TempDir()}, n)
}

// rpCluster starts n replicas on one fresh schema.
func rpCluster(t *testing.T, n int) (dsn string, rs []*child) {
	t.Helper()
	dsn = pgtest.DSN(t)
	// the first creates the schema's tables; the others start together
	rs = append(rs, rpStart(t, dsn, 0))
	ch := make(chan *child, n-1)
	for i := 1; i < n; i++ {
		go func() { ch <- rpStart(t, dsn, i) }()
	}
	for i := 1; i < n; i++ {
		r := <-ch
		if r == nil {
			t.FailNow()
		}
		rs = append(rs, r)
	}
	return dsn, rs
}

// Keys, apps and history agree across replicas: a key made on one works
// on the others, a revoke on one is refused by the others within a
// second, so is an app's change read, and a conversation goes on from
// replica to replica.
func TestReplicasAgreeOnKeysAndHistory(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three replicas")
	}
	_, rs := rpCluster(t, 3)
	a, b, c := rs[0].base, rs[1].base, rs[2].base

	id, key := blKey(t, a, map[string]any{"name": "partner", "appId": "main"})
	for _, base := range []string{b, c} {
		if st, raw := blDo(t, "GET", base+"/api/support/openapi/me", key, ""); st != 200 {
			t.Fatalf("a key made on A, used on %s: %d %s", base, st, raw)
		}
	}
	blCall(t, "DELETE", b+"/api/support/openapi/delete?id="+id, rpRoot, "", nil)
	revoked := time.Now()
	for _, base := range []string{a, c} {
		for {
			st, _ := blDo(t, "GET", base+"/api/support/openapi/me", key, "")
			if st == 401 {
				break
			}
			if time.Since(revoked) > time.Second {
				t.Fatalf("a key revoked on B still works on %s after %v", base, time.Since(revoked))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	t.Logf("revoked on B, refused on A and C after %v", time.Since(revoked))

	// An app read on B is kept there, and A's change to it reaches B
	// within moments (chat/pgstore's Watch).
	blCall(t, "POST", a+"/api/core/app/create", rpRoot, `{"id":"edited","name":"one"}`, nil)
	appName := func(base string) string {
		var app struct {
			Name string `json:"name"`
		}
		blCall(t, "GET", base+"/api/core/app/detail?appId=edited", rpRoot, "", &app)
		return app.Name
	}
	if got := appName(b); got != "one" {
		t.Fatalf("an app made on A, read on B: %q", got)
	}
	blCall(t, "PUT", a+"/api/core/app/update", rpRoot, `{"id":"edited","name":"two"}`, nil)
	edited := time.Now()
	for appName(b) != "two" {
		if time.Since(edited) > time.Second {
			t.Fatalf("an app changed on A still reads as before on B after %v", time.Since(edited))
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("changed on A, read on B after %v", time.Since(edited))

	_, appKey := blKey(t, a, map[string]any{"name": "chatter", "appId": "main"})
	ask := func(base, q string) {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"chatId": "replicated", "messages": []map[string]string{{"role": "user", "content": q}}})
		if st, raw := blDo(t, "POST", base+"/api/v1/chat/completions", appKey, string(body)); st != 200 {
			t.Fatalf("chat on %s: %d %s", base, st, raw)
		}
	}
	ask(a, "first question, through A")
	ask(b, "second question, through B")
	var page struct {
		List []struct {
			Obj   string `json:"obj"`
			Value any    `json:"value"`
		} `json:"list"`
		Total int `json:"total"`
	}
	blCall(t, "GET", c+"/api/core/chat/getPaginationRecords?appId=main&chatId=replicated&offset=0&pageSize=10", appKey, "", &page)
	if page.Total != 4 {
		t.Fatalf("history listed through C: %d records, want 4 (two turns): %+v", page.Total, page.List)
	}
	raw, _ := json.Marshal(page.List)
	if !strings.Contains(string(raw), "first question, through A") || !strings.Contains(string(raw), "second question, through B") {
		t.Fatalf("history through C: %s", raw)
	}
}
