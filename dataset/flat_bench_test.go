package dataset_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/chatgate/chatgate/dataset"
)

// BenchmarkFlatQuery100k isolates FlatStore.Query, the scan behind an
// embedding search, from embedding and hit assembly: 100,000 random
// 256-dimension vectors, top 10, p50 and p99 over 200 queries. Run it with
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
	var lat []time.Duration
	for b.Loop() {
		for _, q := range qs {
			start := time.Now()
			hits, err := fs.Query(ctx, "ds", q, 10)
			lat = append(lat, time.Since(start))
			if err != nil || len(hits) != 10 {
				b.Fatalf("%d hits, %v", len(hits), err)
			}
		}
	}
	b.ReportMetric(kbPercentile(lat, 0.5), "p50-ms")
	b.ReportMetric(kbPercentile(lat, 0.99), "p99-ms")
}
