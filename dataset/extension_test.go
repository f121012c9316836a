package dataset_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/chatgate/chatgate/dataset"
	"github.com/chatgate/chatgate/dataset/datasettest"
)

// fakeExtender is a QueryExtender whose answers a test scripts by model.
type fakeExtender struct {
	mu     sync.Mutex
	calls  []string // model, then prompt, for each call
	answer func(model string) (dataset.GenerateResult, error)
}

func (f *fakeExtender) Complete(_ context.Context, model, prompt string) (dataset.GenerateResult, error) {
	f.mu.Lock()
	f.calls = append(f.calls, model, prompt)
	f.mu.Unlock()
	return f.answer(model)
}

func (f *fakeExtender) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// lockedBuffer is a log sink that concurrent handlers may write.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// extRewrites is what the scripted model answers for the documented
// question 导演是谁 ("who is the director"): English rewrites, the way a
// model that read the background would, in a code fence as models like to.
const extRewrites = "```json\n[\"Who directed Hero?\", \"Hero film director\", \"who directed hero?\"]\n```"

func extModel(model string) (dataset.GenerateResult, error) {
	switch model {
	case "gpt-4o-mini":
		return dataset.GenerateResult{Text: extRewrites, Model: model, PromptTokens: 40, CompletionTokens: 12}, nil
	case "chatty":
		return dataset.GenerateResult{Text: "I would rather answer the question: Zhang Yimou.", Model: model}, nil
	case "many":
		return dataset.GenerateResult{Text: `["导演是谁","q1","q2","Q1","q3","q4","q5"]`, Model: model, PromptTokens: 5, CompletionTokens: 5}, nil
	case "down":
		return dataset.GenerateResult{}, errors.New("model provider openai failed: 503 Service Unavailable")
	}
	return dataset.GenerateResult{}, fmt.Errorf("%w: %q is not a chat model chatgate serves", dataset.ErrExtensionModel, model)
}

// extEnv is a knowledge base of three items, English only, so that the
// Chinese question finds the director's item by full text only through
// its rewrites.
func extEnv(t *testing.T, ext dataset.QueryExtender, log *lockedBuffer) (*httpEnv, string) {
	t.Helper()
	opts := dataset.Options{}
	if ext != nil {
		opts.Extender = ext
	}
	if log != nil {
		opts.Logger = slog.New(slog.NewTextHandler(log, nil))
	}
	e := newHTTPEnv(t, opts)
	ds := e.createDataset(t, e.writeA, "films")
	coll := e.createCollection(t, e.writeA, ds, "notes")
	e.ok(t, e.writeA, "POST", "/api/core/dataset/data/pushData", map[string]any{"collectionId": coll, "data": []map[string]any{
		{"q": "How long is the refund window?", "a": "30 days."},
		{"q": "Who directed Hero?", "a": "Zhang Yimou."},
		{"q": "Which actor plays Nameless?", "a": "Jet Li."}}}, nil)
	e.waitIdle(t, e.writeA, coll)
	waitFor(t, "full-text index", func() bool {
		var hits []hit
		e.ok(t, e.writeA, "POST", "/api/core/dataset/searchTest", map[string]any{"datasetId": ds, "text": "refund window", "searchMode": "fullTextRecall"}, &hits)
		return len(hits) == 1
	})
	return e, ds
}

