package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatgate/chatgate/dataset/datasettest"
	"github.com/chatgate/chatgate/server"
)

// dlSite serves the link tests' pages on loopback and counts requests.
func dlSite(t *testing.T) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	reqs := new(atomic.Int32)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqs.Add(1)
		switch r.URL.Path {
		case "/docs/course/quick-start/":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, `<html><head><title>快速上手 | FastGPT</title></head><body>`+
				`<nav class="menu">菜单 首页 定价</nav>`+
				`<div class="docs-content"><h1>快速上手</h1><p>导演是谁？这部电影的导演是张艺谋。</p><p>上映时间是二〇〇二年。</p></div>`+
				`<footer>页脚版权</footer></body></html>`)
		case "/json":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"a":1}`)
		case "/big":
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, "<html><body><p>"+strings.Repeat("大", 30<<10)+"</p></body></html>")
		case "/hang":
			w.Header().Set("Content-Type", "text/html")
			w.(http.Flusher).Flush()
			select {
			case <-release:
			case <-r.Context().Done():
			}
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // before srv.Close, which waits for /hang
	return srv, reqs
}

// dlAllowLoopback lets the server's link fetches reach the test's pages.
func dlAllowLoopback(c *server.Config) {
	c.Dataset.Link = server.LinkConfig{AllowHosts: []string{"127.0.0.1/32"}, MaxBytes: 64 << 10,
		Timeout: server.Duration(400 * time.Millisecond)}
}

// dlWaitTrained waits until a collection's training is done.
func dlWaitTrained(t *testing.T, base, key, id string) map[string]any {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var c map[string]any
		blCall(t, "GET", base+"/api/core/dataset/collection/detail?id="+id, key, "", &c)
		if c["trainingAmount"] == 0.0 {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("collection %s not trained: %v", id, c)
		}
	}
}

// FastGPT's collection/create/link request as written, the link our
// loopback page's, read through the outbound guard that the config opens
// to loopback; the collection lists its rawLink.
func TestDocCollectionCreateLink(t *testing.T) {
	site, reqs := dlSite(t)
	link := site.URL + "/docs/course/quick-start/"
	dvEachWith(t, dlAllowLoopback, func(t *testing.T, base string) {
		key := blRoot
		ds := dvDataset(t, base, key, "测试")
		body := datasettest.CreateLinkBody(link, ds)
		var out struct {
			CollectionID string `json:"collectionId"`
			Results      struct {
				InsertLen int               `json:"insertLen"`
				OverToken []json.RawMessage `json:"overToken"`
				Repeat    []json.RawMessage `json:"repeat"`
				Error     []json.RawMessage `json:"error"`
			} `json:"results"`
		}
		blCall(t, "POST", base+"/api/core/dataset/collection/create/link", key, body, &out)
		if out.CollectionID == "" || out.Results.InsertLen != 1 || out.Results.OverToken == nil || out.Results.Error == nil {
			t.Fatalf("create/link = %+v", out)
		}
		c := dlWaitTrained(t, base, key, out.CollectionID)
		if c["rawLink"] != link || c["type"] != "link" || c["name"] != "快速上手 | FastGPT" || c["dataAmount"] != 1.0 {
			t.Fatalf("collection detail = %v", c)
		}
		var v2 struct {
			List  []map[string]any `json:"list"`
			Total int              `json:"total"`
		}
		blCall(t, "POST", base+"/api/core/dataset/collection/listV2", key, `{"offset":0,"pageSize":10,"datasetId":"`+ds+`","parentId":null,"searchText":""}`, &v2)
		if v2.Total != 1 || v2.List[0]["rawLink"] != link || v2.List[0]["type"] != "link" {
			t.Fatalf("listV2 = %+v", v2)
		}
		var data struct {
			List []struct{ Q string } `json:"list"`
		}
		blCall(t, "GET", base+"/api/core/dataset/data/list?collectionId="+out.CollectionID, key, "", &data)
		if len(data.List) != 1 || !strings.Contains(data.List[0].Q, "这部电影的导演是张艺谋") || strings.Contains(data.List[0].Q, "菜单") ||
			strings.Contains(data.List[0].Q, "页脚") {
			t.Fatalf("chunks %+v; want the selector's text only", data.List)
		}
		// the page answers search
		if hits := dvSearch(t, base, key, ds, "导演是谁"); len(hits) == 0 {
			t.Fatalf("searching the link collection found nothing")
		}

		// failures name link and leave nothing behind
		snap := dvSnap(t, base+"/api/core/dataset/collection/list?datasetId="+ds, key)
		for _, c := range []struct {
			link   string
			status int
			why    string
		}{
			{site.URL + "/json", 400, "not HTML"},
			{site.URL + "/big", 400, "larger than 65536 bytes"},
			{site.URL + "/missing", 502, "HTTP 404"},
			{site.URL + "/hang", 502, "did not answer within 400ms"},
			{"http://169.254.169.254/latest/meta-data", 400, "internal address"},
		} {
			b := fmt.Sprintf(`{"link":%q,"datasetId":%q,"trainingType":"chunk"}`, c.link, ds)
			dvRefused(t, "POST", base+"/api/core/dataset/collection/create/link", key, b, c.status, `"link"`)
			dvRefused(t, "POST", base+"/api/core/dataset/collection/create/link", key, b, c.status, c.why)
		}
		if got := dvSnap(t, base+"/api/core/dataset/collection/list?datasetId="+ds, key); got != snap {
			t.Fatalf("failed link requests changed the collections:\nbefore %s\nafter  %s", snap, got)
		}
		// an unknown dataset fetches nothing
		before := reqs.Load()
		dvRefused(t, "POST", base+"/api/core/dataset/collection/create/link", key,
			`{"link":"`+link+`","datasetId":"65abc9bd9d1448617cba5e6c","trainingType":"chunk"}`, 404, "dataset")
		if reqs.Load() != before {
			t.Fatalf("a request for an unknown dataset fetched the page")
		}
	})
}

// The same loopback page is refused when the config does not list it:
// 400 naming link, no request reaches it, no collection is made.
func TestDocCollectionCreateLinkRefusesLoopbackNotListed(t *testing.T) {
	site, reqs := dlSite(t)
	dvEach(t, func(t *testing.T, base string) {
		key := blRoot
		ds := dvDataset(t, base, key, "测试")
		before := reqs.Load()
		for _, link := range []string{site.URL + "/docs/course/quick-start/",
			strings.Replace(site.URL, "127.0.0.1", "localhost", 1) + "/docs/course/quick-start/"} {
			dvRefused(t, "POST", base+"/api/core/dataset/collection/create/link", key,
				fmt.Sprintf(`{"link":%q,"datasetId":%q,"parentId":null,"trainingType":"chunk","chunkSettingMode":"auto","qaPrompt":"","metadata":{"webPageSelector":".docs-content"}}`, link, ds),
				400, "internal address")
		}
		if n := reqs.Load() - before; n != 0 {
			t.Fatalf("refused fetches reached the page: %d requests", n)
		}
		var v2 struct {
			Total int `json:"total"`
		}
		blCall(t, "POST", base+"/api/core/dataset/collection/listV2", key, `{"datasetId":"`+ds+`"}`, &v2)
		if v2.Total != 0 {
			t.Fatalf("refused links left %d collections", v2.Total)
		}
	})
}

func TestLinkConfigRefusesABadAllowList(t *testing.T) {
	cfg := server.Config{RootKey: blRoot}
	cfg.Server.Data = t.TempDir()
	cfg.Dataset.Link.AllowHosts = []string{"127.0.0.1/32", "http://wiki"}
	s, err := server.New(cfg)
	if err == nil {
		s.Close(context.Background())
		t.Fatal("a bad dataset.link.allow_hosts was accepted")
	}
	if !strings.Contains(err.Error(), "dataset.link.allow_hosts") || !strings.Contains(err.Error(), "entry 1") {
		t.Fatalf("err = %v", err)
	}
}

// FastGPT's chunk settings on collection/create/text, honoured on both
// deployments: the custom splitter cuts the chunks, tags and createTime
// are the collection's.
func TestDocCollectionCreateTextChunkSettings(t *testing.T) {
	dvEach(t, func(t *testing.T, base string) {
		key := blRoot
		ds := dvDataset(t, base, key, "测试")
		var out struct {
			CollectionID string `json:"collectionId"`
		}
		blCall(t, "POST", base+"/api/core/dataset/collection/create/text", key, `{
    "text":"第一段。---第二段，稍长。---第三段",
    "datasetId":"`+ds+`",
    "parentId": null,
    "name":"测试训练",
    "trainingType": "chunk",
    "chunkSettingMode": "custom",
    "chunkSplitMode": "char",
    "chunkSplitter": "---",
    "chunkSize": 512,
    "indexSize": 512,
    "tags": ["tag1", "测试的"],
    "createTime": "2024-05-01T00:00:00.000Z",
    "metadata":{}
}`, &out)
		c := dlWaitTrained(t, base, key, out.CollectionID)
		if c["createTime"] != "2024-05-01T00:00:00Z" || fmt.Sprint(c["tags"]) != "[tag1 测试的]" || c["dataAmount"] != 3.0 {
			t.Fatalf("collection = %v", c)
		}
		var data struct {
			List []struct{ Q string } `json:"list"`
		}
		blCall(t, "GET", base+"/api/core/dataset/data/list?collectionId="+out.CollectionID, key, "", &data)
		var qs []string
		for _, d := range data.List {
			qs = append(qs, d.Q)
		}
		if strings.Join(qs, "|") != "第一段。|第二段，稍长。|第三段" {
			t.Fatalf("chunks %q", qs)
		}
		dvRefused(t, "POST", base+"/api/core/dataset/collection/create/text", key,
			`{"text":"x","datasetId":"`+ds+`","name":"n","trainingType":"chunk","autoIndexes":true}`, 400, "autoIndexes")
	})
}
