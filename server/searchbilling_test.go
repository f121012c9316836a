package server_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/chatgate/chatgate/billing"
)

// sbKnowledge makes a dataset with a few trained items and an app that
// retrieves from it, and returns the dataset id.
func sbKnowledge(t *testing.T, base, key string) string {
	t.Helper()
	var ds, coll string
	blCall(t, "POST", base+"/api/core/dataset/create", key, `{"name":"kb"}`, &ds)
	blCall(t, "POST", base+"/api/core/dataset/collection/create", key, fmt.Sprintf(`{"datasetId":%q,"name":"faq"}`, ds), &coll)
	body, _ := json.Marshal(map[string]any{"collectionId": coll, "data": []map[string]string{
		{"q": "How many points does this question cost?", "a": "A few, by the price table."},
		{"q": "Who directed Hero?", "a": "Zhang Yimou."}}})
	blCall(t, "POST", base+"/api/core/dataset/data/pushData", key, string(body), nil)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var d struct{ TrainingAmount, DataAmount int }
		blCall(t, "GET", base+"/api/core/dataset/collection/detail?id="+coll, key, "", &d)
		if d.TrainingAmount == 0 && d.DataAmount == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("training: %+v", d)
		}
	}
	return ds
}

// A chat with retrieval writes one usage record per module, KB Search and
// AI Chat, and charges its key once for each: the query embedding used to
// be recorded by the search and again by the chat.
func TestChatRetrievalBilledOnce(t *testing.T) {
	base := blStart(t, t.TempDir(), nil)
	_, global := blKey(t, base, map[string]any{"name": "kb"})
	ds := sbKnowledge(t, base, global)
	app, _ := json.Marshal(map[string]any{"id": "faq", "name": "FAQ", "datasetIds": []string{ds}})
	blCall(t, "POST", base+"/api/core/app/create", blRoot, string(app), nil)
	keyID, key := blKey(t, base, map[string]any{"name": "faq", "appId": "faq"})

	status, raw := blChat(t, base, key, true)
	var c blCompletion
	if status != 200 || json.Unmarshal(raw, &c) != nil {
		t.Fatalf("chat: %d %s", status, raw)
	}
	var modules []string
	points := 0.0
	for _, m := range c.ResponseData {
		modules = append(modules, m.ModuleName)
		points += m.Price / billing.PriceScale
	}
	if !slices.Equal(modules, []string{"KB Search", "AI Chat"}) {
		t.Fatalf("responseData modules %v", modules)
	}
	u := blUsage(t, base, "?keyId="+keyID)
	var recs []string
	sum := 0.0
	for _, r := range u.List {
		recs = append(recs, r.Source+"/"+r.Module)
		sum += r.Points
	}
	slices.Sort(recs)
	if !slices.Equal(recs, []string{"chat/AI Chat", "chat/KB Search"}) {
		t.Fatalf("usage records of the chat: %v; want exactly KB Search and AI Chat", recs)
	}
	if used := blKeyUsage(t, base, keyID); !blNear(used, sum) || !blNear(sum, points) {
		t.Fatalf("key charged %v, records sum %v, responseData prices %v: want all equal", used, sum, points)
	}
}

// searchTest records its query embedding once, on the bill it names; a
// bill of another team, or none at all, is not found, and nothing is
// recorded.
func TestSearchTestBill(t *testing.T) {
	base := blStart(t, t.TempDir(), nil)
	keyID, key := blKey(t, base, map[string]any{"name": "kb"})
	ds := sbKnowledge(t, base, key)
	var bill string
	blCall(t, "POST", base+"/api/common/bill/createTrainingBill", key, `{"name":"search"}`, &bill)
	_, other := blKey(t, base, map[string]any{"name": "b", "teamId": "team-b"})
	var foreign string
	blCall(t, "POST", base+"/api/common/bill/createTrainingBill", other, `{"name":"theirs"}`, &foreign)

	searches := func() int {
		n := 0
		for _, r := range blUsage(t, base, "?keyId="+keyID).List {
			if r.Source == billing.SourceSearch {
				n++
			}
		}
		return n
	}
	for _, id := range []string{foreign, "no-such-bill"} {
		env := blCallAny(t, "POST", base+"/api/core/dataset/searchTest", key, fmt.Sprintf(`{"datasetId":%q,"text":"Hero","billId":%q}`, ds, id))
		if env.Code != 404 || env.StatusText != "not_found" || env.Message != "bill not found" {
			t.Fatalf("searchTest with bill %q: %+v; want 404 bill not found", id, env)
		}
	}
	if n := searches(); n != 0 {
		t.Fatalf("%d search records after refused searches", n)
	}
	var theirs struct{ TotalTokens int }
	blCall(t, "GET", base+"/api/common/bill/detail?id="+foreign, other, "", &theirs)
	if theirs.TotalTokens != 0 {
		t.Fatalf("another team's bill got usage: %+v", theirs)
	}

	var hits []struct{ Q string }
	blCall(t, "POST", base+"/api/core/dataset/searchTest", key, fmt.Sprintf(`{"datasetId":%q,"text":"Who directed Hero?","billId":%q}`, ds, bill), &hits)
	if len(hits) == 0 || hits[0].Q != "Who directed Hero?" {
		t.Fatalf("hits %+v", hits)
	}
	if n := searches(); n != 1 {
		t.Fatalf("%d search records for one search", n)
	}
	var b struct {
		TotalTokens int `json:"totalTokens"`
		Items       []struct {
			Module string `json:"module"`
		} `json:"items"`
	}
	blCall(t, "GET", base+"/api/common/bill/detail?id="+bill, key, "", &b)
	if b.TotalTokens == 0 || len(b.Items) != 1 || b.Items[0].Module != "search" {
		t.Fatalf("bill %+v; want the search on it", b)
	}
}
