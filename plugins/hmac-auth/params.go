package hmacauth

import "strings"

// params are the fields of a `Signature` Authorization header.
type params struct {
	keyID, algorithm, signature, headers             string
	hasKeyID, hasAlgorithm, hasSignature, hasHeaders bool
}

// parseParams reads the fields after "Signature" the way APISIX 3.x does
// (hmac-auth.lua retrieve_hmac_fields): the text is split on ',', and in
// each part the first `name="value"` (name alphanumeric, value up to the next
// '"') is taken; keyId, algorithm, signature and headers are kept, a later
// occurrence replacing an earlier one, and anything else is ignored. Values
// cannot hold commas or quotes.
func parseParams(s string) params {
	var p params
	for s != "" {
		var part string
		part, s, _ = strings.Cut(s, ",")
		name, value, ok := matchField(part)
		if !ok {
			continue
		}
		switch name {
		case "keyId":
			p.keyID, p.hasKeyID = value, true
		case "algorithm":
			p.algorithm, p.hasAlgorithm = value, true
		case "signature":
			p.signature, p.hasSignature = value, true
		case "headers":
			p.headers, p.hasHeaders = value, true
		}
	}
	return p
}

// matchField finds, in linear time, what the unanchored Lua pattern
// `%s*(%w+)="(.-)"` matches first in part.
func matchField(part string) (name, value string, ok bool) {
	for i := 0; i < len(part); {
		j := i
		for j < len(part) && isSpace(part[j]) {
			j++
		}
		k := j
		for k < len(part) && isAlnum(part[k]) {
			k++
		}
		if k > j && k+1 < len(part) && part[k] == '=' && part[k+1] == '"' {
			end := strings.IndexByte(part[k+2:], '"')
			if end < 0 {
				// Any later start reaches '="' further right: no quote there either.
				return "", "", false
			}
			return part[j:k], part[k+2 : k+2+end], true
		}
		// Every start in [i, k) fails the same way: they share the '=' test at k.
		if k > i {
			i = k
		} else {
			i++
		}
	}
	return "", "", false
}

// signs reports whether the headers list names h (exactly, as APISIX
// compares them).
func (p *params) signs(h string) bool {
	for rest := p.headers; p.hasHeaders; {
		var name string
		name, rest, _ = strings.Cut(rest, " ")
		if name == h {
			return true
		}
		if rest == "" {
			return false
		}
	}
	return false
}

// isSpace is Lua's %s in the C locale.
func isSpace(c byte) bool { return c == ' ' || '\t' <= c && c <= '\r' }

// isAlnum is Lua's %w in the C locale.
func isAlnum(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c|0x20 && c|0x20 <= 'z'
}
