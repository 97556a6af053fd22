package config

import "strings"

// Defaults APISIX's schema applies (apisix/schema_def.lua).
const (
	DefaultRouteStatus          = 1
	DefaultUpstreamType         = "roundrobin"
	DefaultHashOn               = "vars"
	DefaultScheme               = "http"
	DefaultPassHost             = "pass"
	DefaultKeepaliveSize        = 320
	DefaultKeepaliveIdleTimeout = 60
	DefaultKeepaliveRequests    = 1000
	DefaultSSLType              = "server"
	DefaultSSLStatus            = 1
	DefaultSSLClientDepth       = 1
)

// DefaultKeepalivePool returns the pool settings APISIX fills into a present
// keepalive_pool object. The decoder applies them per absent key; code that builds
// an Upstream by hand can start from this value.
func DefaultKeepalivePool() KeepalivePool {
	return KeepalivePool{
		Size:        DefaultKeepaliveSize,
		IdleTimeout: DefaultKeepaliveIdleTimeout,
		Requests:    DefaultKeepaliveRequests,
	}
}

// ApplyDefaults fills the defaults APISIX applies to a route: status 1, and the
// upstream defaults for an inline upstream. Priority already defaults to 0.
func (r *Route) ApplyDefaults() {
	if r.Status == nil {
		s := DefaultRouteStatus
		r.Status = &s
	}
	if r.Upstream != nil {
		r.Upstream.ApplyDefaults()
	}
}

// ApplyDefaults fills the defaults of the service's inline upstream.
func (s *Service) ApplyDefaults() {
	if s.Upstream != nil {
		s.Upstream.ApplyDefaults()
	}
}

// ApplyDefaults fills type roundrobin, hash_on vars, scheme http and pass_host
// pass when unset, and removes brackets from IPv6 node hosts so every consumer
// sees one spelling. Keepalive pool defaults are applied by the decoder, which
// can tell an absent key from an explicit zero.
func (u *Upstream) ApplyDefaults() {
	if u.Type == "" {
		u.Type = DefaultUpstreamType
	}
	if u.HashOn == "" {
		u.HashOn = DefaultHashOn
	}
	if u.Scheme == "" {
		u.Scheme = DefaultScheme
	}
	if u.PassHost == "" {
		u.PassHost = DefaultPassHost
	}
	for i := range u.Nodes {
		h := u.Nodes[i].Host
		if len(h) > 2 && h[0] == '[' && h[len(h)-1] == ']' && strings.Contains(h, ":") {
			u.Nodes[i].Host = h[1 : len(h)-1]
		}
	}
}

// ApplyDefaults fills type server, status 1 and, when client verification is
// configured, depth 1.
func (s *SSL) ApplyDefaults() {
	if s.Type == "" {
		s.Type = DefaultSSLType
	}
	if s.Status == nil {
		st := DefaultSSLStatus
		s.Status = &st
	}
	if s.Client != nil && s.Client.Depth == nil {
		d := DefaultSSLClientDepth
		s.Client.Depth = &d
	}
}

// orDefault returns v, or def when v is empty, so Validate gives the same answer
// before and after ApplyDefaults.
func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
