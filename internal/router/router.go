package router

import (
	"net/netip"

	"github.com/sluicegw/sluice/internal/expr"
)

// Route is one APISIX route as the router sees it. The runtime fills Value
// with its own compiled route (plugin chain, upstream picker, ...), which
// Match hands back.
type Route[T any] struct {
	// ID identifies the route in error messages.
	ID string
	// URIs are the request paths the route serves (APISIX uri/uris): exact
	// ("/a/b"), prefix ("/api/*", "/api*"), parameters ("/users/:id", one
	// non-empty segment) and catch-alls ("/files/*path"). At least one is
	// required.
	URIs []string
	// Hosts are exact host names or "*.example.com" wildcards, compared
	// case-insensitively. Empty matches any host, but a route whose host
	// matches is always preferred over one without hosts.
	Hosts []string
	// Methods are upper-case HTTP methods; empty matches any method.
	Methods []string
	// RemoteAddrs are client IPs or CIDRs, IPv4 or IPv6; empty matches any.
	RemoteAddrs []string
	// Vars is an extra condition on request variables; nil matches all.
	Vars *expr.Expr
	// Filter, if set, is called last, after everything else matched; it is
	// the hook for APISIX's filter_func. It must be safe for concurrent use.
	Filter func(Request) bool
	// Priority orders routes that share the same URI index entry (the same
	// exact URI, or the same literal prefix); higher wins. It never lets a
	// shorter prefix beat a longer one, nor a prefix beat an exact URI.
	Priority int
	// Value is returned by Match for this route.
	Value T
}

// Options tune how New interprets routes.
type Options struct {
	// NoParamMatch treats ':' in URIs as a literal character, like APISIX's
	// default radixtree_host_uri router. By default ":name" segments are
	// parameters, like radixtree_uri_with_parameter.
	NoParamMatch bool
}

// Router is an immutable, compiled set of routes. It is safe for concurrent
// use; build a new one for every configuration snapshot.
type Router[T any] struct {
	exactHosts map[string]*table[T]
	wildHosts  *node[*table[T]] // keyed by the reversed suffix after '*'
	anyHost    *table[T]        // routes without hosts

	wildBuild *bnode[*table[T]] // wildHosts under construction
}

// table indexes the routes of one host (or of no host) by URI.
type table[T any] struct {
	exact  map[string][]candidate[T]
	prefix *node[[]candidate[T]]

	prefixBuild *bnode[[]candidate[T]] // prefix under construction
}

// candidate is one (route, URI) pair in a table slot, kept in match order.
// The route's conditions are copied in rather than pointed to, saving a
// cache miss per candidate.
type candidate[T any] struct {
	r        compiled[T]
	pat      *pattern // nil when the index key alone decides the path
	priority int
	uriLen   int
	seq      int // position in the input, the final tie-breaker
}

// compiled is a route's non-URI conditions and value, shared by all the
// slots the route occupies.
type compiled[T any] struct {
	methods uint16
	addrs   []netip.Prefix
	vars    *expr.Expr
	filter  func(Request) bool
	value   T
}

// state carries one lookup's request data through the tree walk, so it is
// read from the Request at most once.
type state struct {
	req      Request
	path     string
	method   uint16
	addr     netip.Addr
	addrRead bool
	capture  bool
	params   []Param
}

// Match returns the value of the route that matches req, following APISIX's
// precedence (see docs/routing.md). It allocates nothing.
func (r *Router[T]) Match(req Request) (value T, ok bool) {
	st := state{req: req, path: req.Path(), method: methodBit(req.Method())}
	if c := r.match(&st); c != nil {
		return c.value, true
	}
	return value, false
}

// MatchParams is Match that also appends the matched route's path parameters
// to params and returns the extended slice. It allocates nothing when params
// has enough capacity, so callers can pass a reused buffer such as
// make([]Param, 0, 8). Unnamed parameters (":" or "*") are not reported.
func (r *Router[T]) MatchParams(req Request, params []Param) (value T, _ []Param, ok bool) {
	st := state{req: req, path: req.Path(), method: methodBit(req.Method()), capture: true, params: params}
	if c := r.match(&st); c != nil {
		return c.value, st.params, true
	}
	return value, st.params[:len(params)], false
}

