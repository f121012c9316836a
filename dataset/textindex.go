package dataset

import (
	"context"
	"slices"
	"sync"
	"unicode"
	"unicode/utf8"
)

// TextIndex is the full-text index over a Service's data. Like a
// VectorStore it is derived: the Service catches it up from its Store.
// dataset/fulltext has one on bleve, on disk or in memory; without one a
// Service keeps a small one of its own in memory, which analyses text as
// bleve's CJK analyzer does, each CJK character a term too, and ranks by
// BM25.
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
// terms are lower-cased words (full-width Latin letters and digits folded
// to ASCII), and Chinese, Japanese and Korean as overlapping pairs of
// characters and each character alone, so both match without a
// dictionary: the terms of dataset/fulltext's bleve analyzer, plus the
// single characters, which bleve's CJK bigram filter leaves out unless
// told to output unigrams. A paraphrase in Chinese often shares
// characters with its answer but no pair of them ("煮饭放多少水" against
// "蒸米饭时水和米的比例"), which the pairs alone then rank by little more
// than a "多少" both have; a word usually still ranks above its scattered
// characters, as it matches both. A search scores documents holding any
// of the query's terms by BM25 (k1 1.2, b 0.75), the ranking bleve's
// TF-IDF approximates (see textsearch.go). It lives in
// memory only: a Service fills it from its Store at each start, before New
// returns when the store is a TextSource or a ChangeFeed.
//
// Its postings are appended to, never searched: a document is numbered by
// its place in docs, and a removed one leaves a hole there that searches
// skip and that compact closes once holes are half of docs. So indexing
// 100,000 documents at start costs appends rather than map insertions.
type memText struct {
	mu    sync.RWMutex
	slots map[string]int32 // data id -> its place in docs
	docs  []memDoc
	// meta is what a search reads of each document, by slot, packed apart
	// from docs: a search over frequent terms visits most documents, and
	// reads then one small record of an array rather than a large one.
	meta     []docMeta
	sets     map[string]int32 // dataset id -> its number in meta, from 1
	postings map[string]*posting
	terms    int // of all documents held, for the average length
	holes    int // removed documents still in docs

	scratch sync.Pool // of *textScratch, a search's accumulators
}

type memDoc struct {
	id    string
	posts []*posting // the document's distinct terms
}

// docMeta is a document's dataset number (0 for a hole) and its length in
// terms.
type docMeta struct {
	set, length int32
}

// posting lists the documents holding a term, with its occurrences in
// each; live counts those not removed. last is the last slot, -1 for
// none: indexing a document looks at it for each of its terms, and finds
// it beside the counts rather than at the end of a long array.
type posting struct {
	term  string
	slots []int32
	tfs   []int32
	live  int
	last  int32
}

func newMemText() *memText {
	return &memText{slots: map[string]int32{}, sets: map[string]int32{}, postings: map[string]*posting{}}
}

// reset empties m, for a Service that loads its index again.
func (m *memText) reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.slots, m.docs, m.meta, m.sets = map[string]int32{}, nil, nil, map[string]int32{}
	m.postings, m.terms, m.holes = map[string]*posting{}, 0, 0
}

// textTerms calls fn with each term of text, in order. The bytes are fn's
// only during the call: indexing looks most terms up without making a
// string of them.
func textTerms(text string, fn func(term []byte)) {
	var (
		word []byte
		pair []byte
		prev rune // the last CJK character of the current run
		run  bool // the character before was CJK
	)
	endWord := func() {
		if len(word) > 0 {
			fn(word)
			word = word[:0]
		}
	}
	for _, r := range text {
		if r < utf8.RuneSelf { // most text, without the tables below
			switch {
			case 'A' <= r && r <= 'Z':
				word = append(word, byte(r+'a'-'A'))
			case 'a' <= r && r <= 'z' || '0' <= r && r <= '9':
				word = append(word, byte(r))
			default:
				endWord()
			}
			run = false
			continue
		}
		cjk := r >= 0x4E00 && r <= 0x9FFF // the common Han block: no case, and CJK
		if !cjk {
			r = unicode.ToLower(r)          // what strings.ToLower does, rune by rune
			if r >= 0xFF01 && r <= 0xFF5E { // full-width ASCII
				r = unicode.ToLower(r - 0xFEE0)
			}
			cjk = isCJK(r)
		}
		switch {
		case cjk:
			endWord()
			if run {
				pair = utf8.AppendRune(utf8.AppendRune(pair[:0], prev), r)
				fn(pair)
			}
			pair = utf8.AppendRune(pair[:0], r)
			fn(pair)
			prev, run = r, true
			continue
		case unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r):
			word = utf8.AppendRune(word, r)
		default:
			endWord()
		}
		run = false
	}
	endWord()
}

// Index implements TextIndex.
func (m *memText) Index(ctx context.Context, docs []TextDoc) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var posts []*posting
	for _, d := range docs {
		m.remove(d.ID)
		slot := int32(len(m.docs))
		length := 0
		posts = posts[:0]
		textTerms(d.Text, func(t []byte) {
			length++
			p := m.postings[string(t)]
			if p == nil {
				p = &posting{term: string(t), last: -1}
				m.postings[p.term] = p
			}
			if p.last == slot { // a repeated term: its count is the last
				p.tfs[len(p.tfs)-1]++
				return
			}
			p.slots, p.tfs, p.live, p.last = append(p.slots, slot), append(p.tfs, 1), p.live+1, slot
			posts = append(posts, p)
		})
		set, ok := m.sets[d.DatasetID]
		if !ok {
			set = int32(len(m.sets) + 1)
			m.sets[d.DatasetID] = set
		}
		m.docs = append(m.docs, memDoc{id: d.ID, posts: slices.Clone(posts)})
		m.meta = append(m.meta, docMeta{set: set, length: int32(length)})
		m.slots[d.ID] = slot
		m.terms += length
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
	m.terms -= int(m.meta[slot].length)
	d.posts, m.meta[slot] = nil, docMeta{}
	delete(m.slots, id)
	m.holes++
}

// compact closes the holes once they are half of docs; m.mu is held.
func (m *memText) compact() {
	if m.holes < 64 || 2*m.holes < len(m.docs) {
		return
	}
	// place is each document's new slot plus one, 0 for a hole: meta is
	// rewritten in place, so the postings cannot ask it
	place := make([]int32, len(m.docs))
	kept, meta := m.docs[:0], m.meta[:0]
	for i, d := range m.docs {
		if md := m.meta[i]; md.set != 0 {
			m.slots[d.id] = int32(len(kept))
			place[i] = int32(len(kept)) + 1
			kept, meta = append(kept, d), append(meta, md)
		}
	}
	for _, p := range m.postings {
		j := 0
		for i, s := range p.slots {
			if place[s] != 0 {
				p.slots[j], p.tfs[j] = place[s]-1, p.tfs[i]
				j++
			}
		}
		p.slots, p.tfs, p.last = p.slots[:j], p.tfs[:j], -1
		if j > 0 {
			p.last = p.slots[j-1]
		}
	}
	clear(m.docs[len(kept):])
	m.docs, m.meta, m.holes = kept, meta, 0
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

// Empty implements TextIndex.
func (m *memText) Empty() (bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.slots) == 0, nil
}
