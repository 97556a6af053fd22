package balancer

// Tried is the set of nodes a request has already attempted. The caller keeps
// one per request on its stack, adds each node Pick returned before retrying,
// and passes it to Pick by value; the zero value is an empty set. Up to 64
// nodes it is a single word, so the common case never allocates; larger
// upstreams allocate the overflow words on their first retry only.
type Tried struct {
	low  uint64   // nodes 0..63
	high []uint64 // nodes 64 and up, allocated on demand
	n    int
	// skip holds, in Pick's own copy only, the health mask merged in (its
	// nodes 64 and up are read from it; see exclude); callers never set it.
	skip *Mask
}

// Len reports how many nodes have been tried.
func (t *Tried) Len() int { return t.n }

// Reset empties the set, keeping any overflow storage for reuse.
func (t *Tried) Reset() {
	t.low = 0
	clear(t.high)
	t.n = 0
	t.skip = nil
}

// Add records n, a node returned by Pick, as tried.
func (t *Tried) Add(n *Node) {
	if n != nil {
		t.add(n.index)
	}
}

// has reports whether node i has been tried.
func (t *Tried) has(i int) bool {
	if i < 64 {
		return t.low&(1<<uint(i)) != 0
	}
	w := i/64 - 1
	if w < len(t.high) && t.high[w]&(1<<uint(i%64)) != 0 {
		return true
	}
	return t.skip != nil && t.skip.Has(i)
}

// add records node i as tried.
func (t *Tried) add(i int) {
	if t.has(i) {
		return
	}
	t.n++
	if i < 64 {
		t.low |= 1 << uint(i)
		return
	}
	w := i/64 - 1
	if w >= len(t.high) {
		t.high = append(t.high, make([]uint64, w+1-len(t.high))...)
	}
	t.high[w] |= 1 << uint(i%64)
}
