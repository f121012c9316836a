package dataset_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatgate/chatgate/dataset"
)

// fakePages is a PageFetcher that answers one page and records the calls.
type fakePages struct {
	mu          sync.Mutex
	title, text string
	err         error
	calls       []string // url + " " + selector
}

func (f *fakePages) FetchText(_ context.Context, url, selector string) (string, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, url+" "+selector)
	return f.title, f.text, f.err
}

func (f *fakePages) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// chunksOf creates a text collection with body's settings and returns
// its chunks once trained.
func (e *httpEnv) chunksOf(t *testing.T, path string, body map[string]any) (collDetail, []string) {
	t.Helper()
	var out struct {
		CollectionID string `json:"collectionId"`
	}
	e.ok(t, e.writeA, "POST", path, body, &out)
	d := e.waitIdle(t, e.writeA, out.CollectionID)
	var list listOf[dataset.Data]
	e.ok(t, e.writeA, "GET", "/api/core/dataset/data/list?pageSize=2000&collectionId="+out.CollectionID, nil, &list)
	var qs []string
	for _, x := range list.List {
		qs = append(qs, x.Q)
	}
	return d, qs
}

func with(base map[string]any, kv ...any) map[string]any {
	m := map[string]any{}
	for k, v := range base {
		m[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

// Each chunk setting FastGPT documents is honoured: the chunks show it.
func TestChunkSettingsHonoured(t *testing.T) {
	e := newHTTPEnv(t, dataset.Options{IndexMaxTokens: 600})
	ds := e.createDataset(t, e.writeA, "kb")
	text := "第一段内容。#第二段内容，稍长一些的句子。#第三段"
	base := map[string]any{"datasetId": ds, "name": "t", "text": text, "trainingType": "chunk"}
	const route = "/api/core/dataset/collection/create/text"

	// chunkSplitter: the pieces between it are chunks of their own, never merged
	_, whole := e.chunksOf(t, route, base)
	if len(whole) != 1 {
		t.Fatalf("without a splitter: %q; want one chunk", whole)
	}
	want := []string{"第一段内容。", "第二段内容，稍长一些的句子。", "第三段"}
	for _, b := range []map[string]any{
		with(base, "chunkSplitter", "#"),                                                         // as localFile's documented example sends it
		with(base, "chunkSplitter", "#", "chunkSplitMode", "char"),                               // FastGPT's char mode
		with(base, "chunkSplitter", "#", "chunkSplitMode", "char", "chunkSettingMode", "custom"), // and custom settings
	} {
		if _, got := e.chunksOf(t, route, b); strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("%v: chunks %q; want %q", b, got, want)
		}
	}
	// a piece longer than the largest chunk (IndexMaxTokens here) is cut further at chunkSize
	var words []string
	for i := range 1000 {
		words = append(words, fmt.Sprintf("w%d", i))
	}
	long := strings.Join(words, " ")
	_, got := e.chunksOf(t, route, with(base, "text", "short one#"+long+"#short two", "chunkSplitter", "#", "chunkSize", 20))
	if len(got) < 4 || got[0] != "short one" || got[len(got)-1] != "short two" {
		t.Fatalf("long piece: %d chunks %q", len(got), got)
	}

	// chunkSettingMode: auto takes the defaults; custom (or none) what is given
	d, _ := e.chunksOf(t, route, with(base, "chunkSettingMode", "auto", "qaPrompt", ""))
	if d.ChunkSize != 512 {
		t.Fatalf("auto: chunkSize %d; want the default 512", d.ChunkSize)
	}
	d, _ = e.chunksOf(t, route, with(base, "chunkSettingMode", "custom", "chunkSize", 20, "chunkSplitMode", "size"))
	if d.ChunkSize != 20 {
		t.Fatalf("custom: chunkSize %d; want 20", d.ChunkSize)
	}
	// indexSize: at least chunkSize is what each chunk is anyway
	e.chunksOf(t, route, with(base, "chunkSize", 20, "indexSize", 20))
	e.chunksOf(t, route, with(base, "chunkSize", 20, "indexSize", 60))

	// chunkTriggerType: minSize keeps a text under chunkTriggerMinSize
	// whole, maxSize one that fits a chunk; forceChunk always splits
	sentences := "这是第一句话。这是第二句话。这是第三句话。这是第四句话。"
	small := with(base, "text", sentences, "chunkSize", 16)
	_, forced := e.chunksOf(t, route, small)
	if len(forced) < 2 {
		t.Fatalf("chunkSize 16 gave %q; the trigger tests need a text it splits", forced)
	}
	for _, c := range []struct {
		kv    []any
		whole bool
	}{
		{[]any{"chunkTriggerType", "forceChunk"}, false},
		{[]any{"chunkTriggerType", "minSize"}, true},                            // default 1000 tokens, here 601
		{[]any{"chunkTriggerType", "minSize", "chunkTriggerMinSize", 5}, false}, // the text is longer
		{[]any{"chunkTriggerType", "minSize", "chunkTriggerMinSize", 61}, true},
		{[]any{"chunkTriggerType", "maxSize"}, true}, // fits IndexMaxTokens
	} {
		_, got := e.chunksOf(t, route, with(small, c.kv...))
		if c.whole != (len(got) == 1) || c.whole && got[0] != sentences {
			t.Fatalf("%v: chunks %q; whole %v", c.kv, got, c.whole)
		}
		if !c.whole && len(got) != len(forced) {
			t.Fatalf("%v: %d chunks; want %d as forced", c.kv, len(got), len(forced))
		}
	}
	_, got = e.chunksOf(t, route, with(small, "text", strings.Join(words, ". "), "chunkTriggerType", "maxSize"))
	if len(got) < 2 {
		t.Fatalf("maxSize with a text over IndexMaxTokens: %d chunks; want it split", len(got))
	}

	// the enhancements off, and paragraphChunkAIMode forbid, are accepted
	e.chunksOf(t, route, with(base, "autoIndexes", false, "imageIndex", false, "indexPrefixTitle", false,
		"dataEnhanceCollectionName", false, "customPdfParse", false, "paragraphChunkAIMode", "forbid"))

	// tags and createTime are the collection's
	var out struct {
		CollectionID string `json:"collectionId"`
	}
	e.ok(t, e.writeA, "POST", route, with(base, "tags", []string{"tag1", "测试的"}, "createTime", "2024-05-01T00:00:00.000Z", "parentId", nil), &out)
	d = e.detail(t, e.writeA, out.CollectionID)
	if strings.Join(d.Tags, ",") != "tag1,测试的" || !d.CreateTime.Equal(time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("tags %q, createTime %v", d.Tags, d.CreateTime)
	}
}

func TestChunkSettingsQAPrompt(t *testing.T) {
	gen := &fakeGen{answer: func(int, string) (dataset.GenerateResult, error) {
		return dataset.GenerateResult{Text: "Q1: 保修多久？\nA1: 两年。", Model: "fake-qa"}, nil
	}}
	e := newHTTPEnv(t, dataset.Options{QA: gen})
	ds := e.createDataset(t, e.writeA, "kb")
	var out struct {
		CollectionID string `json:"collectionId"`
	}
	e.ok(t, e.writeA, "POST", "/api/core/dataset/collection/create/text", map[string]any{"datasetId": ds, "name": "qa",
		"text": "本产品保修两年。", "trainingType": "qa", "chunkSettingMode": "auto", "qaPrompt": "售后服务"}, &out)
	e.waitIdle(t, e.writeA, out.CollectionID)
	if p := gen.Prompts(); len(p) != 1 || !strings.Contains(p[0], "售后服务") {
		t.Fatalf("prompts %q; want the qaPrompt in it", p)
	}
}

// Every setting that is not supported, set to a value that would ask for
// it, is refused by name on create/text and create/link alike, before the
// page is fetched, and nothing is left behind.
func TestChunkSettingsRefusedByName(t *testing.T) {
	pages := &fakePages{title: "Page", text: "page text"}
	e := newHTTPEnv(t, dataset.Options{}, pages)
	ds := e.createDataset(t, e.writeA, "kb")
	snap := e.snapshot(t, e.writeA)
	for _, c := range []struct {
		kv    []any
		field string
	}{
		{[]any{"trainingType", "auto"}, "trainingType"},
		{[]any{"chunkSettingMode", "manual"}, "chunkSettingMode"},
		{[]any{"chunkSettingMode", "auto", "chunkSize", 100}, "chunkSize"},
		{[]any{"chunkSettingMode", "auto", "chunkSplitter", "#"}, "chunkSplitter"},
		{[]any{"chunkSettingMode", "auto", "indexSize", 512}, "indexSize"},
		{[]any{"chunkSettingMode", "auto", "chunkSplitMode", "size"}, "chunkSplitMode"},
		{[]any{"chunkSettingMode", "auto", "chunkOverlap", 10}, "chunkOverlap"},
		{[]any{"chunkSplitMode", "paragraph"}, "chunkSplitMode"},
		{[]any{"chunkSplitMode", "lines"}, "chunkSplitMode"},
		{[]any{"chunkSplitMode", "char"}, "chunkSplitter"},
		{[]any{"chunkSplitMode", "size", "chunkSplitter", "#"}, "chunkSplitter"},
		{[]any{"chunkSize", 100, "indexSize", 50}, "indexSize"},
		{[]any{"indexSize", 4000}, "indexSize"},
		{[]any{"indexSize", -1}, "indexSize"},
		{[]any{"qaPrompt", "拆分成问答"}, "qaPrompt"},
		{[]any{"autoIndexes", true}, "autoIndexes"},
		{[]any{"imageIndex", true}, "imageIndex"},
		{[]any{"indexPrefixTitle", true}, "indexPrefixTitle"},
		{[]any{"dataEnhanceCollectionName", true}, "dataEnhanceCollectionName"},
		{[]any{"customPdfParse", true}, "customPdfParse"},
		{[]any{"paragraphChunkAIMode", "auto"}, "paragraphChunkAIMode"},
		{[]any{"paragraphChunkDeep", 3}, "paragraphChunkDeep"},
		{[]any{"paragraphChunkMinSize", 100}, "paragraphChunkMinSize"},
		{[]any{"chunkTriggerType", "always"}, "chunkTriggerType"},
		{[]any{"chunkTriggerMinSize", 100}, "chunkTriggerMinSize"},
		{[]any{"chunkTriggerType", "maxSize", "chunkTriggerMinSize", 100}, "chunkTriggerMinSize"},
		{[]any{"chunkTriggerType", "minSize", "chunkTriggerMinSize", 0}, "chunkTriggerMinSize"},
		{[]any{"chunkTriggerType", "minSize", "chunkTriggerMinSize", 5000}, "chunkTriggerMinSize"},
		{[]any{"chunkOverlapRatio", 0.2}, "chunkOverlapRatio"},
		{[]any{"chunkSize", "big"}, "chunkSize"},
		{[]any{"autoIndexes", "yes"}, "autoIndexes"},
		{[]any{"tags", "one"}, "tags"},
		{[]any{"tags", []string{" "}}, "tags[0]"},
		{[]any{"createTime", "yesterday"}, "createTime"},
		{[]any{"parentId", "65abc9bd9d1448617cba5e6c"}, "parentId"},
	} {
		text := with(map[string]any{"datasetId": ds, "name": "t", "text": "一段文字。", "trainingType": "chunk"}, c.kv...)
		e.fails(t, e.writeA, "POST", "/api/core/dataset/collection/create/text", text, 400, "invalid_request", c.field)
		link := with(map[string]any{"datasetId": ds, "link": "https://example.com/", "trainingType": "chunk"}, c.kv...)
		e.fails(t, e.writeA, "POST", "/api/core/dataset/collection/create/link", link, 400, "invalid_request", c.field)
	}
	if calls := pages.Calls(); len(calls) != 0 {
		t.Fatalf("refused link requests fetched pages: %q", calls)
	}
	if got := e.snapshot(t, e.writeA); got != snap {
		t.Fatalf("refused requests changed the knowledge base:\nbefore %s\nafter  %s", snap, got)
	}
}
