package server_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chatgate/chatgate/cl100k"
)

// FastGPT's documented data requests (dataset.mdx: pushData with a bill
// and custom indexes, data/update with index objects, the three DELETE
// routes, data/detail and collection/detail), sent as the document writes
// them, ids filled in, on the embedded default and on Postgres. Each is
// checked by its effect: what detail, the lists, searchTest and the bill
// show afterwards.

// ddPushBody is the document's pushData request; only collectionId and
// billId (whose documented value is a sentence explaining it) are filled in.
const ddPushBody = `{
    "collectionId": %q,
    "trainingType": "chunk",
    "prompt": "可选。qa 拆分引导词，chunk 模式下忽略",
    "billId": %q,
    "data": [
        {
            "q": "你是谁？",
            "a": "我是FastGPT助手"
        },
        {
            "q": "你会什么？",
            "a": "我什么都会",
            "indexes": [
                {
                    "text":"自定义索引1"
                },
                {
                    "text":"自定义索引2"
                }
            ]
        }
    ]
}`

// ddUpdateBody is the document's data/update request. Only the data's id
// is filled in: the index dataIds ("xxxx", "xxx") stay as written, since
// data/detail here gives indexes no ids to fill them with (the server
// ignores an index's dataId and type; see the report).
const ddUpdateBody = `{
    "dataId":%q,
    "q":"测试111",
    "a":"sss",
    "indexes":[
        {
            "dataId": "xxxx",
            "type": "default",
            "text": "默认索引"
        },
        {
            "dataId": "xxx",
            "type": "custom",
            "text": "旧的自定义索引1"
        },
        {
            "type":"custom",
            "text":"新增的自定义索引"
        }
    ]
}`

// ddPushed is what ddPush made: the bill and the two items' ids.
type ddPushed struct {
	bill     string
	who, can string // ids of "你是谁？" and of "你会什么？", the item with custom indexes
}

// ddPush creates a bill with the document's createTrainingUsage request
// and pushes the document's pushData into collection on it, waiting until
// both items are trained.
func ddPush(t *testing.T, base, key, datasetID, collectionID string) ddPushed {
	t.Helper()
	var p ddPushed
	blCall(t, "POST", base+"/api/support/wallet/usage/createTrainingUsage", key, fmt.Sprintf(`{
    "datasetId": %q,
    "name": "文档训练-fastgpt.docx"
}`, datasetID), &p.bill)
	var res struct {
		InsertLen int               `json:"insertLen"`
		OverToken []json.RawMessage `json:"overToken"`
		Repeat    []json.RawMessage `json:"repeat"`
		Error     []json.RawMessage `json:"error"`
	}
	blCall(t, "POST", base+"/api/core/dataset/data/pushData", key, fmt.Sprintf(ddPushBody, collectionID, p.bill), &res)
	if res.InsertLen != 2 || res.OverToken == nil || len(res.OverToken) != 0 || res.Repeat == nil || len(res.Repeat) != 0 ||
		res.Error == nil || len(res.Error) != 0 {
		t.Fatalf("pushData answered %+v; want insertLen 2 and empty overToken, repeat, error", res)
	}
	dvTrained(t, base, key, collectionID, 2)
	ids := ddDataIDs(t, base, key, collectionID)
	p.who, p.can = ids["你是谁？"], ids["你会什么？"]
	if len(ids) != 2 || p.who == "" || p.can == "" {
		t.Fatalf("collection %s holds %v after the push", collectionID, ids)
	}
	return p
}

// ddDataIDs returns the ids of a collection's data by q, from data/v2/list.
func ddDataIDs(t *testing.T, base, key, collectionID string) map[string]string {
	t.Helper()
	var page struct {
		List []struct {
			ID string `json:"_id"`
			Q  string `json:"q"`
		} `json:"list"`
		Total int `json:"total"`
	}
	blCall(t, "POST", base+"/api/core/dataset/data/v2/list", key, fmt.Sprintf(`{"offset":0,"pageSize":30,"collectionId":%q,"searchText":""}`, collectionID), &page)
	ids := map[string]string{}
	for _, d := range page.List {
		ids[d.Q] = d.ID
	}
	if page.Total != len(page.List) {
		t.Fatalf("data/v2/list of %s: %d of %d on one page", collectionID, len(page.List), page.Total)
	}
	return ids
}

