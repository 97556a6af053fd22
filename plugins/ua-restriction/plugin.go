// Package uarestriction implements APISIX's ua-restriction plugin: it
// rejects requests by their User-Agent header, matched against regular
// expressions.
package uarestriction

import (
	"encoding/json"
	"regexp"
	"strings"

	"github.com/sluicegw/sluice/plugin"
)

// Priority is APISIX's priority for ua-restriction.
const Priority = 2999

func init() {
	plugin.Register(plugin.Descriptor{
		Name:      "ua-restriction",
		Priority:  Priority,
		NewConfig: func() plugin.Config { return NewConfig() },
		New:       newRestriction,
	})
}

// restriction is a built ua-restriction instance. It is immutable.
type restriction struct {
	// list is matched one expression at a time rather than joined into one
	// alternation: Go's regexp engine finds literal prefixes only in a
	// single expression, which makes typical lists several times faster.
	list []*regexp.Regexp
	// allow is true for an allowlist: a matching User-Agent passes.
	allow         bool
	bypassMissing bool
	reject        *plugin.Exit
}

func newRestriction(cfg plugin.Config, _ plugin.Deps) (any, error) {
	c := cfg.(*Config)
	list, allow := c.DenyList, false
	if c.AllowList != nil {
		list, allow = c.AllowList, true
	}
	r := &restriction{allow: allow, bypassMissing: c.BypassMissing, reject: messageExit(403, c.Message)}
	for _, expr := range list {
		re, err := regexp.Compile(expr)
		if err != nil {
			return nil, err
		}
		r.list = append(r.list, re)
	}
	return r, nil
}

// Access checks the first User-Agent header, with surrounding white space
// trimmed as APISIX does. A header that is present but empty is not
// missing: it is matched as "".
func (r *restriction) Access(c *plugin.Ctx) *plugin.Exit {
	ua, ok := c.Request.Var("http_user_agent")
	if !ok {
		if r.bypassMissing {
			return nil
		}
		return r.reject
	}
	if r.matches(strings.Trim(ua, " \t\n\v\f\r")) != r.allow {
		return r.reject
	}
	return nil
}

func (r *restriction) matches(ua string) bool {
	for _, re := range r.list {
		if re.MatchString(ua) {
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
