// Package keyauth implements APISIX's key-auth plugin: a client proves who it
// is with a key, sent in a request header or a query argument, that matches
// the key-auth credential of one consumer.
package keyauth

import (
	"fmt"

	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/authutil"
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
	anon  authutil.Anonymous
	// The rejections are built once: they carry the WWW-Authenticate header.
	missing, invalid *plugin.Exit
}

func newKeyAuth(cfg plugin.Config, deps plugin.Deps) (any, error) {
	c := cfg.(*Config)
	k := &keyAuth{
		header:  c.Header,
		query:   c.Query,
		hide:    c.HideCredentials,
		byKey:   make(map[string]*plugin.Consumer, len(deps.Consumers)),
		missing: authutil.Unauthorized("apikey", c.Realm, msgMissing),
		invalid: authutil.Unauthorized("apikey", c.Realm, msgInvalid),
	}
	for _, cc := range deps.Consumers {
		key := cc.Config.(*ConsumerConfig).Key
		// Fail closed like APISIX: an unresolved secret reference must not
		// be usable as a key literally.
		if authutil.IsSecretRef(key) {
			continue
		}
		if prev, dup := k.byKey[key]; dup {
			return nil, fmt.Errorf("key: duplicate key in %s and %s", authutil.Describe(prev), authutil.Describe(cc.Consumer))
		}
		k.byKey[key] = cc.Consumer
	}
	k.anon = authutil.NewAnonymous(c.AnonymousConsumer, deps, authutil.Unauthorized("apikey", c.Realm, msgAnonMissing))
	return k, nil
}

// Rewrite authenticates the request. Like APISIX, key-auth runs in the
// rewrite phase, so that plugins of the access phase (consumer-restriction,
// limit-count by consumer...) see the consumer.
func (k *keyAuth) Rewrite(c *plugin.Ctx) *plugin.Exit {
	r := c.Request
	key, fromHeader := r.Header(k.header), true
	state := authutil.ArgOne
	if key == "" {
		// An empty header counts as absent: the SDK cannot tell them apart.
		key, state = authutil.QueryArg(r.RawQuery(), k.query)
		fromHeader = false
	}
	if state == authutil.ArgAbsent {
		return k.fail(c, k.missing)
	}
	var cons *plugin.Consumer
	if state == authutil.ArgOne {
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
			r.SetRawQuery(authutil.RemoveArg(r.RawQuery(), k.query))
		}
	}
	authutil.Attach(c, cons)
	return nil
}

// fail falls back to the anonymous consumer when one is configured, or
// returns the rejection.
func (k *keyAuth) fail(c *plugin.Ctx, reject *plugin.Exit) *plugin.Exit {
	if k.hide && k.anon.Configured() {
		// As APISIX does since 3.14: a wrong key must not reach the upstream
		// on the anonymous path either, wherever it was sent.
		r := c.Request
		if r.Header(k.header) != "" {
			r.DelHeader(k.header)
		}
		if _, st := authutil.QueryArg(r.RawQuery(), k.query); st != authutil.ArgAbsent {
			r.SetRawQuery(authutil.RemoveArg(r.RawQuery(), k.query))
		}
	}
	cons, exit := k.anon.Resolve(nil, reject)
	if cons == nil {
		return exit
	}
	authutil.Attach(c, cons)
	return nil
}

// Interface guards.
var (
	_ plugin.Rewriter = (*keyAuth)(nil)
	_ plugin.Config   = (*Config)(nil)
	_ plugin.Config   = (*ConsumerConfig)(nil)
)
