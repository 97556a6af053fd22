// Package authutil holds what sluice's auth plugins (key-auth, basic-auth,
// jwt-auth, hmac-auth...) have in common with each other and with APISIX's:
// identifying the consumer to the upstream, the anonymous consumer fallback,
// the 401 challenge, the realm and anonymous_consumer fields, unresolved
// secret references, and the nginx-compatible parsing of query strings,
// cookies and base64 that credentials travel in.
//
// Keeping one copy matters beyond size: these helpers decide what a client
// can forge or smuggle past an auth plugin, so a fix must reach every plugin.
package authutil

import (
	"errors"
	"fmt"
	"strings"

	"github.com/sluicegw/sluice/plugin"
)

// Identity headers set on the upstream request for an identified consumer,
// as APISIX's consumer.attach_consumer sets them.
const (
	HeaderConsumerUsername     = "X-Consumer-Username"
	HeaderCredentialIdentifier = "X-Credential-Identifier"
	HeaderConsumerCustomID     = "X-Consumer-Custom-ID"
)

// Attach identifies the request as cons and tells the upstream who it is,
// as APISIX's consumer.attach_consumer does: X-Consumer-Username,
// X-Credential-Identifier (the credential id, when cons has one) and
// X-Consumer-Custom-ID (the custom_id label). Each header is always set or
// removed, never left as the client sent it, so a client cannot claim
// another identity by sending its own.
func Attach(c *plugin.Ctx, cons *plugin.Consumer) {
	c.Consumer = cons
	r := c.Request
	r.SetHeader(HeaderConsumerUsername, cons.Username)
	setOrDel(r, HeaderCredentialIdentifier, cons.CredentialID)
	setOrDel(r, HeaderConsumerCustomID, cons.Labels["custom_id"])
}

func setOrDel(r plugin.Request, name, value string) {
	if value == "" {
		r.DelHeader(name)
		return
	}
	r.SetHeader(name, value)
}

// IsSecretRef reports whether v is an APISIX secret reference ($secret://...
// or $env://..., the latter in any case), as apisix/secret.lua is_secret_ref.
// A credential field that still holds one was not resolved: auth plugins skip
// such credentials (fail closed, like APISIX's consumer.lua
// create_consume_cache), so the reference text itself never authenticates.
func IsSecretRef(v string) bool {
	return strings.HasPrefix(v, "$secret://") ||
		(len(v) >= 7 && strings.EqualFold(v[:7], "$env://"))
}

// FindConsumer returns the consumer named username among deps' consumers (the
// ones holding a credential for the plugin being built), or nil.
func FindConsumer(deps plugin.Deps, username string) *plugin.Consumer {
	if c, ok := deps.AllConsumers[username]; ok {
		return c
	}
	for _, cc := range deps.Consumers {
		if cc.Consumer.Username == username {
			return cc.Consumer
		}
	}
	return nil
}

// Describe names a consumer's credential in build errors (duplicate keys,
// unusable key material), with its credential id when it has one, so the
// operator can find which of a consumer's credentials is at fault.
func Describe(c *plugin.Consumer) string {
	if c.CredentialID != "" {
		return fmt.Sprintf("credential %q of consumer %q", c.CredentialID, c.Username)
	}
	return fmt.Sprintf("consumer %q", c.Username)
}

// ValidateRealm checks an auth plugin's realm field against APISIX's realm
// schema (schema_def.get_realm_schema): 1 to 128 printable ASCII characters,
// without '"' or '\', since the realm is written inside the quoted string of
// the WWW-Authenticate header. The error names the field.
func ValidateRealm(realm string) error {
	if len(realm) < 1 || len(realm) > 128 {
		return errors.New("realm: must be between 1 and 128 characters")
	}
	for i := 0; i < len(realm); i++ {
		if b := realm[i]; b < 0x20 || b > 0x7e || b == '"' || b == '\\' {
			return errors.New(`realm: must be printable ASCII without '"' or '\'`)
		}
	}
	return nil
}

// ValidateAnonymousConsumer checks an auth plugin's anonymous_consumer field
// (nil when unset). An empty name could never name a consumer, so it is
// refused when written rather than failing every request. The error names
// the field.
func ValidateAnonymousConsumer(name *string) error {
	if name != nil && *name == "" {
		return errors.New("anonymous_consumer: must not be empty")
	}
	return nil
}

// Unauthorized builds the 401 an auth plugin answers with: APISIX's
// {"message": msg} body and the challenge `WWW-Authenticate: <scheme>
// realm="<realm>"`. Build exits once per config, not per request.
func Unauthorized(scheme, realm, msg string) *plugin.Exit {
	e := plugin.MessageExit(401, msg)
	e.Headers = []plugin.Header{
		{Name: "Content-Type", Value: "application/json"},
		{Name: "WWW-Authenticate", Value: scheme + ` realm="` + realm + `"`},
	}
	return e
}

// Anonymous is an auth plugin's anonymous_consumer setting, resolved when the
// plugin is built so that a request only reads it. The zero value is an
// unset anonymous_consumer.
type Anonymous struct {
	name     string
	consumer *plugin.Consumer
	missing  *plugin.Exit
}

// NewAnonymous resolves name (the anonymous_consumer field, nil when unset)
// among deps' consumers. missing is the answer when the named consumer does
// not exist: APISIX rejects the request then, it does not let it through
// unidentified.
func NewAnonymous(name *string, deps plugin.Deps, missing *plugin.Exit) Anonymous {
	if name == nil {
		return Anonymous{}
	}
	return Anonymous{name: *name, consumer: FindConsumer(deps, *name), missing: missing}
}

// Configured reports whether anonymous_consumer is set, whether or not the
// consumer it names exists. A plugin that hides credentials on the anonymous
// path asks it.
func (a Anonymous) Configured() bool { return a.name != "" }

// Resolve settles who a request is once the plugin tried to authenticate it:
// cons when it did (cons != nil); otherwise the anonymous consumer, if one is
// configured and exists. A request with neither is answered with reject, or
// with the missing exit when anonymous_consumer names no existing consumer.
// The returned consumer is nil exactly when the exit must be sent.
func (a Anonymous) Resolve(cons *plugin.Consumer, reject *plugin.Exit) (*plugin.Consumer, *plugin.Exit) {
	switch {
	case cons != nil:
		return cons, nil
	case a.name == "":
		return nil, reject
	case a.consumer == nil:
		return nil, a.missing
	}
	return a.consumer, nil
}
