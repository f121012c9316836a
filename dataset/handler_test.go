package dataset_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/cl100k"
	"github.com/chatgate/chatgate/dataset"
)

// gate is an Embedder that blocks until the test opens it.
type gate struct{ open chan struct{} }

func (g gate) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	select {
	case <-g.open:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return dataset.LocalEmbedder{}.Embed(ctx, texts)
}

// brokenEmbedder always fails.
type brokenEmbedder struct{}

func (brokenEmbedder) Embed(context.Context, []string) ([][]float32, error) {
	return nil, fmt.Errorf("upstream said 503")
}

// httpEnv is the dataset routes behind a real authenticator and server,
// with keys of two teams.
type httpEnv struct {
	srv   *httptest.Server
	svc   *dataset.Service
	usage *usageLog
	gate  gate

	writeA, readA, chatA, writeB string // secrets
}

// newHTTPEnv serves a Service of opts; pages, when given, reads
// collection/create/link's pages.
func newHTTPEnv(t *testing.T, opts dataset.Options, pages ...dataset.PageFetcher) *httpEnv {
	t.Helper()
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	store := auth.NewMemoryStore()
	authn := auth.NewAuthenticator(store, auth.Options{Logger: quiet})
	t.Cleanup(func() { _ = authn.Close(ctx) })
	mgr := auth.NewManager(store, authn)
	key := func(spec auth.KeySpec) string {
		_, secret, err := mgr.Create(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		return secret
	}
	e := &httpEnv{usage: &usageLog{}, gate: gate{open: make(chan struct{})}}
	e.writeA = key(auth.KeySpec{Name: "a global", TeamID: "team-a"}) // default scopes: the data scopes
	e.readA = key(auth.KeySpec{Name: "a reader", TeamID: "team-a", Scopes: auth.Scopes{auth.ScopeDatasetRead}})
	e.chatA = key(auth.KeySpec{Name: "a app", TeamID: "team-a", AppID: "app-1"})
	e.writeB = key(auth.KeySpec{Name: "b global", TeamID: "team-b"})
	if opts.Embedders == nil {
		opts.Embedders = map[string]dataset.Embedder{dataset.LocalModel: dataset.LocalEmbedder{},
			"gated": e.gate, "broken": brokenEmbedder{}}
	}
	if opts.MaxAttempts == 0 {
		opts.MaxAttempts = 2
	}
	opts.Usage = e.usage
	e.svc = newService(t, opts)
	t.Cleanup(func() {
		select {
		case <-e.gate.open:
		default:
			close(e.gate.open)
		}
	})
	mux := http.NewServeMux()
	hopts := dataset.HandlerOptions{Logger: quiet}
	if len(pages) > 0 {
		hopts.Pages = pages[0]
	}
	dataset.NewHandler(e.svc, hopts).Register(mux, authn)
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

// reply is a decoded envelope.
type reply struct {
	Status     int
	Code       int
	StatusText string
	Message    string
	Data       json.RawMessage
	Raw        string
}

// call sends body (a string as is, anything else as JSON) with key and
// checks the envelope: code equal to the HTTP status, statusText and
// message always present, both empty on success.
func (e *httpEnv) call(t *testing.T, key, method, path string, body any) reply {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = strings.NewReader(string(raw))
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s %s: Content-Type %q, body %s", method, path, ct, raw)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		t.Fatalf("%s %s: body is not a JSON object: %s", method, path, raw)
	}
	for _, k := range []string{"code", "statusText", "message"} {
		if _, ok := fields[k]; !ok {
			t.Fatalf("%s %s: envelope lacks %q: %s", method, path, k, raw)
		}
	}
	for k := range fields {
		if !slices.Contains([]string{"code", "statusText", "message", "data"}, k) {
			t.Fatalf("%s %s: envelope has an extra field %q: %s", method, path, k, raw)
		}
	}
	r := reply{Status: resp.StatusCode, Data: fields["data"], Raw: string(raw)}
	_ = json.Unmarshal(fields["code"], &r.Code)
	_ = json.Unmarshal(fields["statusText"], &r.StatusText)
	_ = json.Unmarshal(fields["message"], &r.Message)
	if r.Code != r.Status {
		t.Fatalf("%s %s: HTTP %d but code %d: %s", method, path, r.Status, r.Code, raw)
	}
	if r.Status == http.StatusOK && (r.StatusText != "" || r.Message != "") {
		t.Fatalf("%s %s: success with statusText %q, message %q", method, path, r.StatusText, r.Message)
	}
	if r.Status != http.StatusOK && (r.StatusText == "" || r.Message == "") {
		t.Fatalf("%s %s: error without statusText or message: %s", method, path, raw)
	}
	return r
}

// ok calls and requires 200, decoding data into v when v is not nil.
func (e *httpEnv) ok(t *testing.T, key, method, path string, body, v any) reply {
	t.Helper()
	r := e.call(t, key, method, path, body)
	if r.Status != http.StatusOK {
		t.Fatalf("%s %s = %d: %s", method, path, r.Status, r.Raw)
	}
	if v != nil {
		if err := json.Unmarshal(r.Data, v); err != nil {
			t.Fatalf("%s %s: data %s: %v", method, path, r.Data, err)
		}
	}
	return r
}

// fails calls and requires the status and statusText; a non-empty field
// must be named in the message.
func (e *httpEnv) fails(t *testing.T, key, method, path string, body any, status int, statusText, field string) reply {
	t.Helper()
	r := e.call(t, key, method, path, body)
	if r.Status != status || r.StatusText != statusText {
		t.Fatalf("%s %s = %d %s; want %d %s: %s", method, path, r.Status, r.StatusText, status, statusText, r.Raw)
	}
	if field != "" && !strings.Contains(r.Message, `"`+field+`"`) {
		t.Fatalf("%s %s: message %q does not name %q", method, path, r.Message, field)
	}
	if r.Data != nil {
		t.Fatalf("%s %s: an error carries data %s", method, path, r.Data)
	}
	return r
}

type listOf[T any] struct {
	List  []T `json:"list"`
	Total int `json:"total"`
}

type collDetail struct {
	ID             string    `json:"id"`
	DatasetID      string    `json:"datasetId"`
	Name           string    `json:"name"`
	Type           string    `json:"type"`
	ChunkSize      int       `json:"chunkSize"`
	Tags           []string  `json:"tags"`
	RawLink        string    `json:"rawLink"`
	CreateTime     time.Time `json:"createTime"`
	TrainingAmount *int      `json:"trainingAmount"`
	FailedAmount   *int      `json:"failedAmount"`
	DataAmount     int       `json:"dataAmount"`
}

type hit struct {
	ID     string  `json:"id"`
	Q      string  `json:"q"`
	A      string  `json:"a"`
	Source *string `json:"source"`
	Score  float64 `json:"score"`
}

func (e *httpEnv) createDataset(t *testing.T, key, name string) string {
	t.Helper()
	var id string
	e.ok(t, key, "POST", "/api/core/dataset/create", map[string]any{"name": name}, &id)
	if len(id) != 24 {
		t.Fatalf("dataset id %q", id)
	}
	return id
}

func (e *httpEnv) createCollection(t *testing.T, key, dsID, name string) string {
	t.Helper()
	var id string
	e.ok(t, key, "POST", "/api/core/dataset/collection/create", map[string]any{"datasetId": dsID, "name": name}, &id)
	return id
}

func (e *httpEnv) detail(t *testing.T, key, collID string) collDetail {
	t.Helper()
	var d collDetail
	e.ok(t, key, "GET", "/api/core/dataset/collection/detail?id="+collID, nil, &d)
	if d.TrainingAmount == nil || d.FailedAmount == nil {
		t.Fatalf("collection detail lacks trainingAmount or failedAmount: %+v", d)
	}
	return d
}

func (e *httpEnv) waitIdle(t *testing.T, key, collID string) collDetail {
	t.Helper()
	var d collDetail
	waitFor(t, "training of "+collID, func() bool {
		d = e.detail(t, key, collID)
		return *d.TrainingAmount == 0
	})
	return d
}

// snapshot is everything a team can list: datasets, their collections
// with progress, and each collection's data.
func (e *httpEnv) snapshot(t *testing.T, key string) string {
	t.Helper()
	var b strings.Builder
	var dss []struct {
		ID string `json:"id"`
	}
	r := e.ok(t, key, "GET", "/api/core/dataset/list", nil, &dss)
	b.Write(r.Data)
	for _, ds := range dss {
		var cs listOf[collDetail]
		r := e.ok(t, key, "GET", "/api/core/dataset/collection/list?pageSize=2000&datasetId="+ds.ID, nil, &cs)
		b.Write(r.Data)
		for _, c := range cs.List {
			b.Write(e.ok(t, key, "GET", "/api/core/dataset/data/list?pageSize=2000&collectionId="+c.ID, nil, nil).Data)
			b.Write(e.ok(t, key, "GET", "/api/core/dataset/collection/trainingFailures?collectionId="+c.ID, nil, nil).Data)
		}
	}
	return b.String()
}

// The pushData request of FastGPT's OpenAPI document, as written there,
// trailing comma included; only the collection id is ours.
const fastGPTPushData = `{
    "collectionId": "%s",
    "mode": "index",
    "prompt": "qa 拆分引导词,index 模式下可以忽略",
    "billId": "可选。如果有这个值,本次的数据会被聚合到一个订单中,这个值可以重复使用。可以参考 [创建训练订单] 获取该值。",
    "data": [
        {
            "a": "test",
            "q": "1111",
            "file_id": "关联的文件ID/URL/manual/mark",
            "source": "来源名称",
        },
        {
            "a": "test2",
            "q": "22222"
        }
    ]
}`

type pushResult struct {
	InsertLen     *int              `json:"insertLen"`
	OverToken     []json.RawMessage `json:"overToken"`
	Repeat        []map[string]any  `json:"repeat"`
	FileIDInvalid []map[string]any  `json:"fileIdInvalid"`
	Error         []map[string]any  `json:"error"`
}

func TestHandlerFastGPTFlow(t *testing.T) {
	e := newHTTPEnv(t, dataset.Options{})
	ds := e.createDataset(t, e.writeA, "films")
	coll := e.createCollection(t, e.writeA, ds, "manual")

	// pushData exactly as FastGPT documents it
	var res pushResult
	r := e.ok(t, e.writeA, "POST", "/api/core/dataset/data/pushData", fmt.Sprintf(fastGPTPushData, coll), &res)
	var keys map[string]json.RawMessage
	_ = json.Unmarshal(r.Data, &keys)
	for _, k := range []string{"insertLen", "overToken", "repeat", "fileIdInvalid", "error"} {
		if string(keys[k]) == "" || string(keys[k]) == "null" {
			t.Fatalf("pushData answer lacks %q: %s", k, r.Data)
		}
	}
	// The document's file_id is a placeholder, neither a URL, manual, mark
	// nor a collection: FastGPT's own example answer lists it as invalid.
	if *res.InsertLen != 1 || len(res.OverToken) != 0 || len(res.Repeat) != 0 || len(res.Error) != 0 || len(res.FileIDInvalid) != 1 {
		t.Fatalf("pushData = %s", r.Data)
	}
	if f := res.FileIDInvalid[0]; f["q"] != "1111" || f["a"] != "test" || f["file_id"] != "关联的文件ID/URL/manual/mark" || f["source"] != "来源名称" {
		t.Fatalf("fileIdInvalid item = %v", f)
	}
	d := e.waitIdle(t, e.writeA, coll)
	if *d.FailedAmount != 0 || d.DataAmount != 1 || d.ID != coll || d.DatasetID != ds || d.Name != "manual" || d.Type != dataset.CollectionVirtual {
		t.Fatalf("collection detail = %+v", d)
	}

	// the same push again: the trained item is a repeat; trainingType and
	// file ids FastGPT accepts
	var res2 pushResult
	e.ok(t, e.writeA, "POST", "/api/core/dataset/data/pushData", map[string]any{"collectionId": coll, "trainingType": "chunk",
		"data": []map[string]any{
			{"q": "22222", "a": "again"},
			{"q": "被引用的", "a": "x", "file_id": coll, "indexes": []any{"索引一", map[string]any{"text": "索引二", "dataId": "ignored"}}},
			{"q": "网址", "file_id": "https://example.com/doc.pdf"},
			{"q": "手动", "file_id": "manual"},
			{"q": "标注", "file_id": "mark"},
			{"q": "  "},
			{"q": strings.Repeat("长", 3001)},
		}}, &res2)
	if *res2.InsertLen != 4 || len(res2.Repeat) != 1 || res2.Repeat[0]["q"] != "22222" || len(res2.Error) != 1 ||
		len(res2.OverToken) != 1 || len(res2.FileIDInvalid) != 0 {
		t.Fatalf("second pushData = %+v", res2)
	}
	if msg, _ := res2.Error[0]["error"].(string); !strings.Contains(msg, "empty") {
		t.Fatalf("error item %v", res2.Error[0])
	}
	e.waitIdle(t, e.writeA, coll)

	// data list and detail
	var list listOf[dataset.Data]
	e.ok(t, e.writeA, "GET", "/api/core/dataset/data/list?collectionId="+coll, nil, &list)
	if list.Total != 5 || len(list.List) != 5 || list.List[0].Q != "22222" || list.List[0].A != "test2" {
		t.Fatalf("data list = %+v", list)
	}
	var indexed dataset.Data
	for _, x := range list.List {
		if x.Q == "被引用的" {
			indexed = x
		}
	}
	if !slices.Equal(indexed.Indexes, []string{"索引一", "索引二"}) || indexed.FileID != coll {
		t.Fatalf("indexed item = %+v", indexed)
	}
	// data/detail in FastGPT's fields: the default index, then the custom
	// ones, each naming its vector
	type index struct{ Type, DataID, Text string }
	var one struct {
		ID, TeamID, DatasetID, CollectionID, Q, A string
		Indexes                                   []index
		SourceName, SourceID                      string
		IsOwner, CanWrite                         bool
	}
	e.ok(t, e.writeA, "GET", "/api/core/dataset/data/detail?id="+indexed.ID, nil, &one)
	if one.ID != indexed.ID || one.Q != "被引用的" || one.CollectionID != coll || one.DatasetID != ds || one.TeamID != "team-a" ||
		one.SourceName != "manual" || one.SourceID != coll || !one.IsOwner || !one.CanWrite ||
		!slices.Equal(one.Indexes, []index{{"default", indexed.ID, "被引用的\nx"}, {"custom", indexed.ID + "/1", "索引一"}, {"custom", indexed.ID + "/2", "索引二"}}) {
		t.Fatalf("data detail = %+v", one)
	}

	// searchTest, every mode
	for _, mode := range []string{"", "embedding", "fullTextRecall", "mixedRecall"} {
		var hits []hit
		waitFor(t, "searchTest "+mode, func() bool {
			e.ok(t, e.writeA, "POST", "/api/core/dataset/searchTest", map[string]any{"datasetId": ds, "text": "索引二", "searchMode": mode}, &hits)
			return len(hits) > 0
		})
		if hits[0].ID != indexed.ID || hits[0].Q != "被引用的" || hits[0].A != "x" || hits[0].Source == nil || hits[0].Score <= 0 || hits[0].Score > 1 {
			t.Fatalf("%s: hits %+v", mode, hits)
		}
		for i := 1; i < len(hits); i++ {
			if hits[i].Score > hits[i-1].Score {
				t.Fatalf("%s: hits not best first: %+v", mode, hits)
			}
		}
	}
	// read scope is enough to search
	e.ok(t, e.readA, "POST", "/api/core/dataset/searchTest", `{"datasetId":"`+ds+`","text":"导演是谁"}`, nil)

	// update: q, a and indexes in both forms; the old q finds it no more
	if r := e.ok(t, e.writeA, "PUT", "/api/core/dataset/data/update", map[string]any{"dataId": indexed.ID, "q": "改过的问题", "a": "新答案",
		"indexes": []any{map[string]any{"text": "新索引"}}}, nil); string(r.Data) != "null" {
		t.Fatalf("update answered %s; FastGPT's document shows null", r.Data)
	}
	one.Indexes = nil
	e.ok(t, e.writeA, "GET", "/api/core/dataset/data/detail?dataId="+indexed.ID, nil, &one)
	if one.Q != "改过的问题" || one.A != "新答案" || len(one.Indexes) != 2 || one.Indexes[1].Text != "新索引" {
		t.Fatalf("after update: %+v", one)
	}
	var hits []hit
	e.ok(t, e.writeA, "POST", "/api/core/dataset/searchTest", map[string]any{"datasetId": ds, "text": "新索引", "similarity": 0.5}, &hits)
	if len(hits) != 1 || hits[0].ID != indexed.ID {
		t.Fatalf("search for the new index: %+v", hits)
	}
	// a q another item has
	e.fails(t, e.writeA, "PUT", "/api/core/dataset/data/update", map[string]any{"id": indexed.ID, "q": "22222"}, 400, "invalid_request", "q")

	// delete data, collection, dataset
	if r := e.ok(t, e.writeA, "DELETE", "/api/core/dataset/data/delete?id="+indexed.ID, nil, nil); string(r.Data) != `"success"` {
		t.Fatalf("data/delete answered %s; FastGPT's document shows \"success\"", r.Data)
	}
	e.fails(t, e.writeA, "GET", "/api/core/dataset/data/detail?id="+indexed.ID, nil, 404, "not_found", "")
	e.ok(t, e.writeA, "POST", "/api/core/dataset/searchTest", map[string]any{"datasetId": ds, "text": "新索引", "similarity": 0.5}, &hits)
	if len(hits) != 0 {
		t.Fatalf("deleted data found: %+v", hits)
	}
	other := e.createCollection(t, e.writeA, ds, "other")
	e.ok(t, e.writeA, "DELETE", "/api/core/dataset/collection/delete?id="+coll, nil, nil)
	e.fails(t, e.writeA, "GET", "/api/core/dataset/collection/detail?id="+coll, nil, 404, "not_found", "")
	e.fails(t, e.writeA, "GET", "/api/core/dataset/data/list?collectionId="+coll, nil, 404, "not_found", "")
	var cs listOf[collDetail]
	e.ok(t, e.writeA, "GET", "/api/core/dataset/collection/list?datasetId="+ds, nil, &cs)
	if cs.Total != 1 || cs.List[0].ID != other {
		t.Fatalf("collections after delete = %+v", cs)
	}
	var dsDetail dataset.Dataset
	e.ok(t, e.writeA, "GET", "/api/core/dataset/detail?id="+ds, nil, &dsDetail)
	if dsDetail.ID != ds || dsDetail.Name != "films" || dsDetail.TeamID != "team-a" || dsDetail.VectorModel != dataset.LocalModel {
		t.Fatalf("dataset detail = %+v", dsDetail)
	}
	e.ok(t, e.writeA, "DELETE", "/api/core/dataset/delete?id="+ds, nil, nil)
	e.fails(t, e.writeA, "GET", "/api/core/dataset/detail?id="+ds, nil, 404, "not_found", "")
	e.fails(t, e.writeA, "GET", "/api/core/dataset/collection/detail?id="+other, nil, 404, "not_found", "")
	e.fails(t, e.writeA, "POST", "/api/core/dataset/searchTest", map[string]any{"datasetId": ds, "text": "x"}, 404, "not_found", "")
	var dss []dataset.Dataset
	e.ok(t, e.writeA, "GET", "/api/core/dataset/list", nil, &dss)
	if dss == nil || len(dss) != 0 {
		t.Fatalf("datasets after delete = %+v (want [])", dss)
	}

	// usage of the key's work, keyed to the key
	if u := e.usage.module(dataset.ModuleEmbedding); len(u) == 0 || u[0].BillID == "" || u[0].TeamID != "team-a" || u[0].KeyID == "" {
		t.Fatalf("embedding usage = %+v", u)
	}
	if u := e.usage.module(dataset.ModuleSearch); len(u) == 0 || u[0].KeyID == "" {
		t.Fatalf("search usage = %+v", u)
	}
}

func TestHandlerTextCollection(t *testing.T) {
	e := newHTTPEnv(t, dataset.Options{})
	ds := e.createDataset(t, e.writeA, "docs")
	text := "退货政策：收到商品后三十天内可以退货。退货时请保留发票！运费由买家承担。\n\n换货政策：七天内可以换货，换货免运费。"
	var out struct {
		CollectionID string     `json:"collectionId"`
		Results      pushResult `json:"results"`
	}
	e.ok(t, e.writeA, "POST", "/api/core/dataset/collection/create/text", map[string]any{"datasetId": ds, "name": "policy.txt",
		"text": text, "trainingType": "chunk", "chunkSize": 20}, &out)
	if out.CollectionID == "" || out.Results.InsertLen == nil || *out.Results.InsertLen < 3 {
		t.Fatalf("create/text = %+v", out)
	}
	d := e.waitIdle(t, e.writeA, out.CollectionID)
	if d.Type != dataset.CollectionText || d.DataAmount != *out.Results.InsertLen || d.Name != "policy.txt" {
		t.Fatalf("text collection = %+v", d)
	}
	var list listOf[dataset.Data]
	e.ok(t, e.writeA, "GET", "/api/core/dataset/data/list?collectionId="+out.CollectionID, nil, &list)
	var joined string
	for _, x := range list.List {
		if x.Source != "policy.txt" {
			t.Fatalf("chunk source %q", x.Source)
		}
		joined += x.Q
	}
	if strings.ReplaceAll(joined, "\n", "") != strings.ReplaceAll(text, "\n", "") {
		t.Fatalf("chunks %q do not make up the text", joined)
	}
}

func TestHandlerPaging(t *testing.T) {
	e := newHTTPEnv(t, dataset.Options{})
	ds := e.createDataset(t, e.writeA, "paged")
	var colls []string
	for i := range 3 {
		colls = append(colls, e.createCollection(t, e.writeA, ds, fmt.Sprintf("c%d", i)))
	}
	var items []map[string]any
	for i := range 35 {
		items = append(items, map[string]any{"q": fmt.Sprintf("question %02d", i)})
	}
	e.ok(t, e.writeA, "POST", "/api/core/dataset/data/pushData", map[string]any{"collectionId": colls[0], "data": items}, nil)
	e.waitIdle(t, e.writeA, colls[0])

	path := "/api/core/dataset/data/list?collectionId=" + colls[0]
	var page listOf[dataset.Data]
	e.ok(t, e.writeA, "GET", path, nil, &page)
	if page.Total != 35 || len(page.List) != 30 {
		t.Fatalf("default page: %d of %d; want 30 of 35", len(page.List), page.Total)
	}
	e.ok(t, e.writeA, "GET", path+"&offset=30", nil, &page)
	if page.Total != 35 || len(page.List) != 5 {
		t.Fatalf("offset 30: %d of %d", len(page.List), page.Total)
	}
	e.ok(t, e.writeA, "GET", path+"&offset=3&pageSize=2", nil, &page)
	var all listOf[dataset.Data]
	e.ok(t, e.writeA, "GET", path+"&pageSize=2000", nil, &all)
	if len(all.List) != 35 || len(page.List) != 2 || page.List[0].ID != all.List[3].ID || page.List[1].ID != all.List[4].ID {
		t.Fatalf("offset 3, pageSize 2 = %+v", page.List)
	}
	for i, d := range all.List { // in the order they were pushed
		if d.Q != fmt.Sprintf("question %02d", i) {
			t.Fatalf("item %d of the list is %q", i, d.Q)
		}
	}
	e.ok(t, e.writeA, "GET", path+"&offset=100", nil, &page)
	if page.Total != 35 || page.List == nil || len(page.List) != 0 {
		t.Fatalf("past the end: %+v (want an empty list)", page)
	}
	for _, bad := range []struct{ query, field string }{
		{"&pageSize=2001", "pageSize"}, {"&pageSize=0", "pageSize"}, {"&pageSize=x", "pageSize"}, {"&offset=-1", "offset"},
	} {
		e.fails(t, e.writeA, "GET", path+bad.query, nil, 400, "invalid_request", bad.field)
	}

	cpath := "/api/core/dataset/collection/list?datasetId=" + ds
	var cs listOf[collDetail]
	e.ok(t, e.writeA, "GET", cpath, nil, &cs)
	if cs.Total != 3 || len(cs.List) != 3 || cs.List[0].ID != colls[0] || cs.List[2].ID != colls[2] {
		t.Fatalf("collection list = %+v", cs)
	}
	if cs.List[0].DataAmount != 35 || *cs.List[0].TrainingAmount != 0 || *cs.List[1].FailedAmount != 0 {
		t.Fatalf("collection progress = %+v", cs.List[0])
	}
	e.ok(t, e.writeA, "GET", cpath+"&offset=1&pageSize=1", nil, &cs)
	if cs.Total != 3 || len(cs.List) != 1 || cs.List[0].ID != colls[1] {
		t.Fatalf("collection page = %+v", cs)
	}
	e.fails(t, e.writeA, "GET", cpath+"&pageSize=2001", nil, 400, "invalid_request", "pageSize")
	e.fails(t, e.writeA, "GET", "/api/core/dataset/collection/list", nil, 400, "invalid_request", "datasetId")
	e.fails(t, e.writeA, "GET", "/api/core/dataset/data/list", nil, 400, "invalid_request", "collectionId")
	e.fails(t, e.writeA, "GET", "/api/core/dataset/data/detail", nil, 400, "invalid_request", "id")
	e.fails(t, e.writeA, "GET", "/api/core/dataset/detail", nil, 400, "invalid_request", "id")
	e.fails(t, e.writeA, "DELETE", "/api/core/dataset/data/delete", nil, 400, "invalid_request", "id")
}

// searchTest's limit is FastGPT's: a token budget of the hits' q and a
// (5000 by default, at most 20000), taken best first while they fit, the
// best one always; maxResults caps their number (100 by default).
func TestHandlerSearchLimits(t *testing.T) {
	// the counter is the Service's, the real one: the route counts with it
	counter := new(cl100k.Counter)
	e := newHTTPEnv(t, dataset.Options{Tokens: counter})
	ds := e.createDataset(t, e.writeA, "search")
	coll := e.createCollection(t, e.writeA, ds, "c")
	var items []map[string]any
	for i := range 120 {
		items = append(items, map[string]any{"q": fmt.Sprintf("warranty question number %d", i), "a": fmt.Sprint(i)})
	}
	e.ok(t, e.writeA, "POST", "/api/core/dataset/data/pushData", map[string]any{"collectionId": coll, "data": items}, nil)
	e.waitIdle(t, e.writeA, coll)
	search := func(body map[string]any) []hit {
		t.Helper()
		body["datasetId"] = ds
		var hits []hit
		e.ok(t, e.writeA, "POST", "/api/core/dataset/searchTest", body, &hits)
		return hits
	}
	ids := func(hs []hit) []string {
		out := make([]string, len(hs))
		for i, h := range hs {
			out[i] = h.ID
		}
		return out
	}
	tokensOf := func(h hit) int { return counter.Count(h.Q) + counter.Count(h.A) }
	// FastGPT's documented body, but for the query-extension fields
	all := search(map[string]any{"text": "warranty question", "limit": 5000, "similarity": 0, "searchMode": "embedding", "usingReRank": false})
	if len(all) != dataset.MaxSearchResults {
		t.Fatalf("limit 5000 over 120 short items: %d hits; want maxResults' default, %d", len(all), dataset.MaxSearchResults)
	}
	if def := search(map[string]any{"text": "warranty question"}); !slices.Equal(ids(def), ids(all)) {
		t.Fatalf("no limit: %d hits unlike limit 5000's %d", len(def), len(all))
	}
	for _, budget := range []int{30, 57, 200} {
		// the hits are a prefix of the full ranking, the longest whose
		// tokens fit the budget
		want, used := 0, 0
		for _, h := range all {
			if used+tokensOf(h) > budget {
				break
			}
			used += tokensOf(h)
			want++
		}
		got := search(map[string]any{"text": "warranty question", "limit": budget})
		if len(got) != want || want == 0 || want == len(all) || !slices.Equal(ids(got), ids(all[:want])) {
			t.Fatalf("limit %d: %d hits; want the first %d of the ranking (%d tokens)", budget, len(got), want, used)
		}
	}
	// a budget smaller than the best hit still has it, as FastGPT's has
	if got := search(map[string]any{"text": "warranty question", "limit": 1}); len(got) != 1 || got[0].ID != all[0].ID {
		t.Fatalf("limit 1: %+v; want the best hit alone", got)
	}
	if n := len(search(map[string]any{"text": "warranty question", "limit": 20000, "maxResults": 100})); n != 100 {
		t.Fatalf("maxResults 100: %d hits", n)
	}
	if got := search(map[string]any{"text": "warranty question", "maxResults": 3}); !slices.Equal(ids(got), ids(all[:3])) {
		t.Fatalf("maxResults 3: %+v", got)
	}
	// whichever is reached first
	if got := search(map[string]any{"text": "warranty question", "maxResults": 3, "limit": 1}); len(got) != 1 {
		t.Fatalf("maxResults 3, limit 1: %d hits", len(got))
	}
	best := search(map[string]any{"text": "warranty question number 7", "similarity": 0.99})
	if len(best) != 1 || best[0].A != "7" || best[0].Score < 0.99 {
		t.Fatalf("similarity 0.99: %+v", best)
	}
	for _, mode := range []string{"embedding", "fullTextRecall", "mixedRecall"} {
		var hits []hit
		waitFor(t, mode, func() bool {
			hits = search(map[string]any{"text": "warranty question number 7", "searchMode": mode, "maxResults": 5})
			return len(hits) == 5
		})
		if hits[0].A != "7" || hits[0].Score > 1 || hits[4].Score <= 0 {
			t.Fatalf("%s: %+v", mode, hits)
		}
	}
	before := len(e.usage.module(dataset.ModuleSearch))
	snap := e.snapshot(t, e.writeA)
	for _, bad := range []struct {
		body  string
		field string
	}{
		{`{"datasetId":"` + ds + `","text":"x","limit":20001}`, "limit"},
		{`{"datasetId":"` + ds + `","text":"x","limit":-1}`, "limit"},
		{`{"datasetId":"` + ds + `","text":"x","limit":"ten"}`, "limit"},
		{`{"datasetId":"` + ds + `","text":"x","maxResults":101}`, "maxResults"},
		{`{"datasetId":"` + ds + `","text":"x","maxResults":-3}`, "maxResults"},
		{`{"datasetId":"` + ds + `","text":"x","usingReRank":"yes"}`, "usingReRank"},
		{`{"datasetId":"` + ds + `","text":"x","similarity":1.5}`, "similarity"},
		{`{"datasetId":"` + ds + `","text":"x","similarity":-0.1}`, "similarity"},
		{`{"datasetId":"` + ds + `","text":"x","searchMode":"vector"}`, "searchMode"},
		{`{"datasetId":"` + ds + `","text":""}`, "text"},
		{`{"datasetId":"` + ds + `","text":"   "}`, "text"},
		{`{"datasetId":"` + ds + `"}`, "text"},
		{`{"text":"x"}`, "datasetId"},
		{`{"datasetId":"` + ds + `","text":"x","rerank":true}`, "rerank"},
		{`{"datasetId":["` + ds + `"],"text":"x"}`, "datasetId"},
	} {
		e.fails(t, e.writeA, "POST", "/api/core/dataset/searchTest", bad.body, 400, "invalid_request", bad.field)
	}
	// usingReRank without a rerank model configured
	r := e.fails(t, e.writeA, "POST", "/api/core/dataset/searchTest", `{"datasetId":"`+ds+`","text":"x","usingReRank":true}`,
		400, "rerank_model_unavailable", "")
	if !strings.Contains(r.Message, "rerank") {
		t.Fatalf("rerank refusal says %q", r.Message)
	}
	if after := len(e.usage.module(dataset.ModuleSearch)); after != before {
		t.Fatalf("refused searches recorded usage: %d -> %d", before, after)
	}
	if e.snapshot(t, e.writeA) != snap {
		t.Fatal("refused searches changed something")
	}
}

func TestHandlerBadInputsChangeNothing(t *testing.T) {
	e := newHTTPEnv(t, dataset.Options{})
	ds := e.createDataset(t, e.writeA, "kb")
	coll := e.createCollection(t, e.writeA, ds, "c")
	e.ok(t, e.writeA, "POST", "/api/core/dataset/data/pushData", map[string]any{"collectionId": coll,
		"data": []map[string]any{{"q": "one", "a": "1"}, {"q": "two", "a": "2"}}}, nil)
	e.waitIdle(t, e.writeA, coll)
	var list listOf[dataset.Data]
	e.ok(t, e.writeA, "GET", "/api/core/dataset/data/list?collectionId="+coll, nil, &list)
	dataID := list.List[0].ID
	snap := e.snapshot(t, e.writeA)

	many := make([]map[string]any, dataset.MaxPushItems+1)
	for i := range many {
		many[i] = map[string]any{"q": fmt.Sprintf("item %d", i)}
	}
	push := "/api/core/dataset/data/pushData"
	for _, bad := range []struct {
		method, path string
		body         any
		field        string // "" when the body has no field to name
	}{
		// pushData
		{"POST", push, `{"collectionId":"` + coll + `","data":[{"q":"new"}]`, ""},
		{"POST", push, `{"collectionId":"` + coll + `" "data":[]}`, ""},
		{"POST", push, ``, ""},
		{"POST", push, `{"collectionId":"` + coll + `","data":[{"q":"new"}]} {}`, ""},
		{"POST", push, `{"collectionId":"` + coll + `","data":[{"q":"new"}],"bogus":1}`, "bogus"},
		{"POST", push, `{"collectionId":"` + coll + `","data":[{"q":"new","extra":"x"}]}`, "extra"},
		{"POST", push, `{"collectionId":` + `5,"data":[{"q":"new"}]}`, "collectionId"},
		{"POST", push, `{"collectionId":"` + coll + `","data":"new"}`, "data"},
		{"POST", push, `{"collectionId":"` + coll + `","data":[{"q":5}]}`, "data.q"},
		{"POST", push, `{"collectionId":"` + coll + `","data":[{"q":"new","indexes":[5]}]}`, ""},
		{"POST", push, `{"data":[{"q":"new"}]}`, "collectionId"},
		{"POST", push, `{"collectionId":"` + coll + `","mode":"vector","data":[{"q":"new"}]}`, "mode"},
		{"POST", push, `{"collectionId":"` + coll + `","trainingType":"auto","data":[{"q":"new"}]}`, "trainingType"},
		{"POST", push, `{"collectionId":"` + coll + `","data":[]}`, "data"},
		{"POST", push, `{"collectionId":"` + coll + `"}`, "data"},
		{"POST", push, map[string]any{"collectionId": coll, "data": many}, "data"},
		// create
		{"POST", "/api/core/dataset/create", `{"name":""}`, "name"},
		{"POST", "/api/core/dataset/create", `{"name":"x","vectorModel":"text-embedding-3-large"}`, "vectorModel"},
		{"POST", "/api/core/dataset/create", `{"name":"x","type":"folder"}`, "type"},
		{"POST", "/api/core/dataset/create", `{"name":["x"]}`, "name"},
		{"POST", "/api/core/dataset/collection/create", `{"name":"x"}`, "datasetId"},
		{"POST", "/api/core/dataset/collection/create", `{"datasetId":"` + ds + `","name":" "}`, "name"},
		{"POST", "/api/core/dataset/collection/create", `{"datasetId":"` + ds + `","name":"x","color":"red"}`, "color"},
		// create/text
		{"POST", "/api/core/dataset/collection/create/text", map[string]any{"datasetId": ds, "name": "t", "text": "", "chunkSize": 100}, "text"},
		{"POST", "/api/core/dataset/collection/create/text", map[string]any{"datasetId": ds, "name": "t", "text": "abc", "chunkSize": 15}, "chunkSize"},
		{"POST", "/api/core/dataset/collection/create/text", map[string]any{"datasetId": ds, "name": "t", "text": "abc", "chunkSize": 3001}, "chunkSize"},
		{"POST", "/api/core/dataset/collection/create/text", map[string]any{"datasetId": ds, "name": "t", "text": "abc", "chunkSize": -5}, "chunkSize"},
		{"POST", "/api/core/dataset/collection/create/text", map[string]any{"datasetId": ds, "name": "t", "text": "abc", "chunkSize": 100, "chunkOverlap": 51}, "chunkOverlap"},
		{"POST", "/api/core/dataset/collection/create/text", map[string]any{"datasetId": ds, "name": "t", "text": "abc", "trainingType": "auto"}, "trainingType"},
		{"POST", "/api/core/dataset/collection/create/text", map[string]any{"datasetId": ds, "name": "", "text": "abc"}, "name"},
		{"POST", "/api/core/dataset/collection/create/text", map[string]any{"name": "t", "text": "abc"}, "datasetId"},
		{"POST", "/api/core/dataset/collection/create/text", `{"datasetId":"` + ds + `","name":"t","text":"abc","chunkSize":"big"}`, "chunkSize"},
		// update
		{"PUT", "/api/core/dataset/data/update", `{"q":"x"}`, "id"},
		{"PUT", "/api/core/dataset/data/update", `{"id":"` + dataID + `","q":"  "}`, "q"},
		{"PUT", "/api/core/dataset/data/update", `{"id":"` + dataID + `","q":"two"}`, "q"},
		{"PUT", "/api/core/dataset/data/update", `{"id":"` + dataID + `","a":7}`, "a"},
		{"PUT", "/api/core/dataset/data/update", `{"id":"` + dataID + `","q":"` + strings.Repeat("x", 3001) + `"}`, "q"},
		// query ids
		{"DELETE", "/api/core/dataset/delete", nil, "id"},
		{"DELETE", "/api/core/dataset/collection/delete", nil, "id"},
		{"GET", "/api/core/dataset/collection/detail", nil, "id"},
		{"GET", "/api/core/dataset/collection/trainingFailures", nil, "collectionId"},
	} {
		r := e.fails(t, e.writeA, bad.method, bad.path, bad.body, 400, "invalid_request", bad.field)
		if bad.field == "" && !strings.Contains(r.Message, "body") && !strings.Contains(r.Message, "index") {
			t.Fatalf("%s %v: message %q says nothing of the body", bad.path, bad.body, r.Message)
		}
	}
	waitFor(t, "any training to settle", func() bool { return *e.detail(t, e.writeA, coll).TrainingAmount == 0 })
	if got := e.snapshot(t, e.writeA); got != snap {
		t.Fatalf("refused requests changed the knowledge base:\nbefore %s\nafter  %s", snap, got)
	}
}

func TestHandlerBodyLimit(t *testing.T) {
	e := newHTTPEnv(t, dataset.Options{})
	ds := e.createDataset(t, e.writeA, "kb")
	coll := e.createCollection(t, e.writeA, ds, "c")
	mux := http.NewServeMux()
	store := auth.NewMemoryStore()
	authn := auth.NewAuthenticator(store, auth.Options{Logger: slog.New(slog.DiscardHandler)})
	defer authn.Close(context.Background())
	_, key, err := auth.NewManager(store, authn).Create(context.Background(), auth.KeySpec{Name: "k", TeamID: "team-a"})
	if err != nil {
		t.Fatal(err)
	}
	dataset.NewHandler(e.svc, dataset.HandlerOptions{MaxBody: 1024}).Register(mux, authn)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	small := &httpEnv{srv: srv}
	body := map[string]any{"collectionId": coll, "data": []map[string]any{{"q": strings.Repeat("x", 2000)}}}
	r := small.fails(t, key, "POST", "/api/core/dataset/data/pushData", body, 400, "invalid_request", "")
	if !strings.Contains(r.Message, "1024") {
		t.Fatalf("message %q", r.Message)
	}
	if d := e.detail(t, e.writeA, coll); *d.TrainingAmount != 0 || d.DataAmount != 0 {
		t.Fatalf("an oversized body was queued: %+v", d)
	}
}

// route is every route Register mounts, with a body that would succeed.
type route struct {
	method, path string
	body         any
	write        bool
}

func routes(ds, coll, dataID string) []route {
	return []route{
		{"POST", "/api/core/dataset/create", map[string]any{"name": "new"}, true},
		{"GET", "/api/core/dataset/list", nil, false},
		{"GET", "/api/core/dataset/detail?id=" + ds, nil, false},
		{"DELETE", "/api/core/dataset/delete?id=" + ds, nil, true},
		{"POST", "/api/core/dataset/collection/create", map[string]any{"datasetId": ds, "name": "new"}, true},
		{"POST", "/api/core/dataset/collection/create/text", map[string]any{"datasetId": ds, "name": "new", "text": "新的文字。"}, true},
		{"GET", "/api/core/dataset/collection/list?datasetId=" + ds, nil, false},
		{"GET", "/api/core/dataset/collection/detail?id=" + coll, nil, false},
		{"GET", "/api/core/dataset/collection/trainingFailures?collectionId=" + coll, nil, false},
		{"DELETE", "/api/core/dataset/collection/delete?id=" + coll, nil, true},
		{"POST", "/api/core/dataset/data/pushData", map[string]any{"collectionId": coll, "data": []map[string]any{{"q": "new"}}}, true},
		{"GET", "/api/core/dataset/data/list?collectionId=" + coll, nil, false},
		{"GET", "/api/core/dataset/data/detail?id=" + dataID, nil, false},
		{"PUT", "/api/core/dataset/data/update", map[string]any{"id": dataID, "a": "changed"}, true},
		{"DELETE", "/api/core/dataset/data/delete?id=" + dataID, nil, true},
		{"POST", "/api/core/dataset/searchTest", map[string]any{"datasetId": ds, "text": "one"}, false},
	}
}

func TestHandlerScopes(t *testing.T) {
	e := newHTTPEnv(t, dataset.Options{})
	ds := e.createDataset(t, e.writeA, "kb")
	coll := e.createCollection(t, e.writeA, ds, "c")
	e.ok(t, e.writeA, "POST", "/api/core/dataset/data/pushData", map[string]any{"collectionId": coll, "data": []map[string]any{{"q": "one"}}}, nil)
	e.waitIdle(t, e.writeA, coll)
	var list listOf[dataset.Data]
	e.ok(t, e.writeA, "GET", "/api/core/dataset/data/list?collectionId="+coll, nil, &list)
	snap := e.snapshot(t, e.writeA)
	rs := routes(ds, coll, list.List[0].ID)
	if len(rs) != 16 {
		t.Fatalf("%d routes", len(rs))
	}
	for _, r := range rs {
		// a dataset:read key reads, and may not write
		if r.write {
			e.fails(t, e.readA, r.method, r.path, r.body, 403, "scope_denied", "")
		} else {
			e.ok(t, e.readA, r.method, r.path, r.body, nil)
		}
		// an app key (chat only) may do neither
		e.fails(t, e.chatA, r.method, r.path, r.body, 403, "scope_denied", "")
		// nor may a request without a key, or with a wrong one
		e.fails(t, "", r.method, r.path, r.body, 401, "invalid_api_key", "")
		e.fails(t, "cg-not-a-key", r.method, r.path, r.body, 401, "invalid_api_key", "")
	}
	if got := e.snapshot(t, e.writeA); got != snap {
		t.Fatalf("denied requests changed the knowledge base:\nbefore %s\nafter  %s", snap, got)
	}
	// and the global key may do all of it: deletions last, data first
	for _, r := range rs {
		if r.method != "DELETE" {
			e.ok(t, e.writeA, r.method, r.path, r.body, nil)
		}
	}
	for i := len(rs) - 1; i >= 0; i-- {
		if r := rs[i]; r.method == "DELETE" {
			e.ok(t, e.writeA, r.method, r.path, r.body, nil)
		}
	}
}

func TestHandlerTeamIsolation(t *testing.T) {
	e := newHTTPEnv(t, dataset.Options{})
	ds := e.createDataset(t, e.writeA, "secret")
	coll := e.createCollection(t, e.writeA, ds, "c")
	e.ok(t, e.writeA, "POST", "/api/core/dataset/data/pushData", map[string]any{"collectionId": coll, "data": []map[string]any{{"q": "one"}}}, nil)
	e.waitIdle(t, e.writeA, coll)
	var list listOf[dataset.Data]
	e.ok(t, e.writeA, "GET", "/api/core/dataset/data/list?collectionId="+coll, nil, &list)
	dataID := list.List[0].ID
	bDS := e.createDataset(t, e.writeB, "mine")
	snapA := e.snapshot(t, e.writeA)

	var dss []dataset.Dataset
	e.ok(t, e.writeB, "GET", "/api/core/dataset/list", nil, &dss)
	if len(dss) != 1 || dss[0].ID != bDS {
		t.Fatalf("team b lists %+v", dss)
	}
	for _, r := range routes(ds, coll, dataID) {
		if r.path == "/api/core/dataset/create" || r.path == "/api/core/dataset/list" {
			continue
		}
		got := e.fails(t, e.writeB, r.method, r.path, r.body, 404, "not_found", "")
		// the same answer as for an id that does not exist
		missing := strings.NewReplacer(ds, "000000000000000000000000", coll, "000000000000000000000000", dataID, "000000000000000000000000")
		var body any = r.body
		if m, ok := r.body.(map[string]any); ok {
			raw, _ := json.Marshal(m)
			body = missing.Replace(string(raw))
		}
		want := e.fails(t, e.writeA, r.method, missing.Replace(r.path), body, 404, "not_found", "")
		if got.Message != want.Message {
			t.Fatalf("%s %s: another team's id answers %q, a missing one %q", r.method, r.path, got.Message, want.Message)
		}
	}
	// team b's collection may not cite team a's as a file id
	bColl := e.createCollection(t, e.writeB, bDS, "c")
	var res pushResult
	e.ok(t, e.writeB, "POST", "/api/core/dataset/data/pushData", map[string]any{"collectionId": bColl,
		"data": []map[string]any{{"q": "cites a", "file_id": coll}}}, &res)
	if *res.InsertLen != 0 || len(res.FileIDInvalid) != 1 {
		t.Fatalf("push citing another team's collection = %+v", res)
	}
	if got := e.snapshot(t, e.writeA); got != snapA {
		t.Fatalf("team b changed team a's knowledge base:\nbefore %s\nafter  %s", snapA, got)
	}
}

func TestHandlerTrainingProgressAndFailures(t *testing.T) {
	e := newHTTPEnv(t, dataset.Options{})
	var slow, broken string
	e.ok(t, e.writeA, "POST", "/api/core/dataset/create", map[string]any{"name": "slow", "vectorModel": "gated"}, &slow)
	e.ok(t, e.writeA, "POST", "/api/core/dataset/create", map[string]any{"name": "broken", "vectorModel": "broken"}, &broken)
	slowColl := e.createCollection(t, e.writeA, slow, "c")
	brokenColl := e.createCollection(t, e.writeA, broken, "c")
	e.ok(t, e.writeA, "POST", "/api/core/dataset/data/pushData", map[string]any{"collectionId": brokenColl,
		"data": []map[string]any{{"q": "doomed"}}}, nil)
	waitFor(t, "the failure", func() bool { return *e.detail(t, e.readA, brokenColl).FailedAmount == 1 })
	e.ok(t, e.writeA, "POST", "/api/core/dataset/data/pushData", map[string]any{"collectionId": slowColl,
		"data": []map[string]any{{"q": "one"}, {"q": "two"}, {"q": "three"}}}, nil)

	d := e.detail(t, e.writeA, slowColl)
	if *d.TrainingAmount != 3 || *d.FailedAmount != 0 || d.DataAmount != 0 {
		t.Fatalf("while training: %+v", d)
	}
	d = e.detail(t, e.writeA, brokenColl)
	if *d.TrainingAmount != 0 || d.DataAmount != 0 {
		t.Fatalf("failed collection: %+v", d)
	}
	var page struct {
		List  []dataset.TrainingItem `json:"list"`
		Total int                    `json:"total"`
	}
	e.ok(t, e.readA, "GET", "/api/core/dataset/collection/trainingFailures?collectionId="+brokenColl, nil, &page)
	fs := page.List
	if page.Total != 1 || len(fs) != 1 || fs[0].Q != "doomed" || !fs[0].Failed || fs[0].Attempts != 2 || !strings.Contains(fs[0].LastError, "upstream said 503") {
		t.Fatalf("trainingFailures = %+v", page)
	}
	page.List = nil
	e.ok(t, e.readA, "GET", "/api/core/dataset/collection/trainingFailures?collectionId="+slowColl, nil, &page)
	if page.List == nil || len(page.List) != 0 || page.Total != 0 {
		t.Fatalf("trainingFailures of a healthy collection = %+v (want an empty list)", page)
	}
	close(e.gate.open)
	d = e.waitIdle(t, e.writeA, slowColl)
	if d.DataAmount != 3 || *d.FailedAmount != 0 {
		t.Fatalf("after training: %+v", d)
	}
}

func TestHandlerQAModelUnavailable(t *testing.T) {
	e := newHTTPEnv(t, dataset.Options{})
	ds := e.createDataset(t, e.writeA, "kb")
	coll := e.createCollection(t, e.writeA, ds, "c")
	snap := e.snapshot(t, e.writeA)
	r := e.fails(t, e.writeA, "POST", "/api/core/dataset/data/pushData", map[string]any{"collectionId": coll, "mode": "qa",
		"data": []map[string]any{{"q": "一段需要拆分成问答的长文字"}}}, 400, "qa_model_unavailable", "")
	if !strings.Contains(r.Message, "QA") {
		t.Fatalf("message %q", r.Message)
	}
	e.fails(t, e.writeA, "POST", "/api/core/dataset/data/pushData", map[string]any{"collectionId": coll, "trainingType": "qa",
		"data": []map[string]any{{"q": "一段文字"}}}, 400, "qa_model_unavailable", "")
	e.fails(t, e.writeA, "POST", "/api/core/dataset/collection/create/text", map[string]any{"datasetId": ds, "name": "t",
		"text": "一段文字。", "trainingType": "qa"}, 400, "qa_model_unavailable", "")
	if got := e.snapshot(t, e.writeA); got != snap {
		t.Fatalf("a refused QA request changed the knowledge base:\nbefore %s\nafter  %s", snap, got)
	}
}

func TestHandlerQA(t *testing.T) {
	gen := &fakeGen{answer: func(int, string) (dataset.GenerateResult, error) {
		return dataset.GenerateResult{Text: "Q1: 保修多久？\nA1: 两年。", Model: "fake-qa", PromptTokens: 10, CompletionTokens: 5}, nil
	}}
	e := newHTTPEnv(t, dataset.Options{QA: gen})
	ds := e.createDataset(t, e.writeA, "kb")
	coll := e.createCollection(t, e.writeA, ds, "c")
	var res pushResult
	e.ok(t, e.writeA, "POST", "/api/core/dataset/data/pushData", map[string]any{"collectionId": coll, "mode": "qa",
		"prompt": "售后服务", "billId": "bill-9", "data": []map[string]any{{"q": "本产品保修两年，自购买之日起计算。"}}}, &res)
	if *res.InsertLen != 1 {
		t.Fatalf("push = %+v", res)
	}
	e.waitIdle(t, e.writeA, coll)
	var list listOf[dataset.Data]
	e.ok(t, e.writeA, "GET", "/api/core/dataset/data/list?collectionId="+coll, nil, &list)
	if list.Total != 1 || list.List[0].Q != "保修多久？" || list.List[0].A != "两年。" {
		t.Fatalf("QA data = %+v", list)
	}
	if p := gen.Prompts(); len(p) != 1 || !strings.Contains(p[0], "售后服务") || !strings.Contains(p[0], "本产品保修两年") {
		t.Fatalf("prompts %q", p)
	}
	waitFor(t, "QA usage", func() bool { return len(e.usage.module(dataset.ModuleQA)) == 1 })
	if u := e.usage.module(dataset.ModuleQA)[0]; u.BillID != "bill-9" || u.KeyID == "" || u.TeamID != "team-a" || u.Model != "fake-qa" {
		t.Fatalf("QA usage %+v", u)
	}
}

// The request paths must be exactly FastGPT's; a wrong method is refused.
func TestHandlerMethods(t *testing.T) {
	e := newHTTPEnv(t, dataset.Options{})
	for _, r := range []struct{ method, path string }{
		{"GET", "/api/core/dataset/create"},
		{"GET", "/api/core/dataset/data/pushData"},
		{"POST", "/api/core/dataset/delete"},
		{"GET", "/api/core/dataset/searchTest"},
	} {
		req, _ := http.NewRequest(r.method, e.srv.URL+r.path, nil)
		req.Header.Set("Authorization", "Bearer "+e.writeA)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("%s %s = %d; want 405", r.method, r.path, resp.StatusCode)
		}
	}
}

