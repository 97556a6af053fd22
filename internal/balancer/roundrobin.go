package balancer

import "sync"

// maxSchedulePeriod bounds the precomputed smooth-WRR schedule (2 bytes per
// slot, so at most 128 KiB per priority group). Longer periods, which need
// large co-prime weights, use the locked incremental algorithm instead.
const maxSchedulePeriod = 1 << 16

// maxScheduleWork bounds the build cost (period × nodes steps) of a schedule,
// so that a large upstream with awkward weights cannot stall a reload.
const maxScheduleWork = 1 << 24

// roundRobin is nginx's smooth weighted round robin over one priority group.
//
// The sequence it produces is periodic: with weights divided by their gcd the
// current weights return to all zeros after sum(weights) picks. When that
// period is small enough the whole schedule is computed at build time and a
// pick is one atomic increment plus an index, with no lock. Otherwise the
// incremental algorithm runs under a mutex, exactly as nginx does.
type roundRobin struct {
	ids     []int // picker indices of the nodes with weight > 0
	weights []int // weights of ids, divided by their gcd
	// sched holds, per slot, a position in ids; nil selects the locked path.
	sched []uint16
	pos   *rrCounter

	mu  sync.Mutex
	cur []int // nginx's current_weight per position in ids, under mu
}

func newRoundRobin(p *picker, lo, hi int, pos *rrCounter, maxPeriod int) *roundRobin {
	r := &roundRobin{pos: pos}
	g := 0
	for i := lo; i < hi; i++ {
		if w := p.nodes[i].Weight; w > 0 {
			r.ids = append(r.ids, i)
			r.weights = append(r.weights, w)
			g = gcd(g, w)
		}
	}
	period := 0
	for k := range r.weights {
		r.weights[k] /= g
		period += r.weights[k]
	}
	r.cur = make([]int, len(r.ids))
	if len(r.ids) > 0 && period <= maxPeriod && period*len(r.ids) <= maxScheduleWork {
		r.sched = make([]uint16, period)
		for s := range r.sched {
			r.sched[s] = uint16(smoothStep(r.cur, r.weights, nil, Tried{}))
		}
		// After a full period the current weights are all zero again, so cur
		// is already the correct starting state should it ever be used.
	}
	return r
}

// smoothStep advances nginx's smooth WRR by one pick over the positions whose
// node is not in tried and returns the chosen position, or -1. Every eligible
// node gains its weight; the best (first on ties) pays back the total.
func smoothStep(cur, weights, ids []int, tried Tried) int {
	best, total := -1, 0
	for k, w := range weights {
		if ids != nil && tried.has(ids[k]) {
			continue
		}
		cur[k] += w
		total += w
		if best < 0 || cur[k] > cur[best] {
			best = k
		}
	}
	if best >= 0 {
		cur[best] -= total
	}
	return best
}

func (r *roundRobin) pick(_ VarSource, tried Tried) int {
	if len(r.ids) == 0 {
		return -1
	}
	if r.sched == nil {
		return r.pickLocked(tried)
	}
	period := uint64(len(r.sched))
	slot := (r.pos.n.Add(1) - 1) % period
	id := r.ids[r.sched[slot]]
	if tried.n == 0 || !tried.has(id) {
		return id
	}
	if tried.skip != nil {
		return r.skipDown(slot, tried)
	}
	return r.skipTried(slot, tried)
}

// skipDown moves past excluded nodes when a health mask is in play by taking
// the next slots of the shared position, instead of walking from slot as
// skipTried does: an unhealthy node's slots are then spread over the other
// nodes in schedule order rather than all handed to its successor (with
// equal weights, two of three nodes would otherwise split 1:2).
func (r *roundRobin) skipDown(slot uint64, tried Tried) int {
	if !anyUntried(r.ids, tried) {
		return -1
	}
	period := uint64(len(r.sched))
	for range period {
		slot = (r.pos.n.Add(1) - 1) % period
		if id := r.ids[r.sched[slot]]; !tried.has(id) {
			return id
		}
	}
	// Concurrent picks took the free slots meanwhile: walk instead.
	return r.skipTried(slot, tried)
}

// skipTried walks the schedule forward from slot to the next node not tried
// yet, so that a retry still follows the weighted order. Every eligible node
// appears in the schedule, so the walk ends within one period.
func (r *roundRobin) skipTried(slot uint64, tried Tried) int {
	if !anyUntried(r.ids, tried) {
		return -1
	}
	period := uint64(len(r.sched))
	for step := uint64(1); step < period; step++ {
		id := r.ids[r.sched[(slot+step)%period]]
		if !tried.has(id) {
			return id
		}
	}
	return -1
}

func (r *roundRobin) pickLocked(tried Tried) int {
	var ids []int
	if tried.n > 0 {
		ids = r.ids
	}
	r.mu.Lock()
	k := smoothStep(r.cur, r.weights, ids, tried)
	r.mu.Unlock()
	if k < 0 {
		return -1
	}
	return r.ids[k]
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
