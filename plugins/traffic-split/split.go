package trafficsplit

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/sluicegw/sluice/plugin"
)

// maxPeriod bounds the precomputed schedule (2 bytes a slot, 128 KiB at
// most). With at most 20 entries, only large co-prime weights exceed it;
// those fall back to the incremental algorithm under a mutex.
const maxPeriod = 1 << 16

// split is one rule's weighted choice: nginx's smooth weighted round robin
// (the sequence lua-resty-balancer's roundrobin approximates), so that 3:1
// goes A A B A and every window of sum(weights) picks is exact.
//
// The sequence repeats every sum(weights/gcd) picks, so it is computed once
// when the plugin is built; a pick is one atomic increment and an index.
// The position starts at a random slot: a configuration change rebuilds the
// instance, and starting every build at slot 0 would hand the first slots
// (the heaviest entry's) an unfair share under frequent reloads.
type split struct {
	refs  []plugin.UpstreamRef // entries with weight > 0
	sched []uint16             // per slot, an index in refs; nil: locked path
	pos   atomic.Uint64

	mu      sync.Mutex
	weights []int // of refs, divided by their gcd
	cur     []int // nginx's current weights, under mu
}

// newSplit builds the schedule over refs by weights; entries of weight 0
// are left out. start is the first slot taken.
func newSplit(refs []plugin.UpstreamRef, weights []int, start uint64) *split {
	s := &split{}
	g := 0
	for i, w := range weights {
		if w > 0 {
			s.refs = append(s.refs, refs[i])
			s.weights = append(s.weights, w)
			g = gcd(g, w)
		}
	}
	period := 0
	for i := range s.weights {
		s.weights[i] /= g
		period += s.weights[i]
	}
	s.cur = make([]int, len(s.weights))
	if len(s.refs) > 0 && period <= maxPeriod {
		s.sched = make([]uint16, period)
		for i := range s.sched {
			s.sched[i] = uint16(smoothStep(s.cur, s.weights))
		}
		// After a whole period the current weights are all zero again.
		s.pos.Store(start % uint64(period))
	}
	return s
}

// next returns the upstream for one request; the zero ref (the route's
// upstream) when every weight is 0, as APISIX falls back to the route's.
func (s *split) next() plugin.UpstreamRef {
	switch {
	case len(s.refs) == 0:
		return plugin.UpstreamRef{}
	case len(s.refs) == 1:
		return s.refs[0]
	case s.sched != nil:
		n := s.pos.Add(1) - 1
		return s.refs[s.sched[n%uint64(len(s.sched))]]
	}
	s.mu.Lock()
	i := smoothStep(s.cur, s.weights)
	s.mu.Unlock()
	return s.refs[i]
}

// smoothStep advances smooth WRR by one pick: every entry gains its weight,
// the highest (the first on ties) is chosen and pays back the total.
func smoothStep(cur, weights []int) int {
	best, total := 0, 0
	for i, w := range weights {
		cur[i] += w
		total += w
		if cur[i] > cur[best] {
			best = i
		}
	}
	cur[best] -= total
	return best
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// prefixErrors puts path before each of err's errors (the gateway's upstream
// validation reports every bad field at once), so each reads
// "rules[0].weighted_upstreams[1].upstream: nodes[0].port: ...".
func prefixErrors(path string, err error) error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return fmt.Errorf("%s: %w", path, err)
	}
	var errs []error
	for _, e := range j.Unwrap() {
		errs = append(errs, prefixErrors(path, e))
	}
	return joinErrors(errs)
}

// joinErrors reports several errors on one line, "; " between them, as the
// gateway's field errors read; nil when there are none.
func joinErrors(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	parts := make([]string, len(errs))
	for i, e := range errs {
		parts[i] = e.Error()
	}
	return errors.New(strings.Join(parts, "; "))
}
