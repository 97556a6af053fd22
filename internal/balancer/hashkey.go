package balancer

import (
	"fmt"
	"strings"
)

// FNV-1a 64-bit parameters.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// hasher is a streaming FNV-1a state. Streaming lets a vars_combinations key
// be hashed part by part, which equals hashing the concatenation without ever
// building it.
type hasher uint64

func newHasher() hasher { return fnvOffset }

func (h hasher) add(s string) hasher {
	for i := 0; i < len(s); i++ {
		h ^= hasher(s[i])
		h *= fnvPrime
	}
	return h
}

// sum finishes the hash. FNV-1a alone spreads similar short keys (addresses
// differing in one digit) poorly over the ring, so the murmur3 64-bit
// finalizer mixes the result.
func (h hasher) sum() uint64 { return mix64(uint64(h)) }

// mix64 is the murmur3 fmix64 finalizer; it is a bijection with full
// avalanche.
func mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// keyFunc computes the chash key hash of a request.
type keyFunc struct {
	// vars is the variable to read for vars, header, cookie and consumer.
	vars string
	// tpl is the compiled template for vars_combinations; nil otherwise.
	tpl []tplPart
}

// tplPart is a literal or a variable reference of a vars_combinations key.
type tplPart struct {
	lit  string
	name string // variable name; empty for a literal
	def  string // value used when the variable is missing ("${a ?? b}")
}

// newKeyFunc compiles hash_on and key into a keyFunc.
func newKeyFunc(hashOn, key string) (keyFunc, error) {
	switch hashOn {
	case "", HashOnVars:
		if key == "" {
			return keyFunc{}, fmt.Errorf("key: must not be empty for hash_on %q", HashOnVars)
		}
		return keyFunc{vars: key}, nil
	case HashOnHeader:
		if key == "" {
			return keyFunc{}, fmt.Errorf("key: must not be empty for hash_on %q", hashOn)
		}
		// Header variables use nginx's normalised name: lower case, dashes
		// as underscores, so "X-User-ID" is read as http_x_user_id.
		name := strings.ReplaceAll(strings.ToLower(key), "-", "_")
		return keyFunc{vars: "http_" + name}, nil
	case HashOnCookie:
		if key == "" {
			return keyFunc{}, fmt.Errorf("key: must not be empty for hash_on %q", hashOn)
		}
		return keyFunc{vars: "cookie_" + key}, nil
	case HashOnConsumer:
		return keyFunc{vars: "consumer_name"}, nil
	case HashOnVarsCombinations:
		if key == "" {
			return keyFunc{}, fmt.Errorf("key: must not be empty for hash_on %q", hashOn)
		}
		return keyFunc{tpl: compileTemplate(key)}, nil
	default:
		return keyFunc{}, fmt.Errorf("hash_on: unknown value %q", hashOn)
	}
}

// hash returns the key hash for req. As in APISIX, a missing key falls back to
// the client address, so requests without the key still spread by client.
// A vars_combinations template always yields a string (missing variables
// become empty), so it never falls back, which is also APISIX's behaviour.
func (k *keyFunc) hash(req VarSource) uint64 {
	h := newHasher()
	if req == nil {
		return h.sum()
	}
	if k.tpl != nil {
		for i := range k.tpl {
			p := &k.tpl[i]
			if p.name == "" {
				h = h.add(p.lit)
				continue
			}
			v, ok := req.Var(p.name)
			if !ok {
				v = p.def
			}
			h = h.add(v)
		}
		return h.sum()
	}
	v, ok := req.Var(k.vars)
	if !ok {
		v, _ = req.Var("remote_addr")
	}
	return h.add(v).sum()
}

// compileTemplate splits a vars_combinations key into literals and variable
// references. It accepts APISIX's forms: "$name" (letters, digits, "_" and
// "."), "${name}" and "${name ?? default}"; a "$" preceded by a backslash is
// kept literally, backslash included, as APISIX does.
func compileTemplate(s string) []tplPart {
	var parts []tplPart
	lit := 0 // start of the pending literal
	flush := func(end int) {
		if end > lit {
			parts = append(parts, tplPart{lit: s[lit:end]})
		}
	}
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || (i > 0 && s[i-1] == '\\') {
			continue
		}
		if i+1 < len(s) && s[i+1] == '{' {
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				continue
			}
			body := s[i+2 : i+2+end]
			name, def, _ := strings.Cut(body, "??")
			name = strings.TrimSpace(name)
			if name == "" {
				continue
			}
			flush(i)
			parts = append(parts, tplPart{name: name, def: strings.TrimSpace(def)})
			i += 2 + end
			lit = i + 1
			continue
		}
		j := i + 1
		for j < len(s) && isVarByte(s[j]) {
			j++
		}
		if j == i+1 {
			continue
		}
		flush(i)
		parts = append(parts, tplPart{name: s[i+1 : j]})
		lit = j
		i = j - 1
	}
	flush(len(s))
	if parts == nil {
		// keyFunc tells the template form apart by a non-nil slice.
		parts = []tplPart{{}}
	}
	return parts
}

func isVarByte(c byte) bool {
	return c == '_' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