// ddData is data/detail as the server answers it.
type ddData struct {
	ID           string   `json:"id"`
	DatasetID    string   `json:"datasetId"`
	CollectionID string   `json:"collectionId"`
	Q            string   `json:"q"`
	A            string   `json:"a"`
	Indexes      []string `json:"-"`
}

// ddDetail reads data/detail; Indexes are the texts of its custom
// indexes, after the default one (q with a), which must come first.
func ddDetail(t *testing.T, base, key, id string) ddData {
	t.Helper()
	var raw struct {
		ddData
		Indexes []struct{ Type, DataID, Text string } `json:"indexes"`
	}
	blCall(t, "GET", base+"/api/core/dataset/data/detail?id="+id, key, "", &raw)
	d := raw.ddData
	for i, x := range raw.Indexes {
		switch {
		case i == 0 && (x.Type != "default" || x.DataID != id):
			t.Fatalf("data/detail %s: the first index is %+v, not the default one", id, x)
		case i > 0 && x.Type != "custom":
			t.Fatalf("data/detail %s: index %d is %+v, not a custom one", id, i, x)
		case i > 0:
			d.Indexes = append(d.Indexes, x.Text)
		}
	}
	return d
}

// ddHit is a searchTest hit with the document's field names.
type ddHit struct {
	ID           string  `json:"id"`
	Q            string  `json:"q"`
	A            string  `json:"a"`
	DatasetID    string  `json:"datasetId"`
	CollectionID string  `json:"collectionId"`
	Score        float64 `json:"score"`
}

// ddExact is the similarity of an embedding search that finds only the
// data one of whose texts is the query itself (cosine 1).
const ddExact = 0.99

// ddSearch calls searchTest on a dataset with the document's limit, a
// budget of 5000 tokens for the hits, which holds every hit of these
// small datasets.
func ddSearch(t *testing.T, base, key, datasetID, text, mode string, similarity float64) []ddHit {
	t.Helper()
	var hits []ddHit
	blCall(t, "POST", base+"/api/core/dataset/searchTest", key,
		fmt.Sprintf(`{"datasetId": %q, "text": %q, "limit": 5000, "similarity": %v, "searchMode": %q}`, datasetID, text, similarity, mode), &hits)
	return hits
}

// ddIDs is the ids of hits.
func ddIDs(hits []ddHit) []string {
	ids := make([]string, len(hits))
	for i, h := range hits {
		ids[i] = h.ID
	}
	return ids
}

// ddEmbeds reports whether an exact embedding search of text finds the
// data id. Vectors are written with the data, so it needs no wait.
func ddEmbeds(t *testing.T, base, key, datasetID, text, id string) bool {
	t.Helper()
	return slices.Contains(ddIDs(ddSearch(t, base, key, datasetID, text, "embedding", ddExact)), id)
}

// ddFinds reports whether an exact embedding search, and a full-text one,
// of text find the data id. The full-text index follows the store through
// an outbox, so the full-text search is tried again for up to 10s until it
// answers want.
func ddFinds(t *testing.T, base, key, datasetID, text, id string, want bool) (embedding, fullText bool) {
	t.Helper()
	embedding = ddEmbeds(t, base, key, datasetID, text, id)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		fullText = slices.Contains(ddIDs(ddSearch(t, base, key, datasetID, text, "fullTextRecall", 0)), id)
		if fullText == want || time.Now().After(deadline) {
			return embedding, fullText
		}
	}
}

