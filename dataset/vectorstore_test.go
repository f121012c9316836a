package dataset_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/chatgate/chatgate/dataset"
	"github.com/chatgate/chatgate/dataset/chromemstore"
)

// Both VectorStores agree with a brute-force reference on the same data,
// through upserts, replacements and deletions.
func TestVectorStores(t *testing.T) {
	ctx := context.Background()
	for name, vs := range map[string]dataset.VectorStore{"flat": &dataset.FlatStore{Workers: 3}, "chromem": chromemstore.New()} {
		t.Run(name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, 7))
			ref := map[string][]float32{}
			vec := func() []float32 {
				v := make([]float32, 16)
				for i := range v {
					v[i] = rng.Float32()*2 - 1
				}
				return v
			}
			var batch []dataset.Vector
			for i := range 20000 {
				v := dataset.Vector{ID: fmt.Sprint(i), Values: vec()}
				batch = append(batch, v)
				ref[v.ID] = v.Values
			}
			if err := vs.Upsert(ctx, "ds", batch); err != nil {
				t.Fatal(err)
			}
			// replace some, delete some
			for i := 0; i < 20000; i += 7 {
				v := vec()
				ref[fmt.Sprint(i)] = v
				if err := vs.Upsert(ctx, "ds", []dataset.Vector{{ID: fmt.Sprint(i), Values: v}}); err != nil {
					t.Fatal(err)
				}
			}
			var gone []string
			for i := 3; i < 20000; i += 11 {
				gone = append(gone, fmt.Sprint(i))
				delete(ref, fmt.Sprint(i))
			}
			if err := vs.Delete(ctx, "ds", append(gone, "never-there")); err != nil {
				t.Fatal(err)
			}
			_ = vs.Upsert(ctx, "other", []dataset.Vector{{ID: "x", Values: vec()}})
			for range 5 {
				q := vec()
				hits, err := vs.Query(ctx, "ds", q, 10)
				if err != nil {
					t.Fatal(err)
				}
				type s struct {
					id  string
					sim float64
				}
				var want []s
				for id, v := range ref {
					want = append(want, s{id, cosine(q, v)})
				}
				slices.SortFunc(want, func(a, b s) int {
					if a.sim > b.sim {
						return -1
					}
					return 1
				})
				if len(hits) != 10 {
					t.Fatalf("%d hits", len(hits))
				}
				for i, h := range hits {
					if h.ID != want[i].id || h.Score-want[i].sim > 1e-4 || want[i].sim-h.Score > 1e-4 {
						t.Fatalf("hit %d = %+v, want %+v", i, h, want[i])
					}
				}
			}
			if hits, _ := vs.Query(ctx, "missing", vec(), 5); len(hits) != 0 {
				t.Fatalf("missing dataset: %v", hits)
			}
			if err := vs.DeleteDataset(ctx, "ds"); err != nil {
				t.Fatal(err)
			}
			if hits, _ := vs.Query(ctx, "ds", vec(), 5); len(hits) != 0 {
				t.Fatalf("deleted dataset: %v", hits)
			}
			if hits, _ := vs.Query(ctx, "other", vec(), 5); len(hits) != 1 {
				t.Fatalf("the other dataset: %v", hits)
			}
		})
	}
}

func cosine(a, b []float32) float64 {
	var d, na, nb float64
	for i := range a {
		d += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	return d / (math.Sqrt(na) * math.Sqrt(nb))
}

func TestFlatStoreDimensions(t *testing.T) {
	fs := dataset.NewFlatStore()
	ctx := context.Background()
	if err := fs.Upsert(ctx, "d", []dataset.Vector{{ID: "a", Values: []float32{1, 0}}}); err != nil {
		t.Fatal(err)
	}
	if err := fs.Upsert(ctx, "d", []dataset.Vector{{ID: "b", Values: []float32{1, 0, 0}}}); err == nil {
		t.Fatal("a vector of another length was accepted")
	}
	if _, err := fs.Query(ctx, "d", []float32{1, 0, 0}, 1); err == nil {
		t.Fatal("a query of another length was accepted")
	}
}
