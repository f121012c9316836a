package dataset

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
)

// FlatStore is an exact nearest-neighbour VectorStore that keeps each
// dataset's vectors, normalised, in one contiguous slice and scans it with
// every core. It is the default: at 100,000 256-dimension vectors it
// answers in a fraction of the time of dataset/chromemstore's (see
// BENCHMARKS.md), because chromem-go keeps each vector in its own
// allocation behind a map and multiplies with a single dependent
// accumulator. Beside the float32 rows it keeps an int8 copy, a quarter
// the memory to scan; the rows that copy cannot rule out of the top n are
// rescored in float32, so answers are those of the float32 scan (see
// quant.go). Its zero value is ready.
type FlatStore struct {
	// Workers scanning one query; 0: GOMAXPROCS.
	Workers int

	mu   sync.RWMutex
	sets map[string]*flatSet
}

type flatSet struct {
	mu   sync.RWMutex
	dim  int
	ids  []string
	rows map[string]int
	data []float32 // len(ids) * dim

	// the int8 copy of data the scan reads first (see quant.go)
	stride   int     // dim rounded up to quantStride
	codes    []uint8 // len(ids) * stride, offset by quantOffset
	rowScale []float32
	rowErr   []float32
}

// NewFlatStore returns an empty FlatStore.
func NewFlatStore() *FlatStore { return &FlatStore{} }

