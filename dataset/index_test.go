package dataset_test

import (
	"testing"

	"github.com/chatgate/chatgate/dataset"
)

// An index object with a field FastGPT does not have, an image index, or
// no text is refused by name, and the push or update stores nothing; the
// doc's fields (type, dataId) are taken.
func TestIndexObjectsStrict(t *testing.T) {
	e := newHTTPEnv(t, dataset.Options{})
	ds := e.createDataset(t, e.writeA, "kb")
	coll := e.createCollection(t, e.writeA, ds, "c")
	before := e.snapshot(t, e.writeA)
	for _, idx := range []string{`{"txt":"x"}`, `{"type":"image","text":"x"}`, `{"type":"other","text":"x"}`, `{"type":"custom"}`, `5`} {
		e.fails(t, e.writeA, "POST", "/api/core/dataset/data/pushData",
			`{"collectionId":"`+coll+`","trainingType":"chunk","data":[{"q":"一","indexes":[`+idx+`]}]}`, 400, "invalid_request", "indexes")
	}
	if got := e.snapshot(t, e.writeA); got != before {
		t.Fatalf("a refused push stored something:\nbefore %s\nafter  %s", before, got)
	}
	var res pushResult
	e.ok(t, e.writeA, "POST", "/api/core/dataset/data/pushData",
		`{"collectionId":"`+coll+`","trainingType":"chunk","data":[{"q":"一","indexes":[{"type":"custom","dataId":"xxx","text":"甲"},"乙"]}]}`, &res)
	if *res.InsertLen != 1 {
		t.Fatalf("push = %+v", res)
	}
	e.waitIdle(t, e.writeA, coll)
	var list listOf[dataset.Data]
	e.ok(t, e.writeA, "GET", "/api/core/dataset/data/list?collectionId="+coll, nil, &list)
	if list.Total != 1 || len(list.List[0].Indexes) != 2 || list.List[0].Indexes[0] != "甲" {
		t.Fatalf("data = %+v", list)
	}
	id := list.List[0].ID
	e.fails(t, e.writeA, "PUT", "/api/core/dataset/data/update", `{"dataId":"`+id+`","q":"二","indexes":[{"text":"丙","extra":1}]}`,
		400, "invalid_request", "indexes")
	e.ok(t, e.writeA, "GET", "/api/core/dataset/data/list?collectionId="+coll, nil, &list)
	if list.List[0].Q != "一" || len(list.List[0].Indexes) != 2 {
		t.Fatalf("a refused update changed the data: %+v", list.List[0])
	}
}
