package dataset

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
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
						for _, narrow := range []bool{false, true} {
							got, _ := set.queryPruned(q, quantiseQuery(q, set.stride, narrow), n, 3)
							if w, g := want.sorted(), got.sorted(); !slices.Equal(w, g) {
								t.Fatalf("query %d top %d, narrow %v:\npruned %v\nscan   %v", j, n, narrow, g, w)
							}
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
		// as a scan offers: in row order, only what it wants
		scan := newTopN(n)
		for _, s := range all {
			if scan.wants(s.score) {
				scan.offer(s.row, s.score)
			}
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
		want := all[:min(n, len(all))]
		if !slices.Equal(top.sorted(), want) {
			t.Fatalf("n %d: %v, want %v", n, top.items, want)
		}
		if !slices.Equal(scan.sorted(), want) {
			t.Fatalf("n %d, scanned: %v, want %v", n, scan.items, want)
		}
	}
}

// BenchmarkFlatPaths100k compares, on BenchmarkFlatQuery100k's data, the
// float32 scan of every row with the int8 scan plus rescoring Query
// takes, and reports how many rows the latter rescored per query. Run it
// with
//
//	go test -run '^$' -bench 'FlatPaths100k' -benchtime 5x ./dataset/
func BenchmarkFlatPaths100k(b *testing.B) {
	const rows, dim, queries, n = 100_000, 256, 200, 10
	rng := rand.New(rand.NewPCG(15, 256))
	vec := func() []float32 {
		v := make([]float32, dim)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		return v
	}
	fs := NewFlatStore()
	batch := make([]Vector, rows)
	for i := range batch {
		batch[i] = Vector{ID: fmt.Sprint(i), Values: vec()}
	}
	if err := fs.Upsert(context.Background(), "ds", batch); err != nil {
		b.Fatal(err)
	}
	qs := make([][]float32, queries)
	for j := range qs {
		q := vec()
		if j%2 == 0 {
			near := batch[rng.IntN(rows)].Values
			for i := range q {
				q[i] = near[i] + 0.5*q[i]
			}
		}
		qs[j] = normalised(q)
	}
	set := fs.set("ds", false)
	for _, path := range []string{"scan", "pruned-wide", "pruned-narrow"} {
		b.Run(path, func(b *testing.B) {
			var lat []time.Duration
			rescored := 0
			for b.Loop() {
				for _, q := range qs {
					start := time.Now()
					if path == "scan" {
						set.queryScan(q, n, 2)
					} else {
						_, r := set.queryPruned(q, quantiseQuery(q, set.stride, path == "pruned-narrow"), n, 2)
						rescored += r
					}
					lat = append(lat, time.Since(start))
				}
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2])/1e6, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100])/1e6, "p99-ms")
			b.ReportMetric(float64(rescored)/float64(len(lat)), "rescored/query")
		})
	}
}
