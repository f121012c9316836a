package server_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chatgate/chatgate/internal/postgres/pgtest"
	"github.com/chatgate/chatgate/server"
)

// The knowledge-base routes of FastGPT's current OpenAPI document
// (dataset.mdx), called with its requests as written (ids filled in) on
// the embedded default and on Postgres.

// dvEach runs fn on a server on the embedded default, and on one on
// Postgres when CHATGATE_TEST_POSTGRES names one.
func dvEach(t *testing.T, fn func(t *testing.T, base string)) { dvEachWith(t, nil, fn) }

// dvEachWith is dvEach on servers whose config mutate changes first.
func dvEachWith(t *testing.T, mutate func(*server.Config), fn func(t *testing.T, base string)) {
	t.Run("embedded", func(t *testing.T) {
		fn(t, blStart(t, t.TempDir(), mutate))
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := pgtest.DSN(t)
		fn(t, blStart(t, t.TempDir(), func(c *server.Config) {
			if mutate != nil {
				mutate(c)
			}
			c.Storage.DSN = dsn
		}))
	})
}

// dvOtherTeam is a key of another team, allowed everything there.
func dvOtherTeam(t *testing.T, base string) string {
	t.Helper()
	_, key := blKey(t, base, map[string]any{"name": "other team", "teamId": "team-b", "scopes": []string{"admin"}})
	return key
}

func dvDataset(t *testing.T, base, key, name string) string {
	t.Helper()
	var id string
	blCall(t, "POST", base+"/api/core/dataset/create", key, fmt.Sprintf(`{"name":%q}`, name), &id)
	return id
}

func dvCollection(t *testing.T, base, key, datasetID, name string) string {
	t.Helper()
	var id string
	blCall(t, "POST", base+"/api/core/dataset/collection/create", key,
		fmt.Sprintf(`{"datasetId":%q,"parentId":null,"name":%q,"type":"virtual","metadata":{"test":111}}`, datasetID, name), &id)
	return id
}

// dvPush pushes qs into a collection and waits until they are trained.
func dvPush(t *testing.T, base, key, collectionID string, qs ...string) {
	t.Helper()
	var items []map[string]string
	for _, q := range qs {
		items = append(items, map[string]string{"q": q, "a": "answer: " + q})
	}
	body, _ := json.Marshal(map[string]any{"collectionId": collectionID, "trainingType": "chunk", "data": items})
	var res struct {
		InsertLen int `json:"insertLen"`
	}
	blCall(t, "POST", base+"/api/core/dataset/data/pushData", key, string(body), &res)
	if res.InsertLen != len(qs) {
		t.Fatalf("pushData inserted %d of %d", res.InsertLen, len(qs))
	}
	dvTrained(t, base, key, collectionID, len(qs))
}

// dvTrained waits until a collection has nothing left to train and holds
// at least n data items.
func dvTrained(t *testing.T, base, key, collectionID string, n int) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var c struct{ TrainingAmount, DataAmount int }
		blCall(t, "GET", base+"/api/core/dataset/collection/detail?id="+collectionID, key, "", &c)
		if c.TrainingAmount == 0 && c.DataAmount >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("collection %s not trained: %+v", collectionID, c)
		}
	}
}

// dvRefused calls a route that must refuse with status, naming what in
// its message.
func dvRefused(t *testing.T, method, url, key, body string, status int, what string) {
	t.Helper()
	env := blCallAny(t, method, url, key, body)
	if env.Code != status || !strings.Contains(env.Message, what) {
		t.Errorf("%s %s %s = %d %s %q; want %d naming %q", method, url, body, env.Code, env.StatusText, env.Message, status, what)
	}
}

// dvNullData checks that a route answered the document's "data": null.
func dvNullData(t *testing.T, method, url, key, body string) {
	t.Helper()
	st, raw := blDo(t, method, url, key, body)
	if st != 200 || !strings.Contains(string(raw), `"data":null`) {
		t.Fatalf("%s %s %s = %d %s; want 200 with \"data\":null", method, url, body, st, raw)
	}
}

