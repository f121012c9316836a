package dataset

import (
	"cmp"
	"context"
	"math"
	"slices"
)

// BM25's constants, the usual ones.
const (
	bm25K1 = 1.2
	bm25B  = 0.75
)

// textScratch is what one search of a memText accumulates in: a score per
// slot, the slots given one, and the best n so far. It is kept for the
// next search (memText.scratch), as a score per slot of 100,000 documents
// is 800 kB to allocate and clear.
type textScratch struct {
	scores  []float64 // by slot; 0 for a document no term matched
	touched []int32   // the slots whose score is not 0
	best    []rankedSlot
}

type rankedSlot struct {
	score float64
	slot  int32
}

// Search implements TextIndex. It scores term at a time, adding each
// term's BM25 weight to its documents' scores in the order of the query's
// terms, so that a document's score is the same sum, added in the same
// order, whatever the index's layout; the best n are then selected with a
// heap, score first and data id at equal scores.
func (m *memText) Search(ctx context.Context, datasetIDs []string, text string, n int) ([]Hit, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if n <= 0 || len(m.slots) == 0 {
		return nil, nil
	}
	// want is indexed by dataset number; number 0, a hole, is never wanted
	want := make([]bool, len(m.sets)+1)
	wanted := false
	for _, id := range datasetIDs {
		if k, ok := m.sets[id]; ok {
			want[k], wanted = true, true
		}
	}
	if !wanted {
		return nil, nil
	}
	var query []*posting
	textTerms(text, func(t []byte) {
		if p := m.postings[string(t)]; p != nil && !slices.Contains(query, p) {
			query = append(query, p)
		}
	})
	if len(query) == 0 {
		return nil, nil
	}
	// a search that panics leaves its scratch to the collector: it is
	// only put back cleared
	sc := m.takeScratch()
	scores, touched := sc.scores, sc.touched[:0]
	docs := float64(len(m.slots))
	avg := float64(m.terms) / docs
	meta := m.meta
	for _, p := range query {
		df := float64(p.live)
		idf := math.Log(1 + (docs-df+0.5)/(df+0.5))
		tfs := p.tfs[:len(p.slots)]
		for i, slot := range p.slots {
			md := meta[slot]
			if !want[md.set] {
				continue
			}
			f := float64(tfs[i])
			w := idf * f * (bm25K1 + 1) / (f + bm25K1*(1-bm25B+bm25B*float64(md.length)/avg))
			if scores[slot] == 0 { // every weight is above 0
				touched = append(touched, slot)
			}
			scores[slot] += w
		}
	}
	best := sc.best[:0]
	for _, slot := range touched {
		r := rankedSlot{scores[slot], slot}
		scores[slot] = 0
		switch {
		case len(best) < n:
			best = append(best, r)
			m.siftUp(best, len(best)-1)
		case m.above(r, best[0]):
			best[0] = r
			m.siftDown(best, 0)
		}
	}
	slices.SortFunc(best, func(a, b rankedSlot) int {
		if m.above(a, b) {
			return -1
		}
		return 1 // no two slots rank equal: their ids differ
	})
	hits := make([]Hit, len(best))
	for i, r := range best {
		hits[i] = Hit{ID: m.docs[r.slot].id, Score: r.score}
	}
	sc.touched, sc.best = touched[:0], best[:0]
	m.scratch.Put(sc)
	return hits, nil
}

// takeScratch returns a textScratch with a cleared score for every slot;
// m.mu is held.
func (m *memText) takeScratch() *textScratch {
	sc, _ := m.scratch.Get().(*textScratch)
	if sc == nil {
		sc = &textScratch{}
	}
	if len(sc.scores) < len(m.docs) {
		sc.scores = make([]float64, len(m.docs)+len(m.docs)/4)
	}
	return sc
}

// above reports whether a ranks before b: a higher score, or an equal one
// and a smaller data id.
func (m *memText) above(a, b rankedSlot) bool {
	if a.score != b.score {
		return a.score > b.score
	}
	return cmp.Less(m.docs[a.slot].id, m.docs[b.slot].id)
}

// siftUp and siftDown keep h a heap whose root ranks last, so that a
// candidate that beats the root replaces it.
func (m *memText) siftUp(h []rankedSlot, i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !m.above(h[parent], h[i]) {
			return
		}
		h[parent], h[i] = h[i], h[parent]
		i = parent
	}
}

func (m *memText) siftDown(h []rankedSlot, i int) {
	for {
		low := i
		for _, c := range []int{2*i + 1, 2*i + 2} {
			if c < len(h) && m.above(h[low], h[c]) {
				low = c
			}
		}
		if low == i {
			return
		}
		h[i], h[low] = h[low], h[i]
		i = low
	}
}
