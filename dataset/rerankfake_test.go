package dataset_test

import (
	"math"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/chatgate/chatgate/dataset/rerank"
	"github.com/chatgate/chatgate/dataset/rerank/reranktest"
)

// termReranker is a loopback rerank endpoint whose model is BM25 over
// the documents of each request (k1 1.2, b 0.75): a deterministic
// stand-in for a cross-encoder, which also reads the query with each
// document, so that the real client and the Service's rerank path are what
// is measured. Terms are lower-cased words of letters and digits, and for
// Han, kana and Hangul text each character and each pair of neighbours.
type termReranker struct{ *reranktest.Endpoint }

func newTermReranker(t *testing.T) *termReranker {
	t.Helper()
	return &termReranker{reranktest.New(t, bm25, reranktest.Options{Model: "bm25-loopback"})}
}

// client is a dataset/rerank client of the endpoint.
func (r *termReranker) client(t *testing.T) *rerank.Client {
	t.Helper()
	c, err := rerank.New(rerank.Config{BaseURL: r.BaseURL, Model: "bm25-loopback"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// bm25 scores docs against query, squashed into 0-1 as rerank models'
// relevance is.
func bm25(query string, docs []string) []float64 {
	const k1, b = 1.2, 0.75
	tf := make([]map[string]int, len(docs))
	df := map[string]int{}
	total := 0
	lens := make([]int, len(docs))
	for i, d := range docs {
		tf[i] = map[string]int{}
		for _, term := range terms(d) {
			tf[i][term]++
			lens[i]++
		}
		for term := range tf[i] {
			df[term]++
		}
		total += lens[i]
	}
	avg := max(float64(total)/float64(max(len(docs), 1)), 1)
	// the query's distinct terms, in order: a sum in map order would
	// differ in its last bits from one call to the next
	q := slices.Compact(slices.Sorted(slices.Values(terms(query))))
	scores := make([]float64, len(docs))
	n := float64(len(docs))
	for i := range docs {
		s := 0.0
		for _, term := range q {
			f := float64(tf[i][term])
			if f == 0 {
				continue
			}
			idf := math.Log(1 + (n-float64(df[term])+0.5)/(float64(df[term])+0.5))
			s += idf * f * (k1 + 1) / (f + k1*(1-b+b*float64(lens[i])/avg))
		}
		scores[i] = s / (s + 1)
	}
	return scores
}

// terms splits text into BM25's terms.
func terms(text string) []string {
	var out []string
	var word strings.Builder
	var prev rune
	flush := func() {
		if word.Len() > 0 {
			out = append(out, word.String())
			word.Reset()
		}
	}
	for _, c := range strings.ToLower(text) {
		switch {
		case unicode.In(c, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul):
			flush()
			out = append(out, string(c))
			if prev != 0 {
				out = append(out, string([]rune{prev, c}))
			}
			prev = c
			continue
		case unicode.IsLetter(c) || unicode.IsDigit(c):
			word.WriteRune(c)
		default:
			flush()
		}
		prev = 0
	}
	flush()
	return out
}