// searchTest with the documented extension fields searches the question
// and the model's rewrites and fuses what they find; the model's tokens
// are recorded as their own module, and the embedding of every query as
// the search's.
func TestHandlerSearchExtension(t *testing.T) {
	ext := &fakeExtender{answer: extModel}
	e, ds := extEnv(t, ext, nil)

	// the question alone shares no word with the data
	var hits []hit
	e.ok(t, e.writeA, "POST", "/api/core/dataset/searchTest", map[string]any{"datasetId": ds, "text": "导演是谁", "searchMode": "fullTextRecall"}, &hits)
	if len(hits) != 0 || len(ext.Calls()) != 0 {
		t.Fatalf("without extension: %+v, model calls %q; want no hits and no call", hits, ext.Calls())
	}

	for _, mode := range []string{"embedding", "fullTextRecall", "mixedRecall"} {
		before := len(e.usage.all)
		e.ok(t, e.writeA, "POST", "/api/core/dataset/searchTest", datasettest.SearchTestBody(ds, mode, "gpt-4o-mini"), &hits)
		if len(hits) == 0 || hits[0].Q != "Who directed Hero?" || hits[0].Score <= 0 || hits[0].Score > 1 {
			t.Fatalf("%s with extension: %+v; want the director's item first", mode, hits)
		}
		seen := map[string]bool{}
		for _, h := range hits {
			if seen[h.ID] {
				t.Fatalf("%s: %s found by two queries is listed twice: %+v", mode, h.Q, hits)
			}
			seen[h.ID] = true
		}
		if mode == "fullTextRecall" && len(hits) != 1 {
			t.Fatalf("fullTextRecall with extension: %+v; want the director's item alone", hits)
		}
		e.usage.mu.Lock()
		recs := append([]dataset.UsageRecord(nil), e.usage.all[before:]...)
		e.usage.mu.Unlock()
		var extRec, searchRec *dataset.UsageRecord
		for i := range recs {
			switch recs[i].Module {
			case dataset.ModuleQueryExtension:
				extRec = &recs[i]
			case dataset.ModuleSearch:
				searchRec = &recs[i]
			}
		}
		if extRec == nil || extRec.Model != "gpt-4o-mini" || extRec.InputTokens != 40 || extRec.OutputTokens != 12 ||
			extRec.TeamID != "team-a" || extRec.KeyID == "" || extRec.DatasetID != ds {
			t.Fatalf("%s: extension usage %+v in %+v", mode, extRec, recs)
		}
		// the question and two rewrites (the third repeats the first but for case)
		embedded := len([]rune("导演是谁")) + len("Who directed Hero?") + len("Hero film director")
		switch {
		case mode == "fullTextRecall" && searchRec != nil:
			t.Fatalf("full-text search recorded embedding usage %+v", searchRec)
		case mode != "fullTextRecall" && (searchRec == nil || searchRec.InputTokens != embedded):
			t.Fatalf("%s: search usage %+v; want the %d tokens of the three queries", mode, searchRec, embedded)
		}
	}
	calls := ext.Calls()
	if len(calls) != 6 || calls[0] != "gpt-4o-mini" || !strings.Contains(calls[1], "导演是谁") {
		t.Fatalf("model calls %q", calls)
	}

	// the background reaches the model
	e.ok(t, e.writeA, "POST", "/api/core/dataset/searchTest", map[string]any{"datasetId": ds, "text": "谁拍的",
		"datasetSearchUsingExtensionQuery": true, "datasetSearchExtensionModel": "gpt-4o-mini",
		"datasetSearchExtensionBg": "a film club's notes about Hero (2002)"}, &hits)
	if p := ext.Calls()[7]; !strings.Contains(p, "a film club's notes about Hero (2002)") || !strings.Contains(p, "谁拍的") {
		t.Fatalf("prompt lacks the background or the question:\n%s", p)
	}

	// the model and background count only with extension on, as in FastGPT
	n := len(ext.Calls())
	e.ok(t, e.writeA, "POST", "/api/core/dataset/searchTest", map[string]any{"datasetId": ds, "text": "导演是谁", "searchMode": "fullTextRecall",
		"datasetSearchUsingExtensionQuery": false, "datasetSearchExtensionModel": "no-such-model", "datasetSearchExtensionBg": "x"}, &hits)
	if len(hits) != 0 || len(ext.Calls()) != n {
		t.Fatalf("extension off: %+v, %d model calls; want no hits and no call", hits, len(ext.Calls())-n)
	}
}

// Search says what the extension searched: the question first, then the
// rewrites that differ from what is there (case aside), at most
// MaxExtensionQueries of them.
func TestSearchExtensionQueries(t *testing.T) {
	e, ds := extEnv(t, &fakeExtender{answer: extModel}, nil)
	res, err := e.svc.Search(context.Background(), dataset.SearchRequest{TeamID: "team-a", DatasetIDs: []string{ds}, Text: "导演是谁",
		Extension: dataset.QueryExtension{Use: true, Model: "many"}})
	if err != nil {
		t.Fatal(err)
	}
	x := res.Extension
	if x == nil || strings.Join(x.Queries, "|") != "导演是谁|q1|q2|q3" || x.Model != "many" || x.Fallback {
		t.Fatalf("extension %+v", x)
	}
	plain, err := e.svc.Search(context.Background(), dataset.SearchRequest{TeamID: "team-a", DatasetIDs: []string{ds}, Text: "导演是谁"})
	if err != nil || plain.Extension != nil {
		t.Fatalf("search without extension: %+v, %v", plain, err)
	}
}

// A model that does not answer with a list costs its tokens (counted when
// the provider gives none) and the question is searched alone; the
// answer is logged.
func TestHandlerSearchExtensionMalformed(t *testing.T) {
	log := &lockedBuffer{}
	e, ds := extEnv(t, &fakeExtender{answer: extModel}, log)
	var hits []hit
	e.ok(t, e.writeA, "POST", "/api/core/dataset/searchTest", datasettest.SearchTestBody(ds, "fullTextRecall", "chatty"), &hits)
	if len(hits) != 0 {
		t.Fatalf("hits %+v; want what the question alone finds: none", hits)
	}
	recs := e.usage.module(dataset.ModuleQueryExtension)
	if len(recs) != 1 || recs[0].Model != "chatty" || recs[0].InputTokens != len([]rune(dataset.ExtensionPrompt("导演是谁", ""))) ||
		recs[0].OutputTokens != len("I would rather answer the question: Zhang Yimou.") {
		t.Fatalf("extension usage %+v; want the prompt and answer counted", recs)
	}
	if l := log.String(); !strings.Contains(l, "not a JSON list") || !strings.Contains(l, "I would rather answer") {
		t.Fatalf("log %q does not report the answer", l)
	}
	res, err := e.svc.Search(context.Background(), dataset.SearchRequest{TeamID: "team-a", DatasetIDs: []string{ds}, Text: "导演是谁",
		Extension: dataset.QueryExtension{Use: true, Model: "chatty"}})
	if err != nil || res.Extension == nil || !res.Extension.Fallback || len(res.Extension.Queries) != 1 {
		t.Fatalf("search %+v, %v; want a fallback to the question", res, err)
	}
}

