package dataset_test

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/chatgate/chatgate/dataset"
)

// BenchmarkFlatQuery100k isolates FlatStore.Query, the scan behind an
// embedding search, from embedding and hit assembly: 100,000 random
// 256-dimension vectors, top 10, p50 and p99 over 200 queries, and
// recall@10 against a float64 brute force (below 1 only where float32
// rounding reorders near-ties). Run it with
//
//	go test -run '^$' -bench 'FlatQuery100k' -benchtime 5x ./dataset/
func BenchmarkFlatQuery100k(b *testing.B) {
	const rows, dim, queries = 100_000, 256, 200
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(15, 256))
	vec := func() []float32 {
		v := make([]float32, dim)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		return v
	}
	fs := dataset.NewFlatStore()
	batch := make([]dataset.Vector, rows)
	for i := range batch {
		batch[i] = dataset.Vector{ID: fmt.Sprint(i), Values: vec()}
	}
	if err := fs.Upsert(ctx, "ds", batch); err != nil {
		b.Fatal(err)
	}
	// half the queries are near a stored vector, as a query cut from a
	// chunk is; half are anywhere
	qs := make([][]float32, queries)
	for j := range qs {
		q := vec()
		if j%2 == 0 {
			near := batch[rng.IntN(rows)].Values
			for i := range q {
				q[i] = near[i] + 0.5*q[i]
			}
		}
		qs[j] = q
	}
	truth := make([]map[string]bool, queries)
	for j, q := range qs {
		truth[j] = bruteTop(batch, q, 10)
	}
	var lat []time.Duration
	found, asked := 0, 0
	for b.Loop() {
		for j, q := range qs {
			start := time.Now()
			hits, err := fs.Query(ctx, "ds", q, 10)
			lat = append(lat, time.Since(start))
			if err != nil || len(hits) != 10 {
				b.Fatalf("%d hits, %v", len(hits), err)
			}
			for _, h := range hits {
				if truth[j][h.ID] {
					found++
				}
			}
			asked += 10
		}
	}
	b.ReportMetric(float64(found)/float64(asked), "recall@10")
	b.ReportMetric(kbPercentile(lat, 0.5), "p50-ms")
	b.ReportMetric(kbPercentile(lat, 0.99), "p99-ms")
}

// bruteTop is the ids of the n vectors of highest cosine with q, in float64.
func bruteTop(vs []dataset.Vector, q []float32, n int) map[string]bool {
	type idScore struct {
		id    string
		score float64
	}
	norm := func(v []float32) float64 {
		var s float64
		for _, x := range v {
			s += float64(x) * float64(x)
		}
		return math.Sqrt(s)
	}
	nq := norm(q)
	all := make([]idScore, len(vs))
	for i, v := range vs {
		var d float64
		for k, x := range v.Values {
			d += float64(x) * float64(q[k])
		}
		all[i] = idScore{v.ID, d / (nq * norm(v.Values))}
	}
	slices.SortFunc(all, func(a, b idScore) int { return cmp.Compare(b.score, a.score) })
	top := map[string]bool{}
	for _, s := range all[:n] {
		top[s.id] = true
	}
	return top
}
