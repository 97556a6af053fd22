package router

import (
	"errors"
	"fmt"
	"strings"
)

// Param is a path parameter captured by a ":name" segment or a "*name"
// catch-all. Value is a substring of the request path, so capturing copies
// nothing.
type Param struct {
	Name  string
	Value string
}

// uriKind says how a URI is indexed.
type uriKind uint8

const (
	uriExact   uriKind = iota // No wildcard: looked up in a hash map.
	uriPrefix                 // Trailing "*": the key is a prefix and decides alone.
	uriPattern                // Parameters or a catch-all: the key is the literal prefix, then the pattern decides.
)

// token is one piece of a pattern: a literal (which may span several
// segments) or a parameter that matches one non-empty segment.
type token struct {
	lit   string
	name  string
	param bool
}

// pattern matches what follows the literal prefix of a URI with parameters:
// head tokens, an optional catch-all, then tail tokens. A catch-all matches
// any text including '/' and the empty string; since tail tokens cover a
// fixed number of segments, matching them from the end of the path makes the
// whole match deterministic, with no backtracking.
type pattern struct {
	head      []token
	catch     bool
	catchName string
	tail      []token
}

// parseURI classifies uri and returns its index key, and for uriPattern the
// pattern. A ':' starts a parameter only at the start of a segment (and only
// when params is true); a '*' must start a segment ("*name", a named
// catch-all) or end the URI ("/api*", a prefix).
func parseURI(uri string, params bool) (string, uriKind, *pattern, error) {
	if uri == "" {
		return "", 0, nil, errors.New("must not be empty")
	}
	if uri[0] != '/' && uri[0] != '*' {
		return "", 0, nil, fmt.Errorf("%q must start with \"/\"", uri)
	}
	first := -1
	for i := 0; i < len(uri) && first < 0; i++ {
		if isSpecial(uri, i, params) {
			first = i
		}
	}
	switch {
	case first < 0:
		return uri, uriExact, nil, nil
	case first == len(uri)-1 && uri[first] == '*':
		return uri[:first], uriPrefix, nil, nil
	}
	p, err := compilePattern(uri, params)
	if err != nil {
		return "", 0, nil, err
	}
	return uri[:first], uriPattern, p, nil
}

// isSpecial reports whether uri[i] starts a parameter or a catch-all.
func isSpecial(uri string, i int, params bool) bool {
	atSeg := i == 0 || uri[i-1] == '/'
	return (uri[i] == ':' && params && atSeg) || uri[i] == '*'
}

// compilePattern splits uri into literal, parameter and catch-all tokens.
func compilePattern(uri string, params bool) (*pattern, error) {
	p := &pattern{}
	add := func(t token) {
		if p.catch {
			p.tail = append(p.tail, t)
		} else {
			p.head = append(p.head, t)
		}
	}
	litStart := 0
	for i := 0; i < len(uri); {
		if !isSpecial(uri, i, params) {
			i++
			continue
		}
		if litStart < i {
			add(token{lit: uri[litStart:i]})
		}
		end := i + 1
		for end < len(uri) && uri[end] != '/' {
			end++
		}
		name := uri[i+1 : end]
		atSeg := i == 0 || uri[i-1] == '/'
		switch {
		case uri[i] == ':':
			add(token{param: true, name: name})
		case !atSeg && (name != "" || end != len(uri)), strings.IndexByte(name, '*') >= 0:
			return nil, fmt.Errorf("%q: '*' must start a segment or end the URI", uri)
		case p.catch:
			return nil, fmt.Errorf("%q: at most one '*' catch-all is allowed", uri)
		default:
			p.catch, p.catchName = true, name
		}
		i, litStart = end, end
	}
	if litStart < len(uri) {
		add(token{lit: uri[litStart:]})
	}
	return p, nil
}

// match reports whether path matches the pattern; the caller has already
// checked the literal prefix but the head repeats it, which is cheap and keeps
// this self-contained. When capture is set, captured values are appended to
// dst, which is returned; the slice is passed by value so that the caller's
// buffer does not escape to the heap.
func (p *pattern) match(path string, dst []Param, capture bool) ([]Param, bool) {
	pos, _, ok := matchForward(p.head, path, 0, nil, false)
	if !ok {
		return dst, false
	}
	if !p.catch {
		if pos != len(path) {
			return dst, false
		}
		if capture {
			_, dst, _ = matchForward(p.head, path, 0, dst, true)
		}
		return dst, true
	}
	end := len(path)
	for i := len(p.tail) - 1; i >= 0; i-- {
		t := &p.tail[i]
		if t.param {
			start := end
			for start > pos && path[start-1] != '/' {
				start--
			}
			if start == end {
				return dst, false
			}
			end = start
			continue
		}
		if end-pos < len(t.lit) || path[end-len(t.lit):end] != t.lit {
			return dst, false
		}
		end -= len(t.lit)
	}
	if capture {
		// Capture only after the whole match succeeded, in URI order.
		_, dst, _ = matchForward(p.head, path, 0, dst, true)
		if p.catchName != "" {
			dst = append(dst, Param{Name: p.catchName, Value: path[pos:end]})
		}
		_, dst, _ = matchForward(p.tail, path, end, dst, true)
	}
	return dst, true
}

// matchForward matches tokens against path from pos and returns the end
// position, appending named parameters to dst when capture is set.
func matchForward(tokens []token, path string, pos int, dst []Param, capture bool) (int, []Param, bool) {
	for i := range tokens {
		t := &tokens[i]
		if !t.param {
			if !strings.HasPrefix(path[pos:], t.lit) {
				return pos, dst, false
			}
			pos += len(t.lit)
			continue
		}
		end := pos
		for end < len(path) && path[end] != '/' {
			end++
		}
		if end == pos {
			return pos, dst, false
		}
		if capture && t.name != "" {
			dst = append(dst, Param{Name: t.name, Value: path[pos:end]})
		}
		pos = end
	}
	return pos, dst, true
}
