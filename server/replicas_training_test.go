package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatgate/chatgate/cl100k"
)

// rpHost is a share-link auth host that lets every token in and records
// the tokens of the finish callbacks it is sent.
type rpHost struct {
	mu       sync.Mutex
	finished map[string]int
}

func (h *rpHost) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Token string `json:"token"`
	}
	_ = json.NewDecoder(r.Body).Decode(&body)
	if strings.HasSuffix(r.URL.Path, "/finish") {
		h.mu.Lock()
		h.finished[body.Token]++
		h.mu.Unlock()
	}
	fmt.Fprintf(w, `{"success":true,"data":{"uid":"uid-%s"}}`, body.Token)
}

// rpPool hands out the base URLs of the replicas that are up.
type rpPool struct {
	mu    sync.Mutex
	bases []string
}

func (p *rpPool) pick() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.bases[rand.IntN(len(p.bases))]
}

func (p *rpPool) set(i int, base string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.bases[i] = base
}

// rpTry makes one call, reporting whether it was answered 200: a call to
// a replica being killed may fail, and is then not acknowledged.
func rpTry(method, url, key, body string) (bool, []byte) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return false, nil
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := blClient.Do(req)
	if err != nil {
		return false, nil
	}
	defer resp.Body.Close()
	var raw json.RawMessage
	_ = json.NewDecoder(resp.Body).Decode(&raw)
	return resp.StatusCode == 200, raw
}

