// Package balancer picks the upstream Node for each proxy attempt. It implements
// APISIX's balancer types (roundrobin, chash, least_conn, ewma) and node
// priorities. Pickers are built when a snapshot is compiled, never per request,
// and their per-node state (in-flight counts, latency scores, round-robin
// position) lives in a Registry owned by the runtime so that it survives
// reloads.
package balancer

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"time"
)

// Balancer types accepted in Spec.Type. They are the APISIX upstream "type" values.
const (
	TypeRoundRobin = "roundrobin"
	TypeCHash      = "chash"
	TypeLeastConn  = "least_conn"
	TypeEWMA       = "ewma"
)

// Hash sources accepted in Spec.HashOn. They are the APISIX upstream "hash_on" values.
const (
	HashOnVars             = "vars"
	HashOnHeader           = "header"
	HashOnCookie           = "cookie"
	HashOnConsumer         = "consumer"
	HashOnVarsCombinations = "vars_combinations"
)

// ErrNoNode is returned by Pick when every node that may take traffic has
// already been tried for this request, or the upstream has no such node.
var ErrNoNode = errors.New("balancer: no upstream node left to try")

// Node is one upstream target. The pointer returned by Picker.Pick points into
// the picker's own immutable copy and must not be modified.
type Node struct {
	// Addr is "host:port", the node's identity for state kept across reloads.
	// When empty, New fills it from Host and Port.
	Addr string
	// Host is the host name or IP address to connect to.
	Host string
	// Port is the TCP port to connect to.
	Port int
	// Weight is the node's share of traffic. Zero drains the node: it is never
	// picked, but requests already on it complete normally.
	Weight int
	// Priority groups nodes: only when every node of the highest priority has
	// been tried for a request are lower priorities used (APISIX semantics).
	Priority int

	// index is the node's position in its picker, so that Done finds its state
	// without a map lookup.
	index int
}

// VarSource gives access to request variables (nginx/APISIX names such as
// "remote_addr", "uri", "arg_x", "http_x_api_key", "cookie_sid",
// "consumer_name"). router.Request satisfies it.
type VarSource interface {
	Var(name string) (value string, ok bool)
}

// Result is the outcome of one attempt against a node, reported to Done.
type Result struct {
	// Latency is the time from starting the connection to the end of the
	// response header (APISIX uses connect time plus response time).
	Latency time.Duration
	// Failed is true when no usable response came back: connect error, reset
	// or timeout. ewma penalises such attempts instead of rewarding a fast
	// refusal.
	Failed bool
	// Timeout says that a failure was a timeout (connect or read) rather
	// than a refused, reset or broken connection; passive health checks
	// count the two separately.
	Timeout bool
	// Status is the upstream response's status code, 0 when none arrived.
	// Passive health checks classify it.
	Status int
}

// Picker chooses a node for each attempt of a request. Implementations are safe
// for concurrent use.
//
// The contract: every successful Pick is followed by exactly one Done with the
// same *Node once the attempt ends. A caller that retries adds the node to its
// Tried (tried.Add(node)) so that the next Pick moves on to another node. A
// request keeps the same Picker (from its snapshot) for all of its attempts,
// since Tried holds positions in that picker.
//
// Tried is passed by value on purpose: a pointer handed to an interface method
// escapes, which would move every request's Tried to the heap.
type Picker interface {
	// Pick returns the node for the next attempt, skipping nodes in tried. It
	// returns ErrNoNode when no node is left. req may be nil when the balancer
	// type does not hash on the request.
	Pick(req VarSource, tried Tried) (*Node, error)
	// Done reports the outcome of an attempt on a node returned by Pick.
	Done(node *Node, res Result)
}

// Spec describes the upstream a Picker is built for.
type Spec struct {
	// UpstreamKey is the upstream's stable identity (its id, or the route id
	// plus "/upstream" for inline upstreams). State in the Registry is keyed by
	// it; two different upstreams must never share a key.
	UpstreamKey string
	// Type is roundrobin (default when empty), chash, least_conn or ewma.
	Type string
	// HashOn is where chash takes its key: vars (default when empty), header,
	// cookie, consumer or vars_combinations.
	HashOn string
	// Key names the variable, header or cookie chash hashes, or holds the
	// "$var" template for vars_combinations.
	Key string
	// Nodes are the upstream's targets.
	Nodes []Node
	// Health, when set, keeps unhealthy nodes out of Pick and receives every
	// attempt's outcome from Done. Its indices are Node.Index values, i.e.
	// Nodes sorted by descending priority (stable).
	Health Health
}

// group is the set of nodes sharing one priority: nodes[lo:hi] of the picker.
type group struct {
	lo, hi int
	sel    selector
}

// selector is one balancing algorithm over one priority group. pick returns
// a picker-wide node index, or -1 when every eligible node of the group has
// been tried.
type selector interface {
	pick(req VarSource, tried Tried) int
}