func TestDatasetDocsPushData(t *testing.T) {
	dvEach(t, func(t *testing.T, base string) {
		key := blRoot
		ds := dvDataset(t, base, key, "kb")
		coll := dvCollection(t, base, key, ds, "手动录入")
		p := ddPush(t, base, key, ds, coll)

		// stored as pushed, the custom indexes with the item that has them
		if d := ddDetail(t, base, key, p.can); d.ID != p.can || d.Q != "你会什么？" || d.A != "我什么都会" || d.DatasetID != ds ||
			d.CollectionID != coll || !slices.Equal(d.Indexes, []string{"自定义索引1", "自定义索引2"}) {
			t.Fatalf("data/detail of the item with custom indexes = %+v", d)
		}
		if d := ddDetail(t, base, key, p.who); d.Q != "你是谁？" || d.A != "我是FastGPT助手" || len(d.Indexes) != 0 {
			t.Fatalf("data/detail of the item without = %+v", d)
		}

		// searchTest finds the item by a custom index text alone
		for _, text := range []string{"自定义索引1", "自定义索引2"} {
			hits := ddSearch(t, base, key, ds, text, "embedding", ddExact)
			if len(hits) != 1 || hits[0].ID != p.can || hits[0].Q != "你会什么？" || hits[0].A != "我什么都会" ||
				hits[0].DatasetID != ds || hits[0].CollectionID != coll || hits[0].Score < ddExact {
				t.Fatalf("embedding search of %s = %+v; want only %s", text, hits, p.can)
			}
			// the full-text index follows the push through an outbox
			var ids []string
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				if ids = ddIDs(ddSearch(t, base, key, ds, text, "fullTextRecall", 0)); len(ids) > 0 || time.Now().After(deadline) {
					break
				}
			}
			if !slices.Equal(ids, []string{p.can}) {
				t.Fatalf("full-text search of %s = %v; want only %s", text, ids, p.can)
			}
		}

		// the bill shows the embedding of q and of each custom index
		var tok cl100k.Counter
		want := 0
		for _, s := range []string{"你是谁？", "你会什么？", "自定义索引1", "自定义索引2"} {
			want += tok.Count(s)
		}
		var b struct {
			ID          string  `json:"id"`
			Name        string  `json:"name"`
			DatasetID   string  `json:"datasetId"`
			TotalTokens int     `json:"totalTokens"`
			TotalPoints float64 `json:"totalPoints"`
			Items       []struct {
				Module string `json:"module"`
				Model  string `json:"model"`
				Tokens int    `json:"tokens"`
			} `json:"items"`
		}
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			blCall(t, "GET", base+"/api/common/bill/detail?id="+p.bill, key, "", &b)
			if b.TotalTokens >= want || time.Now().After(deadline) {
				break
			}
		}
		if b.ID != p.bill || b.Name != "文档训练-fastgpt.docx" || b.DatasetID != ds || b.TotalTokens != want ||
			!blNear(b.TotalPoints, float64(want)/1000) || len(b.Items) != 1 ||
			b.Items[0].Module != "embedding" || b.Items[0].Model != "local" || b.Items[0].Tokens != want {
			t.Fatalf("bill of the push = %+v; want %d embedding tokens", b, want)
		}
	})
}

func TestDatasetDocsDataUpdate(t *testing.T) {
	dvEach(t, func(t *testing.T, base string) {
		key := blRoot
		ds := dvDataset(t, base, key, "kb")
		coll := dvCollection(t, base, key, ds, "手动录入")
		p := ddPush(t, base, key, ds, coll)
		whoBefore := dvSnap(t, base+"/api/core/dataset/data/detail?id="+p.who, key)
		for _, c := range []struct {
			text string
			want bool
		}{{"自定义索引2", true}, {"新增的自定义索引", false}, {"旧的自定义索引1", false}} {
			if emb := ddEmbeds(t, base, key, ds, c.text, p.can); emb != c.want {
				t.Fatalf("before the update, the exact search of %s finds the item: %v", c.text, emb)
			}
		}
		if _, ft := ddFinds(t, base, key, ds, "你会什么？", p.can, true); !ft {
			t.Fatal("before the update, full-text search of the old q misses the item")
		}

		blCall(t, "PUT", base+"/api/core/dataset/data/update", key, fmt.Sprintf(ddUpdateBody, p.can), nil)

		// the indexes are the body's, in its order; q and a replaced
		if d := ddDetail(t, base, key, p.can); d.Q != "测试111" || d.A != "sss" || d.CollectionID != coll ||
			!slices.Equal(d.Indexes, []string{"默认索引", "旧的自定义索引1", "新增的自定义索引"}) {
			t.Fatalf("data/detail after the update = %+v", d)
		}
		// search finds the new texts, not the removed index or the old q
		for _, text := range []string{"新增的自定义索引", "旧的自定义索引1", "默认索引", "测试111"} {
			if emb, ft := ddFinds(t, base, key, ds, text, p.can, true); !emb || !ft {
				t.Errorf("after the update, search of %s finds the item: embedding %v, full text %v", text, emb, ft)
			}
		}
		if ddEmbeds(t, base, key, ds, "自定义索引2", p.can) {
			t.Error("after the update, the exact search of the removed index 自定义索引2 still finds the item")
		}
		for _, text := range []string{"你会什么？", "我什么都会"} {
			if emb, ft := ddFinds(t, base, key, ds, text, p.can, false); emb || ft {
				t.Errorf("after the update, search of the old %s finds the item: embedding %v, full text %v", text, emb, ft)
			}
		}
		// the other item is untouched
		if after := dvSnap(t, base+"/api/core/dataset/data/detail?id="+p.who, key); after != whoBefore {
			t.Errorf("the other item changed: %s -> %s", whoBefore, after)
		}
		if emb, ft := ddFinds(t, base, key, ds, "你是谁？", p.who, true); !emb || !ft {
			t.Errorf("the other item is no longer found: embedding %v, full text %v", emb, ft)
		}
	})
}