// match tries the host indexes in APISIX radixtree_host_uri order: the exact
// host, then wildcard hosts from the longest suffix to the shortest, then
// routes without hosts. A host whose routes all fail falls through to the
// next.
func (r *Router[T]) match(st *state) *compiled[T] {
	if len(r.exactHosts) > 0 || r.wildHosts != nil {
		host := st.req.Host()
		if t := r.lookupHost(host); t != nil {
			if c := t.match(st); c != nil {
				return c
			}
		}
		if r.wildHosts != nil {
			if c := r.walkHosts(r.wildHosts, host, 0, st); c != nil {
				return c
			}
		}
	}
	if r.anyHost != nil {
		return r.anyHost.match(st)
	}
	return nil
}

// lookupHost finds the exact-host table. Request.Host is documented lower
// case, but an engine that forgets to fold it must not cause a miss or an
// allocation, so upper-case hosts are folded into a stack buffer (a map
// index by string(bytes) does not allocate).
func (r *Router[T]) lookupHost(host string) *table[T] {
	if len(r.exactHosts) == 0 {
		return nil
	}
	upper := false
	for i := 0; i < len(host); i++ {
		if 'A' <= host[i] && host[i] <= 'Z' {
			upper = true
			break
		}
	}
	if !upper {
		return r.exactHosts[host]
	}
	var buf [maxHostLen]byte
	if len(host) > len(buf) {
		return nil
	}
	for i := 0; i < len(host); i++ {
		buf[i] = lowerASCII(host[i])
	}
	return r.exactHosts[string(buf[:len(host)])]
}

// walkHosts walks the reversed-suffix tree along host read backwards and
// tries the deepest (longest) matching wildcard first.
func (r *Router[T]) walkHosts(n *node[*table[T]], host string, pos int, st *state) *compiled[T] {
	if pos < len(host) {
		if c := n.child(lowerASCII(host[len(host)-1-pos])); c != nil && hasSuffixFold(host, pos, c.label) {
			if m := r.walkHosts(c, host, pos+len(c.label), st); m != nil {
				return m
			}
		}
	}
	if n.set {
		return n.val.match(st)
	}
	return nil
}

// match looks the path up in the table: exact URIs first, then prefixes
// from the longest to the shortest.
func (t *table[T]) match(st *state) *compiled[T] {
	if cs, ok := t.exact[st.path]; ok {
		if c := pick(st, cs); c != nil {
			return c
		}
	}
	if t.prefix == nil {
		return nil
	}
	return walkPrefix(t.prefix, 0, st)
}

func walkPrefix[T any](n *node[[]candidate[T]], pos int, st *state) *compiled[T] {
	if pos < len(st.path) {
		if c := n.child(st.path[pos]); c != nil && len(st.path)-pos >= len(c.label) && st.path[pos:pos+len(c.label)] == c.label {
			if m := walkPrefix(c, pos+len(c.label), st); m != nil {
				return m
			}
		}
	}
	if n.set {
		return pick(st, n.val)
	}
	return nil
}

// pick returns the first candidate, in precedence order, whose conditions
// all hold. Checks run cheapest first; the filter runs last because it may
// be user code.
func pick[T any](st *state, cs []candidate[T]) *compiled[T] {
	for i := range cs {
		c := &cs[i]
		r := &c.r
		if r.methods != 0 && r.methods&st.method == 0 {
			continue
		}
		if len(r.addrs) > 0 && !st.addrIn(r.addrs) {
			continue
		}
		mark := len(st.params)
		if c.pat != nil {
			var ok bool
			if st.params, ok = c.pat.match(st.path, st.params, st.capture); !ok {
				continue
			}
		}
		if (r.vars != nil && !r.vars.Eval(st.req)) || (r.filter != nil && !r.filter(st.req)) {
			st.params = st.params[:mark]
			continue
		}
		return r
	}
	return nil
}

func (st *state) addrIn(prefixes []netip.Prefix) bool {
	if !st.addrRead {
		st.addr = st.req.RemoteIP().Unmap()
		st.addrRead = true
	}
	if !st.addr.IsValid() {
		return false
	}
	for _, p := range prefixes {
		if p.Contains(st.addr) {
			return true
		}
	}
	return false
}
