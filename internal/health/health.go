// Package health runs APISIX's upstream health checks (lua-resty-healthcheck
// semantics): active probes sent off the request path, and passive counting
// of the outcomes the proxy reports through balancer.Picker.Done.
//
// There is one checker per upstream per process. The runtime binds each
// upstream that has `checks` while it compiles a configuration (Bind) and
// commits the bindings once that configuration is live (Commit): only then do
// probes start, restart (when the checks changed) or stop (when the upstream
// went away). Node state is keyed by upstream key and node address, so it
// survives reloads; a node that stays keeps its state even when the checks
// change.
//
// Pickers see health through View, a balancer.Health: an atomic pointer to
// the set of unhealthy nodes, republished only when a node crosses between
// taking traffic and not.
package health

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicegw/sluice/internal/balancer"
	"github.com/sluicegw/sluice/internal/config"
)

// Spec describes one upstream to check.
type Spec struct {
	// Key is the upstream's stable identity ("upstreams/1",
	// "routes/1/upstream", "services/1/upstream").
	Key string
	// Checks is the upstream's decoded, defaulted and validated checks.
	Checks *config.HealthChecks
	// Nodes in balancer order (Node.Index): descending priority, stable.
	Nodes []balancer.Node
	// HostHeader, when set, is the Host of http(s) probes unless
	// checks.active.host is set: APISIX sends upstream_host when pass_host
	// is rewrite.
	HostHeader string
}

// rules is the compiled form of a checks object.
type rules struct {
	checks   config.HealthChecks // for change detection
	host     string              // Host header override, "" for the node's host
	typ      string
	timeout  time.Duration
	conc     int
	port     int
	request  string // http(s) probe head up to, not including, Host
	body     string
	healthy  time.Duration
	sick     time.Duration
	activeOK statusSet
	activeKO statusSet
	active   limits
	passive  limits
	// passiveStatuses says whether responses are classified at all; without
	// a passive section only connection failures and timeouts count, as in
	// APISIX.
	passiveStatuses bool
	passiveOK       statusSet
	passiveKO       statusSet
	verify          bool
}

// limits are the counts that flip a node, per counter kind.
type limits [4]int

// statusSet is a bitmap of the statuses 200-599.
type statusSet [7]uint64

func (s *statusSet) add(code int) {
	if code >= 200 && code < 648 {
		s[(code-200)/64] |= 1 << uint((code-200)%64)
	}
}

func (s *statusSet) has(code int) bool {
	return code >= 200 && code < 648 && s[(code-200)/64]&(1<<uint((code-200)%64)) != 0
}

func statuses(codes []int) statusSet {
	var s statusSet
	for _, c := range codes {
		s.add(c)
	}
	return s
}

func compile(spec Spec) *rules {
	a := spec.Checks.Active
	r := &rules{
		checks:  *spec.Checks,
		host:    a.Host,
		typ:     a.Type,
		timeout: time.Duration(a.Timeout * float64(time.Second)),
		conc:    max(a.Concurrency, 1),
		port:    a.Port,
		healthy: time.Duration(max(a.Healthy.Interval, 1)) * time.Second,
		sick:    time.Duration(max(a.Unhealthy.Interval, 1)) * time.Second,
		verify:  a.HTTPSVerifyCertificate,
		active: limits{ctrSuccess: a.Healthy.Successes, ctrHTTP: a.Unhealthy.HTTPFailures,
			ctrTCP: a.Unhealthy.TCPFailures, ctrTimeout: a.Unhealthy.Timeouts},
		activeOK: statuses(a.Healthy.HTTPStatuses),
		activeKO: statuses(a.Unhealthy.HTTPStatuses),
		passive: limits{ctrSuccess: config.DefaultPassiveSuccesses, ctrHTTP: config.DefaultPassiveHTTPFailures,
			ctrTCP: config.DefaultPassiveTCPFailures, ctrTimeout: config.DefaultPassiveTimeouts},
	}
	if r.host == "" {
		r.host = spec.HostHeader
	}
	if p := spec.Checks.Passive; p != nil {
		r.passiveStatuses = true
		r.passive = limits{ctrSuccess: p.Healthy.Successes, ctrHTTP: p.Unhealthy.HTTPFailures,
			ctrTCP: p.Unhealthy.TCPFailures, ctrTimeout: p.Unhealthy.Timeouts}
		r.passiveOK = statuses(p.Healthy.HTTPStatuses)
		r.passiveKO = statuses(p.Unhealthy.HTTPStatuses)
	}
	var b strings.Builder
	b.WriteString(a.HTTPMethod + " " + a.HTTPPath + " HTTP/1.1\r\nConnection: close\r\n")
	for _, h := range a.ReqHeaders {
		b.WriteString(h + "\r\n")
	}
	r.request = b.String()
	r.body = a.HTTPReqBody
	return r
}

