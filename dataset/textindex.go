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
//
// Its postings are appended to, never searched: a document is numbered by
// its place in docs, and a removed one leaves a hole there that searches
// skip and that compact closes once holes are half of docs. So indexing
// 100,000 documents at start costs appends rather than map insertions.
type memText struct {
	mu       sync.RWMutex
	slots    map[string]int32 // data id -> its place in docs
	docs     []memDoc
	postings map[string]*posting
	terms    int // of all documents held, for the average length
	holes    int // removed documents still in docs
}

type memDoc struct {
	id, dataset string
	posts       []*posting // the document's distinct terms
	length      int
	gone        bool
}

// posting lists the documents holding a term, with its occurrences in
// each; live counts those not removed.
type posting struct {
	term  string
	slots []int32
	tfs   []int32
	live  int
}

func newMemText() *memText {
	return &memText{slots: map[string]int32{}, postings: map[string]*posting{}}
}

// reset empties m, for a Service that loads its index again.
func (m *memText) reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.slots, m.docs, m.postings, m.terms, m.holes = map[string]int32{}, nil, map[string]*posting{}, 0, 0
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
	tf := map[string]int32{}
	for _, d := range docs {
		m.remove(d.ID)
		clear(tf)
		doc := memDoc{id: d.ID, dataset: d.DatasetID}
		textTerms(d.Text, func(t string) { tf[t]++; doc.length++ })
		slot := int32(len(m.docs))
		doc.posts = make([]*posting, 0, len(tf))
		for t, n := range tf {
			p := m.postings[t]
			if p == nil {
				p = &posting{term: t}
				m.postings[t] = p
			}
			p.slots, p.tfs, p.live = append(p.slots, slot), append(p.tfs, n), p.live+1
			doc.posts = append(doc.posts, p)
		}
		m.docs = append(m.docs, doc)
		m.slots[d.ID] = slot
		m.terms += doc.length
	}
	m.compact()
	return nil
}

// remove drops a document, leaving a hole; m.mu is held.
func (m *memText) remove(id string) {
	slot, ok := m.slots[id]
	if !ok {
		return
	}
	d := &m.docs[slot]
	for _, p := range d.posts {
		if p.live--; p.live == 0 {
			delete(m.postings, p.term)
		}
	}
	m.terms -= d.length
	d.gone, d.posts = true, nil
	delete(m.slots, id)
	m.holes++
}

// compact closes the holes once they are half of docs; m.mu is held.
func (m *memText) compact() {
	if m.holes < 64 || 2*m.holes < len(m.docs) {
		return
	}
	place := make([]int32, len(m.docs))
	kept := m.docs[:0]
	for i, d := range m.docs {
		if !d.gone {
			place[i] = int32(len(kept))
			m.slots[d.id] = place[i]
			kept = append(kept, d)
		}
	}
	for _, p := range m.postings {
		j := 0
		for i, s := range p.slots {
			if !m.docs[s].gone {
				p.slots[j], p.tfs[j] = place[s], p.tfs[i]
				j++
			}
		}
		p.slots, p.tfs = p.slots[:j], p.tfs[:j]
	}
	clear(m.docs[len(kept):])
	m.docs, m.holes = kept, 0
}

// Delete implements TextIndex.
func (m *memText) Delete(ctx context.Context, ids []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range ids {
		m.remove(id)
	}
	m.compact()
	return nil
}

// Search implements TextIndex.
func (m *memText) Search(ctx context.Context, datasetIDs []string, text string, n int) ([]Hit, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if n <= 0 || len(m.slots) == 0 {
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
	docs := float64(len(m.slots))
	avg := float64(m.terms) / docs
	scores := map[string]float64{}
	for _, t := range query {
		p := m.postings[t]
		if p == nil {
			continue
		}
		df := float64(p.live)
		idf := math.Log(1 + (docs-df+0.5)/(df+0.5))
		for i, slot := range p.slots {
			d := &m.docs[slot]
			if d.gone || !slices.Contains(datasetIDs, d.dataset) {
				continue
			}
			f := float64(p.tfs[i])
			scores[d.id] += idf * f * (bm25K1 + 1) / (f + bm25K1*(1-bm25B+bm25B*float64(d.length)/avg))
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
	return len(m.slots) == 0, nil
}
