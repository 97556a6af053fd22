// Package hmacauth implements APISIX 3.x's hmac-auth plugin: a client signs
// the request with a secret it shares with the gateway, following
// draft-cavage-http-signatures-12, and sends
//
//	Authorization: Signature keyId="...",algorithm="hmac-sha256",headers="@request-target date",signature="..."
//
// The key id names a consumer's hmac-auth credential, whose secret key must
// produce the same signature.
package hmacauth

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/authutil"
)

// Name and Priority are APISIX's (apisix/plugins/hmac-auth.lua).
const (
	Name     = "hmac-auth"
	Priority = 2530
)

func init() {
	plugin.Register(plugin.Descriptor{
		Name:              Name,
		Priority:          Priority,
		NewConfig:         func() plugin.Config { return NewConfig() },
		NewConsumerConfig: func() plugin.Config { return NewConsumerConfig() },
		New:               newHMACAuth,
	})
}

// Messages of APISIX 3.x's hmac-auth, returned as {"message": ...}. Only a
// missing or non-Signature Authorization header is explained to the client;
// every other failure gets msgInvalid (APISIX logs the reason).
const (
	msgMissingAuth  = "client request can't be validated: missing Authorization header"
	msgNotSignature = "client request can't be validated: Authorization header does not start with 'Signature'"
	msgInvalid      = "client request can't be validated"
	msgAnonMissing  = "Invalid user authorization"
	// msgReadFailed answers a body that could not be read (the client went
	// away or stalled): nginx ends such a request itself, without
	// authenticating it, so it is not a 401.
	msgReadFailed = "failed to read request body"
)

// Reasons a signed request is refused, as APISIX logs them.
const (
	reasonNoKeyOrSig    = "keyId or signature missing"
	reasonNoAlgorithm   = "algorithm missing"
	reasonKeyID         = "Invalid key_id"
	reasonAlgorithm     = "Invalid algorithm"
	reasonNoDate        = "Date header missing. failed to validate clock skew"
	reasonBadDate       = "Invalid GMT format time"
	reasonSkew          = "Clock skew exceeded"
	reasonSignedHeaders = "expected header %q missing in signing"
	reasonSignature     = "Invalid signature"
	reasonDigest        = "Invalid digest"
)

// hashes maps algorithm names to hash constructors.
var hashes = map[string]func() hash.Hash{
	"hmac-sha1":   sha1.New,
	"hmac-sha256": sha256.New,
	"hmac-sha512": sha512.New,
}

// hmacAuth is one compiled hmac-auth config. It is immutable and shared by
// all requests on the route.
type hmacAuth struct {
	allowed []string
	skew    int64
	signed  []string
	hide    bool
	// validateBody and maxBody are validate_request_body and
	// max_req_body_size.
	validateBody bool
	maxBody      int64
	// byKeyID indexes consumers by key id.
	byKeyID map[string]*credential
	anon    authutil.Anonymous
	// now is the clock; tests replace it.
	now func() time.Time
	// The rejections are built once: the 401s carry the WWW-Authenticate
	// header.
	missingAuth, notSignature, invalid, readFailed *plugin.Exit
}

type credential struct {
	consumer *plugin.Consumer
	secret   []byte
}

func newHMACAuth(cfg plugin.Config, deps plugin.Deps) (any, error) {
	c := cfg.(*Config)
	h := &hmacAuth{
		allowed:      c.AllowedAlgorithms,
		skew:         c.ClockSkew,
		signed:       c.SignedHeaders,
		hide:         c.HideCredentials,
		validateBody: c.ValidateRequestBody,
		maxBody:      c.MaxReqBodySize,
		byKeyID:      make(map[string]*credential, len(deps.Consumers)),
		now:          time.Now,
		missingAuth:  authutil.Unauthorized("hmac", c.Realm, msgMissingAuth),
		notSignature: authutil.Unauthorized("hmac", c.Realm, msgNotSignature),
		invalid:      authutil.Unauthorized("hmac", c.Realm, msgInvalid),
		readFailed:   plugin.MessageExit(400, msgReadFailed),
	}
	for _, cc := range deps.Consumers {
		cred := cc.Config.(*ConsumerConfig)
		// Fail closed like APISIX: a credential still holding a secret
		// reference is skipped, so the reference text is never usable as a
		// key id or secret.
		if authutil.IsSecretRef(cred.KeyID) || authutil.IsSecretRef(cred.SecretKey) {
			continue
		}
		if prev, dup := h.byKeyID[cred.KeyID]; dup {
			return nil, fmt.Errorf("key_id: duplicate key_id in %s and %s", authutil.Describe(prev.consumer), authutil.Describe(cc.Consumer))
		}
		h.byKeyID[cred.KeyID] = &credential{consumer: cc.Consumer, secret: []byte(cred.SecretKey)}
	}
	h.anon = authutil.NewAnonymous(c.AnonymousConsumer, deps, authutil.Unauthorized("hmac", c.Realm, msgAnonMissing))
	return h, nil
}

