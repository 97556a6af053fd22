package balancer

import (
	"math"
	"math/rand/v2"
	"time"
)

// decayTime is the EWMA time constant, APISIX's and finagle's 10 s: a sample
// loses 1/e of its influence every 10 s.
const decayTime = float64(10 * time.Second)

// failedLatency is the latency recorded for a failed attempt. APISIX records
// nothing for attempts it retries, so a node refusing connections keeps the
// low score of its last good response and keeps being picked first; recording
// a failure as a slow response steers traffic away until the score decays.
const failedLatency = float64(time.Second)

// unprobedPenalty is the score of a node that has attempts in flight but has
// never reported a latency (finagle's penalty). Without it a new node, whose
// cost is zero, would receive every request until its first one completes.
const unprobedPenalty = float64(time.Hour)

// ewma is finagle's peak-EWMA with power-of-two-choices: two distinct random
// nodes are compared by score and the lower wins, which avoids the herding
// that picking the global minimum causes.
type ewma struct {
	ids    []int // picker indices of the nodes with weight > 0
	states []*nodeState
}

func newEWMA(p *picker, lo, hi int) *ewma {
	e := &ewma{}
	for i := lo; i < hi; i++ {
		if p.nodes[i].Weight > 0 {
			e.ids = append(e.ids, i)
			e.states = append(e.states, p.states[i])
		}
	}
	return e
}

func (e *ewma) pick(_ VarSource, tried Tried) int {
	n := len(e.ids)
	if tried.n > 0 {
		n = 0
		for _, id := range e.ids {
			if !tried.has(id) {
				n++
			}
		}
	}
	switch n {
	case 0:
		return -1
	case 1:
		return e.ids[e.nth(0, tried)]
	}
	a := rand.IntN(n)
	b := rand.IntN(n - 1)
	if b >= a {
		b++
	}
	a, b = e.nth(a, tried), e.nth(b, tried)
	if lessLoaded(e.states[b], e.states[a]) {
		a = b
	}
	return e.ids[a]
}

// nth returns the position in ids of the r-th node not in tried.
func (e *ewma) nth(r int, tried Tried) int {
	if tried.n == 0 {
		return r
	}
	for k, id := range e.ids {
		if tried.has(id) {
			continue
		}
		if r == 0 {
			return k
		}
		r--
	}
	return -1 // unreachable: callers pass r below the untried count
}

// score is the node's load estimate: the latency EWMA, decayed toward zero
// for the time since its last sample (as APISIX does, so an idle node gets
// probed again), times the attempts in flight plus one (as finagle does, so a
// node that is slow right now is avoided before its samples arrive).
//
// Pick compares scores with lessLoaded, which gives the same order without
// reading the clock; score states the definition and serves tests.
func (s *nodeState) score(now int64) float64 {
	cost, stamp, pending := s.load()
	if td := float64(now - stamp); td > 0 && cost > 0 {
		cost *= math.Exp(-td / decayTime)
	}
	if cost == 0 && pending > 0 {
		return unprobedPenalty + float64(pending)
	}
	return cost * float64(pending+1)
}

// lessLoaded reports whether a.score(now) < b.score(now) for any now, without
// reading the clock: both decay toward zero at the same rate, so only the
// difference of their sample times matters. This saves a clock read and an
// exponential per pick.
func lessLoaded(a, b *nodeState) bool {
	ca, sa, pa := a.load()
	cb, sb, pb := b.load()
	// Classes: 0 never sampled and idle (score 0), 1 sampled, 2 never sampled
	// but busy (the penalty).
	ka, kb := class(ca, pa), class(cb, pb)
	switch {
	case ka != kb:
		return ka < kb
	case ka == 0:
		return false
	case ka == 2:
		return pa < pb
	}
	// ca·e^(-(now-sa)/τ)·(pa+1) < cb·e^(-(now-sb)/τ)·(pb+1)
	return ca*math.Exp(float64(sa-sb)/decayTime)*float64(pa+1) < cb*float64(pb+1)
}

func class(cost float64, pending int64) int {
	switch {
	case cost > 0:
		return 1
	case pending > 0:
		return 2
	}
	return 0
}

// load reads the node's EWMA state without locking; a concurrent observe may
// make cost and stamp one sample apart, which only blurs one comparison.
func (s *nodeState) load() (cost float64, stamp, pending int64) {
	return math.Float64frombits(s.cost.Load()), s.stamp.Load(), s.inflight.Load()
}

// observe folds one attempt's latency into the node's peak-EWMA: a sample
// above the current cost replaces it at once (peak sensitivity), a lower one
// is averaged in with a weight that grows with the time since the last sample.
func (s *nodeState) observe(now int64, res Result) {
	rtt := float64(res.Latency)
	if res.Failed {
		rtt = max(rtt, failedLatency)
	}
	s.mu.Lock()
	cost := math.Float64frombits(s.cost.Load())
	if rtt > cost {
		cost = rtt
	} else {
		td := max(float64(now-s.stamp.Load()), 0)
		w := math.Exp(-td / decayTime)
		cost = cost*w + rtt*(1-w)
	}
	s.cost.Store(math.Float64bits(cost))
	s.stamp.Store(now)
	s.mu.Unlock()
}