// dvSnap is what GET url answers, to show a refused call changed nothing.
func dvSnap(t *testing.T, url, key string) string {
	t.Helper()
	return string(blCall(t, "GET", url, key, "", nil).Data)
}

func TestDocDatasetListPost(t *testing.T) {
	dvEach(t, func(t *testing.T, base string) {
		key := blRoot
		a := dvDataset(t, base, key, "测试")
		var b string
		blCall(t, "POST", base+"/api/core/dataset/create", key,
			`{"parentId":null,"type":"dataset","name":"second","intro":"介绍","avatar":"/icon/logo.svg"}`, &b)
		other := dvOtherTeam(t, base)
		dvDataset(t, base, other, "theirs")

		url := base + "/api/core/dataset/list?parentId="
		for _, body := range []string{`{
    "parentId":""
}`, `{"parentId":null}`, `{}`, ""} {
			var list []map[string]any
			blCall(t, "POST", url, key, body, &list)
			if len(list) != 2 || list[0]["_id"] != a || list[1]["_id"] != b {
				t.Fatalf("POST dataset/list %s = %v; want [%s %s], own team only, oldest first", body, list, a, b)
			}
			it := list[1]
			vm, _ := it["vectorModel"].(map[string]any)
			if pid, ok := it["parentId"]; !ok || pid != nil || it["name"] != "second" || it["intro"] != "介绍" ||
				it["avatar"] != "/icon/logo.svg" || it["type"] != "dataset" || vm["model"] != "local" || it["updateTime"] == nil {
				t.Fatalf("listed dataset = %v", it)
			}
		}
		var theirs []map[string]any
		blCall(t, "POST", url, other, `{"parentId":""}`, &theirs)
		if len(theirs) != 1 || theirs[0]["name"] != "theirs" {
			t.Fatalf("the other team's list = %v", theirs)
		}

		dvRefused(t, "POST", url, key, `{"parentId":"65abc9bd9d1448617cba5e6c"}`, 400, "parentId")
		dvRefused(t, "POST", base+"/api/core/dataset/list?parentId=65abc9bd9d1448617cba5e6c", key, `{"parentId":""}`, 400, "parentId")
		dvRefused(t, "POST", url, key, `{"parentId":`, 400, "truncated")
		dvRefused(t, "POST", url, key, `{"searchKey":"x"}`, 400, "searchKey")
		dvRefused(t, "POST", url, key, `["parentId"]`, 400, "body")
	})
}

