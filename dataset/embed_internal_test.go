package dataset

import (
	"math/rand"
	"testing"
)

// fnv1aRunes hashes what fnv1a hashes, for any runes, invalid ones too
// (string() turns them into U+FFFD, and so must it).
func TestFNV1aRunes(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for range 10000 {
		rs := make([]rune, rng.Intn(5))
		for i := range rs {
			switch rng.Intn(4) {
			case 0:
				rs[i] = rune(rng.Intn(128))
			case 1:
				rs[i] = rune(rng.Intn(0x10000))
			case 2:
				rs[i] = rune(0xD800 + rng.Intn(0x800)) // surrogates
			default:
				rs[i] = rune(rng.Int31()) // mostly beyond Unicode
			}
		}
		if got, want := fnv1aRunes(rs), fnv1a(string(rs)); got != want {
			t.Fatalf("fnv1aRunes(%U) = %x, fnv1a of the string %x", rs, got, want)
		}
	}
}
