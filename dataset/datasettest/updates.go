package datasettest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/chatgate/chatgate/dataset"
)

// The conformance of the methods the update and list routes of FastGPT's
// current document use: UpdateDataset, UpdateCollection,
// DeleteCollections and DataListMatching.

var errRefused = errors.New("refused by fn")

func testUpdateDataset(t *testing.T, s dataset.Store) {
	if d, err := s.UpdateDataset(bg, "missing", func(*dataset.Dataset) error { return nil }); !errors.Is(err, dataset.ErrDatasetNotFound) {
		t.Fatalf("UpdateDataset(missing) = %+v, %v; want ErrDatasetNotFound", d, err)
	}
	d := &dataset.Dataset{ID: "ds", TeamID: team, Name: "first", VectorModel: "local", Intro: "about", Avatar: "/a.png", CreateTime: t0}
	if err := s.PutDataset(bg, d); err != nil {
		t.Fatal(err)
	}
	putDataset(t, s, "ds-other", t0.Add(time.Second))
	got, err := s.Dataset(bg, d.ID)
	if err != nil || got.Intro != "about" || got.Avatar != "/a.png" || !got.UpdateTime.IsZero() {
		t.Fatalf("Dataset = %+v, %v; want intro, avatar and a zero update time as put", got, err)
	}
	// fn's error is returned as it is and nothing changes
	_, err = s.UpdateDataset(bg, d.ID, func(d *dataset.Dataset) error {
		d.Name = "half"
		return errRefused
	})
	if err != errRefused {
		t.Fatalf("UpdateDataset with a refusing fn = %v; want fn's error as it is", err)
	}
	if got, _ := s.Dataset(bg, d.ID); got.Name != "first" {
		t.Fatalf("a refused update was stored: %+v", got)
	}
	updatedAt := t0.Add(5*time.Second + 7) // nanoseconds kept
	up, err := s.UpdateDataset(bg, d.ID, func(d *dataset.Dataset) error {
		if d.Name != "first" || d.Intro != "about" {
			return fmt.Errorf("fn got %+v, not the stored dataset", d)
		}
		d.Name, d.Intro, d.Avatar, d.UpdateTime, d.AgentModel = "second", "new intro", "", updatedAt, "qa-b"
		d.ID, d.TeamID = "elsewhere", "team-b" // kept as stored whatever fn does
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, got := range []*dataset.Dataset{up, mustDataset(t, s, d.ID)} {
		if got.ID != d.ID || got.TeamID != team || got.Name != "second" || got.Intro != "new intro" || got.Avatar != "" ||
			got.VectorModel != "local" || got.AgentModel != "qa-b" || !got.CreateTime.Equal(t0) || !got.UpdateTime.Equal(updatedAt) {
			t.Fatalf("after UpdateDataset: %+v", got)
		}
	}
	if _, err := s.Dataset(bg, "elsewhere"); !errors.Is(err, dataset.ErrDatasetNotFound) {
		t.Fatalf("fn's change of the id stored a dataset: %v", err)
	}
	list, err := s.Datasets(bg, team)
	if err != nil || len(list) != 2 || list[0].ID != d.ID || list[0].Name != "second" {
		t.Fatalf("Datasets after update = %v, %v", list, err)
	}
	if list, _ := s.Datasets(bg, "team-b"); len(list) != 0 {
		t.Fatalf("the update moved the dataset to team-b: %v", list)
	}
	if other := mustDataset(t, s, "ds-other"); other.Name != "dataset ds-other" {
		t.Fatalf("another dataset changed: %+v", other)
	}
	// PutDataset keeps every field, as a copy of a whole store needs
	full := &dataset.Dataset{ID: "ds-full", TeamID: team, Name: "full", VectorModel: "local", AgentModel: "qa-a", Intro: "i", Avatar: "a",
		CreateTime: t0, UpdateTime: updatedAt}
	if err := s.PutDataset(bg, full); err != nil {
		t.Fatal(err)
	}
	if got := mustDataset(t, s, full.ID); got.Intro != "i" || got.Avatar != "a" || got.AgentModel != "qa-a" || !got.UpdateTime.Equal(updatedAt) {
		t.Fatalf("PutDataset then Dataset = %+v; want %+v", got, full)
	}
}

func mustDataset(t *testing.T, s dataset.Store, id string) *dataset.Dataset {
	t.Helper()
	d, err := s.Dataset(bg, id)
	if err != nil {
		t.Fatalf("Dataset(%s): %v", id, err)
	}
	return d
}

func testUpdateCollection(t *testing.T, s dataset.Store) {
	if c, err := s.UpdateCollection(bg, "missing", func(*dataset.Collection) error { return nil }); !errors.Is(err, dataset.ErrCollectionNotFound) {
		t.Fatalf("UpdateCollection(missing) = %+v, %v; want ErrCollectionNotFound", c, err)
	}
	putDataset(t, s, "ds", t0)
	putDataset(t, s, "ds2", t0)
	a := putCollection(t, s, "a", "ds", t0.Add(time.Second))
	b := putCollection(t, s, "b", "ds", t0.Add(2*time.Second))
	data, queued, _ := fill(t, s, a, "a")
	if got, _ := s.Collection(bg, a.ID); got.Tags != nil || !got.UpdateTime.IsZero() {
		t.Fatalf("a new collection = %+v; want no tags, a zero update time", got)
	}
	_, err := s.UpdateCollection(bg, a.ID, func(c *dataset.Collection) error {
		c.Name = "half"
		return errRefused
	})
	if err != errRefused {
		t.Fatalf("UpdateCollection with a refusing fn = %v; want fn's error as it is", err)
	}
	if got, _ := s.Collection(bg, a.ID); got.Name != a.Name {
		t.Fatalf("a refused update was stored: %+v", got)
	}
	updatedAt := t0.Add(time.Hour + 3)
	moved := t0.Add(3 * time.Second) // after b: the list's order follows
	up, err := s.UpdateCollection(bg, a.ID, func(c *dataset.Collection) error {
		if c.Name != a.Name {
			return fmt.Errorf("fn got %+v, not the stored collection", c)
		}
		c.Name, c.Tags, c.CreateTime, c.UpdateTime = "renamed", []string{"tag1", "标签"}, moved, updatedAt
		c.ID, c.TeamID, c.DatasetID = "elsewhere", "team-b", "ds2" // kept as stored
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, got := range []*dataset.Collection{up, mustCollection(t, s, a.ID)} {
		if got.ID != a.ID || got.TeamID != team || got.DatasetID != "ds" || got.Name != "renamed" ||
			!slices.Equal(got.Tags, []string{"tag1", "标签"}) || got.Type != a.Type || got.TrainingType != a.TrainingType ||
			got.ChunkSize != a.ChunkSize || !got.CreateTime.Equal(moved) || !got.UpdateTime.Equal(updatedAt) {
			t.Fatalf("after UpdateCollection: %+v", got)
		}
	}
	if list, _ := s.Collections(bg, "ds"); len(list) != 2 || list[0].ID != b.ID || list[1].ID != a.ID {
		t.Fatalf("Collections after a's createTime moved past b's = %v; want [b a]", ids(list, func(c *dataset.Collection) string { return c.ID }))
	}
	if list, _ := s.Collections(bg, "ds2"); len(list) != 0 {
		t.Fatalf("the update moved the collection to ds2: %v", list)
	}
	// what it holds is untouched
	for _, id := range data {
		mustData(t, s, id)
	}
	wantCounts(t, s, a.ID, 1, 1)
	if got := allDue(t, s); !slices.Contains(got, queued) {
		t.Fatalf("queued item %s left the queue: %v", queued, got)
	}
	// tags are cleared with an empty list, and read back as none
	up, err = s.UpdateCollection(bg, a.ID, func(c *dataset.Collection) error { c.Tags = nil; return nil })
	if err != nil || len(up.Tags) != 0 || len(mustCollection(t, s, a.ID).Tags) != 0 {
		t.Fatalf("tags after clearing: %+v, %v", up, err)
	}
	// the store keeps its own copy of the tags
	up, _ = s.UpdateCollection(bg, a.ID, func(c *dataset.Collection) error { c.Tags = []string{"x"}; return nil })
	up.Tags[0] = "changed"
	if got := mustCollection(t, s, a.ID); !slices.Equal(got.Tags, []string{"x"}) {
		t.Fatalf("changing a returned collection's tags changed the store: %v", got.Tags)
	}
	// PutCollection keeps every field, as a copy of a whole store needs
	full := &dataset.Collection{ID: "full", TeamID: team, DatasetID: "ds", Name: "full", Type: dataset.CollectionLink,
		TrainingType: dataset.ModeQA, ChunkSize: 900, Tags: []string{"t1", "t2"}, RawLink: "https://example.com/page",
		CreateTime: t0, UpdateTime: updatedAt}
	if err := s.PutCollection(bg, full); err != nil {
		t.Fatal(err)
	}
	if got := mustCollection(t, s, full.ID); !slices.Equal(got.Tags, full.Tags) || !got.UpdateTime.Equal(updatedAt) ||
		got.TrainingType != dataset.ModeQA || got.ChunkSize != 900 || got.RawLink != full.RawLink || got.Type != dataset.CollectionLink {
		t.Fatalf("PutCollection then Collection = %+v; want %+v", got, full)
	}
	// an update keeps the link it does not change
	if _, err := s.UpdateCollection(bg, full.ID, func(c *dataset.Collection) error { c.Name = "renamed"; return nil }); err != nil {
		t.Fatal(err)
	}
	if got := mustCollection(t, s, full.ID); got.RawLink != full.RawLink || got.Name != "renamed" {
		t.Fatalf("after renaming a link collection: %+v", got)
	}
}

func mustCollection(t *testing.T, s dataset.Store, id string) *dataset.Collection {
	t.Helper()
	c, err := s.Collection(bg, id)
	if err != nil {
		t.Fatalf("Collection(%s): %v", id, err)
	}
	return c
}

func testDeleteCollections(t *testing.T, s dataset.Store) {
	putDataset(t, s, "ds1", t0)
	putDataset(t, s, "ds2", t0)
	c1 := putCollection(t, s, "c1", "ds1", t0)
	keep := putCollection(t, s, "keep", "ds1", t0)
	c3 := putCollection(t, s, "c3", "ds2", t0)
	c1Data, c1Queued, c1Failed := fill(t, s, c1, "c1")
	keepData, keepQueued, keepFailed := fill(t, s, keep, "k")
	c3Data, c3Queued, _ := fill(t, s, c3, "c3")
	clearPending(t, s)
	vecsBefore, dueBefore := vectorIDs(t, s), allDue(t, s)

	// all or nothing: one missing id removes none
	if removed, err := s.DeleteCollections(bg, []string{c1.ID, "missing", c3.ID}); !errors.Is(err, dataset.ErrCollectionNotFound) {
		t.Fatalf("DeleteCollections with a missing id = %v, %v; want ErrCollectionNotFound", removed, err)
	}
	for _, id := range append(append(slices.Clone(c1Data), c3Data...), keepData...) {
		mustData(t, s, id)
	}
	if got := vectorIDs(t, s); !equalStrings(got, vecsBefore) {
		t.Fatalf("vectors after a refused DeleteCollections = %v; want %v", got, vecsBefore)
	}
	if got := allDue(t, s); !equalStrings(got, dueBefore) {
		t.Fatalf("queue after a refused DeleteCollections = %v; want %v", got, dueBefore)
	}
	if p := pending(t, s); len(p) != 0 {
		t.Fatalf("a refused DeleteCollections marked full-text entries: %v", p)
	}
	wantCounts(t, s, c1.ID, 1, 1)

	removed, err := s.DeleteCollections(bg, []string{c3.ID, c1.ID, c3.ID}) // twice: removed once
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 2 {
		t.Fatalf("DeleteCollections removed vectors of %d datasets: %v; want ds1 and ds2", len(removed), removed)
	}
	if got, want := sorted(removed["ds1"]), []string{"c1-d1", "c1-d1/1", "c1-d2"}; !equalStrings(got, want) {
		t.Fatalf("removed of ds1 = %v; want %v", got, want)
	}
	if got, want := sorted(removed["ds2"]), []string{"c3-d1", "c3-d1/1", "c3-d2"}; !equalStrings(got, want) {
		t.Fatalf("removed of ds2 = %v; want %v", got, want)
	}
	for _, c := range []string{c1.ID, c3.ID} {
		if _, err := s.Collection(bg, c); !errors.Is(err, dataset.ErrCollectionNotFound) {
			t.Fatalf("collection %s survived DeleteCollections: %v", c, err)
		}
		wantCounts(t, s, c, 0, 0)
		if list, total := dataList(t, s, c, 0, 10); len(list) != 0 || total != 0 {
			t.Fatalf("DataList(%s) = %v, %d", c, dataIDs(list), total)
		}
	}
	if fs, _ := s.TrainingFailures(bg, c1.ID, 10); len(fs) != 0 {
		t.Fatalf("failed item %s survived: %v", c1Failed, itemIDs(fs))
	}
	p := pending(t, s)
	for _, id := range append(slices.Clone(c1Data), c3Data...) {
		wantNoData(t, s, id)
		if _, ok := p[id]; !ok {
			t.Fatalf("deleted data %s is not pending for the full-text index: %v", id, p)
		}
	}
	if got, want := vectorIDs(t, s), []string{"ds1:k-d1", "ds1:k-d1/1", "ds1:k-d2"}; !equalStrings(got, want) {
		t.Fatalf("vectors = %v; want %v", got, want)
	}
	if got, want := allDue(t, s), []string{keepQueued}; !equalStrings(got, want) {
		t.Fatalf("due = %v; want %v (%s, %s deleted)", got, want, c1Queued, c3Queued)
	}
	// the sibling is untouched
	for _, id := range keepData {
		mustData(t, s, id)
	}
	wantCounts(t, s, keep.ID, 1, 1)
	if fs, _ := s.TrainingFailures(bg, keep.ID, 10); len(fs) != 1 || fs[0].ID != keepFailed {
		t.Fatalf("TrainingFailures(keep) = %v", itemIDs(fs))
	}
	// the deleted collections' qs are forgotten
	c1 = putCollection(t, s, "c1", "ds1", t0)
	wantRepeat(t, s, c1, "again-1", "c1 first question", false)
	wantRepeat(t, s, c1, "again-2", "c1 waiting", false)
	// deleting them again finds them gone, the new c1 included in none
	if _, err := s.DeleteCollections(bg, []string{c1.ID, c3.ID}); !errors.Is(err, dataset.ErrCollectionNotFound) {
		t.Fatalf("DeleteCollections of a deleted collection = %v; want ErrCollectionNotFound", err)
	}
	mustCollection(t, s, c1.ID)
}

// addQA stores data with its q and a, trained at created.
func addQA(t *testing.T, s dataset.Store, c *dataset.Collection, id, q, a string, created time.Time) {
	t.Helper()
	it := newItem(c, id, q, t0)
	it.A, it.Source = a, "source "+q
	enqueue(t, s, it)
	commit(t, s, trained(it, created))
}

func testDataListMatching(t *testing.T, s dataset.Store) {
	putDataset(t, s, "ds", t0)
	c := putCollection(t, s, "c", "ds", t0)
	other := putCollection(t, s, "other", "ds", t0)
	at := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Minute) }
	addQA(t, s, c, "d0", "Alpha beta", "", at(0))
	addQA(t, s, c, "d1", "gamma", "about ALPHA", at(1))
	addQA(t, s, c, "d2", "知识库 是什么", "一个 Éclair", at(2))
	addQA(t, s, c, "d3", `tags <b> & "quotes"`, `back\slash`, at(3))
	addQA(t, s, c, "d4", "alphabet soup", "", at(4))
	addQA(t, s, other, "o0", "alpha elsewhere", "", at(0))
	for _, tc := range []struct {
		text          string
		offset, limit int
		want          []string
		total         int
	}{
		{"", 0, 10, []string{"d0", "d1", "d2", "d3", "d4"}, 5},
		{"alpha", 0, 10, []string{"d0", "d1", "d4"}, 3}, // in q or a, any case
		{"ALPHA", 0, 10, []string{"d0", "d1", "d4"}, 3},
		{"alpha", 1, 1, []string{"d1"}, 3},
		{"alpha", 2, 10, []string{"d4"}, 3},
		{"alpha", 3, 10, nil, 3},
		{"alpha", 0, 0, nil, 3},
		{"知识", 0, 10, []string{"d2"}, 1},
		{"Éclair", 0, 10, []string{"d2"}, 1},
		{"éclair", 0, 10, nil, 0}, // only ASCII letters fold
		{"<b> &", 0, 10, []string{"d3"}, 1},
		{`"quotes"`, 0, 10, []string{"d3"}, 1},
		{`back\slash`, 0, 10, []string{"d3"}, 1},
		{"source", 0, 10, nil, 0}, // not q or a
		{"answer", 0, 10, nil, 0},
		{"elsewhere", 0, 10, nil, 0}, // another collection's
		{"d0", 0, 10, nil, 0},        // an id is not text
		{"missing words", 0, 10, nil, 0},
	} {
		list, total, err := s.DataListMatching(bg, c.ID, tc.text, tc.offset, tc.limit)
		if err != nil {
			t.Fatalf("DataListMatching(%q): %v", tc.text, err)
		}
		if total != tc.total || !equalStrings(dataIDs(list), tc.want) {
			t.Fatalf("DataListMatching(%q, offset %d, limit %d) = %v, total %d; want %v, %d",
				tc.text, tc.offset, tc.limit, dataIDs(list), total, tc.want, tc.total)
		}
	}
	list, _, _ := s.DataListMatching(bg, c.ID, "gamma", 0, 1)
	if len(list) != 1 || list[0].A != "about ALPHA" || list[0].CollectionID != c.ID || !list[0].CreateTime.Equal(at(1)) {
		t.Fatalf("DataListMatching item = %+v", list)
	}
	list[0].Q = "changed"
	if d := mustData(t, s, "d1"); d.Q != "gamma" {
		t.Fatalf("changing a listed item changed the store: %+v", d)
	}
	if list, total, err := s.DataListMatching(bg, "missing", "alpha", 0, 10); err != nil || total != 0 || len(list) != 0 {
		t.Fatalf("DataListMatching(missing) = %v, %d, %v", dataIDs(list), total, err)
	}
}
