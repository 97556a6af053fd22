// Package trafficsplit implements APISIX's traffic-split plugin: per request,
// the first rule whose match passes sends the request to one of its weighted
// upstreams (canary by weight, blue-green by condition); when no rule
// passes, the route's own upstream serves.
//
// Upstreams are resolved and compiled with the configuration
// (plugin.Deps.Upstream, plugin.Deps.InlineUpstream); a request only
// evaluates the match expressions and takes the next slot of a precomputed
// smooth weighted round-robin schedule.
package trafficsplit

import (
	"fmt"
	"math/rand/v2"

	"github.com/sluicegw/sluice/internal/expr"
	"github.com/sluicegw/sluice/plugin"
)

// Name and Priority are APISIX's.
const (
	Name     = "traffic-split"
	Priority = 966
)

func init() {
	plugin.Register(plugin.Descriptor{
		Name:      Name,
		Priority:  Priority,
		NewConfig: func() plugin.Config { return NewConfig() },
		New:       newTrafficSplit,
		Schema:    schema(),
	})
}

// trafficSplit is a built instance; only its schedules' positions change.
type trafficSplit struct {
	rules []rule
}

// rule is a compiled Rule.
type rule struct {
	match []*expr.Expr // nil: always; else any must pass
	split *split
}

func (r *rule) matches(v expr.VarSource) bool {
	if r.match == nil {
		return true
	}
	for _, e := range r.match {
		if e.Eval(v) {
			return true
		}
	}
	return false
}

func newTrafficSplit(cfg plugin.Config, deps plugin.Deps) (any, error) {
	c := cfg.(*Config)
	p := &trafficSplit{rules: make([]rule, 0, len(c.Rules))}
	for i := range c.Rules {
		r, err := buildRule(&c.Rules[i], fmt.Sprintf("rules[%d]", i), deps)
		if err != nil {
			return nil, err
		}
		p.rules = append(p.rules, r)
	}
	return p, nil
}

func buildRule(cr *Rule, path string, deps plugin.Deps) (rule, error) {
	var r rule
	if len(cr.Match) > 0 {
		r.match = make([]*expr.Expr, len(cr.Match))
		for j := range cr.Match {
			e, err := compileMatch(cr.Match[j].Vars)
			if err != nil {
				return r, fmt.Errorf("%s.match[%d].vars: %w", path, j, err)
			}
			if e == nil {
				// An entry without vars always passes, and so does the rule.
				r.match = nil
				break
			}
			r.match[j] = e
		}
	}
	wus := cr.WeightedUpstreams
	if wus == nil {
		wus = []WeightedUpstream{{}} // APISIX's default: the route's upstream, weight 1
	}
	refs := make([]plugin.UpstreamRef, len(wus))
	weights := make([]int, len(wus))
	for j := range wus {
		w := &wus[j]
		wp := fmt.Sprintf("%s.weighted_upstreams[%d]", path, j)
		weights[j] = w.weight()
		var err error
		switch {
		case present(w.UpstreamID):
			var id string
			if id, err = parseID(w.UpstreamID); err == nil {
				refs[j], err = deps.Upstream(id)
			}
			if err != nil {
				return r, fmt.Errorf("%s.upstream_id: %w", wp, err)
			}
		case present(w.Upstream):
			// Resolved even at weight 0, so that a mistake shows now and
			// not when the weight is raised.
			if refs[j], err = deps.InlineUpstream(w.Upstream); err != nil {
				return r, prefixErrors(wp+".upstream", err)
			}
		}
	}
	r.split = newSplit(refs, weights, rand.Uint64())
	return r, nil
}

// Access picks the upstream of the first rule that matches. With no match
// nothing is set, and the route's upstream serves the request.
func (p *trafficSplit) Access(c *plugin.Ctx) *plugin.Exit {
	for i := range p.rules {
		r := &p.rules[i]
		if r.matches(c.Request) {
			c.SetUpstream(r.split.next())
			return nil
		}
	}
	return nil
}

var (
	_ plugin.Accessor = (*trafficSplit)(nil)
	_ plugin.Config   = (*Config)(nil)
)
