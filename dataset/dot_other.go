//go:build !amd64 || purego

package dataset

// dotsF32 sets out[r] to q · row r of rows (rows of len(q) values).
func dotsF32(q, rows, out []float32) { dotsF32Go(q, rows, out) }

// dotsI8 sets out[r] to q · row r of codes (rows of len(q) codes).
func dotsI8(q []int16, codes []int8, out []int32) { dotsI8Go(q, codes, out) }