func TestDocDatasetUpdate(t *testing.T) {
	dvEach(t, func(t *testing.T, base string) {
		key := blRoot
		id := dvDataset(t, base, key, "before")
		detail := base + "/api/core/dataset/detail?id=" + id
		url := base + "/api/core/dataset/update"
		dvNullData(t, "PUT", url, key, fmt.Sprintf(`{
    "id":%q,
    "parentId": null,
    "name":"测试",
    "intro":"介绍",
    "avatar": "/icon/logo.svg"
}`, id))
		var d map[string]any
		blCall(t, "GET", detail, key, "", &d)
		if d["name"] != "测试" || d["intro"] != "介绍" || d["avatar"] != "/icon/logo.svg" || d["vectorModel"] != "local" || d["updateTime"] == nil {
			t.Fatalf("detail after update = %v", d)
		}
		// only what is given changes
		dvNullData(t, "PUT", url, key, fmt.Sprintf(`{"id":%q,"intro":""}`, id))
		blCall(t, "GET", detail, key, "", &d)
		if d["name"] != "测试" || d["intro"] != "" || d["avatar"] != "/icon/logo.svg" {
			t.Fatalf("detail after an intro-only update = %v", d)
		}
		var list []map[string]any
		blCall(t, "POST", base+"/api/core/dataset/list", key, `{"parentId":""}`, &list)
		if len(list) != 1 || list[0]["name"] != "测试" {
			t.Fatalf("list after update = %v", list)
		}

		before := dvSnap(t, detail, key)
		other := dvOtherTeam(t, base)
		for _, c := range []struct {
			key, body string
			status    int
			what      string
		}{
			{key, `{"name":"x"}`, 400, "id"},
			{key, `{"id":"65abc9bd9d1448617cba5e6c","name":"x"}`, 404, "dataset not found"},
			{other, fmt.Sprintf(`{"id":%q,"name":"x"}`, id), 404, "dataset not found"},
			{key, fmt.Sprintf(`{"id":%q,"name":"  "}`, id), 400, "name"},
			{key, fmt.Sprintf(`{"id":%q,"name":"x","parentId":"65abc9bd9d1448617cba5e6c"}`, id), 400, "parentId"},
			{key, fmt.Sprintf(`{"id":%q,"name":"x","agentModel":"gpt-4o-mini"}`, id), 400, "agentModel"},
			{key, fmt.Sprintf(`{"id":%q,"name":"x","vlmModelId":"m"}`, id), 400, "vlmModelId"},
			{key, fmt.Sprintf(`{"id":%q,"name":"x","autoSync":false}`, id), 400, "autoSync"},
			{key, fmt.Sprintf(`{"id":%q,"name":"x","vectorModel":"other"}`, id), 400, "vectorModel"},
			{key, fmt.Sprintf(`{"id":%q,"name":"x","permission":"private"}`, id), 400, "permission"},
			{key, fmt.Sprintf(`{"id":%q,"intro":"a\u0000b"}`, id), 400, "intro"},
			{key, fmt.Sprintf(`{"id":%q,"name":"x"`, id), 400, "truncated"},
			{key, fmt.Sprintf(`{"id":%q,"name":7}`, id), 400, "name"},
		} {
			dvRefused(t, "PUT", url, c.key, c.body, c.status, c.what)
		}
		if after := dvSnap(t, detail, key); after != before {
			t.Fatalf("refused updates changed the dataset: %s -> %s", before, after)
		}
	})
}

