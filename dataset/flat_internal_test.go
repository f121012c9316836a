package dataset

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// The int8-pruned query returns exactly what scoring every row in float32
// returns, the same rows in the same order with the same scores, on data
// made to crowd the bounds: clusters of near-duplicates, exact
// duplicates (ties), zero rows, a NaN row, odd dimensions.
func TestFlatPrunedIsExact(t *testing.T) {
	ctx := context.Background()
	for _, dim := range []int{37, 256} {
		for _, kind := range []string{"gaussian", "clustered", "duplicates"} {
			t.Run(fmt.Sprint(kind, dim), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(uint64(dim), 3))
				vec := func(scale float64) []float32 {
					v := make([]float32, dim)
					for i := range v {
						v[i] = float32(rng.NormFloat64() * scale)
					}
					return v
				}
				centres := [][]float32{vec(1), vec(1), vec(1)}
				fs := &FlatStore{Workers: 3}
				var batch []Vector
				for i := range 9000 {
					v := vec(1)
					switch {
					case kind == "clustered":
						c := centres[i%3]
						for j := range v {
							v[j] = c[j] + 0.01*v[j]
						}
					case kind == "duplicates" && i%2 == 0:
						v = centres[i%3]
					}
					batch = append(batch, Vector{ID: fmt.Sprint(i), Values: v})
				}
				batch[5].Values = make([]float32, dim)
				batch[6].Values = slices.Clone(batch[7].Values)
				batch[6].Values[0] = float32(math.NaN())
				if err := fs.Upsert(ctx, "ds", batch); err != nil {
					t.Fatal(err)
				}
				set := fs.set("ds", false)
				for j := range 20 {
					q := vec(1)
					if j%2 == 0 {
						near := batch[rng.IntN(len(batch))].Values
						for i := range q {
							q[i] = near[i] + 0.05*q[i]
						}
					}
					q = normalised(q)
					for _, n := range []int{1, 10, 28, 100} {
						if !set.prunes(q, n) {
							t.Fatalf("n %d does not take the pruned path", n)
						}
						want := set.queryScan(q, n, 2)
						got := set.queryPruned(q, n, 3)
						if w, g := want.sorted(), got.sorted(); !slices.Equal(w, g) {
							t.Fatalf("query %d top %d:\npruned %v\nscan   %v", j, n, g, w)
						}
					}
				}
			})
		}
	}
}

// topN keeps the n best, best first, ties by the lower row, whatever the
// order of offers.
func TestTopN(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	for range 200 {
		n := 1 + rng.IntN(20)
		var all []scored
		top := newTopN(n)
		for r := range rng.IntN(60) {
			s := scored{r, float32(rng.IntN(8))} // many ties
			all = append(all, s)
		}
		for _, i := range rng.Perm(len(all)) {
			top.offer(all[i].row, all[i].score)
		}
		slices.SortFunc(all, func(a, b scored) int {
			if ahead(a, b) {
				return -1
			}
			return 1
		})
		if want := all[:min(n, len(all))]; !slices.Equal(top.sorted(), want) {
			t.Fatalf("n %d: %v, want %v", n, top.items, want)
		}
	}
}
