package ngxtmpl

import (
	"errors"
	"fmt"
	"regexp"
)

// SubTemplate is the replacement of ngx.re.sub/gsub, compiled once: `$0` is
// the whole match, `$N` and `${N}` the N-th group (all digits are read), and
// `$$` a literal dollar. Any other `$` is an error, as in lua-nginx-module;
// a group the match does not have expands to "".
type SubTemplate struct {
	parts []subPart
}

type subPart struct {
	lit   string
	group int // -1 for a literal
}

// errCaptureName is lua-nginx-module's message for a bad `$` reference.
var errCaptureName = errors.New("invalid capturing variable name")

// CompileSub parses an ngx.re.sub replacement. It fails, as
// lua-nginx-module does, on a `$` that is not followed by a group number
// or another `$`, so a config error shows when the config is loaded.
func CompileSub(s string) (SubTemplate, error) {
	var t SubTemplate
	var lit []byte
	flush := func() {
		if len(lit) > 0 {
			t.parts = append(t.parts, subPart{lit: string(lit), group: -1})
			lit = lit[:0]
		}
	}
	for i := 0; i < len(s); i++ {
		if s[i] != '$' {
			lit = append(lit, s[i])
			continue
		}
		i++
		if i == len(s) {
			return t, fmt.Errorf("%w in %q", errCaptureName, s)
		}
		if s[i] == '$' {
			lit = append(lit, '$')
			continue
		}
		brace := s[i] == '{'
		if brace {
			i++
		}
		n, j := 0, i
		for j < len(s) && '0' <= s[j] && s[j] <= '9' && n < 1<<20 {
			n = n*10 + int(s[j]-'0')
			j++
		}
		if j == i || (brace && (j == len(s) || s[j] != '}')) {
			return t, fmt.Errorf("%w in %q", errCaptureName, s)
		}
		if brace {
			j++
		}
		flush()
		t.parts = append(t.parts, subPart{group: n})
		i = j - 1
	}
	flush()
	return t, nil
}

// Group returns group n of a match, "" when the regexp has no such group
// or the group did not take part in the match (as ngx.re does). loc is the
// match as FindStringSubmatchIndex returns it on src.
func Group(src string, loc []int, n int) string {
	if n < 0 || 2*n+1 >= len(loc) || loc[2*n] < 0 {
		return ""
	}
	return src[loc[2*n]:loc[2*n+1]]
}

// Expand appends the replacement for one match (loc from
// FindStringSubmatchIndex on src) to b and returns the extended buffer, so
// a caller can build the whole result in one buffer.
func (t *SubTemplate) Expand(b []byte, src string, loc []int) []byte {
	for _, p := range t.parts {
		if p.group < 0 {
			b = append(b, p.lit...)
			continue
		}
		b = append(b, Group(src, loc, p.group)...)
	}
	return b
}

// Sub replaces the first match of re in s with t, like ngx.re.sub. ok is
// false when nothing matched (s is returned unchanged); loc is the match,
// for callers that refer to its groups later.
func Sub(re *regexp.Regexp, t *SubTemplate, s string) (out string, loc []int, ok bool) {
	loc = re.FindStringSubmatchIndex(s)
	if loc == nil {
		return s, nil, false
	}
	b := make([]byte, 0, len(s)+16)
	b = append(b, s[:loc[0]]...)
	b = t.Expand(b, s, loc)
	b = append(b, s[loc[1]:]...)
	return string(b), loc, true
}

// GSub replaces every match of re in s with t, like ngx.re.gsub; s is
// returned unchanged (not copied) when nothing matches.
func GSub(re *regexp.Regexp, t *SubTemplate, s string) string {
	locs := re.FindAllStringSubmatchIndex(s, -1)
	if locs == nil {
		return s
	}
	b := make([]byte, 0, len(s)+16*len(locs))
	last := 0
	for _, loc := range locs {
		b = append(b, s[last:loc[0]]...)
		b = t.Expand(b, s, loc)
		last = loc[1]
	}
	return string(append(b, s[last:]...))
}