func TestDocCollectionListV2(t *testing.T) {
	dvEach(t, func(t *testing.T, base string) {
		key := blRoot
		ds := dvDataset(t, base, key, "kb")
		manual := dvCollection(t, base, key, ds, "手动录入")
		quick := dvCollection(t, base, key, ds, "快速上手 | FastGPT")
		dvCollection(t, base, key, ds, "third")
		dvPush(t, base, key, manual, "你是谁？", "你会什么？", "第三")
		url := base + "/api/core/dataset/collection/listV2"
		type item struct {
			ID             string   `json:"_id"`
			ParentID       *string  `json:"parentId"`
			Type           string   `json:"type"`
			Name           string   `json:"name"`
			DataAmount     int      `json:"dataAmount"`
			TrainingAmount int      `json:"trainingAmount"`
			Tags           []string `json:"tags"`
			Forbid         *bool    `json:"forbid"`
			UpdateTime     string   `json:"updateTime"`
		}
		var page struct {
			List  []item `json:"list"`
			Total int    `json:"total"`
		}
		blCall(t, "POST", url, key, fmt.Sprintf(`{
    "offset":0,
    "pageSize": 10,
    "datasetId":%q,
    "parentId": null,
    "searchText":""
}`, ds), &page)
		if page.Total != 3 || len(page.List) != 3 || page.List[0].ID != manual || page.List[1].ID != quick {
			t.Fatalf("listV2 = %+v", page)
		}
		if it := page.List[0]; it.Name != "手动录入" || it.Type != "virtual" || it.DataAmount != 3 || it.TrainingAmount != 0 ||
			it.Tags == nil || len(it.Tags) != 0 || it.Forbid == nil || *it.Forbid || it.ParentID != nil || it.UpdateTime == "" {
			t.Fatalf("listed collection = %+v", it)
		}
		blCall(t, "POST", url, key, fmt.Sprintf(`{"datasetId":%q,"searchText":"fastgpt"}`, ds), &page)
		if page.Total != 1 || len(page.List) != 1 || page.List[0].ID != quick {
			t.Fatalf("listV2 searching fastgpt = %+v", page)
		}
		blCall(t, "POST", url, key, fmt.Sprintf(`{"datasetId":%q,"offset":1,"pageSize":1}`, ds), &page)
		if page.Total != 3 || len(page.List) != 1 || page.List[0].ID != quick {
			t.Fatalf("listV2 second page of one = %+v", page)
		}
		blCall(t, "POST", url, key, fmt.Sprintf(`{"datasetId":%q,"offset":9}`, ds), &page)
		if page.Total != 3 || page.List == nil || len(page.List) != 0 {
			t.Fatalf("listV2 past the end = %+v", page)
		}

		other := dvOtherTeam(t, base)
		for _, c := range []struct {
			key, body string
			status    int
			what      string
		}{
			{key, `{"offset":0,"pageSize":10}`, 400, "datasetId"},
			{key, `{"datasetId":"65abc9bd9d1448617cba5e6c"}`, 404, "dataset not found"},
			{other, fmt.Sprintf(`{"datasetId":%q}`, ds), 404, "dataset not found"},
			{key, fmt.Sprintf(`{"datasetId":%q,"pageSize":31}`, ds), 400, "pageSize"},
			{key, fmt.Sprintf(`{"datasetId":%q,"pageSize":0}`, ds), 400, "pageSize"},
			{key, fmt.Sprintf(`{"datasetId":%q,"offset":-1}`, ds), 400, "offset"},
			{key, fmt.Sprintf(`{"datasetId":%q,"offset":"0"}`, ds), 400, "offset"},
			{key, fmt.Sprintf(`{"datasetId":%q,"parentId":"65abc9bd9d1448617cba5e6c"}`, ds), 400, "parentId"},
			{key, fmt.Sprintf(`{"datasetId":%q,"pageNum":1}`, ds), 400, "pageNum"},
			{key, `{"datasetId":`, 400, "truncated"},
		} {
			dvRefused(t, "POST", url, c.key, c.body, c.status, c.what)
		}
	})
}