// ddGone checks that GET url answers 404 naming what.
func ddGone(t *testing.T, url, key, what string) {
	t.Helper()
	dvRefused(t, "GET", url, key, "", 404, what)
}

func TestDatasetDocsDeletes(t *testing.T) {
	dvEach(t, func(t *testing.T, base string) {
		key := blRoot
		ds := dvDataset(t, base, key, "kb")
		c1 := dvCollection(t, base, key, ds, "doc push")
		c2 := dvCollection(t, base, key, ds, "other collection")
		p := ddPush(t, base, key, ds, c1)
		dvPush(t, base, key, c2, "zebra crossing rules")
		c2ids := ddDataIDs(t, base, key, c2)
		ds2 := dvDataset(t, base, key, "kb2")
		c3 := dvCollection(t, base, key, ds2, "second dataset")
		dvPush(t, base, key, c3, "zebra in the second dataset")
		c3ids := ddDataIDs(t, base, key, c3)
		// another team holds the same data under its own ids
		other := dvOtherTeam(t, base)
		dsO := dvDataset(t, base, other, "theirs")
		cO := dvCollection(t, base, other, dsO, "theirs")
		pO := ddPush(t, base, other, dsO, cO)
		dvPush(t, base, other, cO, "zebra crossing rules")
		theirs := func() string {
			return dvSnap(t, base+"/api/core/dataset/detail?id="+dsO, other) +
				dvSnap(t, base+"/api/core/dataset/collection/detail?id="+cO, other) +
				dvSnap(t, base+"/api/core/dataset/data/detail?id="+pO.who, other) +
				dvSnap(t, base+"/api/core/dataset/data/detail?id="+pO.can, other)
		}
		theirsBefore := theirs()
		theirsFound := func(stage string) {
			t.Helper()
			for text, id := range map[string]string{"你是谁？": pO.who, "自定义索引2": pO.can} {
				if emb, ft := ddFinds(t, base, other, dsO, text, id, true); !emb || !ft {
					t.Errorf("%s: the other team's search of %s misses its item: embedding %v, full text %v", stage, text, emb, ft)
				}
			}
			if after := theirs(); after != theirsBefore {
				t.Errorf("%s: the other team's records changed: %s -> %s", stage, theirsBefore, after)
			}
		}
		// another team cannot delete them
		dvRefused(t, "DELETE", base+"/api/core/dataset/data/delete?id="+p.who, other, "", 404, "not found")
		dvRefused(t, "DELETE", base+"/api/core/dataset/collection/delete?id="+c1, other, "", 404, "collection not found")
		dvRefused(t, "DELETE", base+"/api/core/dataset/delete?id="+ds, other, "", 404, "dataset not found")
		if emb, ft := ddFinds(t, base, key, ds, "你是谁？", p.who, true); !emb || !ft {
			t.Fatalf("before the deletes, search misses %s: embedding %v, full text %v", p.who, emb, ft)
		}

		// DELETE /api/core/dataset/data/delete?id=: that item only
		blCall(t, "DELETE", base+"/api/core/dataset/data/delete?id="+p.who, key, "", nil)
		ddGone(t, base+"/api/core/dataset/data/detail?id="+p.who, key, "not found")
		if ids := ddDataIDs(t, base, key, c1); len(ids) != 1 || ids["你会什么？"] != p.can {
			t.Errorf("after data/delete the collection holds %v; want only %s", ids, p.can)
		}
		for _, text := range []string{"你是谁？", "我是FastGPT助手"} {
			if emb, ft := ddFinds(t, base, key, ds, text, p.who, false); emb || ft {
				t.Errorf("after data/delete search of %s finds the deleted item: embedding %v, full text %v", text, emb, ft)
			}
		}
		if emb, ft := ddFinds(t, base, key, ds, "自定义索引2", p.can, true); !emb || !ft {
			t.Errorf("after data/delete the collection's other item is not found: embedding %v, full text %v", emb, ft)
		}
		var c1d struct{ DataAmount int }
		blCall(t, "GET", base+"/api/core/dataset/collection/detail?id="+c1, key, "", &c1d)
		if c1d.DataAmount != 1 {
			t.Errorf("after data/delete collection detail = %+v; want dataAmount 1", c1d)
		}
		theirsFound("data/delete")

		// DELETE /api/core/dataset/collection/delete?id=: that collection and its data only
		// (the answer's missing "data": null: TestDatasetDocsAnswersAsDocumented)
		blCall(t, "DELETE", base+"/api/core/dataset/collection/delete?id="+c1, key, "", nil)
		ddGone(t, base+"/api/core/dataset/collection/detail?id="+c1, key, "collection not found")
		ddGone(t, base+"/api/core/dataset/data/detail?id="+p.can, key, "not found")
		dvRefused(t, "POST", base+"/api/core/dataset/data/v2/list", key, fmt.Sprintf(`{"collectionId":%q}`, c1), 404, "collection not found")
		var page struct {
			List []struct {
				ID string `json:"_id"`
			} `json:"list"`
			Total int `json:"total"`
		}
		blCall(t, "POST", base+"/api/core/dataset/collection/listV2", key, fmt.Sprintf(`{"offset":0,"pageSize":10,"datasetId":%q,"parentId":null,"searchText":""}`, ds), &page)
		if page.Total != 1 || len(page.List) != 1 || page.List[0].ID != c2 {
			t.Errorf("after collection/delete listV2 = %+v; want only %s", page, c2)
		}
		for _, text := range []string{"自定义索引2", "你会什么？", "我什么都会"} {
			if emb, ft := ddFinds(t, base, key, ds, text, p.can, false); emb || ft {
				t.Errorf("after collection/delete search of %s finds its data: embedding %v, full text %v", text, emb, ft)
			}
		}
		if emb, ft := ddFinds(t, base, key, ds, "zebra crossing rules", c2ids["zebra crossing rules"], true); !emb || !ft {
			t.Errorf("after collection/delete the other collection's data is not found: embedding %v, full text %v", emb, ft)
		}
		theirsFound("collection/delete")

		// DELETE /api/core/dataset/delete?id=: that dataset, its collections and data only
		blCall(t, "DELETE", base+"/api/core/dataset/delete?id="+ds, key, "", nil)
		ddGone(t, base+"/api/core/dataset/detail?id="+ds, key, "dataset not found")
		ddGone(t, base+"/api/core/dataset/collection/detail?id="+c2, key, "collection not found")
		ddGone(t, base+"/api/core/dataset/data/detail?id="+c2ids["zebra crossing rules"], key, "not found")
		var list []struct {
			ID string `json:"_id"`
		}
		blCall(t, "POST", base+"/api/core/dataset/list?parentId=", key, `{"parentId":""}`, &list)
		if len(list) != 1 || list[0].ID != ds2 {
			t.Errorf("after dataset/delete dataset/list = %+v; want only %s", list, ds2)
		}
		dvRefused(t, "POST", base+"/api/core/dataset/searchTest", key,
			fmt.Sprintf(`{"datasetId": %q, "text": "zebra", "limit": 100, "similarity": 0, "searchMode": "embedding"}`, ds), 404, "dataset not found")
		// the team's other dataset keeps its data, and holds none of the deleted one's
		for _, mode := range []string{"embedding", "fullTextRecall", "mixedRecall"} {
			hits := ddSearch(t, base, key, ds2, "zebra crossing rules", mode, 0)
			if ids := ddIDs(hits); !slices.Equal(ids, []string{c3ids["zebra in the second dataset"]}) {
				t.Errorf("after dataset/delete the %s search of %s finds %v; want only %s", mode, ds2, hits, c3ids["zebra in the second dataset"])
			}
		}
		theirsFound("dataset/delete")
		if emb, ft := ddFinds(t, base, other, dsO, "zebra crossing rules", ddDataIDs(t, base, other, cO)["zebra crossing rules"], true); !emb || !ft {
			t.Errorf("the other team's zebra is not found: embedding %v, full text %v", emb, ft)
		}
	})
}

