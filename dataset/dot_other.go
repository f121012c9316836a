//go:build !amd64 || purego

package dataset

// dotsF32 sets out[r] to q · row r of rows (rows of len(q) values).
func dotsF32(q, rows, out []float32) { dotsF32Go(q, rows, out) }

// dotsU8Wide sets out[r] to q · row r of codes (rows of len(q) codes).
func dotsU8Wide(q []int16, codes []uint8, out []int32) { dotsU8Go(q, codes, out) }

// dotsU8Narrow sets out[r] to q · row r of codes (rows of len(q) codes).
func dotsU8Narrow(q []int8, codes []uint8, out []int32) { dotsU8Go(q, codes, out) }

// narrowQueries says whether queries should be quantised to bytes: in Go
// the wider query costs no more and bounds the error tighter.
func narrowQueries() bool { return false }