func TestDocCollectionUpdate(t *testing.T) {
	dvEach(t, func(t *testing.T, base string) {
		key := blRoot
		ds := dvDataset(t, base, key, "kb")
		id := dvCollection(t, base, key, ds, "测试")
		dvPush(t, base, key, id, "kept through the update")
		detail := base + "/api/core/dataset/collection/detail?id=" + id
		url := base + "/api/core/dataset/collection/update"
		dvNullData(t, "PUT", url, key, fmt.Sprintf(`{
    "id":%q,
    "parentId": null,
    "name": "测2222试",
    "tags": ["tag1", "tag2"],
    "forbid": false,
    "createTime": "2024-01-01T00:00:00.000Z"
}`, id))
		var c struct {
			Name       string    `json:"name"`
			Tags       []string  `json:"tags"`
			CreateTime time.Time `json:"createTime"`
			UpdateTime time.Time `json:"updateTime"`
			DataAmount int       `json:"dataAmount"`
		}
		blCall(t, "GET", detail, key, "", &c)
		if c.Name != "测2222试" || strings.Join(c.Tags, ",") != "tag1,tag2" || !c.CreateTime.Equal(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)) ||
			c.UpdateTime.IsZero() || c.DataAmount != 1 {
			t.Fatalf("detail after update = %+v", c)
		}
		var page struct {
			List []struct {
				Name string   `json:"name"`
				Tags []string `json:"tags"`
			} `json:"list"`
		}
		blCall(t, "POST", base+"/api/core/dataset/collection/listV2", key, fmt.Sprintf(`{"datasetId":%q}`, ds), &page)
		if len(page.List) != 1 || page.List[0].Name != "测2222试" || len(page.List[0].Tags) != 2 {
			t.Fatalf("listV2 after update = %+v", page)
		}

		before := dvSnap(t, detail, key)
		other := dvOtherTeam(t, base)
		for _, c := range []struct {
			key, body string
			status    int
			what      string
		}{
			// the document's second form, by external file id, has nothing to find here
			{key, fmt.Sprintf(`{
    "datasetId":%q,
    "externalFileId":"1111",
    "parentId": null,
    "name": "测2222试",
    "tags": ["tag1", "tag2"],
    "forbid": false,
    "createTime": "2024-01-01T00:00:00.000Z"
}`, ds), 400, "externalFileId"},
			{key, `{"name":"x"}`, 400, "id"},
			{key, `{"id":"65abc9bd9d1448617cba5e6c","name":"x"}`, 404, "collection not found"},
			{other, fmt.Sprintf(`{"id":%q,"name":"x"}`, id), 404, "collection not found"},
			{key, fmt.Sprintf(`{"id":%q,"name":"x","forbid":true}`, id), 400, "forbid"},
			{key, fmt.Sprintf(`{"id":%q,"name":"x","parentId":"65abc9bd9d1448617cba5e6c"}`, id), 400, "parentId"},
			{key, fmt.Sprintf(`{"id":%q,"name":"x","datasetId":%q}`, id, ds), 400, "datasetId"},
			{key, fmt.Sprintf(`{"id":%q,"createTime":"yesterday"}`, id), 400, "createTime"},
			{key, fmt.Sprintf(`{"id":%q,"tags":["ok",""]}`, id), 400, "tags[1]"},
			{key, fmt.Sprintf(`{"id":%q,"tags":"tag1"}`, id), 400, "tags"},
			{key, fmt.Sprintf(`{"id":%q,"tags":[%s]}`, id, strings.TrimSuffix(strings.Repeat(`"t",`, 101), ",")), 400, "more than 100"},
			{key, fmt.Sprintf(`{"id":%q,"name":""}`, id), 400, "name"},
			{key, fmt.Sprintf(`{"id":%q,"metadata":{}}`, id), 400, "metadata"},
			{key, fmt.Sprintf(`{"id":%q`, id), 400, "truncated"},
		} {
			dvRefused(t, "PUT", url, c.key, c.body, c.status, c.what)
		}
		if after := dvSnap(t, detail, key); after != before {
			t.Fatalf("refused updates changed the collection: %s -> %s", before, after)
		}
	})
}

// dvSearch returns the ids of the collections searchTest finds text in.
func dvSearch(t *testing.T, base, key, datasetID, text string) map[string]bool {
	t.Helper()
	var hits []struct {
		CollectionID string `json:"collectionId"`
	}
	blCall(t, "POST", base+"/api/core/dataset/searchTest", key,
		fmt.Sprintf(`{"datasetId":%q,"text":%q,"maxResults":20,"similarity":0,"searchMode":"mixedRecall"}`, datasetID, text), &hits)
	out := map[string]bool{}
	for _, h := range hits {
		out[h.CollectionID] = true
	}
	return out
}