// sameProbes reports whether two rule sets probe identically, so that a
// reload that changes neither keeps the running prober.
func (r *rules) sameProbes(o *rules) bool {
	return reflect.DeepEqual(r.checks.Active, o.checks.Active) && r.host == o.host
}

// Registry owns every upstream's checker. The runtime creates one and drives
// it from its single apply loop: BeginCompile, Bind per checked upstream,
// then Commit after a successful swap. Status is safe from any goroutine.
type Registry struct {
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	entries map[string]*entry
	pending map[string]*View
}

// NewRegistry returns an empty registry; Close stops its probes.
func NewRegistry(log *slog.Logger) *Registry {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Registry{log: log, ctx: ctx, cancel: cancel, entries: make(map[string]*entry), pending: make(map[string]*View)}
}

// entry is one upstream's checker: its nodes' state, the View of the live
// configuration, and the running prober.
type entry struct {
	key  string
	log  *slog.Logger
	mu   sync.Mutex
	tgts map[string]*target // by node address
	// view is the committed View: the one the live snapshot's picker reads
	// and the prober walks. Views of older snapshots keep their last mask.
	view   *View
	rules  *rules
	stop   context.CancelFunc
	active bool // committed at least once
}

// BeginCompile forgets bindings of a compile that was never committed.
func (r *Registry) BeginCompile() {
	r.mu.Lock()
	clear(r.pending)
	r.mu.Unlock()
}

// Bind returns the balancer.Health for an upstream being compiled. Nothing
// runs until Commit; a compile that fails simply leaves its View unused.
func (r *Registry) Bind(spec Spec) *View {
	rl := compile(spec)
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.entries[spec.Key]
	if e == nil {
		e = &entry{key: spec.Key, log: r.log, tgts: make(map[string]*target)}
		r.entries[spec.Key] = e
	}
	v := &View{entry: e, rules: rl, targets: make([]*target, len(spec.Nodes)), weighted: make([]bool, len(spec.Nodes))}
	e.mu.Lock()
	for i, n := range spec.Nodes {
		addr := n.Addr
		if addr == "" {
			addr = net.JoinHostPort(n.Host, strconv.Itoa(n.Port))
		}
		t := e.tgts[addr]
		if t == nil {
			t = &target{addr: addr, host: n.Host, port: n.Port, owner: e}
			e.tgts[addr] = t
		}
		v.targets[i] = t
		v.weighted[i] = n.Weight > 0
	}
	e.mu.Unlock()
	v.publish()
	r.pending[spec.Key] = v
	return v
}

// Commit makes the Views bound since BeginCompile live: each upstream's
// checker starts, restarts when its active checks changed (node states are
// kept), or keeps running; checkers of upstreams no longer bound stop.
func (r *Registry) Commit() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for key, e := range r.entries {
		v := r.pending[key]
		if v == nil {
			if e.stop != nil {
				e.stop()
			}
			delete(r.entries, key)
			continue
		}
		e.mu.Lock()
		keep := make(map[string]*target, len(v.targets))
		for _, t := range v.targets {
			keep[t.addr] = t
		}
		e.tgts = keep
		e.view = v
		restart := e.rules == nil || !e.rules.sameProbes(v.rules)
		e.rules = v.rules
		e.active = true
		if restart {
			if e.stop != nil {
				e.stop()
			}
			ctx, cancel := context.WithCancel(r.ctx)
			e.stop = cancel
			p := &prober{entry: e, rules: v.rules, log: r.log}
			go p.run(ctx)
		}
		e.mu.Unlock()
		v.publish()
	}
	clear(r.pending)
}

// Close stops every prober.
func (r *Registry) Close() { r.cancel() }

// flipped republishes the live View's mask after t started or stopped
// taking traffic.
func (e *entry) flipped(t *target, st uint32) {
	e.mu.Lock()
	v := e.view
	e.mu.Unlock()
	if v != nil {
		v.publish()
	}
	e.log.Warn("upstream node health changed", "upstream", e.key, "node", t.addr, "status", stateNames[st],
		"success", t.counter(ctrSuccess), "http_failure", t.counter(ctrHTTP),
		"tcp_failure", t.counter(ctrTCP), "timeout_failure", t.counter(ctrTimeout))
}

// View is one compiled picker's window on its upstream's checker: node
// indices in balancer order mapped to the shared node state. It implements
// balancer.Health.
type View struct {
	entry    *entry
	rules    *rules
	targets  []*target
	weighted []bool
	down     atomic.Pointer[balancer.Mask]
	// pubMu orders concurrent publishes so the last state wins.
	pubMu sync.Mutex
}

// Down implements balancer.Health.
func (v *View) Down() *balancer.Mask { return v.down.Load() }

