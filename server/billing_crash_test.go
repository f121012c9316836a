package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatgate/chatgate/server"
)

// blCrashEnv, when set, makes TestBillingCrashChild serve the data
// directory it names.
const blCrashEnv = "CHATGATE_BILLING_CRASH_CHILD_DIR"

// TestBillingCrashChild is the process TestBillingSurvivesSIGKILL kills: the
// reference server on a loopback port it prints, with key usage flushed
// only once an hour, so that the key counters on disk lag the ledger.
func TestBillingCrashChild(t *testing.T) {
	dir := os.Getenv(blCrashEnv)
	if dir == "" {
		t.Skip("runs as the child of TestBillingSurvivesSIGKILL")
	}
	cfg := server.Config{RootKey: blRoot, Stderr: io.Discard}
	cfg.Server.Data = dir
	cfg.Logging.Level = "error"
	cfg.Auth.FlushInterval = server.Duration(time.Hour)
	childServe(cfg)
}

func blStartChild(t *testing.T, dir string, n int) *child {
	t.Helper()
	return startChild(t, "^TestBillingCrashChild$", []string{blCrashEnv + "=" + dir}, n)
}

// blLedgerOf returns the key's chat records and points as the ledger has
// them, through the usage routes.
func blLedgerOf(t *testing.T, base, keyID string) (chats int, points float64) {
	t.Helper()
	u := blUsage(t, base, "?keyId="+keyID)
	for _, r := range u.List {
		if r.Module == "AI Chat" {
			chats++
		}
		points += r.Points
	}
	s := blSummary(t, base, "?keyId="+keyID)
	if s.Total.Records != u.Total || math.Abs(s.Total.Points-points) > 1e-9 {
		t.Fatalf("summary %+v disagrees with the list: %d records, %v points", s.Total, u.Total, points)
	}
	return chats, points
}

// Chats acknowledged before a SIGKILL are in the ledger after it, each
// once, and the key's counter, never flushed before the kill, agrees with
// the ledger once the server is back.
func TestBillingSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills server processes")
	}
	dir := t.TempDir()

	// 1: sequential chats, each answered 200, then SIGKILL
	c := blStartChild(t, dir, 1)
	keyID, key := blKey(t, c.base, map[string]any{"name": "app", "appId": "main"})
	acked := 0
	first := time.Now()
	for range 8 {
		if status, raw := blChat(t, c.base, key, false); status != 200 {
			t.Fatalf("chat: %d %s", status, raw)
		}
		acked++
	}
	c.kill(t)
	// The records wait in the ledger's journal, which moves them into the
	// database a second after the first comes: killed within that second,
	// the restart must take them from there. (On a machine slow enough
	// for the chats to take longer, they may be in the database already.)
	fi, err := os.Stat(filepath.Join(dir, server.JournalFile))
	if err != nil {
		t.Fatalf("the server keeps no usage journal: %v", err)
	}
	if took := time.Since(first); took < 900*time.Millisecond && fi.Size() == 0 {
		t.Fatalf("journal empty after a kill %v after the first chat; want the acknowledged records in it", took)
	} else if fi.Size() == 0 {
		t.Logf("the chats took %v, past the journal's apply delay: the records were applied before the kill", took)
	}

	c = blStartChild(t, dir, 2)
	chats, points := blLedgerOf(t, c.base, keyID)
	used := blKeyUsage(t, c.base, keyID)
	t.Logf("after SIGKILL 1: %d acknowledged chats, %d chat records, %v points in the ledger, key usagePoints %v", acked, chats, points, used)
	if chats != acked {
		t.Fatalf("%d chat records for %d acknowledged chats", chats, acked)
	}
	if points <= 0 || math.Abs(used-points) > 1e-9 {
		t.Fatalf("key usagePoints %v; the ledger has %v", used, points)
	}

	// 2: concurrent chats, SIGKILL while some are running
	var (
		ok, sent atomic.Int64
		stop     atomic.Bool
		wg       sync.WaitGroup
	)
	client := &http.Client{Timeout: 10 * time.Second}
	for range 8 {
		wg.Go(func() {
			for !stop.Load() {
				sent.Add(1)
				req, _ := http.NewRequest("POST", c.base+"/api/v1/chat/completions",
					strings.NewReader(fmt.Sprintf(`{"messages":[{"role":"user","content":%q}]}`, blQuestion)))
				req.Header.Set("Authorization", "Bearer "+key)
				resp, err := client.Do(req)
				if err != nil {
					return // the server is gone
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				var cc struct{ Object string }
				if err == nil && resp.StatusCode == 200 && json.Unmarshal(body, &cc) == nil && cc.Object == "chat.completion" {
					ok.Add(1) // a whole answer: acknowledged
				} else if err == nil && resp.StatusCode != 200 {
					t.Errorf("chat: %d %s", resp.StatusCode, body)
					return
				}
			}
		})
	}
	for deadline := time.Now().Add(10 * time.Second); ok.Load() < 40 && time.Now().Before(deadline); {
		time.Sleep(2 * time.Millisecond)
	}
	c.kill(t)
	stop.Store(true)
	wg.Wait()
	acked += int(ok.Load())
	maxSent := 8 + int(sent.Load())

	c = blStartChild(t, dir, 3)
	chats, points = blLedgerOf(t, c.base, keyID)
	used = blKeyUsage(t, c.base, keyID)
	t.Logf("after SIGKILL 2: %d acknowledged, %d sent, %d chat records, %v points in the ledger, key usagePoints %v",
		acked, maxSent, chats, points, used)
	if chats < acked || chats > maxSent {
		t.Fatalf("%d chat records; %d chats were acknowledged, %d sent", chats, acked, maxSent)
	}
	if math.Abs(used-points) > 1e-9 {
		t.Fatalf("key usagePoints %v; the ledger has %v", used, points)
	}

	// 3: a restart with nothing new charges nothing twice
	c.kill(t)
	c = blStartChild(t, dir, 4)
	chats2, points2 := blLedgerOf(t, c.base, keyID)
	if used2 := blKeyUsage(t, c.base, keyID); chats2 != chats || math.Abs(points2-points) > 1e-9 || math.Abs(used2-points) > 1e-9 {
		t.Fatalf("after an idle restart: %d records, %v points, usagePoints %v; before: %d, %v", chats2, points2, used2, chats, points)
	}
}
