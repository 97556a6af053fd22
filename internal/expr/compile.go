package expr

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// root is the name used for the outermost array in error positions, matching
// the field name in APISIX routes and plugin rules.
const root = "vars"

// Compile compiles a vars expression given as JSON. An empty input or JSON
// null yields a nil *Expr, which matches everything, as does an empty array.
//
// The outermost array is a list of comparisons and groups joined by AND, or a
// group itself (["OR", ...]). A comparison is [var, op, value] or, negated,
// [var, "!", op, value]; the legacy form [var, value] means [var, "==", value]
// and, as in lua-resty-expr, lower-cases value. Operators are matched case-
// insensitively. Errors name the position with 0-based indexes, e.g.
// `vars[1][2]: unknown operator "=~"`.
//
// Compile is stricter than lua-resty-expr where an input could never be
// meaningful: it rejects operands of the wrong type (e.g. a non-numeric
// string for ">", or numbers in an "in" list, which Lua would compare without
// conversion and so never match) and regular expressions that Go's RE2
// syntax cannot express (look-around, back-references).
func Compile(raw json.RawMessage) (*Expr, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || string(trimmed) == "null" {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%s: invalid JSON: %w", root, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: invalid JSON: trailing data after the expression", root)
	}
	rules, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%s: must be an array, got %s", root, typeName(v))
	}
	if len(rules) == 0 {
		return &Expr{root: node{kind: kindAnd}}, nil
	}
	// A bare comparison at the top level is a common mistake; lua-resty-expr
	// rejects it too instead of guessing.
	if s, ok := rules[0].(string); ok {
		if _, logical := logicKind(s); !logical {
			return nil, fmt.Errorf("%s: comparisons must be wrapped in an outer array, e.g. [[%q, ...]]", root, s)
		}
	}
	n, err := compileRules(rules, root)
	if err != nil {
		return nil, err
	}
	return &Expr{root: n}, nil
}

// logicKind maps a logical operator name, in any case, to its node kind.
func logicKind(s string) (kind, bool) {
	switch strings.ToUpper(s) {
	case "AND":
		return kindAnd, true
	case "OR":
		return kindOr, true
	case "!AND":
		return kindNotAnd, true
	case "!OR":
		return kindNotOr, true
	}
	return 0, false
}

// compileRules compiles an array that is either a list of sub-rules (implicit
// AND), a logical group, or a single comparison, the same three shapes
// lua-resty-expr accepts at every level.
func compileRules(rules []any, path string) (node, error) {
	if len(rules) == 0 {
		return node{}, fmt.Errorf("%s: empty expression", path)
	}
	if _, ok := rules[0].([]any); ok {
		return compileChildren(kindAnd, rules, 0, path)
	}
	if s, ok := rules[0].(string); ok {
		if k, logical := logicKind(s); logical {
			if len(rules) < 3 {
				return node{}, fmt.Errorf("%s: %s needs at least two operands", path, s)
			}
			return compileChildren(k, rules, 1, path)
		}
	}
	return compileLeaf(rules, path)
}

func compileChildren(k kind, rules []any, from int, path string) (node, error) {
	n := node{kind: k, children: make([]node, 0, len(rules)-from)}
	for i := from; i < len(rules); i++ {
		p := path + "[" + strconv.Itoa(i) + "]"
		sub, ok := rules[i].([]any)
		if !ok {
			return node{}, fmt.Errorf("%s: must be an array, got %s", p, typeName(rules[i]))
		}
		c, err := compileRules(sub, p)
		if err != nil {
			return node{}, err
		}
		n.children = append(n.children, c)
	}
	return n, nil
}

// compileLeaf compiles [var, op, value], [var, "!", op, value] or the legacy
// [var, value].
func compileLeaf(e []any, path string) (node, error) {
	at := func(i int) string { return path + "[" + strconv.Itoa(i) + "]" }
	n := node{kind: kindLeaf}
	n.name, _ = e[0].(string)
	if n.name == "" {
		return node{}, fmt.Errorf("%s: variable name must be a non-empty string, got %s", at(0), typeName(e[0]))
	}
	opIdx := 1
	switch len(e) {
	case 1:
		return node{}, fmt.Errorf("%s: incomplete comparison, want [var, op, value]", path)
	case 2:
		// Legacy [var, value]: lua-resty-expr lower-cases the operand before
		// noticing it is not an operator, so the value is lower-cased too.
		s, ok := e[1].(string)
		if !ok {
			return node{}, fmt.Errorf("%s: must be a string, got %s", at(1), typeName(e[1]))
		}
		if _, known := parseOp(strings.ToLower(s)); known {
			return node{}, fmt.Errorf("%s: operator %q has no value", path, s)
		}
		n.op, n.str = opEq, strings.ToLower(s)
		return n, nil
	case 3:
	case 4:
		if s, _ := e[1].(string); s != "!" {
			return node{}, fmt.Errorf("%s: a 4-element comparison must be [var, \"!\", op, value]", at(1))
		}
		n.negate = true
		opIdx = 2
	default:
		return node{}, fmt.Errorf("%s: too many elements (%d), want [var, op, value]", path, len(e))
	}
	opName, ok := e[opIdx].(string)
	if !ok {
		return node{}, fmt.Errorf("%s: operator must be a string, got %s", at(opIdx), typeName(e[opIdx]))
	}
	lower := strings.ToLower(opName)
	if n.op, ok = parseOp(lower); !ok {
		return node{}, fmt.Errorf("%s: unknown operator %q", at(opIdx), opName)
	}
	if err := n.compileValue(lower, e[opIdx+1]); err != nil {
		return node{}, fmt.Errorf("%s: %w", at(opIdx+1), err)
	}
	return n, nil
}