// picker is the Picker for all types: it walks priority groups in order and
// leaves the choice within a group to the group's selector.
type picker struct {
	nodes  []Node
	states []*nodeState
	groups []group
	// track says whether Pick/Done maintain in-flight counts; only least_conn
	// and ewma read them, so roundrobin and chash skip the shared writes.
	track bool
	// ewma says whether Done feeds latency into the node's score.
	ewma   bool
	reg    *Registry
	health Health
}

// New builds the Picker for spec, reusing state kept in reg for nodes that
// were already part of the upstream named by spec.UpstreamKey, and dropping
// reg's state for nodes no longer listed. Call it with the runtime's registry
// only for snapshots meant to go live; to merely check a configuration pass a
// nil reg, which gives the picker private state.
func New(spec Spec, reg *Registry) (Picker, error) {
	nodes, err := normalizeNodes(spec.Nodes)
	if err != nil {
		return nil, err
	}
	if reg == nil {
		reg = NewRegistry()
	}
	p := &picker{nodes: nodes, reg: reg, health: spec.Health}
	var mk func(g *group) selector
	switch spec.Type {
	case "", TypeRoundRobin:
		mk = func(g *group) selector {
			rr := reg.rrCounter(spec.UpstreamKey, nodes[g.lo].Priority)
			return newRoundRobin(p, g.lo, g.hi, rr, maxSchedulePeriod)
		}
	case TypeCHash:
		kf, err := newKeyFunc(spec.HashOn, spec.Key)
		if err != nil {
			return nil, err
		}
		mk = func(g *group) selector { return newCHash(p, g.lo, g.hi, kf) }
	case TypeLeastConn:
		p.track = true
		mk = func(g *group) selector { return newLeastConn(p, g.lo, g.hi) }
	case TypeEWMA:
		p.track, p.ewma = true, true
		mk = func(g *group) selector { return newEWMA(p, g.lo, g.hi) }
	default:
		return nil, fmt.Errorf("type: unknown balancer type %q", spec.Type)
	}
	p.states = reg.adopt(spec.UpstreamKey, nodes)
	for lo := 0; lo < len(nodes); {
		hi := lo + 1
		for hi < len(nodes) && nodes[hi].Priority == nodes[lo].Priority {
			hi++
		}
		g := group{lo: lo, hi: hi}
		g.sel = mk(&g)
		p.groups = append(p.groups, g)
		lo = hi
	}
	return p, nil
}

// normalizeNodes copies nodes, fills Addr, checks them and sorts them by
// descending priority (stable, so configuration order breaks ties).
func normalizeNodes(in []Node) ([]Node, error) {
	nodes := make([]Node, len(in))
	seen := make(map[string]int, len(in))
	for i, n := range in {
		if n.Addr == "" {
			if n.Host == "" {
				return nil, fmt.Errorf("nodes[%d].host: must not be empty", i)
			}
			n.Addr = net.JoinHostPort(n.Host, strconv.Itoa(n.Port))
		}
		if n.Weight < 0 {
			return nil, fmt.Errorf("nodes[%d].weight: must be >= 0", i)
		}
		// State is keyed by Addr, so two entries for one address would share
		// (and double count) it; APISIX would silently keep only one of them.
		if j, dup := seen[n.Addr]; dup {
			return nil, fmt.Errorf("nodes[%d]: duplicate address %q (also nodes[%d])", i, n.Addr, j)
		}
		seen[n.Addr] = i
		nodes[i] = n
	}
	slices.SortStableFunc(nodes, func(a, b Node) int { return b.Priority - a.Priority })
	if len(nodes) > maxNodes {
		return nil, fmt.Errorf("nodes: %d nodes exceed the limit of %d", len(nodes), maxNodes)
	}
	for i := range nodes {
		nodes[i].index = i
	}
	return nodes, nil
}

// maxNodes bounds an upstream's size so that node indices fit the compact
// schedules and rings (uint16 and uint32 entries).
const maxNodes = 1 << 16

// Pick implements Picker.
func (p *picker) Pick(req VarSource, tried Tried) (*Node, error) {
	if p.health != nil {
		// tried is this call's copy: unhealthy nodes are skipped as if
		// tried, without touching the caller's set.
		if m := p.health.Down(); m != nil {
			tried.exclude(m)
		}
	}
	for gi := range p.groups {
		g := &p.groups[gi]
		i := g.sel.pick(req, tried)
		if i < 0 {
			continue
		}
		if p.track {
			p.states[i].inflight.Add(1)
		}
		return &p.nodes[i], nil
	}
	return nil, ErrNoNode
}

// Done implements Picker.
func (p *picker) Done(n *Node, res Result) {
	if n == nil || !p.track && p.health == nil {
		return
	}
	i := n.index
	// A node from another picker (or a copy) would corrupt another node's
	// counts; ignoring it is the lesser harm.
	if i < 0 || i >= len(p.nodes) || &p.nodes[i] != n {
		return
	}
	if p.health != nil {
		p.health.Observe(i, res)
	}
	if !p.track {
		return
	}
	st := p.states[i]
	st.inflight.Add(-1)
	if p.ewma {
		st.observe(p.reg.now(), res)
	}
}

var _ Picker = (*picker)(nil)
