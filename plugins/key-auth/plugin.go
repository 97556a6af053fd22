// Package keyauth implements APISIX's key-auth plugin: a client proves who it
// is with a key, sent in a request header or a query argument, that matches
// the key-auth credential of one consumer.
package keyauth

import (
	"fmt"
	"strings"

	"github.com/sluicegw/sluice/plugin"
)

// Name and Priority are APISIX's (apisix/plugins/key-auth.lua).
const (
	Name     = "key-auth"
	Priority = 2500
)

func init() {
	plugin.Register(plugin.Descriptor{
		Name:              Name,
		Priority:          Priority,
		NewConfig:         func() plugin.Config { return NewConfig() },
		NewConsumerConfig: func() plugin.Config { return NewConsumerConfig() },
		New:               newKeyAuth,
	})
}

// Messages of APISIX 3.x's key-auth, returned as {"message": ...}.
const (
	msgMissing     = "Missing API key in request"
	msgInvalid     = "Invalid API key in request"
	msgAnonMissing = "Invalid user authorization"
)

// keyAuth is one compiled key-auth config. It is immutable and shared by all
// requests on the route.
type keyAuth struct {
	header string
	query  string
	hide   bool
	// byKey indexes consumers by key; the hot path is one lookup in it.
	byKey map[string]*plugin.Consumer
	// anonName is the configured anonymous consumer ("" when unset), and
	// anon the consumer it resolved to (nil when it does not exist).
	anonName string
	anon     *plugin.Consumer
	// The rejections are built once: they carry the WWW-Authenticate header.
	missing, invalid, anonMissing *plugin.Exit
}

func newKeyAuth(cfg plugin.Config, deps plugin.Deps) (any, error) {
	c := cfg.(*Config)
	k := &keyAuth{
		header: c.Header,
		query:  c.Query,
		hide:   c.HideCredentials,
		byKey:  make(map[string]*plugin.Consumer, len(deps.Consumers)),
	}
	owner := make(map[string]*plugin.Consumer, len(deps.Consumers))
	for _, cc := range deps.Consumers {
		key := cc.Config.(*ConsumerConfig).Key
		// Fail closed like APISIX (consumer.lua create_consume_cache): an
		// unresolved secret reference must not be usable as a key literally.
		if isSecretRef(key) {
			continue
		}
		if prev, dup := owner[key]; dup {
			return nil, fmt.Errorf("key: duplicate key in %s and %s", describe(prev), describe(cc.Consumer))
		}
		owner[key] = cc.Consumer
		k.byKey[key] = cc.Consumer
	}
	if c.AnonymousConsumer != nil {
		k.anonName = *c.AnonymousConsumer
		k.anon = findConsumer(deps, k.anonName)
	}
	www := []plugin.Header{
		{Name: "Content-Type", Value: "application/json"},
		{Name: "WWW-Authenticate", Value: `apikey realm="` + c.Realm + `"`},
	}
	k.missing = withHeaders(plugin.MessageExit(401, msgMissing), www)
	k.invalid = withHeaders(plugin.MessageExit(401, msgInvalid), www)
	k.anonMissing = withHeaders(plugin.MessageExit(401, msgAnonMissing), www)
	return k, nil
}

// Rewrite authenticates the request. Like APISIX, key-auth runs in the
// rewrite phase, so that plugins of the access phase (consumer-restriction,
// limit-count by consumer...) see the consumer.
func (k *keyAuth) Rewrite(c *plugin.Ctx) *plugin.Exit {
	r := c.Request
	key, fromHeader := r.Header(k.header), true
	state := argOne
	if key == "" {
		// An empty header counts as absent: the SDK cannot tell them apart.
		key, state = queryArg(r.RawQuery(), k.query)
		fromHeader = false
	}
	if state == argAbsent {
		return k.fail(c, k.missing)
	}
	var cons *plugin.Consumer
	if state == argOne {
		cons = k.byKey[key]
	}
	// A repeated or valueless argument is a table or a boolean in APISIX,
	// which matches no key.
	if cons == nil {
		return k.fail(c, k.invalid)
	}
	if k.hide {
		if fromHeader {
			r.DelHeader(k.header)
		} else {
			r.SetRawQuery(removeArg(r.RawQuery(), k.query))
		}
	}
	attach(c, cons)
	return nil
}