func TestDocCollectionDeleteMany(t *testing.T) {
	dvEach(t, func(t *testing.T, base string) {
		key := blRoot
		ds := dvDataset(t, base, key, "kb")
		ds2 := dvDataset(t, base, key, "kb2")
		c1 := dvCollection(t, base, key, ds, "one")
		c2 := dvCollection(t, base, key, ds2, "two")
		keep := dvCollection(t, base, key, ds, "keep")
		dvPush(t, base, key, c1, "zebra crossing rules", "zebra stripes")
		dvPush(t, base, key, c2, "zebra in the second dataset")
		dvPush(t, base, key, keep, "zebra kept here")
		if hits := dvSearch(t, base, key, ds, "zebra"); !hits[c1] || !hits[keep] {
			t.Fatalf("before the delete, search finds %v", hits)
		}
		url := base + "/api/core/dataset/collection/delete"
		keepDetail := base + "/api/core/dataset/collection/detail?id=" + keep
		snap := func() string {
			return dvSnap(t, base+"/api/core/dataset/collection/detail?id="+c1, key) + dvSnap(t, keepDetail, key) +
				dvSnap(t, base+"/api/core/dataset/data/list?collectionId="+c1, key)
		}
		before := snap()
		other := dvOtherTeam(t, base)
		for _, c := range []struct {
			key, body string
			status    int
			what      string
		}{
			{key, fmt.Sprintf(`{"collectionIds":[%q,"65a8cdcb0d70d3de0bf08d0a"]}`, c1), 404, "collectionIds[1]"},
			{other, fmt.Sprintf(`{"collectionIds":[%q]}`, c1), 404, "collectionIds[0]"},
			{key, `{"collectionIds":[]}`, 400, "collectionIds"},
			{key, `{}`, 400, "collectionIds"},
			{key, `{"collectionIds":["a b"]}`, 400, "collectionIds[0]"},
			{key, fmt.Sprintf(`{"collectionIds":%q}`, c1), 400, "collectionIds"},
			{key, fmt.Sprintf(`{"collectionId":%q}`, c1), 400, "collectionId"},
			{key, `{"collectionIds":[`, 400, "truncated"},
		} {
			dvRefused(t, "POST", url, c.key, c.body, c.status, c.what)
		}
		if after := snap(); after != before {
			t.Fatalf("refused deletes changed something: %s -> %s", before, after)
		}

		dvNullData(t, "POST", url, key, fmt.Sprintf(`{
    "collectionIds": [%q, %q]
}`, c1, c2))
		for _, id := range []string{c1, c2} {
			dvRefused(t, "GET", base+"/api/core/dataset/collection/detail?id="+id, key, "", 404, "collection not found")
			dvRefused(t, "POST", base+"/api/core/dataset/data/v2/list", key, fmt.Sprintf(`{"collectionId":%q}`, id), 404, "collection not found")
		}
		if hits := dvSearch(t, base, key, ds, "zebra"); hits[c1] || !hits[keep] {
			t.Fatalf("after the delete, search of %s finds %v; want %s only", ds, hits, keep)
		}
		if hits := dvSearch(t, base, key, ds2, "zebra"); len(hits) != 0 {
			t.Fatalf("after the delete, search of %s finds %v", ds2, hits)
		}
		var k struct{ DataAmount int }
		blCall(t, "GET", keepDetail, key, "", &k)
		if k.DataAmount != 1 {
			t.Fatalf("the kept collection lost data: %+v", k)
		}
	})
}

