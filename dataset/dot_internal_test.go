package dataset

import (
	"math"
	"math/rand/v2"
	"testing"
)

// checkDots compares dotsF32 and dotsI8 (the assembly where the CPU has
// it) with their Go versions on rows of q's length.
func checkDots(t *testing.T, q, rows []float32, qi []int16, codes []int8) {
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
	gi, wi := make([]int32, m), make([]int32, m)
	dotsI8(qi, codes, gi)
	dotsI8Go(qi, codes, wi)
	for r := range m {
		var exact int64
		for i, v := range qi {
			exact += int64(v) * int64(codes[r*len(qi)+i])
		}
		if int64(gi[r]) != exact || int64(wi[r]) != exact {
			t.Fatalf("stride %d row %d: dotsI8 %d, Go %d, exact %d", len(qi), r, gi[r], wi[r], exact)
		}
	}
}

// Every length, not only multiples of the kernels' steps (32, 8, 1 for
// float32; 64, 16 for int8), and the extreme codes.
func TestDotKernels(t *testing.T) {
	t.Logf("AVX2+FMA kernels: %v", haveAVX2FMA)
	rng := rand.New(rand.NewPCG(1, 2))
	for dim := 0; dim <= 300; dim++ {
		q := make([]float32, dim)
		rows := make([]float32, 3*dim)
		for i := range q {
			q[i] = rng.Float32()*2 - 1
		}
		for i := range rows {
			rows[i] = rng.Float32()*2 - 1
		}
		var qi []int16
		var codes []int8
		if dim%quantStride == 0 && dim > 0 {
			qi = make([]int16, dim)
			codes = make([]int8, 3*dim)
			for i := range qi {
				qi[i] = int16(rng.IntN(2*math.MaxInt16+1) - math.MaxInt16)
			}
			for i := range codes {
				codes[i] = int8(rng.IntN(2*quantLevels+1) - quantLevels)
			}
			// one row of extremes, against a query of extremes
			for i := range qi {
				qi[i] = math.MaxInt16
				codes[i] = -quantLevels
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
		var codes []int8
		if s > 0 {
			// as quantiseQuery bounds them, so that no int32 sum overflows
			levels := min(math.MaxInt16, math.MaxInt32/(s*quantLevels))
			qi, codes = make([]int16, s), make([]int8, m*s)
			for i := range qi {
				qi[i] = int16(rng.IntN(2*levels+1) - levels)
			}
			for i := range codes {
				codes[i] = int8(rng.IntN(2*quantLevels+1) - quantLevels)
			}
		}
		checkDots(t, q, rows, qi, codes)
	})
}
