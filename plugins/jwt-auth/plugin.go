// Package jwtauth implements APISIX's jwt-auth plugin: a client proves who it
// is with a JSON Web Token, sent in a header, a query argument or a cookie,
// whose key claim names a consumer and whose signature that consumer's
// jwt-auth credential verifies.
package jwtauth

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/authutil"
)

// Name and Priority are APISIX's (apisix/plugins/jwt-auth.lua).
const (
	Name     = "jwt-auth"
	Priority = 2510
)

// CtxPayload is the Ctx key under which store_in_ctx keeps the verified
// payload, as APISIX's ctx.jwt_auth_payload.
const CtxPayload = "jwt_auth_payload"

func init() {
	plugin.Register(plugin.Descriptor{
		Name:              Name,
		Priority:          Priority,
		NewConfig:         func() plugin.Config { return NewConfig() },
		NewConsumerConfig: func() plugin.Config { return NewConsumerConfig() },
		New:               newJWTAuth,
	})
}

// Messages of APISIX 3.x's jwt-auth, returned as {"message": ...}. Every
// failure after the consumer is found (algorithm, signature, exp, nbf) gets
// the same message, so a client learns nothing about which check failed.
const (
	msgMissing    = "Missing JWT token in request"
	msgInvalid    = "JWT token invalid"
	msgMissingKey = "missing user key in JWT token"
	msgUnknownKey = "Invalid user key in JWT token"
	msgVerify     = "failed to verify jwt"
	msgAnonMiss   = "Invalid user authorization"
)

// credential is one consumer's verified-at-build credential.
type credential struct {
	consumer *plugin.Consumer
	method   jwt.SigningMethod
	alg      string
	key      any // []byte for HS*, a parsed public key otherwise
	grace    int64
}

// jwtAuth is one compiled jwt-auth config. It is immutable and shared by all
// requests on the route.
type jwtAuth struct {
	header, headerVar string
	query, cookie     string
	hide, storeInCtx  bool
	keyClaim          string
	// claims are the claims that must be present; nil checks exp and nbf
	// only when the token has them.
	claims []string
	byKey  map[string]*credential
	anon   authutil.Anonymous
	// now is the clock; tests replace it.
	now func() time.Time
	// The rejections are built once: they carry the WWW-Authenticate header.
	exits map[string]*plugin.Exit
}

func newJWTAuth(cfg plugin.Config, deps plugin.Deps) (any, error) {
	c := cfg.(*Config)
	j := &jwtAuth{
		header:     c.Header,
		headerVar:  "http_" + strings.ReplaceAll(strings.ToLower(c.Header), "-", "_"),
		query:      c.Query,
		cookie:     c.Cookie,
		hide:       c.HideCredentials,
		storeInCtx: c.StoreInCtx,
		keyClaim:   c.KeyClaimName,
		claims:     c.ClaimsToVerify,
		byKey:      make(map[string]*credential, len(deps.Consumers)),
		now:        time.Now,
		exits:      make(map[string]*plugin.Exit),
	}
	for _, cc := range deps.Consumers {
		cred, err := buildCredential(cc)
		if err != nil {
			return nil, err
		}
		if cred == nil {
			continue
		}
		key := cc.Config.(*ConsumerConfig).Key
		if prev, dup := j.byKey[key]; dup {
			return nil, fmt.Errorf("key: duplicate key in %s and %s", authutil.Describe(prev.consumer), authutil.Describe(cc.Consumer))
		}
		j.byKey[key] = cred
	}
	for _, m := range []string{msgMissing, msgInvalid, msgMissingKey, msgUnknownKey, msgVerify, msgAnonMiss} {
		j.exits[m] = authutil.Unauthorized("Bearer", c.Realm, m)
	}
	j.anon = authutil.NewAnonymous(c.AnonymousConsumer, deps, j.exits[msgAnonMiss])
	return j, nil
}

// buildCredential parses a consumer's key material once. It returns nil for a
// credential that still holds a secret reference: like APISIX
// (consumer.lua create_consume_cache), sluice fails closed and skips it, so
// the reference text itself never verifies a token.
func buildCredential(cc plugin.ConsumerCredential) (*credential, error) {
	cfg := cc.Config.(*ConsumerConfig)
	if authutil.IsSecretRef(cfg.Key) || authutil.IsSecretRef(cfg.Secret) || authutil.IsSecretRef(cfg.PublicKey) {
		return nil, nil
	}
	key, err := cfg.verifyKey()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", authutil.Describe(cc.Consumer), err)
	}
	return &credential{
		consumer: cc.Consumer,
		method:   jwt.GetSigningMethod(cfg.Algorithm),
		alg:      cfg.Algorithm,
		key:      key,
		grace:    cfg.LifetimeGracePeriod,
	}, nil
}