func parseOp(s string) (op, bool) {
	switch s {
	case "==":
		return opEq, true
	case "~=":
		return opNe, true
	case ">":
		return opGt, true
	case ">=":
		return opGe, true
	case "<":
		return opLt, true
	case "<=":
		return opLe, true
	case "~~", "~*":
		return opRegex, true
	case "in":
		return opIn, true
	case "has":
		return opHas, true
	case "ipmatch":
		return opIPMatch, true
	}
	return 0, false
}

// compileValue converts the right-hand side into the form n.op evaluates.
func (n *node) compileValue(opName string, v any) error {
	switch n.op {
	case opEq, opNe:
		switch t := v.(type) {
		case nil:
			n.isNull = true
		case string:
			n.str = t
		case json.Number:
			f, err := strconv.ParseFloat(string(t), 64)
			if err != nil {
				return fmt.Errorf("number %s: %w", t, err)
			}
			n.num, n.isNum = f, true
		default:
			return fmt.Errorf("%s: value must be a string, number or null, got %s", opName, typeName(v))
		}
	case opGt, opGe, opLt, opLe:
		return n.compileNumber(opName, v)
	case opRegex:
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("%s: value must be a regex string, got %s", opName, typeName(v))
		}
		src := s
		if opName == "~*" {
			src = "(?i)" + s
		}
		re, err := regexp.Compile(src)
		if err != nil {
			return fmt.Errorf("%s: regex %q is not valid RE2 syntax (PCRE-only features such as look-around and back-references are unsupported): %w", opName, s, err)
		}
		n.re = re
	case opIn:
		return n.compileIn(v)
	case opHas:
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("has: value must be a string, got %s", typeName(v))
		}
		n.str = s
	default: // opIPMatch
		return n.compileIPMatch(v)
	}
	return nil
}

func (n *node) compileNumber(opName string, v any) error {
	switch t := v.(type) {
	case json.Number:
		f, err := strconv.ParseFloat(string(t), 64)
		if err != nil {
			return fmt.Errorf("number %s: %w", t, err)
		}
		n.num = f
	case string:
		// lua-resty-expr applies tonumber to both sides, so "18" works.
		f, ok := toNumber(t)
		if !ok {
			return fmt.Errorf("%s: value %q is not a number", opName, t)
		}
		n.num = f
	default:
		return fmt.Errorf("%s: value must be a number, got %s", opName, typeName(v))
	}
	return nil
}

func (n *node) compileIn(v any) error {
	arr, ok := v.([]any)
	if !ok {
		return fmt.Errorf("in: value must be an array of strings, got %s", typeName(v))
	}
	n.list = make([]string, len(arr))
	for i, e := range arr {
		s, ok := e.(string)
		if !ok {
			// lua-resty-expr compares without conversion, so a number here
			// could never equal a request variable.
			return fmt.Errorf("in: element [%d] must be a string, got %s", i, typeName(e))
		}
		n.list[i] = s
	}
	return nil
}

func (n *node) compileIPMatch(v any) error {
	var items []any
	switch t := v.(type) {
	case string:
		items = []any{t}
	case []any:
		items = t
	default:
		return fmt.Errorf("ipmatch: value must be an IP/CIDR string or an array of them, got %s", typeName(v))
	}
	if len(items) == 0 {
		return errors.New("ipmatch: empty address list")
	}
	n.prefixes = make([]netip.Prefix, len(items))
	for i, e := range items {
		s, ok := e.(string)
		if !ok {
			return fmt.Errorf("ipmatch: element [%d] must be a string, got %s", i, typeName(e))
		}
		p, err := ParsePrefix(s)
		if err != nil {
			return fmt.Errorf("ipmatch: element [%d]: %w", i, err)
		}
		n.prefixes[i] = p
	}
	return nil
}

// ParsePrefix parses an IP address or CIDR as APISIX's ipmatcher accepts them
// ("10.0.0.1", "10.0.0.0/8", "::1", "fe80::/32") into a masked prefix; a bare
// address becomes a single-address prefix. IPv4-mapped IPv6 addresses are
// unmapped so that they match their IPv4 form. The router uses it for
// remote_addrs too, so both accept exactly the same syntax.
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.IndexByte(s, '/') >= 0 {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("invalid CIDR %q: %w", s, err)
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid IP address %q: %w", s, err)
	}
	if a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("invalid IP address %q: zones are not supported", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case json.Number:
		return "number"
	case bool:
		return "boolean"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}
