package dataset

import (
	"math"
	"math/rand/v2"
	"testing"
)

// checkDots compares dotsF32 and dotsI8 (the assembly where the CPU has
// it) with their Go versions on rows of q's length.
func checkDots(t *testing.T, q, rows []float32, qi []int16, codes []uint8) {
	t.Helper()
	n := 0
	if len(q) > 0 {
		n = len(rows) / len(q)
	}
	got, want := make([]float32, n), make([]float32, n)
	dotsF32(q, rows, got)
	dotsF32Go(q, rows, want)
	for r := range n {
		// both sum the same products in different orders: each is within
		// len(q)·2⁻²³ of the real sum of |products|
		var mag float64
		for i, v := range q {
			mag += math.Abs(float64(v) * float64(rows[r*len(q)+i]))
		}
		if d := math.Abs(float64(got[r]) - float64(want[r])); d > float64(len(q)+1)*0x1p-22*mag {
			t.Fatalf("dim %d row %d: dotsF32 %v, Go %v", len(q), r, got[r], want[r])
		}
	}
	if len(qi) == 0 {
		return
	}
	m := len(codes) / len(qi)
	q8 := make([]int8, len(qi))
	for i, v := range qi {
		q8[i] = int8(max(-quantLevels, min(quantLevels, v)))
	}
	for _, k := range []struct {
		name     string
		q        []int64
		asm, ref func(out []int32)
	}{
		{"wide", widen(qi), func(out []int32) { dotsU8Wide(qi, codes, out) }, func(out []int32) { dotsU8Go(qi, codes, out) }},
		{"narrow", widen(q8), func(out []int32) { dotsU8Narrow(q8, codes, out) }, func(out []int32) { dotsU8Go(q8, codes, out) }},
	} {
		got, want := make([]int32, m), make([]int32, m)
		k.asm(got)
		k.ref(want)
		for r := range m {
			var exact int64
			for i, v := range k.q {
				exact += v * int64(codes[r*len(qi)+i])
			}
			if int64(got[r]) != exact || int64(want[r]) != exact {
				t.Fatalf("%s, stride %d row %d: kernel %d, Go %d, exact %d", k.name, len(qi), r, got[r], want[r], exact)
			}
		}
	}
}

func widen[T int8 | int16](q []T) []int64 {
	w := make([]int64, len(q))
	for i, v := range q {
		w[i] = int64(v)
	}
	return w
}

// wideLevels is how far quantiseQuery lets a wide code go for stride s.
func wideLevels(s int) int { return min(math.MaxInt16, math.MaxInt32/(s*(quantLevels+quantOffset))) }

// Every length, not only multiples of the kernels' steps (32, 8, 1 for
// float32; 64, 16 for AVX2 codes; 256, 64 for VNNI), and the extreme
// codes.
func TestDotKernels(t *testing.T) {
	t.Logf("byte queries (VNNI): %v", narrowQueries())
	rng := rand.New(rand.NewPCG(1, 2))
	for dim := 0; dim <= 640; dim++ {
		q := make([]float32, dim)
		rows := make([]float32, 3*dim)
		for i := range q {
			q[i] = rng.Float32()*2 - 1
		}
		for i := range rows {
			rows[i] = rng.Float32()*2 - 1
		}
		var qi []int16
		var codes []uint8
		if dim%16 == 0 && dim > 0 {
			l := wideLevels(dim)
			qi = make([]int16, dim)
			codes = make([]uint8, 3*dim)
			for i := range qi {
				qi[i] = int16(rng.IntN(2*l+1) - l)
			}
			for i := range codes {
				codes[i] = uint8(rng.IntN(256))
			}
			// one row of extremes, against a query of extremes
			for i := range qi {
				qi[i] = int16(-l)
				codes[i] = math.MaxUint8
			}
		}
		checkDots(t, q, rows, qi, codes)
	}
}

// The kernels read no further than the rows asked for.
func TestDotKernelsBounds(t *testing.T) {
	q := make([]float32, 40)
	defer func() {
		if recover() == nil {
			t.Fatal("rows one short did not panic")
		}
	}()
	dotsF32(q, make([]float32, 2*40-1), make([]float32, 2))
}

func FuzzDotKernels(f *testing.F) {
	f.Add(uint16(256), uint8(3), uint64(1))
	f.Add(uint16(37), uint8(1), uint64(2))
	f.Fuzz(func(t *testing.T, dim uint16, n uint8, seed uint64) {
		d, m := int(dim%2048), int(n%8)
		rng := rand.New(rand.NewPCG(seed, 0))
		q, rows := make([]float32, d), make([]float32, m*d)
		for i := range q {
			q[i] = float32(rng.NormFloat64())
		}
		for i := range rows {
			rows[i] = float32(rng.NormFloat64())
		}
		s := (d + quantStride - 1) / quantStride * quantStride
		var qi []int16
		var codes []uint8
		if s > 0 {
			// as quantiseQuery bounds them, so that no int32 sum overflows
			l := wideLevels(s)
			qi, codes = make([]int16, s), make([]uint8, m*s)
			for i := range qi {
				qi[i] = int16(rng.IntN(2*l+1) - l)
			}
			for i := range codes {
				codes[i] = uint8(rng.IntN(256))
			}
		}
		checkDots(t, q, rows, qi, codes)
	})
}
