package balancer

import (
	"cmp"
	"slices"
)

// pointsPerWeight is the number of ring points per unit of weight; 160 is the
// value nginx and lua-resty-chash use, and keeps the load spread within a few
// percent.
const pointsPerWeight = 160

// maxRingPoints caps the ring (12 bytes per point) when weights are large;
// beyond it points are scaled down proportionally to weight.
const maxRingPoints = 1 << 17

// chash is consistent hashing over one priority group. Each node owns points
// on a 64-bit ring derived from its address only, so adding or removing a
// node moves only the keys on the arcs that node gains or loses.
type chash struct {
	key    keyFunc
	ids    []int    // picker indices of the nodes with weight > 0
	hashes []uint64 // ring points, ascending
	owners []uint32 // picker index owning each point
}

func newCHash(p *picker, lo, hi int, key keyFunc) *chash {
	c := &chash{key: key}
	sum := 0
	for i := lo; i < hi; i++ {
		if w := p.nodes[i].Weight; w > 0 {
			c.ids = append(c.ids, i)
			sum += w
		}
	}
	type point struct {
		h     uint64
		owner uint32
	}
	var ring []point
	for _, id := range c.ids {
		w := p.nodes[id].Weight
		n := w * pointsPerWeight
		if sum*pointsPerWeight > maxRingPoints {
			n = max(1, w*maxRingPoints/sum)
		}
		base := newHasher().add(p.nodes[id].Addr).sum()
		for k := range n {
			// The golden-ratio stride makes each point's input distinct, and
			// mix64 is a bijection, so one node's points never collide.
			ring = append(ring, point{mix64(base + uint64(k+1)*0x9e3779b97f4a7c15), uint32(id)})
		}
	}
	slices.SortFunc(ring, func(a, b point) int {
		if c := cmp.Compare(a.h, b.h); c != 0 {
			return c
		}
		return cmp.Compare(a.owner, b.owner)
	})
	c.hashes = make([]uint64, len(ring))
	c.owners = make([]uint32, len(ring))
	for i, pt := range ring {
		c.hashes[i], c.owners[i] = pt.h, pt.owner
	}
	return c
}

func (c *chash) pick(req VarSource, tried Tried) int {
	if len(c.hashes) == 0 {
		return -1
	}
	if tried.n > 0 && !anyUntried(c.ids, tried) {
		return -1
	}
	i, _ := slices.BinarySearch(c.hashes, c.key.hash(req))
	// Walk clockwise from the key's point; a retry thus lands on the next
	// distinct node of the ring, the same one for every request with this key.
	for range c.owners {
		if i == len(c.owners) {
			i = 0
		}
		if id := int(c.owners[i]); !tried.has(id) {
			return id
		}
		i++
	}
	return -1
}

// anyUntried reports whether some node of ids is not in tried.
func anyUntried(ids []int, tried Tried) bool {
	for _, id := range ids {
		if !tried.has(id) {
			return true
		}
	}
	return false
}
