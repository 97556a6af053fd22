package router

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/sluicegw/sluice/internal/expr"
)

// maxHostLen bounds host names (RFC 1035 allows 253 characters plus a
// trailing dot); it also sizes the stack buffer used to fold request hosts.
const maxHostLen = 255

// RouteError reports why one route could not be compiled. New returns all of
// them joined, so the runtime can disable just the failing routes and show
// each error on its own resource.
type RouteError struct {
	// Index is the route's position in the slice given to New.
	Index int
	// ID is the route's ID, possibly empty.
	ID string
	// Err is the field-level cause, e.g. `remote_addrs[0]: invalid CIDR ...`.
	Err error
}

// Error implements error.
func (e *RouteError) Error() string {
	if e.ID != "" {
		return "route " + strconv.Quote(e.ID) + ": " + e.Err.Error()
	}
	return "routes[" + strconv.Itoa(e.Index) + "]: " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *RouteError) Unwrap() error { return e.Err }

// New compiles routes with the default Options. See NewWithOptions.
func New[T any](routes []Route[T]) (*Router[T], error) {
	return NewWithOptions(routes, Options{})
}

// NewWithOptions compiles routes into a Router. Route order is the final
// tie-breaker between routes with the same URI index entry and priority, so
// callers should pass routes in a stable order (e.g. by ID). If any route is
// invalid, it returns a nil Router and the *RouteError of every invalid route
// joined with errors.Join.
func NewWithOptions[T any](routes []Route[T], opts Options) (*Router[T], error) {
	r := &Router[T]{}
	var errs []error
	seq := 0
	for i := range routes {
		if err := r.add(&routes[i], opts, &seq); err != nil {
			errs = append(errs, &RouteError{Index: i, ID: routes[i].ID, Err: err})
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	r.freeze()
	return r, nil
}

// Validate reports whether rt would compile, without building a router, so
// the admin API can reject a route with the same message the data plane
// would log.
func (rt *Route[T]) Validate(opts Options) error {
	if _, err := compileRoute(rt); err != nil {
		return err
	}
	_, err := parseURIs(rt.URIs, opts)
	return err
}

// uriEntry is a parsed URI of one route.
type uriEntry struct {
	key  string
	kind uriKind
	pat  *pattern
	len  int
}

func parseURIs(uris []string, opts Options) ([]uriEntry, error) {
	if len(uris) == 0 {
		return nil, errors.New("uris: at least one URI is required")
	}
	entries := make([]uriEntry, len(uris))
	for i, u := range uris {
		key, kind, pat, err := parseURI(u, !opts.NoParamMatch)
		if err != nil {
			return nil, fmt.Errorf("uris[%d]: %w", i, err)
		}
		entries[i] = uriEntry{key: key, kind: kind, pat: pat, len: len(u)}
	}
	return entries, nil
}

func (r *Router[T]) add(rt *Route[T], opts Options, seq *int) error {
	c, err := compileRoute(rt)
	if err != nil {
		return err
	}
	entries, err := parseURIs(rt.URIs, opts)
	if err != nil {
		return err
	}
	hosts, err := normalizeHosts(rt.Hosts)
	if err != nil {
		return err
	}
	var tables []*table[T]
	if len(hosts) == 0 {
		if r.anyHost == nil {
			r.anyHost = &table[T]{}
		}
		tables = append(tables, r.anyHost)
	}
	for _, h := range hosts {
		tables = append(tables, r.hostTable(h))
	}
	for _, t := range tables {
		for _, e := range entries {
			t.insert(e, candidate[T]{r: *c, pat: e.pat, priority: rt.Priority, uriLen: e.len, seq: *seq})
			*seq++
		}
	}
	return nil
}

// compileRoute checks and compiles everything but URIs and hosts.
func compileRoute[T any](rt *Route[T]) (*compiled[T], error) {
	c := &compiled[T]{vars: rt.Vars, filter: rt.Filter, value: rt.Value}
	for i, m := range rt.Methods {
		b := methodBit(m)
		if b == 0 {
			return nil, fmt.Errorf("methods[%d]: unknown method %q (want one of GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS, CONNECT, TRACE, PURGE)", i, m)
		}
		c.methods |= b
	}
	for i, a := range rt.RemoteAddrs {
		p, err := expr.ParsePrefix(a)
		if err != nil {
			return nil, fmt.Errorf("remote_addrs[%d]: %w", i, err)
		}
		c.addrs = append(c.addrs, p)
	}
	if _, err := normalizeHosts(rt.Hosts); err != nil {
		return nil, err
	}
	return c, nil
}

// normalizeHosts validates hosts with APISIX's host syntax (an optional
// leading '*' then letters, digits and "-._[]:"), lower-cases them and drops
// duplicates.
func normalizeHosts(hosts []string) ([]string, error) {
	out := make([]string, 0, len(hosts))
	for i, h := range hosts {
		body := strings.TrimPrefix(h, "*")
		if body == "" || len(h) > maxHostLen {
			return nil, fmt.Errorf("hosts[%d]: invalid host %q", i, h)
		}
		for j := 0; j < len(body); j++ {
			c := body[j]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._[]:", c) >= 0) {
				return nil, fmt.Errorf("hosts[%d]: invalid host %q: unexpected %q", i, h, c)
			}
		}
		h = strings.ToLower(h)
		if !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out, nil
}

// hostTable returns the table for a normalized host, creating it.
func (r *Router[T]) hostTable(h string) *table[T] {
	if suffix, ok := strings.CutPrefix(h, "*"); ok {
		if r.wildBuild == nil {
			r.wildBuild = &bnode[*table[T]]{}
		}
		n := r.wildBuild.insert(reverse(suffix))
		if !n.set {
			n.val, n.set = &table[T]{}, true
		}
		return n.val
	}
	if r.exactHosts == nil {
		r.exactHosts = make(map[string]*table[T])
	}
	t := r.exactHosts[h]
	if t == nil {
		t = &table[T]{}
		r.exactHosts[h] = t
	}
	return t
}

func (t *table[T]) insert(e uriEntry, c candidate[T]) {
	if e.kind == uriExact {
		if t.exact == nil {
			t.exact = make(map[string][]candidate[T])
		}
		t.exact[e.key] = append(t.exact[e.key], c)
		return
	}
	if t.prefixBuild == nil {
		t.prefixBuild = &bnode[[]candidate[T]]{}
	}
	n := t.prefixBuild.insert(e.key)
	n.val = append(n.val, c)
	n.set = true
}

// freeze puts every slot in lua-resty-radixtree order (higher priority
// first, then the longer original URI, so "/users/:id" is tried before
// "/users/*", then input order) and converts the trees to lookup form.
func (r *Router[T]) freeze() {
	for _, t := range r.exactHosts {
		t.freeze()
	}
	if r.wildBuild != nil {
		r.wildBuild.each(func(n *bnode[*table[T]]) {
			if n.set {
				n.val.freeze()
			}
		})
		r.wildHosts, r.wildBuild = freeze(r.wildBuild), nil
	}
	if r.anyHost != nil {
		r.anyHost.freeze()
	}
}

func (t *table[T]) freeze() {
	for _, cs := range t.exact {
		sortCandidates(cs)
	}
	if t.prefixBuild != nil {
		t.prefixBuild.each(func(n *bnode[[]candidate[T]]) { sortCandidates(n.val) })
		t.prefix, t.prefixBuild = freeze(t.prefixBuild), nil
	}
}

func sortCandidates[T any](cs []candidate[T]) {
	slices.SortFunc(cs, func(a, b candidate[T]) int {
		if c := cmp.Compare(b.priority, a.priority); c != 0 {
			return c
		}
		if c := cmp.Compare(b.uriLen, a.uriLen); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	})
}

// methodBit maps a method name to its bit; 0 means unknown. These are the
// methods APISIX's route schema accepts.
func methodBit(m string) uint16 {
	switch m {
	case "GET":
		return 1 << 0
	case "POST":
		return 1 << 1
	case "PUT":
		return 1 << 2
	case "DELETE":
		return 1 << 3
	case "PATCH":
		return 1 << 4
	case "HEAD":
		return 1 << 5
	case "OPTIONS":
		return 1 << 6
	case "CONNECT":
		return 1 << 7
	case "TRACE":
		return 1 << 8
	case "PURGE":
		return 1 << 9
	}
	return 0
}

// Compile-time check that Request can be evaluated by vars expressions.
var _ expr.VarSource = Request(nil)