// Routes lists every route once, writes behind dataset:write and reads
// behind dataset:read, all answering refusals in FastGPT's envelope.
func TestRoutesAndScopes(t *testing.T) {
	w, r := auth.ScopeDatasetWrite, auth.ScopeDatasetRead
	want := map[string]auth.Scope{
		"POST /api/core/dataset/create":                                   w,
		"GET /api/core/dataset/list":                                      r,
		"GET /api/core/dataset/detail":                                    r,
		"DELETE /api/core/dataset/delete":                                 w,
		"POST /api/core/dataset/collection/create":                        w,
		"POST /api/core/dataset/collection/create/text":                   w,
		"POST /api/core/dataset/collection/create/link":                   w,
		"GET /api/core/dataset/collection/list":                           r,
		"GET /api/core/dataset/collection/detail":                         r,
		"GET /api/core/dataset/collection/trainingFailures":               r,
		"DELETE /api/core/dataset/collection/delete":                      w,
		"POST /api/core/dataset/data/pushData":                            w,
		"GET /api/core/dataset/data/list":                                 r,
		"GET /api/core/dataset/data/detail":                               r,
		"PUT /api/core/dataset/data/update":                               w,
		"DELETE /api/core/dataset/data/delete":                            w,
		"POST /api/core/dataset/searchTest":                               r,
		"POST /api/core/dataset/list":                                     r,
		"PUT /api/core/dataset/update":                                    w,
		"POST /api/core/dataset/collection/listV2":                        r,
		"PUT /api/core/dataset/collection/update":                         w,
		"POST /api/core/dataset/collection/delete":                        w,
		"POST /api/core/dataset/data/v2/list":                             r,
		"POST /api/core/dataset/collection/list":                          r,
		"POST /api/core/dataset/data/list":                                r,
		"POST /api/core/dataset/collection/create/localFile":              w,
		"POST /api/core/dataset/collection/create/apiCollection":          w,
		"POST /api/proApi/core/dataset/collection/create/externalFileUrl": w,
	}
	routes := dataset.NewHandler(newService(t, dataset.Options{}), dataset.HandlerOptions{}).Routes()
	if len(routes) != len(want) {
		t.Errorf("%d routes; want %d", len(routes), len(want))
	}
	for _, rt := range routes {
		scope, ok := want[rt.Pattern]
		if !ok || rt.Scope != scope || rt.Public || rt.OnError != nil || rt.Handler == nil {
			t.Errorf("route %s: scope %q, public %v, own error writer %v; want scope %q", rt.Pattern, rt.Scope, rt.Public, rt.OnError != nil, scope)
		}
		delete(want, rt.Pattern)
	}
	if len(want) != 0 {
		t.Errorf("routes missing: %v", want)
	}
}
