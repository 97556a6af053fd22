// Package refererrestriction implements APISIX's referer-restriction plugin:
// it rejects requests by the host of their Referer header.
package refererrestriction

import (
	"encoding/json"
	"strings"

	"github.com/sluicegw/sluice/plugin"
)

// Priority is APISIX's priority for referer-restriction.
const Priority = 2990

func init() {
	plugin.Register(plugin.Descriptor{
		Name:      "referer-restriction",
		Priority:  Priority,
		NewConfig: func() plugin.Config { return NewConfig() },
		New:       newRestriction,
	})
}

// restriction is a built referer-restriction instance. It is immutable.
type restriction struct {
	hosts hostSet
	// allow is true for a whitelist: a Referer host in the set passes.
	allow         bool
	bypassMissing bool
	reject        *plugin.Exit
}

func newRestriction(cfg plugin.Config, _ plugin.Deps) (any, error) {
	c := cfg.(*Config)
	list, allow := c.Blacklist, false
	if c.Whitelist != nil {
		list, allow = c.Whitelist, true
	}
	return &restriction{
		hosts:         newHostSet(list),
		allow:         allow,
		bypassMissing: c.BypassMissing,
		reject:        messageExit(403, c.Message),
	}, nil
}

// Access checks the host of the Referer header. A missing, empty or
// malformed Referer is rejected unless bypass_missing is set.
func (r *restriction) Access(c *plugin.Ctx) *plugin.Exit {
	host, ok := refererHost(c.Request.Header("Referer"))
	if !ok {
		if r.bypassMissing {
			return nil
		}
		return r.reject
	}
	if r.hosts.match(host) != r.allow {
		return r.reject
	}
	return nil
}

// hostSet matches hosts exactly or by suffix, as APISIX's host matcher does:
// comparisons are case-sensitive, and "*.example.com" matches
// "a.example.com" but not "example.com".
type hostSet struct {
	exact    map[string]struct{}
	suffixes []string // the patterns after their leading "*"
}

func newHostSet(list []string) hostSet {
	s := hostSet{exact: make(map[string]struct{}, len(list))}
	for _, h := range list {
		if suffix, ok := strings.CutPrefix(h, "*"); ok {
			s.suffixes = append(s.suffixes, suffix)
		} else {
			s.exact[h] = struct{}{}
		}
	}
	return s
}

func (s hostSet) match(host string) bool {
	if _, ok := s.exact[host]; ok {
		return true
	}
	for _, suffix := range s.suffixes {
		if strings.HasSuffix(host, suffix) {
			return true
		}
	}
	return false
}

// refererHost extracts the host of a Referer the way lua-resty-http's
// parse_uri does for APISIX: an optional "http:" or "https:" (lower case),
// then "//", then either a bracketed IPv6 literal or the longest run of
// characters other than "[]:/?". Anything else is malformed. The host is
// returned as sent, without lower-casing; a port is not part of it.
func refererHost(ref string) (string, bool) {
	rest, ok := strings.CutPrefix(ref, "https://")
	if !ok {
		rest, ok = strings.CutPrefix(ref, "http://")
	}
	if !ok {
		// A scheme-less "//host/..." takes the request's scheme.
		rest, ok = strings.CutPrefix(ref, "//")
	}
	if !ok {
		return "", false
	}
	if strings.HasPrefix(rest, "[") {
		// \[.+\] is greedy: up to the last "]" on the line.
		line, _, _ := strings.Cut(rest, "\n")
		end := strings.LastIndexByte(line, ']')
		if end < 2 {
			return "", false
		}
		return rest[:end+1], true
	}
	end := strings.IndexAny(rest, "[]:/?")
	if end < 0 {
		end = len(rest)
	}
	if end == 0 {
		return "", false
	}
	return rest[:end], true
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
