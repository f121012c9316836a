package dataset

import (
	"context"
	"fmt"
	"slices"
	"testing"
)

// The built-in index's terms are bleve's CJK analyzer's: lower-cased
// words, full-width Latin folded, CJK runs as overlapping pairs and a
// character alone as itself.
func TestTextTerms(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"Who wrote Moby-Dick?", []string{"who", "wrote", "moby", "dick"}},
		{"退货期限", []string{"退货", "货期", "期限"}},
		{"铃芽之旅 2022年上映", []string{"铃芽", "芽之", "之旅", "2022", "年上", "上映"}},
		{"谁 ＧＰＴ-４", []string{"谁", "gpt", "4"}},
		{"カタカナ と 한국어", []string{"カタ", "タカ", "カナ", "と", "한국", "국어"}},
		{"café naïve", []string{"café", "naïve"}},
		{"  ,.!  ", nil},
	} {
		var got []string
		textTerms(tc.in, func(term string) { got = append(got, term) })
		if !slices.Equal(got, tc.want) {
			t.Errorf("textTerms(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
}

func TestMemText(t *testing.T) {
	ctx := context.Background()
	m := newMemText()
	if empty, _ := m.Empty(); !empty {
		t.Fatal("a new index is not empty")
	}
	_ = m.Index(ctx, []TextDoc{
		{ID: "a", DatasetID: "ds1", Text: "退货期限是多久？\n三十天"},
		{ID: "b", DatasetID: "ds1", Text: "Who pays for shipping?\nThe buyer pays for shipping."},
		{ID: "c", DatasetID: "ds1", Text: "How long is shipping?\nAbout a week."},
		{ID: "d", DatasetID: "ds2", Text: "Who pays for shipping in the other dataset?"},
	})
	ids := func(hits []Hit) []string {
		var out []string
		for _, h := range hits {
			out = append(out, h.ID)
		}
		return out
	}
	hits, _ := m.Search(ctx, []string{"ds1"}, "who pays shipping", 10)
	if got := ids(hits); !slices.Equal(got, []string{"b", "c"}) || hits[0].Score <= hits[1].Score {
		t.Fatalf("search = %+v; want b above c, nothing of ds2", hits)
	}
	if hits, _ := m.Search(ctx, []string{"ds1", "ds2"}, "who pays shipping", 1); len(hits) != 1 {
		t.Fatalf("n=1: %v", hits)
	}
	if hits, _ := m.Search(ctx, []string{"ds1"}, "退货", 10); !slices.Equal(ids(hits), []string{"a"}) {
		t.Fatalf("Chinese search = %v", hits)
	}
	// replaced and deleted documents leave their old terms behind
	_ = m.Index(ctx, []TextDoc{{ID: "a", DatasetID: "ds1", Text: "换货流程"}})
	_ = m.Delete(ctx, []string{"b", "missing"})
	if hits, _ := m.Search(ctx, []string{"ds1"}, "退货 pays shipping", 10); !slices.Equal(ids(hits), []string{"c"}) {
		t.Fatalf("after replace and delete: %v", hits)
	}
	_ = m.Delete(ctx, []string{"a", "c", "d"})
	if empty, _ := m.Empty(); !empty || len(m.postings) != 0 || m.terms != 0 {
		t.Fatalf("emptied index: %d postings, %d terms", len(m.postings), m.terms)
	}
}

// Removed documents leave holes that searches skip, closed once they are
// half of the index, scores unchanged.
func TestMemTextCompacts(t *testing.T) {
	ctx := context.Background()
	m := newMemText()
	var docs []TextDoc
	for i := range 200 {
		docs = append(docs, TextDoc{ID: fmt.Sprintf("d%03d", i), DatasetID: "ds", Text: fmt.Sprintf("common word%d", i)})
	}
	_ = m.Index(ctx, docs)
	before, _ := m.Search(ctx, []string{"ds"}, "word170 common", 3)
	var gone []string
	for i := range 150 {
		if i != 170 {
			gone = append(gone, fmt.Sprintf("d%03d", i))
		}
	}
	_ = m.Delete(ctx, gone)
	if len(m.docs) != 50 || m.holes != 0 {
		t.Fatalf("after removing 150 of 200: %d documents kept, %d holes; want 50, 0", len(m.docs), m.holes)
	}
	if hits, _ := m.Search(ctx, []string{"ds"}, "common", 100); len(hits) != 50 {
		t.Fatalf("%d hits for a term of every document left; want 50", len(hits))
	}
	after, _ := m.Search(ctx, []string{"ds"}, "word170 common", 1)
	if len(after) != 1 || after[0].ID != "d170" || before[0].ID != "d170" {
		t.Fatalf("before %v, after %v; want d170 first", before, after)
	}
	_ = m.Index(ctx, []TextDoc{{ID: "d170", DatasetID: "ds", Text: "renamed"}})
	if hits, _ := m.Search(ctx, []string{"ds"}, "word170", 10); len(hits) != 0 {
		t.Fatalf("a replaced document is found by its old text: %v", hits)
	}
}
