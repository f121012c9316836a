package tokens

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
		pair := uint64(noPair)
		if int(k) < n {
			m.prev[k] = i
			if r := v.rank(p[i:m.next[k]]); r >= 0 {
				pair = uint64(r)<<32 | uint64(i)
			}
		}
		t[leaves+int(i)] = pair
		h := m.prev[i]
		if h >= 0 {
			pair = noPair
			if r := v.rank(p[h:k]); r >= 0 {
				pair = uint64(r)<<32 | uint64(h)
			}
			t[leaves+int(h)] = pair
		} else {
			h = i
		}
		m.fix(int(h), int(i), int(j))
	}
	return parts
}

// fix replays the matches above leaves a <= b <= c, each node once.
func (m *merger) fix(a, b, c int) {
	t := m.tree
	a, b, c = a+m.leaves, b+m.leaves, c+m.leaves
	for a > 1 {
		a, b, c = a/2, b/2, c/2
		t[a] = min(t[2*a], t[2*a+1])
		if b != a {
			t[b] = min(t[2*b], t[2*b+1])
		}
		if c != b {
			t[c] = min(t[2*c], t[2*c+1])
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
