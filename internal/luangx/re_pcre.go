package luangx

import (
	"fmt"
	"regexp/syntax"
	"strings"
)

// pcreError reports a PCRE construct that Go's regexp (RE2) cannot run. Its
// text names the construct, so a script author knows what to rewrite;
// docs/lua-ngx-libraries.md lists them all.
func pcreError(feature string) error {
	return fmt.Errorf("unsupported PCRE feature: %s (sluice runs ngx.re with Go's RE2 engine, see docs/lua-ngx-libraries.md)", feature)
}

// translatePCRE rewrites a PCRE pattern into Go regexp syntax. It removes
// what Go does not parse but can express another way ((?#...) comments,
// x-mode whitespace, (?'name'...), \e, \h, \v, \R, \N, \cX) and rejects, with
// a clear error, what RE2 cannot do at all: backreferences, lookaround,
// atomic groups, possessive quantifiers, recursion, conditionals, \G, \K,
// \Z, \X and backtracking verbs. Without dupNames, two groups with the same
// name are an error as in PCRE.
func translatePCRE(pat string, extended, dupNames bool) (string, error) {
	var b strings.Builder
	b.Grow(len(pat) + 8)
	names := map[string]bool{}
	n := len(pat)
	for i := 0; i < n; {
		c := pat[i]
		switch {
		case extended && isPCRESpace(c):
			i++
		case extended && c == '#':
			for i < n && pat[i] != '\n' {
				i++
			}
		case c == '\\':
			next, err := translateEscape(&b, pat, i, false)
			if err != nil {
				return "", err
			}
			i = next
		case c == '[':
			next, err := copyClass(&b, pat, i)
			if err != nil {
				return "", err
			}
			i = next
		case c == '(':
			next, err := translateGroup(&b, pat, i, names, dupNames)
			if err != nil {
				return "", err
			}
			i = next
		case c == '*' || c == '+' || c == '?':
			b.WriteByte(c)
			i++
			if i < n && pat[i] == '+' {
				return "", pcreError("possessive quantifier " + pat[i-1:i+1])
			}
		case c == '{':
			end := quantifierEnd(pat, i)
			if end < 0 {
				b.WriteByte(c)
				i++
				continue
			}
			if end < n && pat[end] == '+' {
				return "", pcreError("possessive quantifier " + pat[i:end+1])
			}
			b.WriteString(pat[i:end])
			i = end
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String(), nil
}

// isPCRESpace reports the characters x mode ignores outside classes.
func isPCRESpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// quantifierEnd returns the index after a {n}, {n,} or {n,m} quantifier
// starting at i, or -1 when the brace is a literal (as PCRE treats it).
func quantifierEnd(pat string, i int) int {
	j := i + 1
	digits := 0
	for j < len(pat) && pat[j] >= '0' && pat[j] <= '9' {
		j++
		digits++
	}
	if digits == 0 {
		return -1
	}
	if j < len(pat) && pat[j] == ',' {
		j++
		for j < len(pat) && pat[j] >= '0' && pat[j] <= '9' {
			j++
		}
	}
	if j < len(pat) && pat[j] == '}' {
		return j + 1
	}
	return -1
}

// Classes PCRE has and Go has not, written out. \h and \v follow PCRE's
// definition of horizontal and vertical white space.
const (
	hSpace = `\t \x{a0}\x{1680}\x{180e}\x{2000}-\x{200a}\x{202f}\x{205f}\x{3000}`
	vSpace = `\n\x0b\f\r\x{85}\x{2028}\x{2029}`
)

// translateEscape handles the escape at pat[i] ('\\') and returns the index
// after it. inClass selects the class flavour (no \R or \N there).
func translateEscape(b *strings.Builder, pat string, i int, inClass bool) (int, error) {
	if i+1 >= len(pat) {
		return 0, fmt.Errorf("\\ at end of pattern")
	}
	c := pat[i+1]
	switch c {
	case '1', '2', '3', '4', '5', '6', '7', '8', '9':
		if inClass {
			// In a class PCRE reads \1..\7 as octal; Go does too.
			b.WriteString(pat[i : i+2])
			return i + 2, nil
		}
		return 0, pcreError("backreference \\" + string(c))
	case 'g', 'k':
		return 0, pcreError("backreference \\" + string(c))
	case 'G':
		return 0, pcreError("\\G (anchor at the end of the previous match)")
	case 'K':
		return 0, pcreError("\\K (reset match start)")
	case 'Z':
		return 0, pcreError("\\Z (end of subject or before a final newline); use \\z or $")
	case 'X':
		return 0, pcreError("\\X (extended grapheme cluster)")
	case 'C':
		return 0, pcreError("\\C (single code unit)")
	case 'e':
		b.WriteString(`\x1b`)
	case 'h', 'H', 'v', 'V':
		set := hSpace
		if c == 'v' || c == 'V' {
			set = vSpace
		}
		neg := c == 'H' || c == 'V'
		switch {
		case inClass && neg:
			return 0, pcreError("negated \\" + string(c) + " inside a character class")
		case inClass:
			b.WriteString(set)
		case neg:
			b.WriteString("[^" + set + "]")
		default:
			b.WriteString("[" + set + "]")
		}
	case 'R':
		if inClass {
			return 0, pcreError("\\R inside a character class")
		}
		b.WriteString(`(?:\r\n|[` + vSpace + `])`)
	case 'N':
		if inClass {
			return 0, pcreError("\\N inside a character class")
		}
		b.WriteString(`[^\n]`)
	case 'c':
		if i+2 >= len(pat) {
			return 0, fmt.Errorf("\\c at end of pattern")
		}
		x := pat[i+2]
		if x >= 'a' && x <= 'z' {
			x -= 'a' - 'A'
		}
		fmt.Fprintf(b, `\x{%x}`, x^0x40)
		return i + 3, nil
	case 'Q':
		// Quoted text is copied as is: Go supports \Q...\E, and x mode
		// does not apply inside it.
		end := strings.Index(pat[i+2:], `\E`)
		if end < 0 {
			b.WriteString(pat[i:])
			return len(pat), nil
		}
		b.WriteString(pat[i : i+2+end+2])
		return i + 2 + end + 2, nil
	case 'E':
		// A stray \E is ignored by PCRE.
	default:
		b.WriteString(pat[i : i+2])
	}
	return i + 2, nil
}

// copyClass copies the character class starting at pat[i] ('[') and returns
// the index after its closing bracket.
func copyClass(b *strings.Builder, pat string, i int) (int, error) {
	start := i
	b.WriteByte('[')
	i++
	if i < len(pat) && pat[i] == '^' {
		b.WriteByte('^')
		i++
	}
	if i < len(pat) && pat[i] == ']' {
		// A leading ] is a literal in both PCRE and Go.
		b.WriteString(`\]`)
		i++
	}
	for i < len(pat) {
		c := pat[i]
		switch {
		case c == ']':
			b.WriteByte(']')
			return i + 1, nil
		case c == '\\':
			next, err := translateEscape(b, pat, i, true)
			if err != nil {
				return 0, err
			}
			i = next
		case c == '[' && i+1 < len(pat) && pat[i+1] == ':':
			end := strings.Index(pat[i+2:], ":]")
			if end < 0 {
				b.WriteString(`\[`)
				i++
				continue
			}
			b.WriteString(pat[i : i+2+end+2])
			i += 2 + end + 2
		case c == '[':
			b.WriteString(`\[`)
			i++
		default:
			b.WriteByte(c)
			i++
		}
	}
	return 0, fmt.Errorf("missing terminating ] for character class at offset %d", start)
}

// translateGroup handles the "(" at pat[i] and returns the index after the
// group opener it wrote (the group's body is translated by the caller's loop).
func translateGroup(b *strings.Builder, pat string, i int, names map[string]bool, dupNames bool) (int, error) {
	rest := pat[i+1:]
	switch {
	case strings.HasPrefix(rest, "*"):
		return 0, pcreError("backtracking control verb (*...)")
	case !strings.HasPrefix(rest, "?"):
		b.WriteByte('(')
		return i + 1, nil
	}
	rest = rest[1:]
	lookaround := map[string]string{"=": "lookahead (?=", "!": "negative lookahead (?!", "<=": "lookbehind (?<=", "<!": "negative lookbehind (?<!"}
	for _, p := range []string{"<=", "<!", "=", "!"} {
		if strings.HasPrefix(rest, p) {
			return 0, pcreError(lookaround[p] + "...)")
		}
	}
	switch {
	case strings.HasPrefix(rest, "#"):
		end := strings.IndexByte(rest, ')')
		if end < 0 {
			return 0, fmt.Errorf("missing ) after (?# comment")
		}
		return i + 2 + end + 1, nil
	case strings.HasPrefix(rest, ">"):
		return 0, pcreError("atomic group (?>...)")
	case strings.HasPrefix(rest, "|"):
		return 0, pcreError("branch reset group (?|...)")
	case strings.HasPrefix(rest, "("):
		return 0, pcreError("conditional group (?(...)...)")
	case strings.HasPrefix(rest, "C"):
		return 0, pcreError("callout (?C...)")
	case strings.HasPrefix(rest, "P=") || strings.HasPrefix(rest, "P>") || strings.HasPrefix(rest, "&"):
		return 0, pcreError("named backreference or subroutine call (?P=, (?P>, (?&")
	case len(rest) > 0 && (rest[0] == 'R' || rest[0] == '+' || (rest[0] >= '0' && rest[0] <= '9') ||
		(rest[0] == '-' && len(rest) > 1 && rest[1] >= '0' && rest[1] <= '9')):
		return 0, pcreError("recursion or subroutine call (?R), (?N)")
	}
	var name string
	var consumed int
	switch {
	case strings.HasPrefix(rest, "P<"):
		name, consumed = groupName(rest[2:], '>')
		consumed += 2
	case strings.HasPrefix(rest, "<"):
		name, consumed = groupName(rest[1:], '>')
		consumed++
	case strings.HasPrefix(rest, "'"):
		name, consumed = groupName(rest[1:], '\'')
		consumed++
	default:
		// Inline options: Go has i, m, s and U like PCRE, but not x.
		for j := 0; j < len(rest) && rest[j] != ')' && rest[j] != ':'; j++ {
			if rest[j] == 'x' {
				return 0, pcreError("inline (?x) option; pass \"x\" in the options argument instead")
			}
		}
		b.WriteString("(?")
		return i + 2, nil
	}
	if consumed < 0 {
		return 0, fmt.Errorf("syntax error in subpattern name (missing terminator) at offset %d", i)
	}
	if names[name] && !dupNames {
		return 0, fmt.Errorf("two named subpatterns have the same name at offset %d", i)
	}
	names[name] = true
	b.WriteString("(?P<" + name + ">")
	return i + 2 + consumed, nil
}

// groupName returns the name up to term and how many bytes name and term
// take, or -1 when term is missing.
func groupName(s string, term byte) (string, int) {
	end := strings.IndexByte(s, term)
	if end < 0 {
		return "", -1
	}
	return s[:end], end + 1
}

// contextSensitive reports whether a Go pattern has assertions that look at
// the character before the match (^, \A, \b, \B). Matching such a pattern
// from an offset inside the subject cannot be done on a sub-slice, which
// would make the offset look like the start of the text.
func contextSensitive(expr string) bool {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return true
	}
	var walk func(*syntax.Regexp) bool
	walk = func(r *syntax.Regexp) bool {
		switch r.Op {
		case syntax.OpBeginLine, syntax.OpBeginText, syntax.OpWordBoundary, syntax.OpNoWordBoundary:
			return true
		}
		for _, s := range r.Sub {
			if walk(s) {
				return true
			}
		}
		return false
	}
	return walk(re)
}