func TestDocDataListV2(t *testing.T) {
	dvEach(t, func(t *testing.T, base string) {
		key := blRoot
		ds := dvDataset(t, base, key, "kb")
		c := dvCollection(t, base, key, ds, "data")
		dvPush(t, base, key, c, "你是谁？", "你会什么？", "What is FastGPT?", "fastgpt docs")
		url := base + "/api/core/dataset/data/v2/list"
		type item struct {
			ID           string `json:"_id"`
			DatasetID    string `json:"datasetId"`
			CollectionID string `json:"collectionId"`
			Q            string `json:"q"`
			A            string `json:"a"`
		}
		var page struct {
			List  []item `json:"list"`
			Total int    `json:"total"`
		}
		blCall(t, "POST", url, key, fmt.Sprintf(`{
    "offset": 0,
    "pageSize": 10,
    "collectionId":%q,
    "searchText":""
}`, c), &page)
		if page.Total != 4 || len(page.List) != 4 || page.List[0].Q != "你是谁？" || page.List[0].A != "answer: 你是谁？" ||
			page.List[0].ID == "" || page.List[0].DatasetID != ds || page.List[0].CollectionID != c {
			t.Fatalf("data/v2/list = %+v", page)
		}
		blCall(t, "POST", url, key, fmt.Sprintf(`{"collectionId":%q,"searchText":"FASTGPT"}`, c), &page)
		if page.Total != 2 || len(page.List) != 2 || page.List[0].Q != "What is FastGPT?" || page.List[1].Q != "fastgpt docs" {
			t.Fatalf("data/v2/list searching FASTGPT = %+v", page)
		}
		blCall(t, "POST", url, key, fmt.Sprintf(`{"collectionId":%q,"searchText":"什么","offset":0,"pageSize":1}`, c), &page)
		if page.Total != 1 || len(page.List) != 1 || page.List[0].Q != "你会什么？" {
			t.Fatalf("data/v2/list searching 什么 = %+v", page)
		}
		blCall(t, "POST", url, key, fmt.Sprintf(`{"collectionId":%q,"offset":3,"pageSize":30}`, c), &page)
		if page.Total != 4 || len(page.List) != 1 {
			t.Fatalf("data/v2/list from offset 3 = %+v", page)
		}

		other := dvOtherTeam(t, base)
		for _, b := range []struct {
			key, body string
			status    int
			what      string
		}{
			{key, `{"offset":0,"pageSize":10}`, 400, "collectionId"},
			{key, `{"collectionId":"65abd4ac9d1448617cba6171"}`, 404, "collection not found"},
			{other, fmt.Sprintf(`{"collectionId":%q}`, c), 404, "collection not found"},
			{key, fmt.Sprintf(`{"collectionId":%q,"pageSize":31}`, c), 400, "pageSize"},
			{key, fmt.Sprintf(`{"collectionId":%q,"pageSize":-5}`, c), 400, "pageSize"},
			{key, fmt.Sprintf(`{"collectionId":%q,"offset":-1}`, c), 400, "offset"},
			{key, fmt.Sprintf(`{"collectionId":%q,"pageNum":1}`, c), 400, "pageNum"},
			{key, fmt.Sprintf(`{"collectionId":%q,"searchText":7}`, c), 400, "searchText"},
			{key, `{"collectionId":`, 400, "truncated"},
		} {
			dvRefused(t, "POST", url, b.key, b.body, b.status, b.what)
		}
	})
}

func TestDocCreateTrainingUsage(t *testing.T) {
	dvEach(t, func(t *testing.T, base string) {
		key := blRoot
		ds := dvDataset(t, base, key, "kb")
		url := base + "/api/support/wallet/usage/createTrainingUsage"
		var bill string
		blCall(t, "POST", url, key, fmt.Sprintf(`{
    "datasetId": %q,
    "name": "文档训练-fastgpt.docx"
}`, ds), &bill)
		var b struct {
			ID, Name, DatasetID, TeamID string
		}
		blCall(t, "GET", base+"/api/common/bill/detail?id="+bill, key, "", &b)
		if b.ID != bill || b.Name != "文档训练-fastgpt.docx" || b.DatasetID != ds {
			t.Fatalf("bill of createTrainingUsage = %+v", b)
		}
		// the bill aggregates a push as createTrainingBill's does
		c := dvCollection(t, base, key, ds, "billed")
		body, _ := json.Marshal(map[string]any{"collectionId": c, "trainingType": "chunk", "billId": bill,
			"data": []map[string]string{{"q": "你是谁？", "a": "我是FastGPT助手"}}})
		blCall(t, "POST", base+"/api/core/dataset/data/pushData", key, string(body), nil)
		// an empty body is allowed, as for createTrainingBill
		var plain string
		blCall(t, "POST", url, key, "", &plain)
		if plain == "" || plain == bill {
			t.Fatalf("createTrainingUsage with no body = %q", plain)
		}

		for _, c := range []struct {
			body string
			what string
		}{
			{`{"name":"n\u0000"}`, "name"},
			{`{"datasetId":"a b"}`, "datasetId"},
			{`{"name":`, "truncated"},
			{`{"name":"x","billId":"y"}`, "billId"},
		} {
			dvRefused(t, "POST", url, key, c.body, 400, c.what)
		}
		dvRefused(t, "POST", url, "", `{"name":"x"}`, 401, "")
	})
}

