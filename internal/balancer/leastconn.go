package balancer

import "math/rand/v2"

// leastConn picks the node with the fewest in-flight attempts relative to its
// weight, APISIX's score (active+1)/weight. Counts are atomics shared through
// the Registry, so the pick is a lock-free scan; for the node counts of real
// upstreams a scan costs less than keeping a heap consistent under a lock.
type leastConn struct {
	ids     []int   // picker indices of the nodes with weight > 0
	weights []int64 // weights of ids
	states  []*nodeState
}

func newLeastConn(p *picker, lo, hi int) *leastConn {
	l := &leastConn{}
	for i := lo; i < hi; i++ {
		if w := p.nodes[i].Weight; w > 0 {
			l.ids = append(l.ids, i)
			l.weights = append(l.weights, int64(w))
			l.states = append(l.states, p.states[i])
		}
	}
	return l
}

func (l *leastConn) pick(_ VarSource, tried Tried) int {
	n := len(l.ids)
	if n == 0 {
		return -1
	}
	// Starting the scan at a random node spreads ties (idle nodes of equal
	// weight) instead of always sending them to the first one.
	start := 0
	if n > 1 {
		start = rand.IntN(n)
	}
	best, bestLoad, bestW := -1, int64(0), int64(1)
	for k := 0; k < n; k++ {
		j := start + k
		if j >= n {
			j -= n
		}
		if tried.n > 0 && tried.has(l.ids[j]) {
			continue
		}
		load := l.states[j].inflight.Load() + 1
		// load/w < bestLoad/bestW, compared without division.
		if best < 0 || load*bestW < bestLoad*l.weights[j] {
			best, bestLoad, bestW = j, load, l.weights[j]
		}
	}
	if best < 0 {
		return -1
	}
	return l.ids[best]
}