// ddKeys reports which of names a JSON object lacks.
func ddKeys(obj map[string]json.RawMessage, names ...string) (missing []string) {
	for _, n := range names {
		if _, ok := obj[n]; !ok {
			missing = append(missing, n)
		}
	}
	return missing
}

func TestDatasetDocsDetailFields(t *testing.T) {
	dvEach(t, func(t *testing.T, base string) {
		key := blRoot
		ds := dvDataset(t, base, key, "kb")
		coll := dvCollection(t, base, key, ds, "测试")
		p := ddPush(t, base, key, ds, coll)

		// GET /api/core/dataset/data/detail?id=: the documented fields
		var d map[string]json.RawMessage
		blCall(t, "GET", base+"/api/core/dataset/data/detail?id="+p.can, key, "", &d)
		if m := ddKeys(d, "id", "q", "a", "indexes", "datasetId", "collectionId"); len(m) > 0 {
			t.Errorf("data/detail lacks %v: %v", m, d)
		}
		raw, _ := json.Marshal(d)
		if dv := ddDetail(t, base, key, p.can); dv.ID != p.can || dv.Q != "你会什么？" || dv.A != "我什么都会" ||
			dv.DatasetID != ds || dv.CollectionID != coll || len(dv.Indexes) != 2 {
			t.Errorf("data/detail = %s", raw)
		}

		// GET /api/core/dataset/collection/detail?id=
		var c map[string]json.RawMessage
		blCall(t, "GET", base+"/api/core/dataset/collection/detail?id="+coll, key, "", &c)
		if m := ddKeys(c, "teamId", "datasetId", "type", "name", "createTime"); len(m) > 0 {
			t.Errorf("collection/detail lacks %v: %v", m, c)
		}
		var cv struct {
			TeamID, DatasetID, Type, Name string
			CreateTime, UpdateTime        time.Time
		}
		raw, _ = json.Marshal(c)
		if err := json.Unmarshal(raw, &cv); err != nil || cv.TeamID == "" || cv.DatasetID != ds || cv.Type != "virtual" ||
			cv.Name != "测试" || cv.CreateTime.IsZero() {
			t.Errorf("collection/detail = %s (%v)", raw, err)
		}
		// updateTime is answered once the collection has changed
		dvNullData(t, "PUT", base+"/api/core/dataset/collection/update", key, fmt.Sprintf(`{"id":%q,"name":"测2222试"}`, coll))
		blCall(t, "GET", base+"/api/core/dataset/collection/detail?id="+coll, key, "", &c)
		raw, _ = json.Marshal(c)
		if err := json.Unmarshal(raw, &cv); err != nil || cv.Name != "测2222试" || cv.UpdateTime.Before(cv.CreateTime) {
			t.Errorf("collection/detail after an update = %s (%v)", raw, err)
		}
	})
}