// Rewrite authenticates the request. Like APISIX, hmac-auth runs in the
// rewrite phase, so that plugins of the access phase see the consumer.
func (h *hmacAuth) Rewrite(c *plugin.Ctx) *plugin.Exit {
	cons, reject, _ := h.authenticate(c.Request)
	if cons == nil && reject.Status != 401 {
		// A definite answer about the body (413 past max_req_body_size, 400
		// when it could not be read): as in APISIX it goes to the client as
		// it is, even with an anonymous consumer, since the request was not
		// merely unauthenticated.
		return reject
	}
	cons, reject = h.anon.Resolve(cons, reject)
	if cons == nil {
		return reject
	}
	if h.hide {
		c.Request.DelHeader("Authorization")
	}
	authutil.Attach(c, cons)
	return nil
}

// authenticate checks the request's signature. It returns the consumer, or
// the rejection and the reason APISIX would log.
func (h *hmacAuth) authenticate(r plugin.Request) (*plugin.Consumer, *plugin.Exit, string) {
	auth := r.Header("Authorization")
	if auth == "" {
		if _, present := r.Var("http_authorization"); !present {
			return nil, h.missingAuth, ""
		}
	}
	if !strings.HasPrefix(auth, "Signature") {
		return nil, h.notSignature, ""
	}
	p := parseParams(auth[len("Signature"):])
	cred, reason := h.verify(r, &p)
	if cred == nil {
		return nil, h.invalid, reason
	}
	if h.validateBody {
		// Last, as in APISIX: the body is only read for a request whose
		// signature is already good, so an unauthenticated client cannot
		// make the gateway buffer bodies.
		if reject, reason := h.checkDigest(r); reject != nil {
			return nil, reject, reason
		}
	}
	return cred.consumer, nil, ""
}

// checkDigest checks the request body against the Digest header, as
// APISIX's validate_request_body: the header must be exactly "SHA-256=" and
// the padded base64 of the body's SHA-256 (an absent body hashes as empty).
// A missing or wrong digest is an invalid request (reasonDigest); a body over
// max_req_body_size is a 413 with APISIX's message. A Digest header is not
// signed unless the client lists it in headers, as in APISIX: it binds the
// body to the request only when signed_headers requires it.
func (h *hmacAuth) checkDigest(r plugin.Request) (*plugin.Exit, string) {
	digest, present := headerValue(r, "Digest")
	if !present {
		// Checked before the body is read, as in APISIX.
		return h.invalid, reasonDigest
	}
	body, err := r.ReadBody(h.maxBody)
	switch {
	case errors.Is(err, plugin.ErrBodyTooLarge):
		msg := tooLargeMessage(r, h.maxBody)
		return plugin.MessageExit(413, msg), "failed to read request body: " + msg
	case err != nil:
		return h.readFailed, "failed to read request body: " + err.Error()
	}
	sum := sha256.Sum256(body)
	want := make([]byte, 0, len(digestPrefix)+base64.StdEncoding.EncodedLen(len(sum)))
	want = base64.StdEncoding.AppendEncode(append(want, digestPrefix...), sum[:])
	if digest != string(want) {
		return h.invalid, reasonDigest
	}
	return nil, ""
}

// digestPrefix starts the only Digest value APISIX accepts.
const digestPrefix = "SHA-256="

