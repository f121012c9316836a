package auth_test

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/chatgate/chatgate/auth"
)

// Requests of a quota-limited key are admitted against the points used plus
// the expected cost of those already running: 40 concurrent requests that
// each cost 1 point, against a quota of 5, overspend by less than a request.
func TestQuotaAdmission(t *testing.T) {
	synctest.Test(t, testQuotaAdmission)
}

func testQuotaAdmission(t *testing.T) {
	ctx := context.Background()
	store := auth.NewMemoryStore()
	authn := auth.NewAuthenticator(store, auth.Options{FlushInterval: time.Hour})
	t.Cleanup(func() { _ = authn.Close(ctx) })
	m := auth.NewManager(store, authn)
	k, secret, err := m.Create(ctx, auth.KeySpec{Name: "capped", AppID: "a", Limit: auth.Limit{MaxUsagePoints: 5}})
	if err != nil {
		t.Fatal(err)
	}
	var running, peak atomic.Int64
	h := authn.Require(auth.ScopeChat, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := running.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(20 * time.Millisecond)
		running.Add(-1)
		_ = authn.Charge(r.Context(), k.ID, 1)
	}))
	client := serveInMemory(t, h)
	var ok, refused atomic.Int64
	var wg sync.WaitGroup
	for range 40 {
		wg.Go(func() {
			req, _ := http.NewRequest("GET", "http://chatgate/", nil)
			req.Header.Set("Authorization", "Bearer "+secret)
			resp, err := client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			switch resp.StatusCode {
			case 200:
				ok.Add(1)
			case 429:
				refused.Add(1)
			default:
				t.Errorf("status %d", resp.StatusCode)
			}
		})
	}
	wg.Wait()
	used, _ := authn.UsedPoints(ctx, k.ID)
	t.Logf("%d served (peak %d at once), %d refused, %v points used of 5", ok.Load(), peak.Load(), refused.Load(), used)
	if ok.Load()+refused.Load() != 40 || used < 5 || used >= 6 {
		t.Fatalf("%d served, %d refused, %v points used", ok.Load(), refused.Load(), used)
	}
}

// A key without a quota is never held back.
func TestNoQuotaNoHold(t *testing.T) {
	synctest.Test(t, testNoQuotaNoHold)
}

func testNoQuotaNoHold(t *testing.T) {
	ctx := context.Background()
	store := auth.NewMemoryStore()
	authn := auth.NewAuthenticator(store, auth.Options{})
	t.Cleanup(func() { _ = authn.Close(ctx) })
	_, secret, _ := auth.NewManager(store, authn).Create(ctx, auth.KeySpec{Name: "free", AppID: "a"})
	var running, peak atomic.Int64
	release := make(chan struct{})
	h := authn.Require(auth.ScopeChat, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := running.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		<-release
	}))
	client := serveInMemory(t, h)
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			req, _ := http.NewRequest("GET", "http://chatgate/", nil)
			req.Header.Set("Authorization", "Bearer "+secret)
			if resp, err := client.Do(req); err == nil {
				resp.Body.Close()
			}
		})
	}
	synctest.Wait() // every request that was let in is waiting for release
	close(release)
	wg.Wait()
	if peak.Load() != 5 {
		t.Fatalf("%d ran at once, want 5", peak.Load())
	}
}