// A model that fails answers 502 naming the extension, and nothing is
// recorded: the search did not run.
func TestHandlerSearchExtensionOutage(t *testing.T) {
	e, ds := extEnv(t, &fakeExtender{answer: extModel}, nil)
	before := len(e.usage.all)
	r := e.fails(t, e.writeA, "POST", "/api/core/dataset/searchTest", datasettest.SearchTestBody(ds, "embedding", "down"), 502, "upstream_error", "")
	if !strings.Contains(r.Message, "query extension failed") || !strings.Contains(r.Message, "503") {
		t.Fatalf("message %q", r.Message)
	}
	if after := len(e.usage.all); after != before {
		t.Fatalf("a failed extension recorded usage: %+v", e.usage.all[before:])
	}
}

// Without an extender, or with a model it cannot use, the documented
// request is refused with 400 naming the field, and nothing is recorded
// or changed; so are malformed extension fields.
func TestHandlerSearchExtensionRefused(t *testing.T) {
	t.Run("no extender", func(t *testing.T) {
		e, ds := extEnv(t, nil, nil)
		snap := e.snapshot(t, e.writeA)
		before := len(e.usage.all)
		r := e.fails(t, e.writeA, "POST", "/api/core/dataset/searchTest", datasettest.SearchTestBody(ds, "embedding", "gpt-4o-mini"), 400, "invalid_request", "datasetSearchUsingExtensionQuery")
		if !strings.Contains(r.Message, "query extension needs a chat model") {
			t.Fatalf("message %q", r.Message)
		}
		if len(e.usage.all) != before || e.snapshot(t, e.writeA) != snap {
			t.Fatal("a refused search recorded usage or changed something")
		}
	})
	t.Run("unusable model", func(t *testing.T) {
		ext := &fakeExtender{answer: extModel}
		e, ds := extEnv(t, ext, nil)
		snap := e.snapshot(t, e.writeA)
		before := len(e.usage.all)
		r := e.fails(t, e.writeA, "POST", "/api/core/dataset/searchTest", datasettest.SearchTestBody(ds, "embedding", "gpt-x"), 400, "invalid_request", "datasetSearchExtensionModel")
		if !strings.Contains(r.Message, `"gpt-x" is not a chat model`) {
			t.Fatalf("message %q", r.Message)
		}
		for _, bad := range []struct{ body, field string }{
			{`{"datasetId":"` + ds + `","text":"x","datasetSearchUsingExtensionQuery":"yes"}`, "datasetSearchUsingExtensionQuery"},
			{`{"datasetId":"` + ds + `","text":"x","datasetSearchUsingExtensionQuery":true,"datasetSearchExtensionModel":"gpt\n4o"}`, "datasetSearchExtensionModel"},
			{`{"datasetId":"` + ds + `","text":"x","datasetSearchUsingExtensionQuery":true,"datasetSearchExtensionModel":7}`, "datasetSearchExtensionModel"},
			{`{"datasetId":"` + ds + `","text":"x","datasetSearchUsingExtensionQuery":true,"datasetSearchExtensionBg":"a\u0000b"}`, "datasetSearchExtensionBg"},
			{`{"datasetId":"` + ds + `","text":"x","datasetSearchUsingExtensionQuery":true,"datasetSearchExtensionModel":"gpt-4o-mini","limit":0.5}`, "limit"},
			{`{"datasetId":"` + ds + `","text":"x","datasetSearchUsingExtensionQuery":true,"datasetSearchExtensionPrompt":"p"}`, "datasetSearchExtensionPrompt"},
		} {
			e.fails(t, e.writeA, "POST", "/api/core/dataset/searchTest", bad.body, 400, "invalid_request", bad.field)
		}
		if calls := ext.Calls(); len(calls) != 2 || calls[0] != "gpt-x" {
			t.Fatalf("model calls %q; want the one for gpt-x (bad input is refused before the model is asked)", calls)
		}
		if len(e.usage.all) != before || e.snapshot(t, e.writeA) != snap {
			t.Fatal("a refused search recorded usage or changed something")
		}
	})
}
