package cl100k

import "math"

// merger counts the tokens byte-pair encoding makes of a piece, with the
// merges tiktoken makes: repeatedly the adjacent pair whose merged bytes
// have the lowest rank, the leftmost of equals, until no pair has a rank.
// tiktoken finds each merge by scanning the whole piece, quadratic in its
// length; here a tournament tree over the pairs holds the least, so each
// merge costs O(log n) (and n is at most Window but in tests). Its
// buffers are reused from piece to piece.
type merger struct {
	// Parts are named by the offset of their first byte; a merge keeps the
	// left one's name. next[i] is where the part after i starts.
	next, prev []int32
	// tree is a tournament tree over the pairs: leaf leaves+i holds
	// rank<<32|i for part i merged with the part after it (none: the
	// maximum); each node holds the least of its two children, so tree[1]
	// is the next merge: the least rank, the leftmost of equals.
	tree   []uint64
	leaves int
}

const noPair = math.MaxUint64

// count returns the tokens of p, len(p) <= Window; pairs holds the rank of
// every two bytes (or -1), the lookups most frequent by far.
func (m *merger) count(v *vocab, pairs *[1 << 16]int32, p string) int {
	n := len(p)
	leaves := 1
	for leaves < n {
		leaves *= 2
	}
	if cap(m.tree) < 2*leaves {
		m.next, m.prev, m.tree = make([]int32, leaves), make([]int32, leaves), make([]uint64, 2*leaves)
	}
	m.next, m.prev, m.tree, m.leaves = m.next[:n], m.prev[:n], m.tree[:2*leaves], leaves
	t := m.tree
	for i := range n {
		m.next[i], m.prev[i] = int32(i+1), int32(i-1)
		t[leaves+i] = noPair
		if i+1 < n {
			if r := pairs[int(p[i])<<8|int(p[i+1])]; r >= 0 {
				t[leaves+i] = uint64(r)<<32 | uint64(i)
			}
		}
	}
	for i := leaves + n; i < 2*leaves; i++ {
		t[i] = noPair
	}
	for i := leaves - 1; i > 0; i-- {
		t[i] = min(t[2*i], t[2*i+1])
	}
	parts := n
	for t[1] != noPair {
		i := int32(uint32(t[1]))
		j := m.next[i]
		k := m.next[j]
		m.next[i] = k
		parts--
		t[leaves+int(j)] = noPair
		// The pairs the merge made: i with the part after it, and the part
		// before i with i.
		h := m.prev[i]
		right, left := "", ""
		if int(k) < n {
			m.prev[k] = i
			right = p[i:m.next[k]]
		}
		if h >= 0 {
			left = p[h:k]
		}
		rr, rl := v.rank2(right, left)
		t[leaves+int(i)] = noPair
		if rr >= 0 {
			t[leaves+int(i)] = uint64(rr)<<32 | uint64(i)
		}
		if h >= 0 {
			t[leaves+int(h)] = noPair
			if rl >= 0 {
				t[leaves+int(h)] = uint64(rl)<<32 | uint64(h)
			}
		} else {
			h = i
		}
		m.fix(int(h), int(i), int(j))
	}
	return parts
}

// fix replays the matches above leaves a, b and c, each path up only as
// far as it changes something: the merged pair's goes to the top (it was
// the least), the others mostly stop soon. Paths done one after the other
// leave every node the least of its children: one stopped early where
// nothing changed, so what is above was right already.
func (m *merger) fix(a, b, c int) {
	t := m.tree
	for _, i := range [3]uint{uint(a), uint(b), uint(c)} {
		for i += uint(m.leaves); i > 1; {
			i >>= 1
			v := min(t[2*i], t[2*i+1])
			if t[i] == v {
				break
			}
			t[i] = v
		}
	}
}

// keep returns how many of the parts the last count left end at or
// before limit (at least one), and where the last of them ends.
func (m *merger) keep(limit int) (parts, end int) {
	for i := 0; ; {
		j := int(m.next[i])
		if j > limit && parts > 0 {
			return parts, i
		}
		parts++
		if j >= len(m.next) || j > limit {
			return parts, j
		}
		i = j
	}
}
