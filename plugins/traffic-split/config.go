package trafficsplit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"

	"github.com/sluicegw/sluice/internal/expr"
)

// maxWeightedUpstreams is APISIX's maxItems for weighted_upstreams.
const maxWeightedUpstreams = 20

// Config is traffic-split's configuration, with APISIX's field names.
type Config struct {
	// Rules are tried in order; the first whose match passes picks the
	// upstream. When none passes, the route's own upstream serves.
	Rules []Rule `json:"rules,omitempty"`
}

// Rule is one condition and the upstreams it splits traffic between.
type Rule struct {
	// Match passes when any of its entries does; absent or empty, it
	// always passes.
	Match []Match `json:"match,omitempty"`
	// WeightedUpstreams share the rule's traffic by weight (smooth weighted
	// round robin). Absent, it is APISIX's default [{"weight": 1}]: the
	// route's own upstream.
	WeightedUpstreams []WeightedUpstream `json:"weighted_upstreams,omitempty"`
}

// Match is one condition: a lua-resty-expr vars expression such as
// [["http_release","==","canary"]]; absent, it passes.
type Match struct {
	Vars json.RawMessage `json:"vars,omitempty"`
}

// WeightedUpstream is one destination of a rule: an upstream object by id,
// an inline upstream, or (neither) the route's own upstream.
type WeightedUpstream struct {
	// UpstreamID names an upstream object (a string or an integer id).
	UpstreamID json.RawMessage `json:"upstream_id,omitempty"`
	// Upstream is an inline upstream object (APISIX's upstream schema).
	Upstream json.RawMessage `json:"upstream,omitempty"`
	// Weight is the entry's share of the rule's traffic, >= 0; default 1.
	// Zero sends it nothing.
	Weight *int `json:"weight,omitempty"`
}

var idPattern = regexp.MustCompile(`^[a-zA-Z0-9-_.]+$`)

// parseID reads APISIX's id_schema: a string of 1 to 64 characters out of
// letters, digits, "-", "_" and ".", or an integer >= 1 (returned as its
// decimal string, which is how sluice keys integer ids).
func parseID(raw json.RawMessage) (string, error) {
	b := bytes.TrimSpace(raw)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return "", fmt.Errorf("invalid string: %w", err)
		}
		if len(s) < 1 || len(s) > 64 || !idPattern.MatchString(s) {
			return "", fmt.Errorf("must be 1 to 64 characters of [a-zA-Z0-9-_.], got %q", s)
		}
		return s, nil
	}
	// Plugin configs reach the decoder re-encoded from float64s, so an
	// integer may be spelled 1e+06: parse a float and require an integer.
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || f < 1 || f > 1<<53 || f != float64(int64(f)) {
		return "", fmt.Errorf("must be a string or an integer >= 1, got %s", b)
	}
	return strconv.FormatInt(int64(f), 10), nil
}

// NewConfig returns an empty Config: without rules the plugin does nothing.
func NewConfig() *Config { return &Config{} }

// Validate checks c without side effects. Errors start with the field path.
// Inline upstreams are checked field by field when the plugin is built (the
// gateway's own upstream validation), with paths under this one.
func (c *Config) Validate() error {
	var errs []error
	for i := range c.Rules {
		r := &c.Rules[i]
		rp := fmt.Sprintf("rules[%d]", i)
		for j := range r.Match {
			if _, err := compileMatch(r.Match[j].Vars); err != nil {
				errs = append(errs, fmt.Errorf("%s.match[%d].vars: %w", rp, j, err))
			}
		}
		if r.WeightedUpstreams != nil && len(r.WeightedUpstreams) == 0 {
			errs = append(errs, fmt.Errorf("%s.weighted_upstreams: must have at least 1 item", rp))
		}
		if len(r.WeightedUpstreams) > maxWeightedUpstreams {
			errs = append(errs, fmt.Errorf("%s.weighted_upstreams: must have at most %d items, got %d",
				rp, maxWeightedUpstreams, len(r.WeightedUpstreams)))
		}
		for j := range r.WeightedUpstreams {
			if err := r.WeightedUpstreams[j].validate(); err != nil {
				errs = append(errs, fmt.Errorf("%s.weighted_upstreams[%d].%w", rp, j, err))
			}
		}
	}
	return joinErrors(errs)
}

// validate returns an error whose text starts with the field name, for the
// caller to put after the entry's path and a dot.
func (w *WeightedUpstream) validate() error {
	if w.Weight != nil && *w.Weight < 0 {
		return fmt.Errorf("weight: must be >= 0, got %d", *w.Weight)
	}
	hasInline := present(w.Upstream)
	if present(w.UpstreamID) {
		if _, err := parseID(w.UpstreamID); err != nil {
			return fmt.Errorf("upstream_id: %w", err)
		}
	}
	if present(w.UpstreamID) && hasInline {
		// APISIX would silently use upstream_id; an entry that names two
		// destinations is a mistake worth reporting.
		return errors.New("upstream: must not be set together with upstream_id")
	}
	if hasInline {
		if t := bytes.TrimSpace(w.Upstream); t[0] != '{' {
			return errors.New("upstream: must be an object")
		}
	}
	return nil
}

// present reports a JSON value other than absent or null.
func present(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) > 0 && string(t) != "null"
}

// weight is the entry's weight with APISIX's default of 1.
func (w *WeightedUpstream) weight() int {
	if w.Weight == nil {
		return 1
	}
	return *w.Weight
}

// compileMatch compiles one match entry's vars; a nil *expr.Expr always
// passes. APISIX's schema wants an array.
func compileMatch(vars json.RawMessage) (*expr.Expr, error) {
	if t := bytes.TrimSpace(vars); len(t) > 0 && string(t) != "null" && t[0] != '[' {
		return nil, errors.New("must be an array")
	}
	return expr.Compile(vars)
}

// schema is the JSON Schema served for the plugin, in APISIX's shape.
func schema() map[string]any {
	idSchema := map[string]any{"anyOf": []any{
		map[string]any{"type": "string", "minLength": 1, "maxLength": 64, "pattern": `^[a-zA-Z0-9-_.]+$`},
		map[string]any{"type": "integer", "minimum": 1},
	}}
	weighted := map[string]any{
		"type": "array", "minItems": 1, "maxItems": maxWeightedUpstreams,
		"default": []any{map[string]any{"weight": 1}},
		"items": map[string]any{"type": "object", "properties": map[string]any{
			"upstream_id": idSchema,
			"upstream":    map[string]any{"type": "object", "description": "an upstream object, as in /apisix/admin/upstreams"},
			"weight":      map[string]any{"type": "integer", "minimum": 0, "default": 1},
		}},
	}
	match := map[string]any{"type": "array", "items": map[string]any{"type": "object", "properties": map[string]any{
		"vars": map[string]any{"type": "array"},
	}}}
	return map[string]any{"type": "object", "additionalProperties": false, "properties": map[string]any{
		"rules": map[string]any{"type": "array", "items": map[string]any{
			"type": "object", "additionalProperties": false,
			"properties": map[string]any{"match": match, "weighted_upstreams": weighted},
		}},
	}}
}