// TestDatasetDocsAnswersAsDocumented checks the answers where the server's
// used to differ from the document's: the detail routes' fields, and the
// data of updates and deletes.
func TestDatasetDocsAnswersAsDocumented(t *testing.T) {
	dvEach(t, func(t *testing.T, base string) {
		key := blRoot
		ds := dvDataset(t, base, key, "kb")
		coll := dvCollection(t, base, key, ds, "测试")
		p := ddPush(t, base, key, ds, coll)

		t.Run("data/detail", func(t *testing.T) {
			var d map[string]json.RawMessage
			blCall(t, "GET", base+"/api/core/dataset/data/detail?id="+p.can, key, "", &d)
			var got []string
			if m := ddKeys(d, "sourceName", "sourceId", "isOwner", "canWrite"); len(m) > 0 {
				got = append(got, fmt.Sprintf("lacks %v", m))
			}
			var idx []struct {
				Type   string `json:"type"`
				DataID string `json:"dataId"`
				Text   string `json:"text"`
				ID     string `json:"_id"`
			}
			if err := json.Unmarshal(d["indexes"], &idx); err != nil || len(idx) == 0 || idx[0].Type != "default" || idx[0].DataID != p.can {
				got = append(got, fmt.Sprintf("indexes %s are not the document's objects {type, dataId, text}, the default first: %v", d["indexes"], err))
			}
			if len(got) > 0 {
				t.Errorf("data/detail %s", strings.Join(got, "; "))
			}
		})
		t.Run("dataset/detail", func(t *testing.T) {
			var d map[string]json.RawMessage
			blCall(t, "GET", base+"/api/core/dataset/detail?id="+ds, key, "", &d)
			// vectorModel stays the model's name, as chatgate answered it
			// before (FastGPT's document shows its model object)
			if m := ddKeys(d, "_id", "parentId", "teamId", "type", "status", "avatar", "name", "intro", "updateTime", "canWrite", "isOwner"); len(m) > 0 {
				t.Errorf("dataset/detail lacks %v: %v", m, d)
			}
			var id, typ, model string
			if json.Unmarshal(d["_id"], &id) != nil || id != ds || json.Unmarshal(d["type"], &typ) != nil || typ != "dataset" ||
				json.Unmarshal(d["vectorModel"], &model) != nil || model == "" || string(d["parentId"]) != "null" {
				t.Errorf("dataset/detail = %v", d)
			}
		})
		t.Run("collection/detail", func(t *testing.T) {
			var c map[string]json.RawMessage
			blCall(t, "GET", base+"/api/core/dataset/collection/detail?id="+coll, key, "", &c)
			var got []string
			// datasetId stays the dataset's id, as chatgate answered it before
			// (FastGPT's document shows the dataset object); tmbId names a
			// team member, which chatgate has not
			if m := ddKeys(c, "_id", "parentId", "updateTime", "sourceName", "canWrite"); len(m) > 0 {
				got = append(got, fmt.Sprintf("lacks %v", m))
			}
			var dsID string
			if err := json.Unmarshal(c["datasetId"], &dsID); err != nil || dsID != ds {
				got = append(got, fmt.Sprintf("datasetId %s is not the dataset's id", c["datasetId"]))
			}
			if len(got) > 0 {
				t.Errorf("collection/detail %s", strings.Join(got, "; "))
			}
		})
		t.Run("data/update", func(t *testing.T) {
			dvNullData(t, "PUT", base+"/api/core/dataset/data/update", key, fmt.Sprintf(ddUpdateBody, p.can))
		})
		t.Run("data/delete", func(t *testing.T) {
			st, raw := blDo(t, "DELETE", base+"/api/core/dataset/data/delete?id="+p.who, key, "")
			var env struct {
				Data *string `json:"data"`
			}
			if err := json.Unmarshal(raw, &env); st != 200 || err != nil || env.Data == nil || *env.Data != "success" {
				t.Errorf(`data/delete answered %d %s; the document's data is "success"`, st, raw)
			}
		})
		t.Run("collection/delete", func(t *testing.T) {
			dvNullData(t, "DELETE", base+"/api/core/dataset/collection/delete?id="+coll, key, "")
		})
		t.Run("dataset/delete", func(t *testing.T) {
			dvNullData(t, "DELETE", base+"/api/core/dataset/delete?id="+ds, key, "")
		})
	})
}