// Observe implements balancer.Health: the passive check. A response is
// classified by its status (when passive checks are configured); an attempt
// without one counts as a timeout or a TCP failure.
func (v *View) Observe(i int, res balancer.Result) {
	if i < 0 || i >= len(v.targets) {
		return
	}
	t, r := v.targets[i], v.rules
	switch {
	case res.Status != 0:
		if !r.passiveStatuses {
			return
		}
		switch {
		case r.passiveOK.has(res.Status):
			t.report(ctrSuccess, r.passive[ctrSuccess])
		case r.passiveKO.has(res.Status):
			t.report(ctrHTTP, r.passive[ctrHTTP])
		}
	case res.Timeout:
		t.report(ctrTimeout, r.passive[ctrTimeout])
	case res.Failed:
		t.report(ctrTCP, r.passive[ctrTCP])
	}
}

// publish recomputes the mask from the nodes' states. When every node that
// can take traffic (weight > 0) is unhealthy the mask is nil: APISIX then
// balances over all nodes.
func (v *View) publish() {
	v.pubMu.Lock()
	defer v.pubMu.Unlock()
	var down []int
	allDown, anyWeighted := true, false
	for i, t := range v.targets {
		isUp := up(t.state.Load())
		if !isUp {
			down = append(down, i)
		}
		if v.weighted[i] {
			anyWeighted = true
			if isUp {
				allDown = false
			}
		}
	}
	if anyWeighted && allDown {
		down = nil
	}
	v.down.Store(balancer.NewMask(down))
}

var _ balancer.Health = (*View)(nil)

// UpstreamStatus is one checked upstream in APISIX's control API shape
// (GET /v1/healthcheck).
type UpstreamStatus struct {
	// Key is sluice's upstream key ("upstreams/1", "routes/1/upstream").
	Key string `json:"-"`
	// Name is APISIX's: the resource the checker reports from, e.g.
	// "/apisix/upstreams/1" or "/apisix/routes/1" for an inline upstream.
	Name  string       `json:"name"`
	Type  string       `json:"type"`
	Nodes []NodeStatus `json:"nodes"`
}

// NodeStatus is one node of an UpstreamStatus.
type NodeStatus struct {
	IP       string `json:"ip"`
	Port     int    `json:"port"`
	Hostname string `json:"hostname"`
	// Status is healthy, mostly_healthy, unhealthy or mostly_unhealthy.
	Status string `json:"status"`
	// Healthy says whether the node takes traffic (healthy or
	// mostly_healthy), for gauges.
	Healthy bool    `json:"-"`
	Counter Counter `json:"counter"`
}

// Counter is a node's current counts.
type Counter struct {
	Success        int `json:"success"`
	HTTPFailure    int `json:"http_failure"`
	TCPFailure     int `json:"tcp_failure"`
	TimeoutFailure int `json:"timeout_failure"`
}

// Status returns every live checker's state, ordered by name.
func (r *Registry) Status() []UpstreamStatus {
	r.mu.Lock()
	entries := make([]*entry, 0, len(r.entries))
	for _, e := range r.entries {
		entries = append(entries, e)
	}
	r.mu.Unlock()
	out := make([]UpstreamStatus, 0, len(entries))
	for _, e := range entries {
		e.mu.Lock()
		v, rl, active := e.view, e.rules, e.active
		e.mu.Unlock()
		if !active || v == nil {
			continue
		}
		us := UpstreamStatus{Key: e.key, Name: Name(e.key), Type: rl.typ, Nodes: make([]NodeStatus, 0, len(v.targets))}
		for _, t := range v.targets {
			st := t.state.Load()
			hostname := rl.checks.Active.Host
			if hostname == "" {
				hostname = t.host
			}
			us.Nodes = append(us.Nodes, NodeStatus{
				IP: t.host, Port: rl.probePort(t), Hostname: hostname,
				Status: stateNames[st], Healthy: up(st),
				Counter: Counter{Success: t.counter(ctrSuccess), HTTPFailure: t.counter(ctrHTTP),
					TCPFailure: t.counter(ctrTCP), TimeoutFailure: t.counter(ctrTimeout)},
			})
		}
		out = append(out, us)
	}
	slices.SortFunc(out, func(a, b UpstreamStatus) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Name maps an upstream key to the name APISIX gives its checker: the path
// of the resource that holds the upstream.
func Name(key string) string {
	return "/apisix/" + strings.TrimSuffix(key, "/upstream")
}

// probePort is the port probes (and APISIX's status) use for t.
func (r *rules) probePort(t *target) int {
	if r.port != 0 {
		return r.port
	}
	return t.port
}

// tlsConfig is the client TLS of https probes to t.
func (r *rules) tlsConfig(t *target) *tls.Config {
	name := r.host
	if name == "" && net.ParseIP(t.host) == nil {
		name = t.host
	}
	if h, _, err := net.SplitHostPort(name); err == nil {
		name = h
	}
	//nolint:gosec // https_verify_certificate false is the user's explicit choice.
	return &tls.Config{ServerName: name, InsecureSkipVerify: !r.verify}
}