// fail falls back to the anonymous consumer when one is configured, or
// returns the rejection.
func (k *keyAuth) fail(c *plugin.Ctx, reject *plugin.Exit) *plugin.Exit {
	if k.anonName == "" {
		return reject
	}
	if k.hide {
		// As APISIX does since 3.14: a wrong key must not reach the upstream
		// on the anonymous path either, wherever it was sent.
		r := c.Request
		if r.Header(k.header) != "" {
			r.DelHeader(k.header)
		}
		if _, st := queryArg(r.RawQuery(), k.query); st != argAbsent {
			r.SetRawQuery(removeArg(r.RawQuery(), k.query))
		}
	}
	if k.anon == nil {
		return k.anonMissing
	}
	attach(c, k.anon)
	return nil
}

// attach identifies the request as cons and tells the upstream who it is,
// as APISIX's consumer.attach_consumer does. The headers are always set or
// removed, so a client cannot send its own.
func attach(c *plugin.Ctx, cons *plugin.Consumer) {
	c.Consumer = cons
	r := c.Request
	r.SetHeader("X-Consumer-Username", cons.Username)
	setOrDel(r, "X-Credential-Identifier", cons.CredentialID)
	setOrDel(r, "X-Consumer-Custom-ID", cons.Labels["custom_id"])
}

func setOrDel(r plugin.Request, name, value string) {
	if value == "" {
		r.DelHeader(name)
		return
	}
	r.SetHeader(name, value)
}

// findConsumer returns the consumer named username among deps, or nil.
func findConsumer(deps plugin.Deps, username string) *plugin.Consumer {
	for _, cc := range deps.Consumers {
		if cc.Consumer.Username == username {
			return cc.Consumer
		}
	}
	return nil
}

func describe(c *plugin.Consumer) string {
	if c.CredentialID != "" {
		return fmt.Sprintf("credential %q of consumer %q", c.CredentialID, c.Username)
	}
	return fmt.Sprintf("consumer %q", c.Username)
}

// isSecretRef reports whether v is an APISIX secret reference ($secret://...
// or $env://..., the latter in any case), as apisix/secret.lua is_secret_ref.
func isSecretRef(v string) bool {
	return strings.HasPrefix(v, "$secret://") ||
		(len(v) >= 7 && strings.EqualFold(v[:7], "$env://"))
}

func withHeaders(e *plugin.Exit, hs []plugin.Header) *plugin.Exit {
	e.Headers = hs
	return e
}

// Argument states in a query string.
const (
	argAbsent = iota // not present
	argOne           // present once, with a value
	argOther         // repeated, or without '=': never a valid key
)

// queryArg finds the argument name in the raw query q, splitting on '&' and
// decoding '%XX' and '+' like ngx.req.get_uri_args. It returns the decoded
// value of a single `name=value` occurrence. It allocates only when the value
// is escaped.
func queryArg(q, name string) (string, int) {
	val, state := "", argAbsent
	for q != "" {
		var seg string
		seg, q, _ = strings.Cut(q, "&")
		k, v, hasEq := strings.Cut(seg, "=")
		if !unescapedEquals(k, name) {
			continue
		}
		if state != argAbsent || !hasEq {
			state = argOther
			continue
		}
		val, state = unescape(v), argOne
	}
	return val, state
}

// removeArg returns q without the arguments whose decoded name is name,
// keeping the others as they were sent. APISIX re-encodes the whole query
// instead (core.request.set_uri_args), which also reorders it.
func removeArg(q, name string) string {
	var b strings.Builder
	for q != "" {
		var seg string
		seg, q, _ = strings.Cut(q, "&")
		k, _, _ := strings.Cut(seg, "=")
		if unescapedEquals(k, name) {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(seg)
	}
	return b.String()
}

// unescapedEquals reports whether unescape(s) == want without allocating.
func unescapedEquals(s, want string) bool {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s == want
	}
	return unescape(s) == want
}

// unescape decodes '+' to a space and valid '%XX' escapes, leaving invalid
// escapes as they are, like nginx's ngx_http_lua_unescape_uri.
func unescape(s string) string {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case ch == '+':
			b = append(b, ' ')
		case ch == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		default:
			b = append(b, ch)
		}
	}
	return string(b)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c|0x20 && c|0x20 <= 'f'
}

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return (c | 0x20) - 'a' + 10
}

// Interface guards.
var (
	_ plugin.Rewriter = (*keyAuth)(nil)
	_ plugin.Config   = (*Config)(nil)
	_ plugin.Config   = (*ConsumerConfig)(nil)
)
