package dataset

import (
	"math"
)

// A FlatStore keeps, beside each float32 row, an int8 copy of it (one scale
// per row) a quarter the size. A query first scans the int8 copy, which
// moves a quarter of the memory the float32 scan does, then rescores in
// float32 every row that could be in the top n. The result is the exact
// scan's, not an approximation: each int8 score comes with a bound on how
// far it can be from the float32 one (Cauchy-Schwarz on the quantisation
// errors, plus float rounding), and only rows whose upper bound falls
// below the n-th best lower bound are skipped; those cannot be in the top
// n.

// quantLevels is the largest int8 code: symmetric, so -128 is unused.
const quantLevels = 127

// quantiseRow writes x's int8 codes (zero padded to len(codes)) and
// returns their scale and an upper bound on ‖x - scale·codes‖. A row with
// a value that is not finite gets an infinite bound: it is always
// rescored, so it ranks as the float32 scan ranks it.
func quantiseRow(x []float32, codes []int8) (scale, errBound float32) {
	clear(codes)
	var m float64
	for _, v := range x {
		m = math.Max(m, math.Abs(float64(v)))
	}
	if math.IsNaN(m) || math.IsInf(m, 0) {
		return 0, float32(math.Inf(1))
	}
	if m == 0 {
		return 0, 0
	}
	scale = float32(m / quantLevels)
	var e float64
	for i, v := range x {
		c := math.Round(float64(v) / float64(scale))
		c = math.Max(-quantLevels, math.Min(quantLevels, c))
		codes[i] = int8(c)
		d := float64(v) - float64(scale)*c
		e += d * d
	}
	// float32 rounds to nearest, possibly down: widen first
	return scale, float32(math.Sqrt(e) * (1 + 1e-6))
}

// quantQuery is a query's side of the int8 scan.
type quantQuery struct {
	codes []int16 // padded to the rows' stride
	scale float32
	// approximate score of row r: float32(dot)·scale·rowScale[r], off
	// from the float32 score by at most c1 + c2·rowErr[r] + slack
	c1, c2, slack float32
}

// quantiseQuery quantises a normalised, finite query for rows of stride
// codes. The query keeps more levels than a row, as many as an int32
// dot product of stride terms can hold, which makes its own error
// negligible next to the rows'.
func quantiseQuery(q []float32, stride int) quantQuery {
	levels := float64(min(math.MaxInt16, math.MaxInt32/(stride*quantLevels)))
	qq := quantQuery{codes: make([]int16, stride)}
	var m float64
	for _, v := range q {
		m = math.Max(m, math.Abs(float64(v)))
	}
	var eq, nq float64
	if m > 0 {
		qq.scale = float32(m / levels)
		for i, v := range q {
			c := math.Round(float64(v) / float64(qq.scale))
			c = math.Max(-levels, math.Min(levels, c))
			qq.codes[i] = int16(c)
			d := float64(v) - float64(qq.scale)*c
			eq += d * d
			nq += float64(qq.scale) * c * float64(qq.scale) * c
		}
	}
	// q·x - q̃·x̃ = (q - q̃)·x + q̃·(x - x̃), and ‖x‖ ≤ 1 but for rounding
	qq.c1 = float32(math.Sqrt(eq) * (1 + 1e-3))
	qq.c2 = float32(math.Sqrt(nq) * (1 + 1e-3))
	// the float32 dot product of len(q) terms is within len(q)·2⁻²⁴ of
	// the real one (‖q‖, ‖x‖ ≤ 1); the approximate score's own few
	// roundings are far smaller. Four times that, to spare the proof.
	qq.slack = float32(len(q)+16) * 0x1p-22
	return qq
}
