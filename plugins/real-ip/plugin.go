// Package realip implements APISIX's real-ip plugin: behind a proxy, it takes
// the client's address from a header or query argument (X-Forwarded-For,
// X-Real-IP, ...) when the peer is trusted, like nginx's realip module.
//
// The plugin SDK cannot change the connection's address yet: the plugin
// stores the address it found in the Ctx under CtxKey (a netip.Addr) and the
// port, if one was sent, under CtxPortKey (a uint16). The engine must take
// them as remote_addr / remote_port for the rest of the request: later
// plugins' RemoteIP, the X-Real-IP and X-Forwarded-For it sends upstream,
// and the access log.
package realip

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/sluicegw/sluice/internal/expr"
	"github.com/sluicegw/sluice/plugin"
)

// Name and Priority are APISIX's (apisix/plugins/real-ip.lua): 23000, the
// first plugin to run, so every other plugin sees the real address.
const (
	Name     = "real-ip"
	Priority = 23000
)

// Ctx keys of the address found.
const (
	CtxKey     = "real_ip"
	CtxPortKey = "real_port"
)

func init() {
	plugin.Register(plugin.Descriptor{
		Name:      Name,
		Priority:  Priority,
		NewConfig: func() plugin.Config { return NewConfig() },
		New:       newRealIP,
	})
}

// realIP is one compiled real-ip config; immutable.
type realIP struct {
	source    string
	xff       bool // source is http_x_forwarded_for
	trusted   []netip.Prefix
	recursive bool
}

func newRealIP(cfg plugin.Config, _ plugin.Deps) (any, error) {
	c := cfg.(*Config)
	r := &realIP{
		source:    c.Source,
		xff:       c.Source == "http_x_forwarded_for",
		recursive: c.Recursive && c.TrustedAddresses != nil,
	}
	for _, a := range c.TrustedAddresses {
		p, err := expr.ParsePrefix(a)
		if err != nil {
			return nil, err
		}
		r.trusted = append(r.trusted, p)
	}
	return r, nil
}

// Rewrite finds the client's address. A missing or malformed address, or a
// peer outside trusted_addresses, leaves the address unchanged; the request
// always goes on, as in APISIX.
func (r *realIP) Rewrite(c *plugin.Ctx) *plugin.Exit {
	if r.trusted != nil && !r.isTrusted(c.Request.RemoteIP()) {
		return nil
	}
	addr, ok := r.addr(c.Request)
	if !ok {
		return nil
	}
	ip, port, ok := parseAddr(addr)
	if !ok {
		return nil
	}
	c.Set(CtxKey, ip)
	if port != 0 {
		c.Set(CtxPortKey, port)
	}
	return nil
}

// Addr returns the address real-ip found for the request in c.
func Addr(c *plugin.Ctx) (netip.Addr, bool) {
	v, ok := c.Get(CtxKey)
	if !ok {
		return netip.Addr{}, false
	}
	a, ok := v.(netip.Addr)
	return a, ok
}

func (r *realIP) isTrusted(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	a = a.Unmap()
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// addr returns the raw address text from the source.
func (r *realIP) addr(req plugin.Request) (string, bool) {
	if !r.xff {
		v, ok := req.Var(r.source)
		return strings.TrimSpace(v), ok && v != ""
	}
	xff := req.Header("X-Forwarded-For")
	if xff == "" {
		return "", false
	}
	i := strings.LastIndexByte(xff, ',')
	if i < 0 {
		return strings.TrimSpace(xff), true
	}
	if !r.recursive {
		return strings.TrimSpace(xff[i+1:]), true
	}
	// From the right, the first address that is not a trusted proxy; the
	// leftmost when they all are.
	for {
		last := strings.TrimSpace(xff[i+1:])
		if a, err := netip.ParseAddr(last); err != nil || !r.isTrusted(a) {
			return last, true
		}
		xff = xff[:i]
		if i = strings.LastIndexByte(xff, ','); i < 0 {
			return strings.TrimSpace(xff), true
		}
	}
}

// parseAddr splits "ip", "ip:port", "[ipv6]" and "[ipv6]:port" like APISIX's
// core.utils.parse_addr and keeps only valid IP addresses and ports 1-65535.
// Unlike APISIX, a port that is not a number makes the address invalid
// rather than being ignored.
func parseAddr(s string) (netip.Addr, uint16, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a, 0, a.Zone() == ""
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		a, err := netip.ParseAddr(s[1 : len(s)-1])
		return a, 0, err == nil && a.Is6() && a.Zone() == ""
	}
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return netip.Addr{}, 0, false
	}
	host, ps := s[:i], s[i+1:]
	bracketed := strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]")
	if bracketed {
		host = host[1 : len(host)-1]
	} else if strings.IndexByte(host, ':') >= 0 {
		return netip.Addr{}, 0, false // IPv6 with a port needs brackets
	}
	a, err := netip.ParseAddr(host)
	if err != nil || a.Zone() != "" || bracketed != a.Is6() {
		return netip.Addr{}, 0, false
	}
	port, err := strconv.ParseUint(ps, 10, 16)
	if err != nil || port < 1 {
		return netip.Addr{}, 0, false
	}
	return a, uint16(port), true
}

// Interface guards.
var (
	_ plugin.Rewriter = (*realIP)(nil)
	_ plugin.Config   = (*Config)(nil)
)