// Rewrite authenticates the request. Like APISIX, jwt-auth runs in the
// rewrite phase, so that plugins of the access phase see the consumer.
func (j *jwtAuth) Rewrite(c *plugin.Ctx) *plugin.Exit {
	cons, msg := j.authenticate(c)
	cons, reject := j.anon.Resolve(cons, j.exits[msg])
	if cons == nil {
		return reject
	}
	authutil.Attach(c, cons)
	return nil
}

// authenticate finds and checks the token. It returns the consumer, or nil
// and the rejection message.
func (j *jwtAuth) authenticate(c *plugin.Ctx) (*plugin.Consumer, string) {
	raw, state := j.fetchToken(c.Request)
	switch state {
	case authutil.ArgAbsent:
		return nil, msgMissing
	case authutil.ArgNotString:
		return nil, msgInvalid
	}
	tok, ok := parseToken(raw)
	if !ok {
		return nil, msgInvalid
	}
	kc, found := tok.payload[j.keyClaim]
	if !found || kc == nil || kc == false {
		// Lua's `not user_key`: absent, null and false are all missing.
		return nil, msgMissingKey
	}
	// A non-string key (a number, say) matches no consumer, as in Lua.
	key, isString := kc.(string)
	cred := j.byKey[key]
	if !isString || cred == nil {
		return nil, msgUnknownKey
	}
	// The token's alg must be the consumer's: this is what stops algorithm
	// confusion (an HS256 token "signed" with an RSA public key, or "none").
	if tok.alg != cred.alg {
		return nil, msgVerify
	}
	if cred.method.Verify(tok.signingString, tok.signature, cred.key) != nil {
		return nil, msgVerify
	}
	if !j.checkClaims(tok.payload, cred.grace) {
		return nil, msgVerify
	}
	if j.storeInCtx {
		c.Set(CtxPayload, tok.payload)
	}
	return cred.consumer, ""
}

// checkClaims checks exp and nbf like APISIX's jwt-auth parser: with whole
// seconds, strictly (a token expires at exp, and is valid only after nbf),
// widened by the consumer's grace period.
func (j *jwtAuth) checkClaims(payload map[string]any, grace int64) bool {
	now := float64(j.now().Unix())
	check := func(name string, required bool) bool {
		v, found := payload[name]
		if !found || v == nil {
			// A JSON null is nil in Lua: absent.
			return !required
		}
		n, isNum := v.(float64)
		if !isNum {
			return false
		}
		if name == "nbf" {
			return n < now+float64(grace)
		}
		return n > now-float64(grace)
	}
	if len(j.claims) == 0 {
		return check("nbf", false) && check("exp", false)
	}
	for _, name := range j.claims {
		if !check(name, true) {
			return false
		}
	}
	return true
}

// token is a JWS in compact serialization, decoded but not verified.
type token struct {
	alg           string
	payload       map[string]any
	signingString string
	signature     []byte
}

// parseToken splits and decodes a compact JWS. It fails, like lua-resty-jwt's
// load_jwt, on anything but three segments whose first two are base64url
// JSON objects. Encrypted tokens (JWE, five segments) are not supported.
func parseToken(s string) (*token, bool) {
	h, rest, ok1 := strings.Cut(s, ".")
	p, sig, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.IndexByte(sig, '.') >= 0 {
		return nil, false
	}
	var header struct {
		Alg any `json:"alg"`
	}
	if !decodeJSONSegment(h, &header) {
		return nil, false
	}
	t := &token{signingString: s[:len(h)+1+len(p)]}
	if !decodeJSONSegment(p, &t.payload) || t.payload == nil {
		return nil, false
	}
	var ok bool
	if t.signature, ok = authutil.DecodeBase64(sig, base64.RawURLEncoding); !ok {
		return nil, false
	}
	t.alg, _ = header.Alg.(string)
	return t, true
}

func decodeJSONSegment(seg string, v any) bool {
	b, ok := authutil.DecodeBase64(seg, base64.RawURLEncoding)
	return ok && json.Unmarshal(b, v) == nil
}

// Interface guards.
var (
	_ plugin.Rewriter = (*jwtAuth)(nil)
	_ plugin.Config   = (*Config)(nil)
	_ plugin.Config   = (*ConsumerConfig)(nil)
)
