//go:build !purego

package dataset

import "golang.org/x/sys/cpu"

// The kernels in dot_amd64.s need these; each is read once, at start.
var (
	haveAVX2FMA = cpu.X86.HasAVX2 && cpu.X86.HasFMA
	haveVNNI    = cpu.X86.HasAVX512F && cpu.X86.HasAVX512VNNI
)

//go:noescape
func dotsF32AVX2(q, rows, out []float32)

//go:noescape
func dotsU8AVX2(q []int16, codes []uint8, out []int32)

//go:noescape
func dotsU8VNNI(q []int8, codes []uint8, out []int32)

// dotsF32 sets out[r] to q · row r of rows (rows of len(q) values).
func dotsF32(q, rows, out []float32) {
	if !haveAVX2FMA {
		dotsF32Go(q, rows, out)
		return
	}
	// the slice expression is the bounds check the assembly does not do
	dotsF32AVX2(q, rows[:len(out)*len(q)], out)
}

// dotsU8Wide sets out[r] to q · row r of codes (rows of len(q) codes).
func dotsU8Wide(q []int16, codes []uint8, out []int32) {
	if !haveAVX2FMA || len(q)%16 != 0 {
		dotsU8Go(q, codes, out)
		return
	}
	dotsU8AVX2(q, codes[:len(out)*len(q)], out)
}

// dotsU8Narrow sets out[r] to q · row r of codes (rows of len(q) codes).
func dotsU8Narrow(q []int8, codes []uint8, out []int32) {
	if !haveVNNI || len(q)%64 != 0 {
		dotsU8Go(q, codes, out)
		return
	}
	dotsU8VNNI(q, codes[:len(out)*len(q)], out)
}

// narrowQueries says whether queries should be quantised to bytes: only
// VNNI multiplies bytes faster than dotsU8Wide multiplies int16s.
func narrowQueries() bool { return haveVNNI }
