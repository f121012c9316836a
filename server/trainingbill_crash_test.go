package server_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/chatgate/chatgate/cl100k"
)

// tbState is what the crash rounds share: the ids made in the first round
// and every item a push acknowledged.
type tbState struct {
	key, ds, coll, bill string
	mu                  sync.Mutex
	acked               map[string]bool // q of every item a 200 answer counted
}

// tbPush pushes one batch of new items under the bill and records the
// acknowledged ones; a push cut off by the kill acknowledges nothing.
func (st *tbState) push(base string, round, n int) bool {
	items := make([]map[string]string, 64)
	for i := range items {
		items[i] = map[string]string{"q": fmt.Sprintf("round %d push %d item %d: what does clause %d of the contract say?", round, n, i, n*64+i),
			"a": "see the contract"}
	}
	body, _ := json.Marshal(map[string]any{"collectionId": st.coll, "billId": st.bill, "data": items})
	req := fmt.Sprintf("%s/api/core/dataset/data/pushData", base)
	status, raw := tbDo(req, st.key, string(body))
	if status != 200 {
		return false
	}
	var env struct {
		Data struct {
			InsertLen int `json:"insertLen"`
		} `json:"data"`
	}
	if json.Unmarshal(raw, &env) != nil || env.Data.InsertLen != len(items) {
		return false
	}
	st.mu.Lock()
	for _, it := range items {
		st.acked[it["q"]] = true
	}
	st.mu.Unlock()
	return true
}

// tbDo posts body; a call cut off by the kill answers status 0.
func tbDo(url, key, body string) (int, []byte) {
	return soDo(http.MethodPost, url, key, body)
}

// A trained item's bill usage commits with its data: after SIGKILLs at
// random moments while pushes under a bill are trained, the bill holds the
// embedding of exactly the data that was trained, each item once, and
// every acknowledged item was trained. The issue saw a bill short by a
// whole 64-item batch in 9 of 17 rounds: the batch's data committed, its
// usage record did not.
func TestTrainingBillSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("kills child processes; skipped with -short")
	}
	const rounds = 10
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed>>7))
	dir := t.TempDir()
	st := &tbState{acked: map[string]bool{}}

	for round := range rounds + 1 {
		c := blStartChild(t, dir, round)
		if round == 0 {
			_, st.key = blKey(t, c.base, map[string]any{"name": "importer"})
			blCall(t, "POST", c.base+"/api/core/dataset/create", st.key, `{"name":"contracts"}`, &st.ds)
			blCall(t, "POST", c.base+"/api/core/dataset/collection/create", st.key, fmt.Sprintf(`{"datasetId":%q,"name":"c"}`, st.ds), &st.coll)
			blCall(t, "POST", c.base+"/api/common/bill/createTrainingBill", st.key, `{"name":"import"}`, &st.bill)
		}
		if round == rounds {
			// the last start: let everything train, then compare
			tbCheck(t, c.base, st)
			c.kill(t)
			return
		}
		// two pushers, killed at a random moment while they push and the
		// server trains
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for p := range 2 {
			wg.Go(func() {
				for n := p; ; n += 2 {
					select {
					case <-stop:
						return
					default:
					}
					if !st.push(c.base, round, n) {
						return
					}
				}
			})
		}
		time.Sleep(time.Duration(100+rng.IntN(400)) * time.Millisecond) // the random moment of the kill
		c.kill(t)
		close(stop)
		wg.Wait()
	}
}

// tbCheck waits until nothing is left to train and compares the bill with
// what was trained.
func tbCheck(t *testing.T, base string, st *tbState) {
	t.Helper()
	type detail struct {
		TrainingAmount int `json:"trainingAmount"`
		FailedAmount   int `json:"failedAmount"`
		DataAmount     int `json:"dataAmount"`
	}
	var d detail
	deadline := time.Now().Add(60 * time.Second)
	for {
		blCall(t, "GET", base+"/api/core/dataset/collection/detail?id="+st.coll, st.key, "", &d)
		if d.TrainingAmount == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if d.TrainingAmount != 0 || d.FailedAmount != 0 {
		t.Fatalf("after the last restart: %+v", d)
	}
	var tokens cl100k.Counter
	trained := map[string]bool{}
	want := 0
	for offset := 0; ; offset += 2000 {
		var page struct {
			List []struct {
				Q string `json:"q"`
			} `json:"list"`
			Total int `json:"total"`
		}
		blCall(t, "GET", fmt.Sprintf("%s/api/core/dataset/data/list?collectionId=%s&offset=%d&pageSize=2000", base, st.coll, offset), st.key, "", &page)
		for _, it := range page.List {
			if trained[it.Q] {
				t.Fatalf("%q was trained twice", it.Q)
			}
			trained[it.Q] = true
			want += tokens.Count(it.Q) // index mode embeds q
		}
		if offset+len(page.List) >= page.Total {
			break
		}
	}
	lost := 0
	for q := range st.acked {
		if !trained[q] {
			lost++
		}
	}
	var b struct {
		TotalTokens int `json:"totalTokens"`
	}
	blCall(t, "GET", base+"/api/common/bill/detail?id="+st.bill, st.key, "", &b)
	t.Logf("%d items acknowledged, %d trained (%d pushed but cut off before their answer); bill %d tokens, trained data %d tokens",
		len(st.acked), len(trained), len(trained)-len(st.acked)+lost, b.TotalTokens, want)
	if lost > 0 {
		t.Errorf("%d acknowledged items were never trained", lost)
	}
	if len(st.acked) == 0 {
		t.Fatal("no push was acknowledged: the rounds tested nothing")
	}
	if b.TotalTokens != want {
		t.Fatalf("bill holds %d tokens; the trained data %d (%+d, %.1f batches of 64)", b.TotalTokens, want,
			b.TotalTokens-want, float64(b.TotalTokens-want)/float64(want)*float64(len(trained))/64)
	}
}
