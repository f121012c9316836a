package server_test

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatgate/chatgate/internal/postgres/pgtest"
	"github.com/chatgate/chatgate/internal/redistest"
	"github.com/chatgate/chatgate/server"
)

// clRoot is the admin key of the cluster-limit tests' replicas.
const clRoot = "cluster-limits-root-key-0123456789"

// clQuestion is what every chat of these tests asks, so each costs the same.
const clQuestion = `{"messages":[{"role":"user","content":"how are you doing today my friend"}]}`

// clHTTP has room for the bursts' connections to three replicas.
var clHTTP = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 200, MaxConnsPerHost: 0}, Timeout: 60 * time.Second}

// clCluster is n in-process replicas on one Postgres schema and, when
// redisAddr is set, one Redis prefix.
type clCluster struct {
	bases []string
	next  atomic.Int64
}

// base returns the replicas round-robin.
func (c *clCluster) base() string {
	return c.bases[int(c.next.Add(1)-1)%len(c.bases)]
}

// clStart starts n replicas sharing dsn and, when redisAddr is not
// empty, Redis at redisAddr under prefix.
func clStart(t *testing.T, n int, dsn, redisAddr, prefix string, mutate func(*server.Config)) *clCluster {
	t.Helper()
	c := &clCluster{}
	for range n {
		cfg := server.Config{RootKey: clRoot, Stderr: io.Discard}
		cfg.Server.Data = t.TempDir()
		cfg.Logging.Level = "error"
		cfg.Storage.Driver = "postgres"
		cfg.Storage.DSN = dsn
		cfg.Auth.FlushInterval = server.Duration(100 * time.Millisecond)
		cfg.Redis.Addr = redisAddr
		cfg.Redis.Prefix = prefix
		if mutate != nil {
			mutate(&cfg)
		}
		s, err := server.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(s.Handler())
		t.Cleanup(func() {
			clHTTP.CloseIdleConnections()
			hs.Close()
			if err := s.Close(context.Background()); err != nil {
				t.Errorf("close: %v", err)
			}
		})
		c.bases = append(c.bases, hs.URL)
	}
	return c
}

