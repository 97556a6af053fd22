// Package iprestriction implements APISIX's ip-restriction plugin: it lets
// through, or rejects, clients by their IP address against a list of
// addresses and CIDR ranges.
package iprestriction

import (
	"encoding/json"
	"net/netip"
	"slices"

	"github.com/sluicegw/sluice/internal/expr"
	"github.com/sluicegw/sluice/plugin"
)

// Priority is APISIX's priority for ip-restriction.
const Priority = 3000

func init() {
	plugin.Register(plugin.Descriptor{
		Name:      "ip-restriction",
		Priority:  Priority,
		NewConfig: func() plugin.Config { return NewConfig() },
		New:       newRestriction,
	})
}

// restriction is a built ip-restriction instance. It is immutable.
type restriction struct {
	set *ipSet
	// allow is true for a whitelist: a client in the set passes.
	allow  bool
	reject *plugin.Exit
}

func newRestriction(cfg plugin.Config, _ plugin.Deps) (any, error) {
	c := cfg.(*Config)
	list, allow := c.Blacklist, false
	if c.Whitelist != nil {
		list, allow = c.Whitelist, true
	}
	set, err := newIPSet(list)
	if err != nil {
		return nil, err
	}
	return &restriction{set: set, allow: allow, reject: messageExit(c.ResponseCode, c.Message)}, nil
}

// Access rejects the client when its address is outside the whitelist or
// inside the blacklist. A client without an IP address (a unix socket) is
// in no list, as with APISIX's ipmatcher.
func (r *restriction) Access(c *plugin.Ctx) *plugin.Exit {
	if r.set.contains(c.Request.RemoteIP()) != r.allow {
		return r.reject
	}
	return nil
}

// linearMax is the list size up to which a linear scan of prefixes beats
// hashing the address once per distinct prefix length.
const linearMax = 16

// ipSet is a compiled list of addresses and CIDR ranges. Small lists are
// scanned; large ones are looked up by prefix length, like lua-resty-ipmatcher,
// so a lookup costs one hash per distinct length rather than one compare per
// entry. Neither allocates.
type ipSet struct {
	prefixes []netip.Prefix // small lists only
	nets     map[netip.Prefix]struct{}
	bits4    []int // distinct IPv4 prefix lengths in nets, longest first
	bits6    []int
}

func newIPSet(list []string) (*ipSet, error) {
	s := &ipSet{}
	ps := make([]netip.Prefix, 0, len(list))
	for _, e := range list {
		p, err := expr.ParsePrefix(e)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	if len(ps) <= linearMax {
		s.prefixes = ps
		return s, nil
	}
	s.nets = make(map[netip.Prefix]struct{}, len(ps))
	for _, p := range ps {
		s.nets[p] = struct{}{}
		if p.Addr().Is4() {
			s.bits4 = addBits(s.bits4, p.Bits())
		} else {
			s.bits6 = addBits(s.bits6, p.Bits())
		}
	}
	return s, nil
}

func addBits(bits []int, b int) []int {
	if slices.Contains(bits, b) {
		return bits
	}
	bits = append(bits, b)
	slices.Sort(bits)
	slices.Reverse(bits)
	return bits
}

// contains reports whether ip is in the set. IPv4-mapped IPv6 addresses
// match their IPv4 form, and zones are ignored.
func (s *ipSet) contains(ip netip.Addr) bool {
	if !ip.IsValid() {
		return false
	}
	ip = ip.Unmap().WithZone("")
	if s.nets == nil {
		for _, p := range s.prefixes {
			if p.Contains(ip) {
				return true
			}
		}
		return false
	}
	bits := s.bits6
	if ip.Is4() {
		bits = s.bits4
	}
	for _, b := range bits {
		p, _ := ip.Prefix(b) // b is valid for ip's family by construction.
		if _, ok := s.nets[p]; ok {
			return true
		}
	}
	return false
}

// messageExit builds APISIX's {"message": msg} rejection. It encodes with
// encoding/json so that any message is valid JSON.
func messageExit(status int, msg string) *plugin.Exit {
	b, _ := json.Marshal(struct {
		Message string `json:"message"`
	}{msg})
	return plugin.JSONExit(status, string(b))
}

var _ plugin.Accessor = (*restriction)(nil)
