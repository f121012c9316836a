package dataset_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/chatgate/chatgate/dataset"
	"github.com/chatgate/chatgate/dataset/datasettest"
)

func TestHandlerLinkCollection(t *testing.T) {
	pages := &fakePages{title: "快速上手 | FastGPT", text: "第一段。\n\n第二段。"}
	e := newHTTPEnv(t, dataset.Options{}, pages)
	ds := e.createDataset(t, e.writeA, "kb")
	var out struct {
		CollectionID string     `json:"collectionId"`
		Results      pushResult `json:"results"`
	}
	e.ok(t, e.writeA, "POST", "/api/core/dataset/collection/create/link", datasettest.CreateLinkBody("https://doc.tryfastgpt.ai/docs/course/quick-start/", ds), &out)
	if out.CollectionID == "" || out.Results.InsertLen == nil || *out.Results.InsertLen != 1 {
		t.Fatalf("create/link = %+v", out)
	}
	if calls := pages.Calls(); len(calls) != 1 || calls[0] != "https://doc.tryfastgpt.ai/docs/course/quick-start/ .docs-content" {
		t.Fatalf("fetches %q; want the link with metadata.webPageSelector", calls)
	}
	d := e.waitIdle(t, e.writeA, out.CollectionID)
	if d.Type != dataset.CollectionLink || d.Name != "快速上手 | FastGPT" || d.RawLink != "https://doc.tryfastgpt.ai/docs/course/quick-start/" || d.DataAmount != 1 {
		t.Fatalf("link collection = %+v", d)
	}
	var list listOf[dataset.Data]
	e.ok(t, e.writeA, "GET", "/api/core/dataset/data/list?collectionId="+out.CollectionID, nil, &list)
	if list.Total != 1 || list.List[0].Q != "第一段。\n\n第二段。" || list.List[0].Source != d.Name {
		t.Fatalf("link data = %+v", list.List)
	}
	// listed with its rawLink, in both of FastGPT's lists
	var cs listOf[collDetail]
	e.ok(t, e.writeA, "GET", "/api/core/dataset/collection/list?datasetId="+ds, nil, &cs)
	if len(cs.List) != 1 || cs.List[0].RawLink != d.RawLink {
		t.Fatalf("collection/list = %+v", cs.List)
	}
	var v2 listOf[map[string]any]
	e.ok(t, e.writeA, "POST", "/api/core/dataset/collection/listV2", map[string]any{"datasetId": ds}, &v2)
	if len(v2.List) != 1 || v2.List[0]["rawLink"] != d.RawLink || v2.List[0]["type"] != "link" {
		t.Fatalf("collection/listV2 = %+v", v2.List)
	}
	// a page without a title is named by its link; without a selector none is passed
	pages.title = ""
	e.ok(t, e.writeA, "POST", "/api/core/dataset/collection/create/link", map[string]any{"datasetId": ds, "link": "https://example.com/a",
		"trainingType": "chunk", "metadata": map[string]any{"other": 1}}, &out)
	if d := e.detail(t, e.writeA, out.CollectionID); d.Name != "https://example.com/a" {
		t.Fatalf("untitled page's collection = %+v", d)
	}
	if calls := pages.Calls(); calls[len(calls)-1] != "https://example.com/a " {
		t.Fatalf("fetch %q", calls[len(calls)-1])
	}
}

func TestHandlerLinkCollectionFailuresLeaveNothing(t *testing.T) {
	pages := &fakePages{title: "t", text: "text"}
	e := newHTTPEnv(t, dataset.Options{}, pages)
	ds := e.createDataset(t, e.writeA, "kb")
	theirs := e.createDataset(t, e.writeB, "theirs")
	snap := e.snapshot(t, e.writeA)
	route := "/api/core/dataset/collection/create/link"
	body := map[string]any{"datasetId": ds, "link": "https://example.com/", "trainingType": "chunk"}

	// refused before any fetch
	for _, c := range []struct {
		body   map[string]any
		status int
		code   string
		field  string
	}{
		{with(body, "link", ""), 400, "invalid_request", "link"},
		{with(body, "link", "ftp://example.com/"), 400, "invalid_request", "link"},
		{with(body, "link", "example.com"), 400, "invalid_request", "link"},
		{with(body, "link", "https://example.com/"+strings.Repeat("x", dataset.MaxLinkBytes)), 400, "invalid_request", "link"},
		{with(body, "metadata", "x"), 400, "invalid_request", "metadata"},
		{with(body, "metadata", map[string]any{"webPageSelector": 5}), 400, "invalid_request", "metadata.webPageSelector"},
		{with(body, "name", "mine"), 400, "invalid_request", "name"}, // not a field of this route
		{with(body, "text", "mine"), 400, "invalid_request", "text"},
		{with(body, "datasetId", theirs), 404, "not_found", ""},
		{with(body, "datasetId", "65abc9bd9d1448617cba5e6c"), 404, "not_found", ""},
	} {
		e.fails(t, e.writeA, "POST", route, c.body, c.status, c.code, c.field)
	}
	if calls := pages.Calls(); len(calls) != 0 {
		t.Fatalf("refused requests fetched %q", calls)
	}
	// the fetcher's own answers pass as they are; any other error is a 502
	for _, c := range []struct {
		err    error
		text   string
		status int
		code   string
	}{
		{dataset.ErrLinkRefused.WithMessage(`invalid field "link": names 10.0.0.1, an internal address`), "", 400, "link_refused"},
		{dataset.ErrLinkUnreachable.WithMessage(`invalid field "link": the page answered HTTP 404`), "", 502, "link_unreachable"},
		{errors.New("dial tcp: connection refused"), "", 502, "link_unreachable"},
		{nil, " \n ", 400, "link_refused"}, // a page with no text
	} {
		pages.err, pages.text = c.err, c.text
		r := e.fails(t, e.writeA, "POST", route, body, c.status, c.code, "link")
		if c.err != nil && !strings.Contains(r.Message, strings.TrimPrefix(c.err.Error(), `invalid field "link": `)) {
			t.Errorf("%v: message %q", c.err, r.Message)
		}
	}
	if got := e.snapshot(t, e.writeA); got != snap {
		t.Fatalf("failed link requests changed the knowledge base:\nbefore %s\nafter  %s", snap, got)
	}
	// without a PageFetcher the route says so
	bare := newHTTPEnv(t, dataset.Options{})
	bds := bare.createDataset(t, bare.writeA, "kb")
	bare.fails(t, bare.writeA, "POST", route, with(body, "datasetId", bds), 400, "invalid_request", "link")
}