// TestDatasetDocsSearchTestAsWritten sends the document's searchTest
// request as written to the default server, which has no chat model to
// extend the query with: it is refused by name; with extension off, the
// rest of the body (limit 5000 tokens, similarity 0, usingReRank false)
// finds both items. TestDocSearchTestExtension (extension_test.go) sends
// it to a server with a model, through the real adapter.
func TestDatasetDocsSearchTestAsWritten(t *testing.T) {
	dvEach(t, func(t *testing.T, base string) {
		key := blRoot
		ds := dvDataset(t, base, key, "kb")
		coll := dvCollection(t, base, key, ds, "测试")
		p := ddPush(t, base, key, ds, coll)
		body := fmt.Sprintf(`{
    "datasetId": %q,
    "text": "导演是谁",
    "limit": 5000,
    "similarity": 0,
    "searchMode": "embedding",
    "usingReRank": false,

    "datasetSearchUsingExtensionQuery": true,
    "datasetSearchExtensionModel": "gpt-4o-mini",
    "datasetSearchExtensionBg": ""
}`, ds)
		dvRefused(t, "POST", base+"/api/core/dataset/searchTest", key, body, 400, `"datasetSearchUsingExtensionQuery"`)
		var hits []ddHit
		blCall(t, "POST", base+"/api/core/dataset/searchTest", key,
			strings.Replace(body, `"datasetSearchUsingExtensionQuery": true`, `"datasetSearchUsingExtensionQuery": false`, 1), &hits)
		ids := ddIDs(hits)
		if len(ids) == 0 {
			t.Fatalf("searchTest with similarity 0 found nothing")
		}
		for _, id := range ids {
			if id != p.who && id != p.can {
				t.Errorf("searchTest found %s, not one of the pushed items: %+v", id, hits)
			}
		}
	})
}