// clDo sends one request and returns its status, Retry-After and body.
func clDo(t *testing.T, method, url, key, body string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Error(err)
		return 0, "", ""
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := clHTTP.Do(req)
	if err != nil {
		t.Error(err)
		return 0, "", ""
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After"), string(raw)
}

// clKey creates a key on base and returns its id and secret.
func clKey(t *testing.T, base, spec string) (id, secret string) {
	t.Helper()
	st, _, raw := clDo(t, "POST", base+"/api/support/openapi/create", clRoot, spec)
	var e struct {
		Code int
		Data struct{ ID, Key string }
	}
	if st != 200 || json.Unmarshal([]byte(raw), &e) != nil || e.Data.Key == "" {
		t.Fatalf("create %s: %d %s", spec, st, raw)
	}
	return e.Data.ID, e.Data.Key
}

// clData decodes the data of an envelope answer of an admin GET.
func clData(t *testing.T, url string, out any) {
	t.Helper()
	st, _, raw := clDo(t, "GET", url, clRoot, "")
	var e struct{ Data json.RawMessage }
	if st != 200 || json.Unmarshal([]byte(raw), &e) != nil || json.Unmarshal(e.Data, out) != nil {
		t.Fatalf("GET %s: %d %s", url, st, raw)
	}
}

// clKeyUsage is the usagePoints the key list of base shows for id.
func clKeyUsage(t *testing.T, base, id string) float64 {
	t.Helper()
	var keys []struct {
		ID          string  `json:"id"`
		UsagePoints float64 `json:"usagePoints"`
	}
	clData(t, base+"/api/support/openapi/list", &keys)
	for _, k := range keys {
		if k.ID == id {
			return k.UsagePoints
		}
	}
	t.Fatalf("key %s is not listed on %s", id, base)
	return 0
}

// clLedger is the sum of the usage records of key id, and their number.
func clLedger(t *testing.T, base, id string) (float64, int) {
	t.Helper()
	var p struct {
		List []struct {
			Points float64 `json:"points"`
		} `json:"list"`
	}
	clData(t, base+"/api/support/usage/list?pageSize=2000&keyId="+id, &p)
	sum := 0.0
	for _, r := range p.List {
		sum += r.Points
	}
	return sum, len(p.List)
}

// clChatCost measures the points one chat costs with a key of its own.
func clChatCost(t *testing.T, c *clCluster) float64 {
	t.Helper()
	id, key := clKey(t, c.bases[0], `{"name":"probe","appId":"main"}`)
	if st, _, raw := clDo(t, "POST", c.bases[0]+"/api/v1/chat/completions", key, clQuestion); st != 200 {
		t.Fatalf("probe chat: %d %s", st, raw)
	}
	one, n := clLedger(t, c.bases[0], id)
	if n != 1 || one <= 0 {
		t.Fatalf("probe chat: %d records, %v points", n, one)
	}
	return one
}

// clAgree polls until the key's usagePoints on every replica equal the
// ledger's sum for it, and returns that sum.
func clAgree(t *testing.T, c *clCluster, id string) float64 {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ledger, _ := clLedger(t, c.bases[0], id)
		var seen []float64
		agree := true
		for _, b := range c.bases {
			u := clKeyUsage(t, b, id)
			seen = append(seen, u)
			if math.Abs(u-ledger) > 1e-9 {
				agree = false
			}
		}
		if agree {
			t.Logf("usagePoints on the %d replicas %v = ledger %.6f", len(c.bases), seen, ledger)
			return ledger
		}
		if time.Now().After(deadline) {
			_, n := clLedger(t, c.bases[0], id)
			t.Errorf("after 10s the replicas show usagePoints %v for a ledger of %v (%d records)", seen, ledger, n)
			return ledger
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// clBurstRPM sends n requests of a key limited to rpm, round-robin, as
// fast as it can, and returns how many answered 200.
func clBurstRPM(t *testing.T, c *clCluster, rpm, n int) (ok, limited int) {
	t.Helper()
	_, key := clKey(t, c.bases[0], `{"name":"rpm","appId":"main","limit":{"rpm":`+strconv.Itoa(rpm)+`}}`)
	var okN, limN atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		base := c.base()
		wg.Go(func() {
			<-start
			st, ra, raw := clDo(t, "GET", base+"/api/support/openapi/me", key, "")
			switch st {
			case 200:
				okN.Add(1)
			case 429:
				limN.Add(1)
				if s, err := strconv.Atoi(ra); err != nil || s < 1 || s > 60 {
					t.Errorf("429 with Retry-After %q: %s", ra, raw)
				}
			default:
				t.Errorf("%d %s", st, raw)
			}
		})
	}
	close(start)
	wg.Wait()
	return int(okN.Load()), int(limN.Load())
}

// A key's requests per minute hold across three replicas counting in one
// Redis; without Redis each replica counts its own.
func TestClusterKeyRPM(t *testing.T) {
	const rpm, sent = 30, 90
	_, prefix := redistest.Client(t)
	addr := redistest.Addr(t)

	shared := clStart(t, 3, pgtest.DSN(t), addr, prefix, nil)
	ok, limited := clBurstRPM(t, shared, rpm, sent)
	t.Logf("with redis: rpm %d, %d sent over 3 replicas: %d answered, %d limited", rpm, sent, ok, limited)
	if ok != rpm || limited != sent-rpm {
		t.Errorf("with redis: %d answered, %d limited; want %d and %d", ok, limited, rpm, sent-rpm)
	}

	local := clStart(t, 3, pgtest.DSN(t), "", "", nil)
	ok, limited = clBurstRPM(t, local, rpm, sent)
	t.Logf("without redis: rpm %d, %d sent over 3 replicas: %d answered, %d limited (per-process counting)", rpm, sent, ok, limited)
	if ok <= rpm || ok > 3*rpm {
		t.Errorf("without redis: %d answered; want more than %d and at most %d", ok, rpm, 3*rpm)
	}
}

// clCounts are chats' outcomes.
type clCounts struct{ ok, refused, unavailable, other atomic.Int64 }

// clChats sends n concurrent chats with key round-robin over the
// replicas. With outage, the chats are spread over about two seconds and
// outage runs (alongside them) once `at` have been answered 200.
func clChats(t *testing.T, c *clCluster, key string, n int, at int, outage func()) *clCounts {
	t.Helper()
	var cnt clCounts
	var once sync.Once
	var wg sync.WaitGroup
	start := make(chan struct{})
	t0 := time.Now()
	for i := range n {
		base := c.base()
		wg.Go(func() {
			<-start
			if outage != nil {
				// spread over ~2s, so that chats run before, during and after the outage
				time.Sleep(time.Until(t0.Add(time.Duration(i) * 15 * time.Millisecond)))
			}
			st, _, raw := clDo(t, "POST", base+"/api/v1/chat/completions", key, clQuestion)
			answered := false
			switch {
			case st == 200:
				answered = cnt.ok.Add(1) == int64(at)
			case st == 429 && strings.Contains(raw, "insufficient_quota"):
				cnt.refused.Add(1)
			case st == 503 && strings.Contains(raw, "limits_unavailable"):
				cnt.unavailable.Add(1)
			default:
				cnt.other.Add(1)
				t.Errorf("%d %s", st, raw)
			}
			if answered && outage != nil {
				go once.Do(outage)
			}
		})
	}
	close(start)
	wg.Wait()
	once.Do(func() {}) // waits for an outage still running
	return &cnt
}

// A key's points quota holds across three replicas reserving in one
// Redis: of 150 concurrent chats against 5.5 chats' worth, at most 6 are
// answered and the overspend stays under one chat.
func TestClusterQuota(t *testing.T) {
	_, prefix := redistest.Client(t)
	c := clStart(t, 3, pgtest.DSN(t), redistest.Addr(t), prefix, nil)
	one := clChatCost(t, c)
	quota := 5.5 * one
	id, key := clKey(t, c.bases[0], `{"name":"capped","appId":"main","limit":{"maxUsagePoints":`+strconvF(quota)+`}}`)

	cnt := clChats(t, c, key, 150, 0, nil)
	used := clAgree(t, c, id)
	over := used - quota
	t.Logf("quota %.6f (5.5 chats of %.6f): %d answered / %d refused / overspent %.6f (%.2f chats)",
		quota, one, cnt.ok.Load(), cnt.refused.Load(), max(over, 0), max(over, 0)/one)
	if cnt.ok.Load() > 6 || cnt.ok.Load()+cnt.refused.Load() != 150 {
		t.Errorf("%d answered, %d refused; want at most 6 answered and the rest refused", cnt.ok.Load(), cnt.refused.Load())
	}
	if over > one+1e-9 {
		t.Errorf("overspent %v, more than one chat (%v)", over, one)
	}
	if n := float64(cnt.ok.Load()); math.Abs(used-n*one) > 1e-9 {
		t.Errorf("ledger %v for %v answered chats of %v", used, n, one)
	}
}

// Without Redis each replica admits against the ledger and its own running
// chats only: the figures show what the shared quota prevents.
func TestClusterQuotaWithoutRedis(t *testing.T) {
	c := clStart(t, 3, pgtest.DSN(t), "", "", nil)
	one := clChatCost(t, c)
	quota := 5.5 * one
	id, key := clKey(t, c.bases[0], `{"name":"capped","appId":"main","limit":{"maxUsagePoints":`+strconvF(quota)+`}}`)
	cnt := clChats(t, c, key, 150, 0, nil)
	used, n := clLedger(t, c.bases[0], id)
	t.Logf("without redis: quota %.6f (5.5 chats of %.6f): %d answered / %d refused / overspent %.6f (%.2f chats; %d ledger records)",
		quota, one, cnt.ok.Load(), cnt.refused.Load(), max(used-quota, 0), max(used-quota, 0)/one, n)
	if cnt.ok.Load() < 6 || cnt.ok.Load()+cnt.refused.Load() != 150 {
		t.Errorf("%d answered, %d refused; want at least 6 answered and the rest refused", cnt.ok.Load(), cnt.refused.Load())
	}
}

// The quota across three replicas when their Redis restarts (losing every
// key) in the middle of 150 chats: requests during the outage answer 503,
// service resumes without restarting the replicas, and the overspend is
// reported against the strict bound of one chat.
func TestClusterQuotaRedisRestart(t *testing.T) {
	rs := redistest.StartServer(t)
	c := clStart(t, 3, pgtest.DSN(t), rs.Addr, "restart:", func(cfg *server.Config) {
		cfg.Redis.Timeout = server.Duration(200 * time.Millisecond)
	})
	one := clChatCost(t, c)
	quota := 5.5 * one
	id, key := clKey(t, c.bases[0], `{"name":"capped","appId":"main","limit":{"maxUsagePoints":`+strconvF(quota)+`}}`)

	var outageAt time.Time
	var outage time.Duration
	cnt := clChats(t, c, key, 150, 3, func() { // mid-spend: 3 of 5.5 chats answered
		outageAt = time.Now()
		rs.Stop()
		time.Sleep(time.Second) // the outage: requests meanwhile find no Redis
		rs.Start()
		outage = time.Since(outageAt)
	})
	// After the restart the counters are rebuilt from the ledger; the key's
	// usagePoints are the ledger's on every replica.
	used := clAgree(t, c, id)
	over := used - quota
	t.Logf("redis stopped after 3 chats answered, for %v; quota %.6f (5.5 chats of %.6f): %d answered / %d refused / %d unavailable (503) / overspent %.6f (%.2f chats)",
		outage.Round(time.Millisecond), quota, one, cnt.ok.Load(), cnt.refused.Load(), cnt.unavailable.Load(), max(over, 0), max(over, 0)/one)
	if cnt.ok.Load()+cnt.refused.Load()+cnt.unavailable.Load() != 150 {
		t.Errorf("%d answered, %d refused, %d unavailable of 150", cnt.ok.Load(), cnt.refused.Load(), cnt.unavailable.Load())
	}
	if cnt.unavailable.Load() == 0 {
		t.Errorf("no chat met the outage: none answered 503 limits_unavailable")
	}
	if n := float64(cnt.ok.Load()); math.Abs(used-n*one) > 1e-9 {
		t.Errorf("ledger %v for %v answered chats of %v", used, n, one)
	}
	if over > one+1e-9 {
		t.Errorf("strict bound broken: overspent %v (%.2f chats), more than one chat (%v)", over, over/one, one)
	} else {
		t.Logf("strict bound held: overspend %.6f <= one chat %.6f", max(over, 0), one)
	}

	// service resumes: a fresh key within its quota chats on every replica
	_, fresh := clKey(t, c.bases[1], `{"name":"after","appId":"main","limit":{"maxUsagePoints":`+strconvF(10*one)+`}}`)
	deadline := time.Now().Add(10 * time.Second)
	for _, b := range c.bases {
		for {
			st, _, raw := clDo(t, "POST", b+"/api/v1/chat/completions", fresh, clQuestion)
			if st == 200 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after the restart, %s: %d %s", b, st, raw)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// and the capped key is still refused
	if st, _, raw := clDo(t, "POST", c.base()+"/api/v1/chat/completions", key, clQuestion); st != 429 {
		t.Errorf("the capped key after the restart: %d %s", st, raw)
	}
}

// A share link's questions per minute hold across three replicas counting
// in one Redis: 60 visitors' questions at once, round-robin, against a qpm
// of 20 get 20 answers and 40 refusals with a Retry-After.
func TestClusterShareQPM(t *testing.T) {
	const qpm, sent = 20, 60
	_, prefix := redistest.Client(t)
	c := clStart(t, 3, pgtest.DSN(t), redistest.Addr(t), prefix, nil)
	st, _, raw := clDo(t, "POST", c.bases[0]+"/api/support/outLink/create", clRoot,
		`{"appId":"main","name":"qpm","limit":{"qpm":`+strconv.Itoa(qpm)+`,"maxUsagePoints":-1}}`)
	var link struct {
		Data struct {
			ShareID string `json:"shareId"`
		}
	}
	if st != 200 || json.Unmarshal([]byte(raw), &link) != nil || link.Data.ShareID == "" {
		t.Fatalf("create link: %d %s", st, raw)
	}
	var ok, limited atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range sent {
		base := c.base()
		wg.Go(func() {
			<-start
			body := `{"shareId":"` + link.Data.ShareID + `","outLinkUid":"visitor-` + strconv.Itoa(i) + `",` + clQuestion[1:]
			req, _ := http.NewRequest("POST", base+"/api/v1/chat/completions", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := clHTTP.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			switch resp.StatusCode {
			case 200:
				ok.Add(1)
			case 429:
				limited.Add(1)
				if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 || s > 60 {
					t.Errorf("429 with Retry-After %q: %s", resp.Header.Get("Retry-After"), raw)
				}
			default:
				t.Errorf("%d %s", resp.StatusCode, raw)
			}
		})
	}
	close(start)
	wg.Wait()
	t.Logf("with redis: qpm %d, %d questions over 3 replicas: %d answered, %d limited", qpm, sent, ok.Load(), limited.Load())
	if ok.Load() != qpm || limited.Load() != sent-qpm {
		t.Errorf("%d answered, %d limited; want %d and %d", ok.Load(), limited.Load(), qpm, sent-qpm)
	}
}
