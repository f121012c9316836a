package dataset

import (
	"cmp"
	"context"
	"math"
	"slices"
	"strings"
	"sync"
	"unicode"
)

// TextIndex is the full-text index over a Service's data. Like a
// VectorStore it is derived: the Service catches it up from its Store.
// dataset/fulltext has one on bleve, on disk or in memory; without one a
// Service keeps a small one of its own in memory, which analyses text as
// bleve's CJK analyzer does and ranks by BM25.
type TextIndex interface {
	// Index adds or replaces documents.
	Index(ctx context.Context, docs []TextDoc) error
	// Delete removes documents by data id; missing ids are ignored.
	Delete(ctx context.Context, ids []string) error
	// Search returns up to n data ids of the datasets matching text, best
	// first, with the engine's relevance scores.
	Search(ctx context.Context, datasetIDs []string, text string, n int) ([]Hit, error)
	// Empty reports whether the index holds no documents at all, so a
	// Service can tell a lost index from an empty knowledge base.
	Empty() (bool, error)
}

// TextDoc is what the full-text index holds of a Data item.
type TextDoc struct {
	ID        string
	DatasetID string
	Text      string // q, a and the index texts
}

// memText is the TextIndex a Service keeps when Options.Text is nil. Its
// terms are those of dataset/fulltext's bleve analyzer: lower-cased words
// (full-width Latin letters and digits folded to ASCII), and Chinese,
// Japanese and Korean as overlapping pairs of characters (a character
// alone as itself), so both match without a dictionary. A search scores
// documents holding any of the query's terms by BM25 (k1 1.2, b 0.75), the
// ranking bleve's TF-IDF approximates. It lives in memory only: a Service
// rebuilds it from its Store at each start.
type memText struct {
	mu       sync.RWMutex
	docs     map[string]memDoc
	postings map[string]map[string]int // term -> data id -> occurrences
	terms    int                       // of all documents, for the average length
}

type memDoc struct {
	dataset string
	tf      map[string]int
	length  int
}

func newMemText() *memText {
	return &memText{docs: map[string]memDoc{}, postings: map[string]map[string]int{}}
}

// reset empties m, for a Service that loads its index again.
func (m *memText) reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.docs, m.postings, m.terms = map[string]memDoc{}, map[string]map[string]int{}, 0
}

// BM25's constants, the usual ones.
const (
	bm25K1 = 1.2
	bm25B  = 0.75
)

// textTerms calls fn with each term of text, in order.
func textTerms(text string, fn func(term string)) {
	var (
		word []rune
		prev rune // the last CJK character of the current run
		run  int  // its length
	)
	endWord := func() {
		if len(word) > 0 {
			fn(string(word))
			word = word[:0]
		}
	}
	endRun := func() {
		if run == 1 {
			fn(string(prev))
		}
		run = 0
	}
	for _, r := range strings.ToLower(text) {
		if r >= 0xFF01 && r <= 0xFF5E { // full-width ASCII
			r = unicode.ToLower(r - 0xFEE0)
		}
		switch {
		case isCJK(r):
			endWord()
			if run > 0 {
				fn(string([]rune{prev, r}))
			}
			prev, run = r, run+1
			continue
		case unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r):
			word = append(word, r)
		default:
			endWord()
		}
		endRun()
	}
	endWord()
	endRun()
}

// Index implements TextIndex.
func (m *memText) Index(ctx context.Context, docs []TextDoc) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, d := range docs {
		m.remove(d.ID)
		doc := memDoc{dataset: d.DatasetID, tf: map[string]int{}}
		textTerms(d.Text, func(t string) { doc.tf[t]++; doc.length++ })
		for t, n := range doc.tf {
			if m.postings[t] == nil {
				m.postings[t] = map[string]int{}
			}
			m.postings[t][d.ID] = n
		}
		m.docs[d.ID] = doc
		m.terms += doc.length
	}
	return nil
}

// remove drops a document; m.mu is held.
func (m *memText) remove(id string) {
	doc, ok := m.docs[id]
	if !ok {
		return
	}
	for t := range doc.tf {
		if delete(m.postings[t], id); len(m.postings[t]) == 0 {
			delete(m.postings, t)
		}
	}
	m.terms -= doc.length
	delete(m.docs, id)
}

// Delete implements TextIndex.
func (m *memText) Delete(ctx context.Context, ids []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range ids {
		m.remove(id)
	}
	return nil
}

// Search implements TextIndex.
func (m *memText) Search(ctx context.Context, datasetIDs []string, text string, n int) ([]Hit, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if n <= 0 || len(m.docs) == 0 {
		return nil, nil
	}
	seen := map[string]bool{}
	var query []string
	textTerms(text, func(t string) {
		if !seen[t] {
			seen[t] = true
			query = append(query, t)
		}
	})
	docs := float64(len(m.docs))
	avg := float64(m.terms) / docs
	scores := map[string]float64{}
	for _, t := range query {
		post := m.postings[t]
		idf := math.Log(1 + (docs-float64(len(post))+0.5)/(float64(len(post))+0.5))
		for id, tf := range post {
			d := m.docs[id]
			if !slices.Contains(datasetIDs, d.dataset) {
				continue
			}
			f := float64(tf)
			scores[id] += idf * f * (bm25K1 + 1) / (f + bm25K1*(1-bm25B+bm25B*float64(d.length)/avg))
		}
	}
	hits := make([]Hit, 0, len(scores))
	for id, sc := range scores {
		hits = append(hits, Hit{ID: id, Score: sc})
	}
	slices.SortFunc(hits, func(a, b Hit) int { return cmp.Or(cmp.Compare(b.Score, a.Score), cmp.Compare(a.ID, b.ID)) })
	return hits[:min(n, len(hits))], nil
}

// Empty implements TextIndex.
func (m *memText) Empty() (bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.docs) == 0, nil
}
