//go:build !purego

package dataset

import "golang.org/x/sys/cpu"

// haveAVX2FMA is read once at start: the kernels in dot_amd64.s need both.
var haveAVX2FMA = cpu.X86.HasAVX2 && cpu.X86.HasFMA

//go:noescape
func dotsF32AVX2(q, rows, out []float32)

//go:noescape
func dotsI8AVX2(q []int16, codes []int8, out []int32)

// dotsF32 sets out[r] to q · row r of rows (rows of len(q) values).
func dotsF32(q, rows, out []float32) {
	if !haveAVX2FMA {
		dotsF32Go(q, rows, out)
		return
	}
	// the slice expression is the bounds check the assembly does not do
	dotsF32AVX2(q, rows[:len(out)*len(q)], out)
}

// dotsI8 sets out[r] to q · row r of codes (rows of len(q) codes);
// len(q) is a multiple of quantStride.
func dotsI8(q []int16, codes []int8, out []int32) {
	if !haveAVX2FMA || len(q)%quantStride != 0 {
		dotsI8Go(q, codes, out)
		return
	}
	dotsI8AVX2(q, codes[:len(out)*len(q)], out)
}