// Three replicas on one Postgres, one of them killed with SIGKILL at
// random moments while 5,000 items are pushed and trained and share-link
// visitors chat: every acknowledged item is trained once, with one vector,
// searchable alike on every replica; the bill is what the items cost; and
// every acknowledged visitor's finish callback arrives.
func TestReplicasTrainOnceUnderSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts replicas and trains 5,000 items")
	}
	dsn, rs := rpCluster(t, 3)
	pool := &rpPool{bases: []string{rs[0].base, rs[1].base, rs[2].base}}
	a := rs[0].base
	_, key := blKey(t, a, map[string]any{"name": "loader", "scopes": []string{"dataset:read", "dataset:write", "billing:read"}})
	dsID, collID, bill, shareID, host := rpWorld(t, a, key, "replicated")

	const items, batch = 5000, 100
	q := func(i int) string { return fmt.Sprintf("replicated item %04d: what does the item number %d say", i, i) }
	var (
		wg       sync.WaitGroup
		stop     atomic.Bool
		pushed   atomic.Int32
		chatsOK  sync.Map
		attempts atomic.Int32
		rounds   atomic.Int32 // kills made
	)
	for w := range 3 { // pushers: each batch is pushed until acknowledged
		wg.Go(func() {
			for b := w; b*batch < items; b += 3 {
				// Spread the pushes over at least 6 kills, however slowly a
				// loaded machine restarts the replicas.
				for int(rounds.Load()) < b*6/(items/batch) {
					time.Sleep(20 * time.Millisecond)
				}
				data := make([]map[string]string, batch)
				for i := range data {
					n := b*batch + i
					data[i] = map[string]string{"q": q(n), "a": fmt.Sprintf("answer %d", n)}
				}
				body, _ := json.Marshal(map[string]any{"collectionId": collID, "billId": bill, "data": data})
				for {
					attempts.Add(1)
					if ok, _ := rpTry("POST", pool.pick()+"/api/core/dataset/data/pushData", key, string(body)); ok {
						pushed.Add(batch)
						break
					}
					time.Sleep(50 * time.Millisecond)
				}
				time.Sleep(400 * time.Millisecond) // spread the pushes over the kills
			}
		})
	}
	wg.Go(func() { // visitors
		for i := 0; !stop.Load(); i++ {
			token := fmt.Sprintf("visitor-%d", i)
			body := fmt.Sprintf(`{"shareId":%q,"outLinkUid":%q,"messages":[{"role":"user","content":"hello %d"}]}`, shareID, token, i)
			if ok, _ := rpTry("POST", pool.pick()+"/api/v1/chat/completions", "", body); ok {
				chatsOK.Store(token, true)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})

	// SIGKILL a random replica at random moments while items are queued,
	// then bring it back
	type detail struct{ TrainingAmount, DataAmount, FailedAmount int }
	training := 0 // rounds that killed a replica with items still queued
	// Kill until the pushes are in and at least 6 kills were made, 5 of
	// them with items queued, or until nothing is left to interrupt.
	for round := 0; ; round++ {
		time.Sleep(time.Duration(300+rand.IntN(900)) * time.Millisecond)
		i := rand.IntN(3)
		queued := false
		if ok, raw := rpTry("GET", rs[(i+1)%3].base+"/api/core/dataset/collection/detail?id="+collID, key, ""); ok {
			var env struct{ Data detail }
			queued = json.Unmarshal(raw, &env) == nil && env.Data.TrainingAmount > 0
		}
		if pushed.Load() == items && round >= 6 && (training >= 5 || !queued) {
			break
		}
		if queued {
			training++
		}
		rs[i].kill(t)
		pool.set(i, rs[(i+1)%3].base) // route its share meanwhile to a live one
		rs[i] = rpStart(t, dsn, 10+round)
		pool.set(i, rs[i].base)
		rounds.Add(1)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for pushed.Load() < items {
		time.Sleep(100 * time.Millisecond)
	}
	stop.Store(true)
	<-done
	t.Logf("pushed %d items in %d pushData calls (retries after kills included); %d kills with items queued",
		pushed.Load(), attempts.Load(), training)
	if training < 5 {
		t.Errorf("only %d kills came while items were queued; want at least 5", training)
	}

	// every replica sees the whole collection trained, nothing failed
	for _, r := range rs {
		for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
			var d detail
			blCall(t, "GET", r.base+"/api/core/dataset/collection/detail?id="+collID, key, "", &d)
			if d.FailedAmount != 0 {
				t.Fatalf("%s: %+v: items failed", r.base, d)
			}
			if d.TrainingAmount == 0 && d.DataAmount == items {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %+v; want %d trained", r.base, d, items)
			}
		}
	}
	// once each, with one vector each
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var nData, nVec, nDistinctQ int
	if err := conn.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM dataset_data), (SELECT count(*) FROM dataset_vectors),
		(SELECT count(DISTINCT qhash) FROM dataset_data)`).Scan(&nData, &nVec, &nDistinctQ); err != nil {
		t.Fatal(err)
	}
	if nData != items || nVec != items || nDistinctQ != items {
		t.Fatalf("Postgres holds %d data (%d distinct q) and %d vectors; want %d of each", nData, nDistinctQ, nVec, items)
	}

	// the bill is what the items cost: their q, embedded once each
	var tok cl100k.Counter
	want := 0
	for i := range items {
		want += tok.Count(q(i))
	}
	var b struct {
		TotalTokens int `json:"totalTokens"`
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		blCall(t, "GET", rs[1].base+"/api/common/bill/detail?id="+bill, key, "", &b)
		if b.TotalTokens >= want || time.Now().After(deadline) {
			break
		}
	}
	if b.TotalTokens != want {
		t.Fatalf("the bill has %d embedding tokens; the trained items cost %d", b.TotalTokens, want)
	}

	// every replica finds every item, with the same top 10
	sem := make(chan struct{}, 8)
	var mismatches atomic.Int32
	var swg sync.WaitGroup
	for i := range items {
		sem <- struct{}{}
		swg.Go(func() {
			defer func() { <-sem }()
			var tops [3][]string
			for k, r := range rs {
				body := fmt.Sprintf(`{"datasetId":%q,"text":%q,"maxResults":10,"searchMode":"embedding"}`, dsID, q(i))
				ok, raw := rpTry("POST", r.base+"/api/core/dataset/searchTest", key, body)
				var env struct {
					Data []struct {
						ID string `json:"id"`
						Q  string `json:"q"`
					} `json:"data"`
				}
				if !ok || json.Unmarshal(raw, &env) != nil || len(env.Data) == 0 || env.Data[0].Q != q(i) {
					mismatches.Add(1)
					t.Errorf("%s: searching item %d: ok=%v, first hit not the item: %.300s", r.base, i, ok, raw)
					return
				}
				for _, h := range env.Data {
					tops[k] = append(tops[k], h.ID)
				}
			}
			if !slices.Equal(tops[0], tops[1]) || !slices.Equal(tops[0], tops[2]) {
				mismatches.Add(1)
				t.Errorf("item %d: the replicas' top 10 differ: %v", i, tops)
			}
		})
		if mismatches.Load() > 5 {
			break
		}
	}
	swg.Wait()

	// every acknowledged visitor's finish callback arrives, at least once
	var acked []string
	chatsOK.Range(func(k, _ any) bool { acked = append(acked, k.(string)); return true })
	if len(acked) == 0 {
		t.Fatal("no visitor chat was acknowledged")
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		host.mu.Lock()
		var missing []string
		for _, tk := range acked {
			if host.finished[tk] == 0 {
				missing = append(missing, tk)
			}
		}
		host.mu.Unlock()
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acknowledged visitors' finish callbacks never arrived: %v", len(missing), len(acked), missing[:min(5, len(missing))])
		}
	}
	t.Logf("%d visitor chats acknowledged, each finish callback delivered", len(acked))
}

// rpWorld makes what the replica tests train into and visit, all named
// name: a dataset with one collection, a training bill, and a share link
// whose finish callbacks host records.
func rpWorld(t *testing.T, base, key, name string) (dsID, collID, bill, shareID string, host *rpHost) {
	t.Helper()
	blCall(t, "POST", base+"/api/core/dataset/create", key, fmt.Sprintf(`{"name":%q}`, name), &dsID)
	blCall(t, "POST", base+"/api/core/dataset/collection/create", key, fmt.Sprintf(`{"datasetId":%q,"name":"items"}`, dsID), &collID)
	blCall(t, "POST", base+"/api/common/bill/createTrainingBill", key, fmt.Sprintf(`{"name":%q}`, name), &bill)
	host = &rpHost{finished: map[string]int{}}
	hs := httptest.NewServer(host)
	t.Cleanup(hs.Close)
	var link struct{ ShareID string }
	blCall(t, "POST", base+"/api/support/outLink/create", rpRoot,
		fmt.Sprintf(`{"appId":"main","name":%q,"limit":{"hookUrl":%q,"maxUsagePoints":-1}}`, name, hs.URL), &link)
	return dsID, collID, bill, link.ShareID, host
}
