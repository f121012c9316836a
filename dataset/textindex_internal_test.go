package dataset

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// The built-in index's terms are bleve's CJK analyzer's and the CJK
// characters alone: lower-cased words, full-width Latin folded, CJK runs
// as overlapping pairs and each character as itself.
func TestTextTerms(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"Who wrote Moby-Dick?", []string{"who", "wrote", "moby", "dick"}},
		{"退货期限", []string{"退", "退货", "货", "货期", "期", "期限", "限"}},
		{"铃芽之旅 2022年上映", []string{"铃", "铃芽", "芽", "芽之", "之", "之旅", "旅", "2022", "年", "年上", "上", "上映", "映"}},
		{"谁 ＧＰＴ-４", []string{"谁", "gpt", "4"}},
		{"カタカナ と 한국어", []string{"カ", "カタ", "タ", "タカ", "カ", "カナ", "ナ", "と", "한", "한국", "국", "국어", "어"}},
		{"水和米", []string{"水", "水和", "和", "和米", "米"}},
		{"GPT模型", []string{"gpt", "模", "模型", "型"}},
		{"模,型", []string{"模", "型"}},
		{"模\xff型", []string{"模", "型"}},
		{"𠀀模", []string{"𠀀", "𠀀模", "模"}},
		{"café naïve", []string{"café", "naïve"}},
		{"  ,.!  ", nil},
	} {
		var got []string
		textTerms(tc.in, func(term []byte) { got = append(got, string(term)) })
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
	// a character of a word finds it, below a document that has the word
	_ = m.Index(ctx, []TextDoc{{ID: "e", DatasetID: "ds1", Text: "货到付款"}})
	if hits, _ := m.Search(ctx, []string{"ds1"}, "退货", 10); !slices.Equal(ids(hits), []string{"a", "e"}) {
		t.Fatalf("Chinese search with a shared character = %v; want a, then e", hits)
	}
	_ = m.Delete(ctx, []string{"e"})
	// replaced and deleted documents leave their old terms behind
	_ = m.Index(ctx, []TextDoc{{ID: "a", DatasetID: "ds1", Text: "换新流程"}})
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

// exhaustiveText is the plain BM25 scorer the built-in index must agree
// with: every document held, every query term, scores in a map, a full
// sort (score desc, id asc).
type exhaustiveText map[string]refDoc

type refDoc struct {
	dataset string
	tf      map[string]int
	length  int
}

func (e exhaustiveText) put(d TextDoc) {
	rd := refDoc{dataset: d.DatasetID, tf: map[string]int{}}
	textTerms(d.Text, func(t []byte) { rd.tf[string(t)]++; rd.length++ })
	e[d.ID] = rd
}

func (e exhaustiveText) search(datasetIDs []string, text string, n int) []Hit {
	if len(e) == 0 || n <= 0 {
		return nil
	}
	total := 0
	df := map[string]int{}
	for _, d := range e {
		total += d.length
		for t := range d.tf {
			df[t]++
		}
	}
	var query []string
	textTerms(text, func(t []byte) {
		if !slices.Contains(query, string(t)) {
			query = append(query, string(t))
		}
	})
	docs := float64(len(e))
	avg := float64(total) / docs
	scores := map[string]float64{}
	for _, t := range query {
		if df[t] == 0 {
			continue
		}
		dft := float64(df[t])
		idf := math.Log(1 + (docs-dft+0.5)/(dft+0.5))
		for id, d := range e {
			if d.tf[t] == 0 || !slices.Contains(datasetIDs, d.dataset) {
				continue
			}
			f := float64(d.tf[t])
			scores[id] += idf * f * (bm25K1 + 1) / (f + bm25K1*(1-bm25B+bm25B*float64(d.length)/avg))
		}
	}
	var hits []Hit
	for id, sc := range scores {
		hits = append(hits, Hit{ID: id, Score: sc})
	}
	slices.SortFunc(hits, func(a, b Hit) int { return cmp.Or(cmp.Compare(b.Score, a.Score), cmp.Compare(a.ID, b.ID)) })
	return hits[:min(n, len(hits))]
}

// The built-in index returns exactly the exhaustive scorer's hits, scores
// to the bit and ties in id order, on random corpora that are indexed,
// replaced, deleted and compacted, over several datasets.
func TestMemTextMatchesExhaustive(t *testing.T) {
	ctx := context.Background()
	words := strings.Fields("the a of shipping pays who how long refund 退货 期限 三十天 账户 密码 ＧＰＴ café x1 x2 x3 x4 x5 x6 x7 x8 x9")
	for seed := range uint64(8) {
		r := rand.New(rand.NewPCG(seed, 15))
		text := func(k int) string {
			var sb strings.Builder
			for range k {
				// a skewed draw: the first words are in most documents
				sb.WriteString(words[min(r.IntN(len(words)), r.IntN(len(words)))])
				sb.WriteByte(" \n,"[r.IntN(3)])
			}
			return sb.String()
		}
		sets := []string{"ds1", "ds2", "ds3"}
		m, ref := newMemText(), exhaustiveText{}
		check := func(round int) {
			t.Helper()
			for q := range 20 {
				want := sets[:1+r.IntN(len(sets))]
				query := text(1 + r.IntN(6))
				if q%5 == 0 {
					query += " nowhere"
				}
				n := 1 + r.IntN(40)
				got, _ := m.Search(ctx, want, query, n)
				if exp := ref.search(want, query, n); !slices.Equal(got, exp) {
					t.Fatalf("seed %d round %d: Search(%v, %q, %d)\n got %v\nwant %v", seed, round, want, query, n, got, exp)
				}
			}
		}
		compacted := false
		for round := range 30 {
			var docs []TextDoc
			for range r.IntN(80) {
				// ids repeat, so some documents are replaced
				d := TextDoc{ID: fmt.Sprintf("d%03d", r.IntN(300)), DatasetID: sets[r.IntN(len(sets))], Text: text(r.IntN(30))}
				docs = append(docs, d)
				ref.put(d)
			}
			if err := m.Index(ctx, docs); err != nil {
				t.Fatal(err)
			}
			check(round)
			var gone []string
			for range r.IntN(60) {
				id := fmt.Sprintf("d%03d", r.IntN(300))
				gone = append(gone, id)
				delete(ref, id)
			}
			held := len(m.docs)
			if err := m.Delete(ctx, gone); err != nil {
				t.Fatal(err)
			}
			compacted = compacted || len(m.docs) < held
			check(round)
		}
		if !compacted {
			t.Fatalf("seed %d: the index was never compacted", seed)
		}
	}
}
