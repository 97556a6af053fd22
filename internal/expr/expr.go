// Package expr compiles and evaluates APISIX "vars" expressions, the language
// of lua-resty-expr v1 used by route matching, traffic-split rules and
// response-rewrite conditions.
//
// An expression is a JSON array of comparisons, implicitly joined by AND:
//
//	[["arg_version", "==", "v2"], ["http_x_env", "!", "~~", "^dev"]]
//
// Nested groups start with a logical operator ("AND", "OR", "!AND", "!OR"):
//
//	["OR", ["arg_a", "==", "1"], ["AND", ["arg_b", ">", 10], ["arg_c", "in", ["x", "y"]]]]
//
// All regular expressions, numbers and CIDRs are compiled by [Compile], so
// [Expr.Eval] does no parsing that can fail and allocates nothing. The package
// depends on nothing but the standard library so that plugins can reuse it
// without pulling in the router or the config model.
package expr

import (
	"net/netip"
	"regexp"
	"strings"
)

// VarSource supplies request variables by their nginx/APISIX names, such as
// "arg_name", "http_user_agent", "cookie_session" or "remote_addr". ok is
// false when the variable is not set, which lua-resty-expr calls nil.
// router.Request satisfies it.
type VarSource interface {
	Var(name string) (value string, ok bool)
}

// Expr is a compiled vars expression. It is immutable and safe for concurrent
// use. A nil *Expr is valid and always evaluates to true, which is what an
// absent or empty "vars" means in APISIX.
type Expr struct {
	root node
}

// Eval reports whether the variables in v satisfy the expression. It never
// allocates.
func (e *Expr) Eval(v VarSource) bool {
	if e == nil {
		return true
	}
	return e.root.eval(v)
}

// kind is the type of a node in the compiled expression tree.
type kind uint8

const (
	kindAnd kind = iota
	kindOr
	kindNotAnd
	kindNotOr
	kindLeaf
)

// op is a comparison operator of a leaf.
type op uint8

const (
	opEq op = iota + 1
	opNe
	opGt
	opGe
	opLt
	opLe
	opRegex // "~~" and "~*"; case-insensitivity is compiled into re.
	opIn
	opHas
	opIPMatch
)

// node is one element of the compiled tree: a logical group or a leaf
// comparison. Leaves keep their right-hand side in the representation the
// operator needs, so evaluation never converts it.
type node struct {
	kind     kind
	children []node

	name   string // variable name (leaf)
	op     op
	negate bool // the leaf used the "!" prefix

	str      string  // ==, ~=, has: string operand
	num      float64 // numeric operand of ==, ~= (isNum) and ordering ops
	isNum    bool
	isNull   bool // ==, ~= against JSON null: tests whether the var is missing
	re       *regexp.Regexp
	list     []string       // in
	prefixes []netip.Prefix // ipmatch
}

func (n *node) eval(v VarSource) bool {
	switch n.kind {
	case kindLeaf:
		return n.compare(v) != n.negate
	case kindAnd:
		return n.all(v)
	case kindOr:
		return n.any(v)
	case kindNotAnd:
		return !n.all(v)
	default: // kindNotOr
		return !n.any(v)
	}
}

func (n *node) all(v VarSource) bool {
	for i := range n.children {
		if !n.children[i].eval(v) {
			return false
		}
	}
	return true
}

func (n *node) any(v VarSource) bool {
	for i := range n.children {
		if n.children[i].eval(v) {
			return true
		}
	}
	return false
}

// compare evaluates a leaf without its negation. A missing variable follows
// lua-resty-expr, where it is nil: it equals only null, differs from
// everything else, and fails every other operator.
func (n *node) compare(v VarSource) bool {
	val, ok := v.Var(n.name)
	switch n.op {
	case opEq:
		if n.isNull {
			return !ok
		}
		if !ok {
			return false
		}
		if n.isNum {
			f, good := toNumber(val)
			return good && f == n.num
		}
		return val == n.str
	case opNe:
		if n.isNull {
			return ok
		}
		if !ok {
			return true
		}
		if n.isNum {
			f, good := toNumber(val)
			return !good || f != n.num
		}
		return val != n.str
	case opGt, opGe, opLt, opLe:
		if !ok {
			return false
		}
		f, good := toNumber(val)
		if !good {
			return false
		}
		return compareNumbers(n.op, f, n.num)
	case opRegex:
		return ok && n.re.MatchString(val)
	case opIn:
		if !ok {
			return false
		}
		for _, s := range n.list {
			if s == val {
				return true
			}
		}
		return false
	case opHas:
		return ok && hasElement(val, n.str)
	default: // opIPMatch
		if !ok {
			return false
		}
		addr, good := parseAddr(val)
		if !good {
			return false
		}
		addr = addr.Unmap()
		for _, p := range n.prefixes {
			if p.Contains(addr) {
				return true
			}
		}
		return false
	}
}

func compareNumbers(o op, l, r float64) bool {
	switch o {
	case opGt:
		return l > r
	case opGe:
		return l >= r
	case opLt:
		return l < r
	default: // opLe
		return l <= r
	}
}

// hasElement reports whether list, a comma-separated list such as
// "owner, repo", contains want. lua-resty-expr's "has" needs a table-valued
// variable (e.g. graphql_root_fields); a VarSource only returns strings, so
// list-valued variables are represented joined by commas, the way HTTP joins
// repeated header values.
func hasElement(list, want string) bool {
	for list != "" {
		item := list
		if i := strings.IndexByte(list, ','); i >= 0 {
			item, list = list[:i], list[i+1:]
		} else {
			list = ""
		}
		if strings.Trim(item, " \t") == want {
			return true
		}
	}
	return false
}
