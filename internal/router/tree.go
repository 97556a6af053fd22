package router

import "strings"

// bnode is a node of a compressed radix tree under construction. A node's
// full key is the concatenation of the labels from the root; set reports
// whether a value is stored at exactly that key.
type bnode[V any] struct {
	label    string
	indices  string // first byte of each child's label, parallel to children
	children []*bnode[V]
	val      V
	set      bool
	off      int // position of label+indices in the frozen arena
}

// insert returns the node for key, creating and splitting nodes as needed.
func (n *bnode[V]) insert(key string) *bnode[V] {
	for key != "" {
		i := strings.IndexByte(n.indices, key[0])
		if i < 0 {
			c := &bnode[V]{label: key}
			n.indices += key[:1]
			n.children = append(n.children, c)
			return c
		}
		c := n.children[i]
		l := commonPrefix(c.label, key)
		if l < len(c.label) {
			// Split c so that the shared part becomes its own node.
			mid := &bnode[V]{label: c.label[:l], indices: c.label[l : l+1], children: []*bnode[V]{c}}
			c.label = c.label[l:]
			n.children[i] = mid
			c = mid
		}
		n, key = c, key[l:]
	}
	return n
}

// each calls fn for every node in depth-first pre-order.
func (n *bnode[V]) each(fn func(*bnode[V])) {
	fn(n)
	for _, c := range n.children {
		c.each(fn)
	}
}

// node is a frozen radix tree node. Lookups walk one child per step, so
// their cost depends on the key length, not on how many keys are stored.
// Children are stored by value and all labels live in one arena string in
// depth-first order, so a step down the tree touches fewer cache lines than
// pointer-linked nodes with separately allocated labels; this matters with
// 100k routes, where most of a lookup's cost is cache misses.
type node[V any] struct {
	label    string
	indices  string
	children []node[V]
	val      V
	set      bool
}

// child returns the child whose label starts with c, or nil.
func (n *node[V]) child(c byte) *node[V] {
	if i := strings.IndexByte(n.indices, c); i >= 0 {
		return &n.children[i]
	}
	return nil
}

// freeze converts a finished builder tree into its compact lookup form.
func freeze[V any](b *bnode[V]) *node[V] {
	size := 0
	b.each(func(n *bnode[V]) { size += len(n.label) + len(n.indices) })
	arena := make([]byte, 0, size)
	b.each(func(n *bnode[V]) {
		n.off = len(arena)
		arena = append(arena, n.label...)
		arena = append(arena, n.indices...)
	})
	root := &node[V]{}
	fill(root, b, string(arena))
	return root
}

func fill[V any](dst *node[V], b *bnode[V], arena string) {
	mid := b.off + len(b.label)
	dst.label, dst.indices = arena[b.off:mid], arena[mid:mid+len(b.indices)]
	dst.val, dst.set = b.val, b.set
	if len(b.children) > 0 {
		dst.children = make([]node[V], len(b.children))
		for i, c := range b.children {
			fill(&dst.children[i], c, arena)
		}
	}
}

func commonPrefix(a, b string) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// each calls fn for every node holding a value; used at build time.
func (n *node[V]) each(fn func(*node[V])) {
	if n.set {
		fn(n)
	}
	for _, c := range n.children {
		c.each(fn)
	}
}

// lowerASCII folds an ASCII upper-case letter to lower case.
func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}

// hasSuffixFold reports whether host, read backwards from its byte
// len(host)-pos, starts with the reversed label rev, ignoring ASCII case.
func hasSuffixFold(host string, pos int, rev string) bool {
	end := len(host) - pos
	if end < len(rev) {
		return false
	}
	for i := 0; i < len(rev); i++ {
		if lowerASCII(host[end-1-i]) != rev[i] {
			return false
		}
	}
	return true
}

// reverse returns s with its bytes in reverse order; host names are ASCII.
func reverse(s string) string {
	b := make([]byte, len(s))
	for i := range len(s) {
		b[len(s)-1-i] = s[i]
	}
	return string(b)
}
