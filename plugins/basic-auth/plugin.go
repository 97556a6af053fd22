// Package basicauth implements APISIX's basic-auth plugin: a client proves
// who it is with `Authorization: Basic base64(username:password)` matching
// the basic-auth credential of one consumer.
package basicauth

import (
	"bytes"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/authutil"
)

// Name and Priority are APISIX's (apisix/plugins/basic-auth.lua).
const (
	Name     = "basic-auth"
	Priority = 2520
)

func init() {
	plugin.Register(plugin.Descriptor{
		Name:              Name,
		Priority:          Priority,
		NewConfig:         func() plugin.Config { return NewConfig() },
		NewConsumerConfig: func() plugin.Config { return NewConsumerConfig() },
		New:               newBasicAuth,
	})
}

// Messages of APISIX 3.x's basic-auth, returned as {"message": ...}.
const (
	msgMissing     = "Missing authorization in request"
	msgInvalidAuth = "Invalid authorization in request"
	msgInvalidUser = "Invalid user authorization"
)

// user is one consumer's credential, indexed by username.
type user struct {
	consumer *plugin.Consumer
	password []byte
}

// basicAuth is one compiled basic-auth config. It is immutable and shared by
// all requests on the route.
type basicAuth struct {
	hide  bool
	users map[string]user
	anon  authutil.Anonymous
	// The rejections are built once: they carry the WWW-Authenticate header.
	missing, invalidAuth, invalidUser *plugin.Exit
}

func newBasicAuth(cfg plugin.Config, deps plugin.Deps) (any, error) {
	c := cfg.(*Config)
	b := &basicAuth{
		hide:        c.HideCredentials,
		users:       make(map[string]user, len(deps.Consumers)),
		missing:     authutil.Unauthorized("Basic", c.Realm, msgMissing),
		invalidAuth: authutil.Unauthorized("Basic", c.Realm, msgInvalidAuth),
		invalidUser: authutil.Unauthorized("Basic", c.Realm, msgInvalidUser),
	}
	for _, cc := range deps.Consumers {
		cred := cc.Config.(*ConsumerConfig)
		// Fail closed like APISIX: an unresolved secret reference must not
		// be usable literally.
		if authutil.IsSecretRef(cred.Username) || authutil.IsSecretRef(cred.Password) {
			continue
		}
		if prev, dup := b.users[cred.Username]; dup {
			return nil, fmt.Errorf("username: duplicate username %q in %s and %s",
				cred.Username, authutil.Describe(prev.consumer), authutil.Describe(cc.Consumer))
		}
		b.users[cred.Username] = user{consumer: cc.Consumer, password: []byte(cred.Password)}
	}
	b.anon = authutil.NewAnonymous(c.AnonymousConsumer, deps, b.invalidUser)
	return b, nil
}

// scratchSize bounds the stack buffer that decodes credentials: half holds
// the base64 text, half the decoded bytes. Longer headers are decoded on the
// heap.
const scratchSize = 512

// Rewrite authenticates the request. Like APISIX, basic-auth runs in the
// rewrite phase, so that plugins of the access phase see the consumer.
func (b *basicAuth) Rewrite(c *plugin.Ctx) *plugin.Exit {
	cons, reject := b.anon.Resolve(b.find(c.Request))
	if cons == nil {
		return reject
	}
	if b.hide {
		c.Request.DelHeader("Authorization")
	}
	authutil.Attach(c, cons)
	return nil
}

// find returns the consumer the Authorization header proves, or the
// rejection.
func (b *basicAuth) find(r plugin.Request) (*plugin.Consumer, *plugin.Exit) {
	h := r.Header("Authorization")
	if h == "" {
		// An empty header counts as absent: the SDK cannot tell them apart.
		return nil, b.missing
	}
	var scratch [scratchSize]byte
	name, pass, ok := parseBasic(h, &scratch)
	if !ok {
		return nil, b.invalidAuth
	}
	u, found := b.users[string(name)]
	if !found || subtle.ConstantTimeCompare(u.password, pass) != 1 {
		return nil, b.invalidUser
	}
	return u.consumer, nil
}

// parseBasic extracts the username and password from an Authorization value
// exactly as APISIX's basic-auth does:
//
//   - the value must match the unanchored regex `(?i:basic)\s(.+)`;
//   - the capture is base64 decoded as nginx does: the text stops at the
//     first '=', must use the standard alphabet, and may be unpadded;
//   - the result is split on ':' (ngx.re.split, trailing empty fields
//     dropped); at least two fields must remain; the username is the first
//     field and the password the second, so a password stops at its first ':';
//   - white space is removed from both.
//
// The results point into scratch.
func parseBasic(h string, scratch *[scratchSize]byte) (name, pass []byte, ok bool) {
	enc, ok := basicToken(h)
	if !ok {
		return nil, nil, false
	}
	if i := strings.IndexByte(enc, '='); i >= 0 {
		enc = enc[:i]
	}
	var src, dst []byte
	if half := scratchSize / 2; len(enc) <= half {
		src = scratch[:copy(scratch[:half], enc)]
		dst = scratch[half:]
	} else {
		src = []byte(enc)
		dst = make([]byte, base64.RawStdEncoding.DecodedLen(len(src)))
	}
	n, err := base64.RawStdEncoding.Decode(dst, src)
	if err != nil {
		return nil, nil, false
	}
	d := dst[:n]
	i := bytes.IndexByte(d, ':')
	if i < 0 {
		return nil, nil, false
	}
	name, rest := d[:i], d[i+1:]
	if !hasNonColon(rest) {
		// All fields after the username are empty and were dropped.
		return nil, nil, false
	}
	pass = rest
	if j := bytes.IndexByte(rest, ':'); j >= 0 {
		pass = rest[:j]
	}
	return stripSpace(name), stripSpace(pass), true
}

// basicToken finds the leftmost "basic" (any case) followed by one white
// space character and at least one more character, and returns what follows
// the white space.
func basicToken(h string) (string, bool) {
	for i := 0; i+7 <= len(h); i++ {
		if strings.EqualFold(h[i:i+5], "basic") && isSpace(h[i+5]) {
			return h[i+6:], true
		}
	}
	return "", false
}

// isSpace is PCRE's \s: space, \t, \n, \v, \f and \r.
func isSpace(c byte) bool { return c == ' ' || ('\t' <= c && c <= '\r') }

// stripSpace removes white space from b in place.
func stripSpace(b []byte) []byte {
	out := b[:0]
	for _, c := range b {
		if !isSpace(c) {
			out = append(out, c)
		}
	}
	return out
}

func hasNonColon(b []byte) bool {
	for _, c := range b {
		if c != ':' {
			return true
		}
	}
	return false
}

// Interface guards.
var (
	_ plugin.Rewriter = (*basicAuth)(nil)
	_ plugin.Config   = (*Config)(nil)
	_ plugin.Config   = (*ConsumerConfig)(nil)
)
