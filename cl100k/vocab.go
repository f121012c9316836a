package cl100k

// vocab finds a token's rank by its bytes. It is a Go map's job, but the
// lookups are most of a count's time, and most of theirs is cache misses
// in a map of 100,000 strings; here a miss costs one look at a 4-byte slot
// of a 1 MiB table (a hit two more, at the bytes, to be sure).
//
// Its hash has no random seed: the table is fixed, so what a lookup of
// any string can cost is bounded by its longest run of full slots.
type vocab struct {
	slots []uint32 // tag<<rankBits | rank+1; 0 is empty
	mask  uint64
	at    []uint32 // token r is bytes[at[r]:at[r+1]]
	bytes string
}

const rankBits = 17 // cl100k_base's ranks are below 2^17

func newVocab(ranks map[string]int) *vocab {
	v := &vocab{}
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
		h := hash(tok)
		i := h & v.mask
		for v.slots[i] != 0 {
			i = (i + 1) & v.mask
		}
		v.slots[i] = tagOf(h)<<rankBits | uint32(r+1)
	}
	v.at[len(byRank)] = uint32(len(b))
	v.bytes = string(b)
	return v
}

func tagOf(h uint64) uint32 { return uint32(h >> (64 - 32 + rankBits)) }

// rank returns s's rank, or -1 when s is no token.
func (v *vocab) rank(s string) int32 {
	h := hash(s)
	return v.find(s, h&v.mask, tagOf(h))
}

// rank2 is rank of two strings, their slots read together: the two
// cache misses overlap.
func (v *vocab) rank2(s, t string) (int32, int32) {
	hs, ht := hash(s), hash(t)
	is, it := hs&v.mask, ht&v.mask
	es, et := v.slots[is], v.slots[it]
	rs, rt := int32(-1), int32(-1)
	if es != 0 {
		rs = v.find(s, is, tagOf(hs))
	}
	if et != 0 {
		rt = v.find(t, it, tagOf(ht))
	}
	return rs, rt
}

func (v *vocab) find(s string, i uint64, tag uint32) int32 {
	for ; ; i = (i + 1) & v.mask {
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

// hash mixes s eight bytes at a time (splitmix64's constants).
func hash(s string) uint64 {
	h := uint64(len(s)) * 0x9e3779b97f4a7c15
	for ; len(s) >= 8; s = s[8:] {
		x := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
			uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
		h = (h ^ x) * 0xbf58476d1ce4e5b9
		h ^= h >> 31
	}
	var x uint64
	for i := 0; i < len(s); i++ {
		x |= uint64(s[i]) << (8 * i)
	}
	h = (h ^ x) * 0x94d049bb133111eb
	h ^= h >> 29
	h *= 0xbf58476d1ce4e5b9
	return h ^ h>>32
}