// The list routes dataset.mdx still shows in their forms before 4.8.19
// and 4.8.11: POST, paged by pageNum, answered as {pageNum, pageSize,
// data, total}.
func TestDocLegacyLists(t *testing.T) {
	dvEach(t, func(t *testing.T, base string) {
		key := blRoot
		ds := dvDataset(t, base, key, "kb")
		first := dvCollection(t, base, key, ds, "手动录入")
		second := dvCollection(t, base, key, ds, "测试")
		dvPush(t, base, key, first, "你是谁？", "你会什么？", "第三")
		type page struct {
			PageNum  int `json:"pageNum"`
			PageSize int `json:"pageSize"`
			Data     []struct {
				ID   string `json:"_id"`
				Name string `json:"name"`
				Q    string `json:"q"`
			} `json:"data"`
			Total int `json:"total"`
		}
		var p page
		blCall(t, "POST", base+"/api/core/dataset/collection/list", key, fmt.Sprintf(`{
    "pageNum":1,
    "pageSize": 10,
    "datasetId":%q,
    "parentId": null,
    "searchText":""
}`, ds), &p)
		if p.PageNum != 1 || p.PageSize != 10 || p.Total != 2 || len(p.Data) != 2 || p.Data[0].ID != first || p.Data[1].ID != second {
			t.Fatalf("collection/list = %+v", p)
		}
		blCall(t, "POST", base+"/api/core/dataset/collection/list", key, fmt.Sprintf(`{"pageNum":2,"pageSize":1,"datasetId":%q}`, ds), &p)
		if p.PageNum != 2 || p.Total != 2 || len(p.Data) != 1 || p.Data[0].ID != second {
			t.Fatalf("collection/list page 2 of 1 = %+v", p)
		}
		blCall(t, "POST", base+"/api/core/dataset/data/list", key, fmt.Sprintf(`{
    "pageNum":1,
    "pageSize": 10,
    "collectionId":%q,
    "searchText":""
}`, first), &p)
		if p.Total != 3 || len(p.Data) != 3 || p.Data[0].Q != "你是谁？" {
			t.Fatalf("data/list = %+v", p)
		}
		blCall(t, "POST", base+"/api/core/dataset/data/list", key, fmt.Sprintf(`{"pageNum":1,"pageSize":10,"collectionId":%q,"searchText":"什么"}`, first), &p)
		if p.Total != 1 || len(p.Data) != 1 || p.Data[0].Q != "你会什么？" {
			t.Fatalf("data/list searching 什么 = %+v", p)
		}
		for _, c := range []struct{ path, body, what string }{
			{"collection/list", fmt.Sprintf(`{"pageNum":0,"datasetId":%q}`, ds), "pageNum"},
			{"collection/list", fmt.Sprintf(`{"pageNum":1,"pageSize":31,"datasetId":%q}`, ds), "pageSize"},
			{"collection/list", `{"pageNum":1}`, "datasetId"},
			{"data/list", fmt.Sprintf(`{"pageNum":-1,"collectionId":%q}`, first), "pageNum"},
			{"data/list", `{"pageNum":1,"pageSize":10}`, "collectionId"},
		} {
			dvRefused(t, "POST", base+"/api/core/dataset/"+c.path, key, c.body, 400, c.what)
		}
	})
}
