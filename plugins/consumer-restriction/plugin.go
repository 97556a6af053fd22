// Package consumerrestriction implements APISIX's consumer-restriction
// plugin: it lets a request through or rejects it by who sent it (the
// consumer, or its consumer group) or by what it matched (route or service),
// and can limit the methods each consumer may use.
package consumerrestriction

import (
	"github.com/sluicegw/sluice/plugin"
)

// Name and Priority are APISIX's (apisix/plugins/consumer-restriction.lua).
// The priority is below the auth plugins', and the plugin runs in the access
// phase, after auth plugins identified the consumer in the rewrite phase.
const (
	Name     = "consumer-restriction"
	Priority = 2400
)

func init() {
	plugin.Register(plugin.Descriptor{
		Name:      Name,
		Priority:  Priority,
		NewConfig: func() plugin.Config { return NewConfig() },
		New:       newRestriction,
	})
}

// restriction is one compiled consumer-restriction config. It is immutable
// and shared by all requests on the route.
type restriction struct {
	value     func(c *plugin.Ctx) string
	blacklist map[string]struct{}
	whitelist map[string]struct{} // nil: no whitelist
	// byMethods maps a value to the methods it may use; a value listed in
	// several rules keeps the first, as APISIX stops at the first match.
	byMethods map[string]map[string]struct{}
	// reject and missing are built once.
	reject, missing *plugin.Exit
}

func newRestriction(cfg plugin.Config, _ plugin.Deps) (any, error) {
	c := cfg.(*Config)
	r := &restriction{
		value:     valueFuncs[c.Type],
		blacklist: set(c.Blacklist),
		whitelist: set(c.Whitelist),
	}
	if len(c.AllowedByMethods) > 0 {
		r.byMethods = make(map[string]map[string]struct{}, len(c.AllowedByMethods))
		for _, rule := range c.AllowedByMethods {
			if _, seen := r.byMethods[rule.User]; !seen {
				// A rule without methods allows none (APISIX fails with a
				// 500 on such a rule).
				r.byMethods[rule.User] = nonNil(set(rule.Methods))
			}
		}
	}
	msg := "The " + c.Type + " is forbidden."
	if c.RejectedMsg != nil {
		msg = *c.RejectedMsg
	}
	r.reject = plugin.MessageExit(c.RejectedCode, msg)
	r.missing = plugin.MessageExit(401, "The request is rejected, please check the "+c.Type+" for this request")
	return r, nil
}

// valueFuncs return what a request is checked by; "" when it has none.
var valueFuncs = map[string]func(c *plugin.Ctx) string{
	TypeConsumerName: func(c *plugin.Ctx) string {
		if c.Consumer == nil {
			return ""
		}
		return c.Consumer.Username
	},
	TypeConsumerGroupID: func(c *plugin.Ctx) string {
		if c.Consumer == nil {
			return ""
		}
		return c.Consumer.GroupID
	},
	TypeServiceID: func(c *plugin.Ctx) string { return c.ServiceID },
	TypeRouteID:   func(c *plugin.Ctx) string { return c.RouteID },
}

// Access rejects the request by APISIX's rules: a missing value is a 401; a
// blacklisted value, a value not in the whitelist, or a method the value's
// allowed_by_methods rule does not list (unless whitelisted) is rejected with
// rejected_code.
func (r *restriction) Access(c *plugin.Ctx) *plugin.Exit {
	v := r.value(c)
	if v == "" {
		return r.missing
	}
	if _, black := r.blacklist[v]; black {
		return r.reject
	}
	whitelisted := false
	if r.whitelist != nil {
		if _, whitelisted = r.whitelist[v]; !whitelisted {
			return r.reject
		}
	}
	if r.byMethods != nil && !whitelisted {
		if allowed, has := r.byMethods[v]; has {
			if _, ok := allowed[c.Request.Method()]; !ok {
				return r.reject
			}
		}
	}
	return nil
}

// set returns the items of list as a set, nil for an empty list.
func set(list []string) map[string]struct{} {
	if len(list) == 0 {
		return nil
	}
	m := make(map[string]struct{}, len(list))
	for _, s := range list {
		m[s] = struct{}{}
	}
	return m
}

func nonNil(m map[string]struct{}) map[string]struct{} {
	if m == nil {
		return map[string]struct{}{}
	}
	return m
}

// Interface guards.
var (
	_ plugin.Accessor = (*restriction)(nil)
	_ plugin.Config   = (*Config)(nil)
)