func (s *FlatStore) set(datasetID string, create bool) *flatSet {
	s.mu.RLock()
	fs := s.sets[datasetID]
	s.mu.RUnlock()
	if fs != nil || !create {
		return fs
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sets == nil {
		s.sets = map[string]*flatSet{}
	}
	if fs = s.sets[datasetID]; fs == nil {
		fs = &flatSet{rows: map[string]int{}}
		s.sets[datasetID] = fs
	}
	return fs
}

func normalised(v []float32) []float32 {
	var n float64
	for _, x := range v {
		n += float64(x) * float64(x)
	}
	out := make([]float32, len(v))
	if n == 0 {
		return out
	}
	inv := float32(1 / math.Sqrt(n))
	for i, x := range v {
		out[i] = x * inv
	}
	return out
}

// Upsert implements VectorStore.
func (s *FlatStore) Upsert(ctx context.Context, datasetID string, vs []Vector) error {
	if len(vs) == 0 {
		return nil
	}
	fs := s.set(datasetID, true)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for _, v := range vs {
		if len(v.Values) == 0 {
			return fmt.Errorf("dataset: vector %s is empty", v.ID)
		}
		if fs.dim == 0 {
			fs.dim = len(v.Values)
			fs.stride = (fs.dim + quantStride - 1) / quantStride * quantStride
		}
		if len(v.Values) != fs.dim {
			return fmt.Errorf("dataset: vector %s has %d dimensions, the dataset's have %d", v.ID, len(v.Values), fs.dim)
		}
		nv := normalised(v.Values)
		if row, ok := fs.rows[v.ID]; ok {
			copy(fs.data[row*fs.dim:], nv)
			fs.rowScale[row], fs.rowErr[row] = quantiseRow(nv, fs.codes[row*fs.stride:(row+1)*fs.stride])
			continue
		}
		fs.rows[v.ID] = len(fs.ids)
		fs.ids = append(fs.ids, v.ID)
		if len(fs.data)+fs.dim > cap(fs.data) {
			// at least double the slab: append grows a large slice by a
			// quarter, which copies it about four times over while a
			// Service loads 100,000 vectors at start
			fs.data = slices.Grow(fs.data, max(len(vs)*fs.dim, len(fs.data)))
			fs.codes = slices.Grow(fs.codes, max(len(vs)*fs.stride, len(fs.codes)))
		}
		fs.data = append(fs.data, nv...)
		fs.codes = append(fs.codes, make([]uint8, fs.stride)...)
		scale, bound := quantiseRow(nv, fs.codes[len(fs.codes)-fs.stride:])
		fs.rowScale = append(fs.rowScale, scale)
		fs.rowErr = append(fs.rowErr, bound)
	}
	return nil
}

// Delete implements VectorStore: each removed row is filled with the last.
func (s *FlatStore) Delete(ctx context.Context, datasetID string, ids []string) error {
	fs := s.set(datasetID, false)
	if fs == nil {
		return nil
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for _, id := range ids {
		row, ok := fs.rows[id]
		if !ok {
			continue
		}
		last := len(fs.ids) - 1
		if row != last {
			copy(fs.data[row*fs.dim:(row+1)*fs.dim], fs.data[last*fs.dim:])
			copy(fs.codes[row*fs.stride:(row+1)*fs.stride], fs.codes[last*fs.stride:])
			fs.rowScale[row], fs.rowErr[row] = fs.rowScale[last], fs.rowErr[last]
			fs.ids[row] = fs.ids[last]
			fs.rows[fs.ids[row]] = row
		}
		fs.ids = fs.ids[:last]
		fs.data = fs.data[:last*fs.dim]
		fs.codes = fs.codes[:last*fs.stride]
		fs.rowScale, fs.rowErr = fs.rowScale[:last], fs.rowErr[:last]
		delete(fs.rows, id)
	}
	return nil
}

// DeleteDataset implements VectorStore.
func (s *FlatStore) DeleteDataset(ctx context.Context, datasetID string) error {
	s.mu.Lock()
	delete(s.sets, datasetID)
	s.mu.Unlock()
	return nil
}

// Query implements VectorStore.
func (s *FlatStore) Query(ctx context.Context, datasetID string, q []float32, n int) ([]Hit, error) {
	fs := s.set(datasetID, false)
	if fs == nil || n <= 0 {
		return nil, nil
	}
	fs.mu.RLock()
	defer fs.mu.RUnlock()
	rows := len(fs.ids)
	if rows == 0 {
		return nil, nil
	}
	if len(q) != fs.dim {
		return nil, fmt.Errorf("dataset: query has %d dimensions, the dataset's vectors %d", len(q), fs.dim)
	}
	q = normalised(q)
	workers := s.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = max(1, min(workers, rows/4096+1)) // small sets are not worth the goroutines
	var top topN
	if fs.prunes(q, n) {
		top, _ = fs.queryPruned(q, quantiseQuery(q, fs.stride, narrowQueries()), n, workers)
	} else {
		top = fs.queryScan(q, n, workers)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	best := top.sorted()
	hits := make([]Hit, len(best))
	for i, sc := range best {
		hits[i] = Hit{ID: fs.ids[sc.row], Score: float64(sc.score)}
	}
	return hits, nil
}

// prunes says whether the int8 scan pays for itself: it does when few
// rows are wanted of many, as then few are rescored.
func (fs *flatSet) prunes(q []float32, n int) bool {
	if len(fs.ids) < 4096 || n > len(fs.ids)/64 {
		return false
	}
	for _, v := range q {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return false
		}
	}
	return true
}

// fanOut runs part(lo, hi) over rows split between workers, one part on
// the calling goroutine, and returns when all have.
func fanOut(workers, rows int, part func(w, lo, hi int)) {
	var wg sync.WaitGroup
	for w := 1; w < workers; w++ {
		wg.Go(func() { part(w, w*rows/workers, (w+1)*rows/workers) })
	}
	part(0, 0, rows/workers)
	wg.Wait()
}

// scanBlock is how many rows a kernel call scores: enough to amortise the
// call, few enough that the scores stay in L1.
const scanBlock = 128

// queryScan scores every row in float32.
func (fs *flatSet) queryScan(q []float32, n, workers int) topN {
	tops := make([]topN, workers)
	fanOut(workers, len(fs.ids), func(w, lo, hi int) {
		t := newTopN(n)
		var scores [scanBlock]float32
		for r := lo; r < hi; r += scanBlock {
			k := min(scanBlock, hi-r)
			dotsF32(q, fs.data[r*fs.dim:(r+k)*fs.dim], scores[:k])
			for i, sc := range scores[:k] {
				if t.wants(sc) {
					t.offer(r+i, sc)
				}
			}
		}
		tops[w] = t
	})
	top := newTopN(n)
	for _, t := range tops {
		for _, it := range t.items {
			top.offer(it.row, it.score)
		}
	}
	return top
}

// queryPruned scans the int8 codes for bounds on each row's score, then
// rescores in float32 the rows whose upper bound reaches the n-th best
// lower bound: no other row can be in the top n (see quant.go). It also
// returns how many rows it rescored.
func (fs *flatSet) queryPruned(q []float32, qq quantQuery, n, workers int) (top topN, rescored int) {
	lows := make([]topN, workers)
	cands := make([][]scored, workers)
	fanOut(workers, len(fs.ids), func(w, lo, hi int) {
		low := newTopN(n)
		var cand []scored
		var dots [scanBlock]int32
		var approx, bound [scanBlock]float32
		for r := lo; r < hi; r += scanBlock {
			k := min(scanBlock, hi-r)
			qq.dots(fs.codes[r*fs.stride:(r+k)*fs.stride], dots[:k])
			scales, errs := fs.rowScale[r:r+k], fs.rowErr[r:r+k]
			for i, d := range dots[:k] {
				a := float32(d) * qq.scale * scales[i]
				e := qq.c1 + qq.c2*errs[i] + qq.slack
				approx[i], bound[i] = a, e
				if low.wants(a - e) {
					low.offer(r+i, a-e)
				}
			}
			// the threshold only rises, so a row kept now may be dropped
			// below, but no row dropped here could be needed
			t := low.threshold()
			for i := range k {
				if up := approx[i] + bound[i]; up >= t {
					cand = append(cand, scored{r + i, up})
				}
			}
		}
		lows[w], cands[w] = low, cand
	})
	low := newTopN(n)
	for _, l := range lows {
		for _, it := range l.items {
			low.offer(it.row, it.score)
		}
	}
	t := low.threshold()
	var all []scored
	for _, cand := range cands {
		for _, c := range cand {
			if c.score >= t {
				all = append(all, c)
			}
		}
	}
	// best upper bound first: once the n-th best exact score is above the
	// next upper bound, it is above every one left
	slices.SortFunc(all, func(a, b scored) int { return cmp.Compare(b.score, a.score) })
	top = newTopN(n)
	var score [1]float32
	for _, c := range all {
		if len(top.items) == n && c.score < top.threshold() {
			break
		}
		dotsF32(q, fs.data[c.row*fs.dim:(c.row+1)*fs.dim], score[:])
		top.offer(c.row, score[0])
		rescored++
	}
	return top, rescored
}

type scored struct {
	row   int
	score float32
}

// ahead orders scores best first, ties by row, as a scan would meet them.
func ahead(a, b scored) bool {
	return cmp.Or(cmp.Compare(b.score, a.score), cmp.Compare(a.row, b.row)) < 0
}

// topN keeps the n best scores offered in a binary heap with the worst
// at the root, typed rather than behind container/heap's interface: with
// n small next to the rows offered, almost every offer stops at the one
// comparison with the root, inlined.
type topN struct {
	n     int
	items []scored
}

func newTopN(n int) topN { return topN{n: n, items: make([]scored, 0, min(n, 1024))} }

// wants is offer's first test, small enough to be inlined into a scan:
// whether score could be held. Rows are scanned in order, so a later
// row's equal score cannot.
func (t *topN) wants(score float32) bool {
	return len(t.items) < t.n || score > t.items[0].score || t.items[0].score != t.items[0].score
}

func (t *topN) offer(row int, score float32) {
	x := scored{row, score}
	if len(t.items) == t.n {
		if !ahead(x, t.items[0]) {
			return
		}
		t.items[0] = x
		t.down()
		return
	}
	t.items = append(t.items, x)
	for i := len(t.items) - 1; i > 0; {
		p := (i - 1) / 2
		if !ahead(t.items[p], t.items[i]) {
			break
		}
		t.items[p], t.items[i] = t.items[i], t.items[p]
		i = p
	}
}

// down restores the heap after the root was replaced.
func (t *topN) down() {
	h := t.items
	for i := 0; ; {
		c := 2*i + 1
		if c >= len(h) {
			return
		}
		if c+1 < len(h) && ahead(h[c], h[c+1]) {
			c++
		}
		if !ahead(h[i], h[c]) {
			return
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
}

// threshold is the n-th best score, or -Inf while fewer than n are held.
func (t *topN) threshold() float32 {
	if len(t.items) < t.n {
		return float32(math.Inf(-1))
	}
	return t.items[0].score
}

// sorted returns the scores held, best first.
func (t *topN) sorted() []scored {
	slices.SortFunc(t.items, func(a, b scored) int { return cmp.Or(cmp.Compare(b.score, a.score), cmp.Compare(a.row, b.row)) })
	return t.items
}