// tooLargeMessage is APISIX's core.request.get_body error for a body over
// max. APISIX gives the size from Content-Length, which it checks before
// reading; a body without one (chunked) is not read past max, so its size is
// unknown and left out.
func tooLargeMessage(r plugin.Request, max int64) string {
	if n, err := strconv.ParseInt(r.Header("Content-Length"), 10, 64); err == nil && n > max {
		return fmt.Sprintf("request size %d is greater than the maximum size %d allowed", n, max)
	}
	return fmt.Sprintf("request size is greater than the maximum size %d allowed", max)
}

// verify runs APISIX's checks in APISIX's order. It returns the credential,
// or nil and the reason.
func (h *hmacAuth) verify(r plugin.Request, p *params) (*credential, string) {
	if !p.hasKeyID || !p.hasSignature {
		return nil, reasonNoKeyOrSig
	}
	if !p.hasAlgorithm {
		return nil, reasonNoAlgorithm
	}
	cred := h.byKeyID[p.keyID]
	if cred == nil {
		return nil, reasonKeyID
	}
	if !slices.Contains(h.allowed, p.algorithm) {
		return nil, reasonAlgorithm
	}
	if reason := h.checkDate(r); reason != "" {
		return nil, reason
	}
	for _, want := range h.signed {
		if !p.signs(want) {
			return nil, fmt.Sprintf(reasonSignedHeaders, want)
		}
	}
	sig, ok := authutil.DecodeBase64(p.signature, base64.RawStdEncoding)
	if !ok || !hmac.Equal(sig, sign(r, p, cred.secret)) {
		return nil, reasonSignature
	}
	return cred, ""
}

// checkDate checks the Date header is within clock_skew of now, in whole
// seconds like ngx.time.
func (h *hmacAuth) checkDate(r plugin.Request) string {
	date := r.Header("Date")
	if date == "" {
		if _, present := r.Var("http_date"); !present {
			return reasonNoDate
		}
	}
	// The three formats of RFC 9110 section 5.6.7, as ngx.parse_http_time.
	t, err := http.ParseTime(date)
	if err != nil {
		return reasonBadDate
	}
	diff := h.now().Unix() - t.Unix()
	if diff < 0 {
		diff = -diff
	}
	if diff > h.skew {
		return reasonSkew
	}
	return ""
}

// sign computes the request's signature: the HMAC of the signing string
//
//	keyId "\n" (line "\n")*
//
// with one line per name of the headers list, in its order: "@request-target"
// gives "<METHOD> <request URI>", a present header "<name as listed>: <value>",
// and an absent header nothing.
func sign(r plugin.Request, p *params, secret []byte) []byte {
	b := make([]byte, 0, 256)
	b = append(b, p.keyID...)
	for rest := p.headers; p.hasHeaders; {
		var name string
		name, rest, _ = strings.Cut(rest, " ")
		if v, ok := headerValue(r, name); ok {
			b = append(append(append(append(b, '\n'), name...), ": "...), v...)
		} else if name == "@request-target" {
			b = append(append(append(append(b, '\n'), r.Method()...), ' '), requestURI(r)...)
		}
		if rest == "" {
			break
		}
	}
	b = append(b, '\n')
	m := hmac.New(hashes[p.algorithm], secret)
	m.Write(b)
	return m.Sum(b[:0])
}

// headerValue looks a header up the way APISIX's core.request.header does
// through ngx.req.get_headers: case-insensitively, with '_' read as '-'.
// Unlike the SDK's Header, it tells an empty header from an absent one.
func headerValue(r plugin.Request, name string) (string, bool) {
	if name == "" || name[0] == '@' {
		return "", false
	}
	name = strings.ReplaceAll(name, "_", "-")
	if v := r.Header(name); v != "" {
		return v, true
	}
	return r.Var("http_" + strings.ReplaceAll(strings.ToLower(name), "-", "_"))
}

// requestURI is nginx's $request_uri (path and query as the client sent
// them), or "/" when empty.
func requestURI(r plugin.Request) string {
	u, ok := r.Var("request_uri")
	if !ok {
		u = r.Path()
		if q := r.RawQuery(); q != "" {
			u += "?" + q
		}
	}
	if u == "" {
		return "/"
	}
	return u
}

// Interface guards.
var (
	_ plugin.Rewriter = (*hmacAuth)(nil)
	_ plugin.Config   = (*Config)(nil)
	_ plugin.Config   = (*ConsumerConfig)(nil)
)
