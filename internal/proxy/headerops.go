package proxy

import "strings"

// headerOp is a plugin's change to a header set, recorded in order and applied
// when the head is written. Recording instead of rewriting the parsed head
// keeps the fast engine's request and response buffers untouched.
type headerOp struct {
	del   bool // remove every value of name (set = del + add)
	name  string
	value string // added when !del or when set
	add   bool
}

// headerOps is an ordered list of header changes.
type headerOps []headerOp

func (o *headerOps) set(name, value string) {
	*o = append(*o, headerOp{del: true, add: true, name: name, value: value})
}

func (o *headerOps) add(name, value string) {
	*o = append(*o, headerOp{add: true, name: name, value: value})
}

func (o *headerOps) remove(name string) {
	*o = append(*o, headerOp{del: true, name: name})
}

// value returns the first value of name after the ops, given the original
// first value (hasOrig false when the original head lacks the header).
func (o headerOps) value(name, orig string, hasOrig bool) string {
	val, has := orig, hasOrig
	for i := range o {
		op := &o[i]
		if !strings.EqualFold(op.name, name) {
			continue
		}
		if op.del {
			val, has = "", false
		}
		if op.add && !has {
			val, has = op.value, true
		}
	}
	return val
}

// values returns every value of name after the ops, given the originals.
func (o headerOps) values(name string, orig []string) []string {
	out := orig
	for i := range o {
		op := &o[i]
		if !strings.EqualFold(op.name, name) {
			continue
		}
		if op.del {
			out = nil
		}
		if op.add {
			out = append(out[:len(out):len(out)], op.value)
		}
	}
	return out
}

// deletes reports whether the ops remove the original values of name.
func (o headerOps) deletes(name string) bool {
	for i := range o {
		if o[i].del && strings.EqualFold(o[i].name, name) {
			return true
		}
	}
	return false
}

// added calls fn for every value the ops add that survives later deletes.
func (o headerOps) added(fn func(name, value string)) {
	for i := range o {
		op := &o[i]
		if !op.add {
			continue
		}
		dropped := false
		for j := i + 1; j < len(o); j++ {
			if o[j].del && strings.EqualFold(o[j].name, op.name) {
				dropped = true
				break
			}
		}
		if !dropped {
			fn(op.name, op.value)
		}
	}
}
