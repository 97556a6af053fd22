package balancer

import "math/bits"

// Health connects a Picker to the health checker of its upstream. Pick asks
// Down on every call and Done hands every attempt's outcome to Observe, so
// both sit on the request path: implementations answer from atomics, without
// locks or allocation, and leave state changes to a slower path of their own.
type Health interface {
	// Down returns the nodes that must get no traffic, by Node.Index, or nil
	// when every node may take traffic. A checker returns nil, too, when every
	// node is unhealthy: APISIX then sends traffic to all of them rather than
	// to none.
	Down() *Mask
	// Observe reports the outcome of an attempt on the node at index i.
	Observe(i int, res Result)
}

// Mask is an immutable set of node indices, a health checker's unhealthy
// nodes. Up to 64 nodes it is one word, like Tried.
type Mask struct {
	low  uint64   // nodes 0..63
	high []uint64 // nodes 64 and up
}

// NewMask returns the set of the given indices; nil when there are none, so
// that Pick's common case is a nil check.
func NewMask(indices []int) *Mask {
	if len(indices) == 0 {
		return nil
	}
	m := &Mask{}
	for _, i := range indices {
		if i < 0 {
			continue
		}
		if i < 64 {
			m.low |= 1 << uint(i)
			continue
		}
		w := i/64 - 1
		if w >= len(m.high) {
			m.high = append(m.high, make([]uint64, w+1-len(m.high))...)
		}
		m.high[w] |= 1 << uint(i%64)
	}
	return m
}

// Has reports whether node i is in the set.
func (m *Mask) Has(i int) bool {
	if m == nil || i < 0 {
		return false
	}
	if i < 64 {
		return m.low&(1<<uint(i)) != 0
	}
	w := i/64 - 1
	return w < len(m.high) && m.high[w]&(1<<uint(i%64)) != 0
}

// exclude makes t skip the nodes of m as if they had been tried. t is Pick's
// own copy: the low word is merged in place, and the overflow words are
// consulted through t.skip instead of being merged, since t.high shares its
// array with the caller's Tried and a merged copy would allocate.
func (t *Tried) exclude(m *Mask) {
	add := m.low &^ t.low
	t.low |= add
	t.n += bits.OnesCount64(add)
	t.skip = m
	for w, word := range m.high {
		if w < len(t.high) {
			word &^= t.high[w]
		}
		t.n += bits.OnesCount64(word)
	}
}