// collection/create/apiCollection as dataset.mdx writes it: datasets here
// have no API file server, so the call names the dataset it cannot serve
// (404 for one that does not exist) and creates nothing.
func TestDatasetDocsAPICollectionRefused(t *testing.T) {
	ddCreateRefused(t, "/api/core/dataset/collection/create/apiCollection", `{
    "name": "A Quick Guide to Building a Discord Bot.pdf",
    "apiFileId":"A Quick Guide to Building a Discord Bot.pdf",

    "datasetId": "%s",
    "parentId": null,

    "trainingType": "chunk",
    "chunkSize":512,
    "chunkSplitter":"",
    "qaPrompt":""
}`, "not an API dataset", "674e9e479c3503c385495027")
}

// TestDatasetDocsExternalFileURLRefused sends dataset.mdx's
// externalFileUrl request (a commercial-edition route there) as written:
// it is refused by name, 404 for an unknown dataset, and creates nothing.
func TestDatasetDocsExternalFileURLRefused(t *testing.T) {
	ddCreateRefused(t, "/api/proApi/core/dataset/collection/create/externalFileUrl", `{
    "externalFileUrl":"https://image.xxxxx.com/fastgpt-dev/%%E6%%91%%82.pdf",
    "externalFileId":"1111",
    "createTime": "2024-05-01T00:00:00.000Z",
    "filename":"自定义文件名.pdf",
    "datasetId":"%s",
    "parentId": null,
    "tags": ["tag1","tag2"],

    "trainingType": "chunk",
    "chunkSize":512,
    "chunkSplitter":"",
    "qaPrompt":""
}`, "externalFileUrl", "6642d105a5e9d2b00255b27b")
}

// ddCreateRefused sends a documented collection/create request (body, with
// %s for the dataset's id) that the server refuses by name: 400 naming
// why for a dataset of the team, 404 for the document's own dataset id,
// and the dataset's collections unchanged either way.
func ddCreateRefused(t *testing.T, route, body, why, docDataset string) {
	dvEach(t, func(t *testing.T, base string) {
		key := blRoot
		ds := dvDataset(t, base, key, "kb")
		list := base + "/api/core/dataset/collection/list?datasetId=" + ds
		before := dvSnap(t, list, key)
		dvRefused(t, "POST", base+route, key, fmt.Sprintf(body, ds), 400, why)
		dvRefused(t, "POST", base+route, key, fmt.Sprintf(body, docDataset), 404, "dataset not found")
		if after := dvSnap(t, list, key); after != before {
			t.Fatalf("a refused %s changed the dataset:\nbefore %s\nafter  %s", route, before, after)
		}
	})
}
