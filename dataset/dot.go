package dataset

// quantStride is what a row of codes is padded to: the VNNI kernel takes
// 64 codes a step, and a zero query code adds nothing to a dot product.
const quantStride = 64

// dotsF32Go is dotsF32 in Go, the fallback and the assembly's reference.
func dotsF32Go(q, rows, out []float32) {
	dim := len(q)
	rows = rows[:len(out)*dim]
	for r := range out {
		out[r] = dot(q, rows[r*dim:(r+1)*dim])
	}
}

// dot is the dot product with four independent sums, which lets the CPU
// overlap the additions a single running sum would serialise.
func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return s0 + s1 + s2 + s3
}

// dotsU8Go is dotsU8Wide (q of int16) and dotsU8Narrow (q of int8) in
// Go: the fallback and the assembly's reference.
func dotsU8Go[Q int8 | int16](q []Q, codes []uint8, out []int32) {
	dim := len(q)
	codes = codes[:len(out)*dim]
	for r := range out {
		row := codes[r*dim : (r+1)*dim]
		var s int32
		for i, c := range row {
			s += int32(q[i]) * int32(c)
		}
		out[r] = s
	}
}
