package tokens

import "hash/maphash"

// vocab finds a token's rank by its bytes. It is a Go map's job, but the
// lookups are most of a count's time, and most of theirs is cache misses
// in a map of 100,000 strings; here a miss costs one look at a 4-byte slot
// of a 1 MiB table (a hit two more, at the bytes, to be sure).
type vocab struct {
	seed  maphash.Seed
	slots []uint32 // tag<<17 | rank+1; 0 is empty
	mask  uint64
	at    []uint32 // token r is bytes[at[r]:at[r+1]]
	bytes string
}

const rankBits = 17 // cl100k_base's ranks are below 2^17

func newVocab(ranks map[string]int) *vocab {
	v := &vocab{seed: maphash.MakeSeed()}
	size := 1
	for size < 2*len(ranks) {
		size *= 2
	}
	v.slots, v.mask = make([]uint32, size), uint64(size-1)
	byRank := make([]string, 0, len(ranks))
	for tok, r := range ranks {
		if r >= 1<<rankBits-1 {
			continue // none in cl100k_base; such a token would count as merged parts
		}
		for len(byRank) <= r {
			byRank = append(byRank, "")
		}
		byRank[r] = tok
	}
	v.at = make([]uint32, len(byRank)+1)
	var b []byte
	for r, tok := range byRank {
		v.at[r] = uint32(len(b))
		b = append(b, tok...)
		if tok == "" {
			continue
		}
		h := maphash.String(v.seed, tok)
		i := h & v.mask
		for v.slots[i] != 0 {
			i = (i + 1) & v.mask
		}
		v.slots[i] = uint32(h>>(64-32+rankBits))<<rankBits | uint32(r+1)
	}
	v.at[len(byRank)] = uint32(len(b))
	v.bytes = string(b)
	return v
}

// rank returns s's rank, or -1 when s is no token.
func (v *vocab) rank(s string) int32 {
	h := maphash.String(v.seed, s)
	tag := uint32(h >> (64 - 32 + rankBits))
	for i := h & v.mask; ; i = (i + 1) & v.mask {
		e := v.slots[i]
		if e == 0 {
			return -1
		}
		if e>>rankBits == tag {
			r := e&(1<<rankBits-1) - 1
			if from, to := v.at[r], v.at[r+1]; int(to-from) == len(s) && v.bytes[from:to] == s {
				return int32(r)
			}
		}
	}
}
