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

// quantLevels is the largest code magnitude of a row: symmetric, so a
// code fits a byte offset by quantOffset.
const quantLevels = 127

// quantOffset is added to each row code to store it unsigned, as VNNI
// multiplies unsigned bytes by signed ones; q·(x+offset) is q·x plus
// offset·Σq, once per query.
const quantOffset = 128

// quantiseRow writes x's codes, offset by quantOffset (padding: code 0),
// to codes and returns their scale and an upper bound on ‖x - scale·x̂‖.
// A row with a value that is not finite gets an infinite bound: it is
// always rescored, so it ranks as the float32 scan ranks it.
func quantiseRow(x []float32, codes []uint8) (scale, errBound float32) {
	for i := range codes {
		codes[i] = quantOffset
	}
	var m, z float32
	for _, v := range x {
		// not the builtin max, whose NaN rules cost a chain of branches
		if a := float32(math.Abs(float64(v))); a > m {
			m = a
		}
		z += v * 0 // NaN if any v is NaN or infinite
	}
	if z != 0 {
		return 0, float32(math.Inf(1))
	}
	if m == 0 {
		return 0, 0
	}
	scale = m / quantLevels
	inv := 1 / scale
	var e0, e1 float64
	for i, v := range x {
		// any code is correct, the bound is of the codes chosen: rounding
		// in float32 only has to be near
		c := int32(math.RoundToEven(float64(v * inv)))
		c = max(-quantLevels, min(quantLevels, c))
		codes[i] = uint8(c + quantOffset)
		d := float64(v) - float64(scale)*float64(c)
		if i&1 == 0 {
			e0 += d * d
		} else {
			e1 += d * d
		}
	}
	// float32 rounds to nearest, possibly down: widen first
	return scale, float32(math.Sqrt(e0+e1) * (1 + 1e-6))
}

// quantQuery is a query's side of the int8 scan.
type quantQuery struct {
	wide   []int16 // the codes for dotsU8Wide, or nil
	narrow []int8  // the codes for dotsU8Narrow, or nil
	bias   int32   // quantOffset·Σcodes, to take from each dot product
	// approximate score of row r: float32(dot-bias)·scale·rowScale[r],
	// off from the float32 score by at most c1 + c2·rowErr[r] + slack
	scale, c1, c2, slack float32
}

// dots sets out[r] to the integer dot product of q's codes with row r's.
func (qq *quantQuery) dots(codes []uint8, out []int32) {
	if qq.narrow != nil {
		dotsU8Narrow(qq.narrow, codes, out)
	} else {
		dotsU8Wide(qq.wide, codes, out)
	}
	for i := range out {
		out[i] -= qq.bias
	}
}

// quantiseQuery quantises a normalised, finite query for rows of stride
// codes, to bytes if narrow, else to as many levels as an int32 dot
// product of stride terms holds, which makes its error negligible next to
// the rows'.
func quantiseQuery(q []float32, stride int, narrow bool) quantQuery {
	levels := float64(min(math.MaxInt16, math.MaxInt32/(stride*(quantLevels+quantOffset))))
	if narrow {
		levels = quantLevels
	}
	var qq quantQuery
	codes := make([]int32, stride)
	var m float64
	for _, v := range q {
		m = math.Max(m, math.Abs(float64(v)))
	}
	var eq, nq float64
	var sum int32
	if m > 0 {
		qq.scale = float32(m / levels)
		for i, v := range q {
			c := math.Round(float64(v) / float64(qq.scale))
			c = math.Max(-levels, math.Min(levels, c))
			codes[i] = int32(c)
			sum += int32(c)
			d := float64(v) - float64(qq.scale)*c
			eq += d * d
			nq += float64(qq.scale) * c * float64(qq.scale) * c
		}
	}
	qq.bias = quantOffset * sum
	if narrow {
		qq.narrow = make([]int8, stride)
		for i, c := range codes {
			qq.narrow[i] = int8(c)
		}
	} else {
		qq.wide = make([]int16, stride)
		for i, c := range codes {
			qq.wide[i] = int16(c)
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
