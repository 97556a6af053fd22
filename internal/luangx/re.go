package luangx

import (
	"container/list"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
	"unicode/utf8"
)

// reOpts is a parsed ngx.re options string.
type reOpts struct {
	once, dfa, anchored, dupNames, extended bool
	// goFlags is the Go inline flag group for i, m and s ("" for none).
	goFlags string
}

// parseReOpts parses ngx.re's options string. j (PCRE JIT), u and U (UTF-8;
// Go's regexp always is), and J (JavaScript compatibility) change nothing
// here; an unknown letter is an error, raised like OpenResty does.
func parseReOpts(opts string) (reOpts, error) {
	var o reOpts
	var fl []byte
	for i := 0; i < len(opts); i++ {
		switch c := opts[i]; c {
		case 'o':
			o.once = true
		case 'i', 'm', 's':
			fl = append(fl, c)
		case 'x':
			o.extended = true
		case 'd':
			o.dfa = true
		case 'a':
			o.anchored = true
		case 'D':
			o.dupNames = true
		case 'j', 'u', 'U', 'J':
		default:
			return o, fmt.Errorf(`unknown flag "%s" (flags "%s")`, opts[i:i+1], opts)
		}
	}
	if len(fl) > 0 {
		o.goFlags = "(?" + string(fl) + ")"
	}
	return o, nil
}

// compiledRe is a pattern ready to run from any offset of a subject.
type compiledRe struct {
	// re matches on subject[pos:]; it starts with \A when anchored.
	re *regexp.Regexp
	// ctxRe, set for context-sensitive patterns (see contextSensitive), is
	// run on the subject from the character before pos, which it skips:
	// \A(?s:.)(?s:.*?)(pattern), or \A(?s:.)(pattern) when anchored. Group
	// 1 is the match, so ^, \b and \B see the real previous character.
	ctxRe    *regexp.Regexp
	ncap     int
	nnames   int // named groups, to presize the captures table
	names    []string
	dfa      bool
	dupNames bool
}

// compileRe compiles a PCRE pattern with parsed options. Errors read like
// OpenResty's ("pcre_compile() failed: <why> in \"<pattern>\"").
func compileRe(pat string, o reOpts) (*compiledRe, error) {
	tr, err := translatePCRE(pat, o.extended, o.dupNames)
	if err != nil {
		return nil, fmt.Errorf("pcre_compile() failed: %w in %q", err, pat)
	}
	inner := o.goFlags + tr
	src := "(?:" + inner + ")"
	if o.anchored {
		src = `\A` + src
	}
	re, err := regexp.Compile(src)
	if err != nil {
		return nil, fmt.Errorf("pcre_compile() failed: %s in %q", goRegexpReason(err), pat)
	}
	c := &compiledRe{re: re, ncap: re.NumSubexp(), names: re.SubexpNames(), dfa: o.dfa, dupNames: o.dupNames}
	for _, n := range c.names {
		if n != "" {
			c.nnames++
		}
	}
	if o.dfa {
		// DFA mode reports the longest match at the first position that
		// matches, and no sub-captures.
		c.re.Longest()
		return c, nil
	}
	if contextSensitive(inner) {
		prefix := `\A(?s:.)(?s:.*?)(`
		if o.anchored {
			prefix = `\A(?s:.)(`
		}
		if c.ctxRe, err = regexp.Compile(prefix + inner + ")"); err != nil {
			return nil, fmt.Errorf("pcre_compile() failed: %s in %q", goRegexpReason(err), pat)
		}
	}
	return c, nil
}

// goRegexpReason returns the reason part of a Go regexp error, without the
// "error parsing regexp: " prefix, which names the wrong engine.
func goRegexpReason(err error) string {
	if se, ok := err.(*syntax.Error); ok {
		return fmt.Sprintf("%s: %s", se.Code, se.Expr)
	}
	return strings.TrimPrefix(err.Error(), "error parsing regexp: ")
}

// errBadOffset is PCRE's PCRE_ERROR_BADOFFSET, reported by OpenResty as
// "pcre_exec() failed: -24" when ctx.pos lies beyond the subject.
var errBadOffset = fmt.Errorf("pcre_exec() failed: -24")

// exec finds the first match at or after byte offset pos, like pcre_exec
// with a start offset. It returns absolute submatch indices (-1 for groups
// that did not take part), or nil.
func (c *compiledRe) exec(s string, pos int) ([]int, error) {
	if pos > len(s) {
		return nil, errBadOffset
	}
	if pos == 0 || c.ctxRe == nil {
		m := c.re.FindStringSubmatchIndex(s[pos:])
		if m == nil {
			return nil, nil
		}
		for i := range m {
			if m[i] >= 0 {
				m[i] += pos
			}
		}
		return m, nil
	}
	_, w := utf8.DecodeLastRuneInString(s[:pos])
	base := pos - w
	m := c.ctxRe.FindStringSubmatchIndex(s[base:])
	if m == nil {
		return nil, nil
	}
	m = m[2:]
	for i := range m {
		if m[i] >= 0 {
			m[i] += base
		}
	}
	return m, nil
}

// reCacheMax bounds the compiled-pattern cache of one VM, like OpenResty's
// lua_regex_cache_max_entries default.
const reCacheMax = 1024

// reCache is an LRU cache of patterns compiled with the "o" option. Each VM
// has its own, so it needs no lock; compiled patterns are small next to the
// VM itself.
type reCache struct {
	ll    *list.List
	items map[reKey]*list.Element
}

// reKey is a struct rather than a joined string so that a lookup does not
// allocate.
type reKey struct{ pat, opts string }

type reCacheEntry struct {
	key reKey
	re  *compiledRe
}

func newReCache() *reCache {
	return &reCache{ll: list.New(), items: make(map[reKey]*list.Element)}
}

// optsError is an invalid options string: OpenResty raises it as a Lua
// error rather than returning it.
type optsError struct{ msg string }

func (e *optsError) Error() string { return e.msg }

// compile returns the compiled form of pat with opts, from the cache when
// the "o" option is given.
func (rc *reCache) compile(pat, opts string) (*compiledRe, error) {
	key := reKey{pat, opts}
	if el, ok := rc.items[key]; ok {
		rc.ll.MoveToFront(el)
		return el.Value.(*reCacheEntry).re, nil
	}
	o, err := parseReOpts(opts)
	if err != nil {
		return nil, &optsError{err.Error()}
	}
	if !o.once {
		return compileRe(pat, o)
	}
	c, err := compileRe(pat, o)
	if err != nil {
		return nil, err
	}
	if rc.ll.Len() >= reCacheMax {
		last := rc.ll.Back()
		rc.ll.Remove(last)
		delete(rc.items, last.Value.(*reCacheEntry).key)
	}
	rc.items[key] = rc.ll.PushFront(&reCacheEntry{key: key, re: c})
	return c, nil
}
