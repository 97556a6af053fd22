package ratelimit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/sluicegw/sluice/plugin"
)

// Fingerprint identifies a configuration's content (its JSON): limit state
// is kept under it, so it survives a reload that leaves the configuration as
// it was and restarts when it changes (APISIX keys it by the plugin
// configuration's version). Two gateways with the same configuration compute
// the same fingerprint, which lets them share Redis keys.
func Fingerprint(cfg any) string {
	b, err := json.Marshal(cfg)
	if err != nil {
		panic(fmt.Sprintf("ratelimit: marshalling a validated config: %v", err)) // plain data: cannot fail
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// Routes holds one scope per route (APISIX limits per route: its keys are
// prefixed with the route), built on the route's first request. It is kept
// in plugin.Deps.Lasting under the configuration's fingerprint.
type Routes[S any] struct {
	New func(route string) *S
	m   sync.Map // route id -> *S
}

// LocalRoutes returns the scopes of a local policy: kept in deps.Lasting
// under owner and the configuration's fingerprint fp, so state survives a
// reload that leaves the configuration as it was; a private set in a
// validation-only compile (no Lasting).
func LocalRoutes[S any](deps plugin.Deps, owner, fp string, newScope func(route string) *S) *Routes[S] {
	// Building cannot fail, so neither can Get.
	o, _ := deps.Lasting.Get(owner+"/local/"+fp, func() (any, error) { return &Routes[S]{New: newScope}, nil })
	if o == nil {
		return &Routes[S]{New: newScope}
	}
	return o.(*Routes[S])
}

// Get returns route's scope.
func (r *Routes[S]) Get(route string) *S {
	if v, ok := r.m.Load(route); ok {
		return v.(*S)
	}
	route = strings.Clone(route) // kept: must not be a view of request memory
	v, _ := r.m.LoadOrStore(route, r.New(route))
	return v.(*S)
}

// LastRoute caches the scope of the route an instance saw last: an
// instance nearly always serves one route, so a request usually skips the
// map. The zero value is ready.
type LastRoute[S any] struct {
	p atomic.Pointer[routeScope[S]]
}

type routeScope[S any] struct {
	route string
	s     *S
}

// Get returns route's scope from r, through the cache.
func (l *LastRoute[S]) Get(r *Routes[S], route string) *S {
	if c := l.p.Load(); c != nil && c.route == route {
		return c.s
	}
	s := r.Get(route)
	l.p.Store(&routeScope[S]{route: strings.Clone(route), s: s})
	return s
}
