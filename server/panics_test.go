package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatgate/chatgate/dataset"
	"github.com/chatgate/chatgate/server"
)

// poisonEmbedder embeds like the local embedder but panics on any batch
// holding a text with "poison" in it, as a buggy embedding client might.
// While hold is set it waits for its context instead.
type poisonEmbedder struct {
	calls atomic.Int64
	hold  atomic.Bool
}

func (p *poisonEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	p.calls.Add(1)
	if p.hold.Load() {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	for _, t := range texts {
		if strings.Contains(t, "poison") {
			panic("embedder exploded on " + t)
		}
	}
	return dataset.LocalEmbedder{}.Embed(ctx, texts)
}

// poisonQA writes one pair per text, and panics on a text with "poison".
type poisonQA struct{}

func (poisonQA) Generate(_ context.Context, prompt string) (dataset.GenerateResult, error) {
	if strings.Contains(prompt, "poison") {
		var m map[string]int
		m["boom"]++ // a nil map write: a runtime panic, not a panic(string)
	}
	return dataset.GenerateResult{Text: "Q1: what is it?\nA1: " + qaText(prompt), Model: "poison-qa", PromptTokens: 10, CompletionTokens: 5}, nil
}

// panicMetric reads chatgate_background_panics_total for a component.
func panicMetric(t *testing.T, base, component string) int {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`chatgate_background_panics_total\{component="` + component + `"\} (\d+)`).FindSubmatch(body)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

type trainingFailure struct {
	Q         string `json:"q"`
	Attempts  int    `json:"attempts"`
	LastError string `json:"lastError"`
	Failed    bool   `json:"failed"`
}

// A panic in an embedder or a QA model while training an item is that
// item's failure, after its retries, with the panic value; the items it
// was batched with train, the server keeps serving and counts the panics,
// and a restart with a poisoned item still queued does not crash.
func TestTrainingPanicsAreItemFailures(t *testing.T) {
	emb := &poisonEmbedder{}
	dir := t.TempDir()
	config := func(attempts int) func(cfg *server.Config) {
		return func(cfg *server.Config) {
			cfg.Dataset.ExtraEmbedders = map[string]dataset.Embedder{"fragile": emb}
			cfg.Dataset.QAGenerator = poisonQA{}
			cfg.Dataset.MaxAttempts = attempts
			cfg.Dataset.RetryBase = server.Duration(5 * time.Millisecond)
		}
	}
	base := blStart(t, dir, config(3))
	_, key := blKey(t, base, map[string]any{"name": "importer"})
	var ds, coll string
	blCall(t, "POST", base+"/api/core/dataset/create", key, `{"name":"kb","vectorModel":"fragile"}`, &ds)
	blCall(t, "POST", base+"/api/core/dataset/collection/create", key, fmt.Sprintf(`{"datasetId":%q,"name":"c"}`, ds), &coll)
	push := func(mode string, qs ...string) {
		t.Helper()
		var items []map[string]string
		for _, q := range qs {
			items = append(items, map[string]string{"q": q, "a": "answer"})
		}
		body, _ := json.Marshal(map[string]any{"collectionId": coll, "mode": mode, "data": items})
		var res struct {
			InsertLen int `json:"insertLen"`
		}
		blCall(t, "POST", base+"/api/core/dataset/data/pushData", key, string(body), &res)
		if res.InsertLen != len(qs) {
			t.Fatalf("insertLen %d of %d", res.InsertLen, len(qs))
		}
	}
	// one batch: the poisoned item among good ones
	push("index", "good one", "poison pill", "good two", "good three")
	push("qa", "a qa text", "a poison qa text")

	type detail struct {
		TrainingAmount int `json:"trainingAmount"`
		FailedAmount   int `json:"failedAmount"`
		DataAmount     int `json:"dataAmount"`
	}
	var d detail
	deadline := time.Now().Add(20 * time.Second)
	for {
		blCall(t, "GET", base+"/api/core/dataset/collection/detail?id="+coll, key, "", &d)
		if d.TrainingAmount == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if d != (detail{TrainingAmount: 0, FailedAmount: 2, DataAmount: 4}) {
		t.Fatalf("collection %+v; want 4 trained (3 index, 1 QA pair) and the 2 poisoned failed", d)
	}
	var fails struct {
		List []trainingFailure `json:"list"`
	}
	blCall(t, "GET", base+"/api/core/dataset/collection/trainingFailures?collectionId="+coll, key, "", &fails)
	got := map[string]trainingFailure{}
	for _, f := range fails.List {
		got[f.Q] = f
	}
	if f := got["poison pill"]; f.Attempts != 3 || !f.Failed || !strings.Contains(f.LastError, "panic: embedder exploded on poison pill") {
		t.Errorf("embedder panic: failure %+v; want 3 attempts ending with the panic value", f)
	}
	if f := got["a poison qa text"]; f.Attempts != 3 || !f.Failed || !strings.Contains(f.LastError, "assignment to entry in nil map") {
		t.Errorf("QA model panic: failure %+v; want 3 attempts ending with the runtime panic", f)
	}
	if n := panicMetric(t, base, "training"); n < 6 {
		t.Errorf("chatgate_background_panics_total{component=\"training\"} = %d; want at least 6 (3 attempts of each)", n)
	}
	if status, _ := blDo(t, "GET", base+"/healthz", "", ""); status != 200 {
		t.Fatalf("healthz after the panics: %d", status)
	}
	var hits []struct{ Q string }
	blCall(t, "POST", base+"/api/core/dataset/searchTest", key, fmt.Sprintf(`{"datasetId":%q,"text":"good two"}`, ds), &hits)
	if len(hits) == 0 || hits[0].Q != "good two" {
		t.Fatalf("search after the panics: %+v", hits)
	}
}

// A poisoned item still queued when the server stops is tried again after
// a restart, and the restarted server survives it as the first did.
func TestTrainingPanicSurvivesRestart(t *testing.T) {
	emb := &poisonEmbedder{}
	emb.hold.Store(true)
	dir := t.TempDir()
	cfg := func(cfg *server.Config) {
		cfg.Dataset.ExtraEmbedders = map[string]dataset.Embedder{"fragile": emb}
		cfg.Dataset.MaxAttempts = 2
		cfg.Dataset.RetryBase = server.Duration(time.Millisecond)
	}
	base, stop := blStartStop(t, dir, cfg)
	_, key := blKey(t, base, map[string]any{"name": "importer"})
	var ds, coll string
	blCall(t, "POST", base+"/api/core/dataset/create", key, `{"name":"kb","vectorModel":"fragile"}`, &ds)
	blCall(t, "POST", base+"/api/core/dataset/collection/create", key, fmt.Sprintf(`{"datasetId":%q,"name":"c"}`, ds), &coll)
	blCall(t, "POST", base+"/api/core/dataset/data/pushData", key, fmt.Sprintf(`{"collectionId":%q,"data":[{"q":"poison"}]}`, coll), nil)
	deadline := time.Now().Add(20 * time.Second)
	for emb.calls.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	stop() // mid-attempt: the item stays queued, due at once

	// the restart works the item, which panics, and keeps serving
	emb.hold.Store(false)
	base = blStart(t, dir, cfg)
	var f struct {
		List []trainingFailure `json:"list"`
	}
	for time.Now().Before(deadline) {
		blCall(t, "GET", base+"/api/core/dataset/collection/trainingFailures?collectionId="+coll, key, "", &f)
		if len(f.List) == 1 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(f.List) != 1 || !f.List[0].Failed || f.List[0].Attempts != 2 || !strings.Contains(f.List[0].LastError, "panic: embedder exploded") {
		t.Fatalf("after restart: failures %+v; want the item failed after 2 panicking attempts", f.List)
	}
	if n := panicMetric(t, base, "training"); n < 2 {
		t.Errorf("the restarted server counted %d panics; want 2", n)
	}
	if status, _ := blDo(t, "GET", base+"/healthz", "", ""); status != 200 {
		t.Fatalf("healthz: %d", status)
	}
}
