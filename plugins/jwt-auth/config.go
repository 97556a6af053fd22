package jwtauth

import (
	"crypto"
	"crypto/elliptic"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sluicegw/sluice/plugin/authutil"
)

// Config is jwt-auth's route (or service, global rule) configuration.
type Config struct {
	// Header is the request header that carries the token, with or without
	// a "Bearer " prefix. Default "authorization". An empty name disables
	// the header, as it matches no header in APISIX either.
	Header string `json:"header"`
	// Query is the query argument that carries the token when the header is
	// absent. Default "jwt". Empty disables it.
	Query string `json:"query"`
	// Cookie is the cookie that carries the token when neither the header
	// nor the query argument is present. Default "jwt". Empty disables it.
	Cookie string `json:"cookie"`
	// HideCredentials removes the token (the header, the query argument or
	// the cookie it was found in) from the request before it is proxied.
	// Default false.
	HideCredentials bool `json:"hide_credentials"`
	// KeyClaimName is the payload claim that names the consumer's key, e.g.
	// "iss". Default "key".
	KeyClaimName string `json:"key_claim_name"`
	// StoreInCtx stores the verified payload (a map[string]any) in the
	// request context under "jwt_auth_payload", for plugins that run later.
	// Default false.
	StoreInCtx bool `json:"store_in_ctx"`
	// Realm goes in the WWW-Authenticate header of 401 responses:
	// `Bearer realm="<realm>"`. Default "jwt".
	Realm string `json:"realm"`
	// AnonymousConsumer names a consumer to use when authentication fails,
	// instead of rejecting the request. Unset by default.
	AnonymousConsumer *string `json:"anonymous_consumer,omitempty"`
	// ClaimsToVerify lists the registered claims ("exp", "nbf") that must be
	// present and valid. When unset or empty, exp and nbf are checked only
	// if the token has them.
	ClaimsToVerify []string `json:"claims_to_verify,omitempty"`
}

// NewConfig returns a Config with APISIX's defaults.
func NewConfig() *Config {
	return &Config{Header: "authorization", Query: "jwt", Cookie: "jwt", KeyClaimName: "key", Realm: "jwt"}
}

// Validate checks c without side effects.
func (c *Config) Validate() error {
	if c.KeyClaimName == "" {
		return errors.New("key_claim_name: must not be empty")
	}
	if err := authutil.ValidateRealm(c.Realm); err != nil {
		return err
	}
	if err := authutil.ValidateAnonymousConsumer(c.AnonymousConsumer); err != nil {
		return err
	}
	for i, cl := range c.ClaimsToVerify {
		if cl != "exp" && cl != "nbf" {
			return fmt.Errorf("claims_to_verify[%d]: must be one of exp, nbf", i)
		}
		if slices.Index(c.ClaimsToVerify, cl) != i {
			return fmt.Errorf("claims_to_verify[%d]: duplicate %q", i, cl)
		}
	}
	return nil
}

// Algorithms are the signing algorithms a consumer may use, as in APISIX
// (apisix/plugins/jwt-auth.lua consumer_schema). "none" is not one of them.
var Algorithms = []string{
	"HS256", "HS384", "HS512",
	"RS256", "RS384", "RS512",
	"ES256", "ES384", "ES512",
	"PS256", "PS384", "PS512",
	"EdDSA",
}

// ConsumerConfig is the credential a consumer keeps for jwt-auth.
type ConsumerConfig struct {
	// Key identifies the consumer: a token's key claim (see KeyClaimName)
	// must equal it. Required, unique across consumers.
	Key string `json:"key"`
	// Secret is the shared HMAC key for HS256, HS384 and HS512, where it is
	// required.
	Secret string `json:"secret,omitempty"`
	// PublicKey is the PEM public key (PKIX, or PKCS#1 for RSA) that
	// verifies RS*, PS*, ES* and EdDSA tokens, where it is required.
	PublicKey string `json:"public_key,omitempty"`
	// PrivateKey is accepted for compatibility with APISIX before 3.11, which
	// signed tokens itself; it is ignored.
	PrivateKey string `json:"private_key,omitempty"`
	// Algorithm is the only algorithm tokens of this consumer may be signed
	// with. Default "HS256".
	Algorithm string `json:"algorithm"`
	// Exp is the lifetime in seconds of tokens APISIX used to sign. Default
	// 86400; accepted for compatibility, unused: clients sign their tokens.
	Exp int64 `json:"exp"`
	// Base64Secret says Secret is base64-encoded. Default false.
	Base64Secret bool `json:"base64_secret"`
	// LifetimeGracePeriod is the clock skew, in seconds, allowed when
	// checking exp and nbf. Default 0.
	LifetimeGracePeriod int64 `json:"lifetime_grace_period"`
}

// NewConsumerConfig returns a ConsumerConfig with APISIX's defaults.
func NewConsumerConfig() *ConsumerConfig {
	return &ConsumerConfig{Algorithm: "HS256", Exp: 86400}
}

// Validate checks c without side effects. Unlike APISIX, it also parses the
// secret and the public key, so a credential that could never verify a token
// is refused when it is written rather than failing every request.
func (c *ConsumerConfig) Validate() error {
	if c.Key == "" {
		return errors.New("key: must not be empty")
	}
	if !slices.Contains(Algorithms, c.Algorithm) {
		return fmt.Errorf("algorithm: must be one of %s", strings.Join(Algorithms, ", "))
	}
	if c.Exp < 1 {
		return errors.New("exp: must be >= 1")
	}
	if c.LifetimeGracePeriod < 0 {
		return errors.New("lifetime_grace_period: must be >= 0")
	}
	if isHMAC(c.Algorithm) {
		if c.Secret == "" {
			return errors.New("secret: required when using HS based algorithms")
		}
		if authutil.IsSecretRef(c.Secret) {
			return nil
		}
		if _, err := c.hmacKey(); err != nil {
			return fmt.Errorf("secret: %w", err)
		}
		return nil
	}
	if c.PublicKey == "" {
		return fmt.Errorf("public_key: required when using %s", c.Algorithm)
	}
	if authutil.IsSecretRef(c.PublicKey) {
		return nil
	}
	if _, err := parsePublicKey(c.Algorithm, c.PublicKey); err != nil {
		return fmt.Errorf("public_key: %w", err)
	}
	return nil
}

// hmacKey returns the HMAC key: Secret, base64-decoded when Base64Secret.
func (c *ConsumerConfig) hmacKey() ([]byte, error) {
	if !c.Base64Secret {
		return []byte(c.Secret), nil
	}
	k, ok := authutil.DecodeBase64(c.Secret, base64.RawStdEncoding)
	if !ok {
		return nil, errors.New("base64_secret required but the secret is not in base64 format")
	}
	if len(k) == 0 {
		return nil, errors.New("decodes to an empty key")
	}
	return k, nil
}

// verifyKey returns what jwt.SigningMethod.Verify takes for c's algorithm.
func (c *ConsumerConfig) verifyKey() (any, error) {
	if isHMAC(c.Algorithm) {
		return c.hmacKey()
	}
	return parsePublicKey(c.Algorithm, c.PublicKey)
}

func isHMAC(alg string) bool { return strings.HasPrefix(alg, "HS") }

// parsePublicKey parses a PEM public key and checks it suits alg: an RSA key
// for RS* and PS*, an EC key on the algorithm's curve for ES*, an Ed25519 key
// for EdDSA (Ed448 is not supported).
func parsePublicKey(alg, pemKey string) (crypto.PublicKey, error) {
	switch alg[:2] {
	case "RS", "PS":
		k, err := jwt.ParseRSAPublicKeyFromPEM([]byte(pemKey))
		if err != nil {
			return nil, fmt.Errorf("not a PEM RSA public key: %w", err)
		}
		return k, nil
	case "ES":
		k, err := jwt.ParseECPublicKeyFromPEM([]byte(pemKey))
		if err != nil {
			return nil, fmt.Errorf("not a PEM EC public key: %w", err)
		}
		if want := curveFor(alg); k.Curve != want {
			return nil, fmt.Errorf("%s needs a key on curve %s, got %s", alg, want.Params().Name, k.Curve.Params().Name)
		}
		return k, nil
	case "Ed":
		k, err := jwt.ParseEdPublicKeyFromPEM([]byte(pemKey))
		if err != nil {
			return nil, fmt.Errorf("not a PEM Ed25519 public key: %w", err)
		}
		return k, nil
	}
	return nil, fmt.Errorf("unknown algorithm %s", alg)
}

func curveFor(alg string) elliptic.Curve {
	switch alg {
	case "ES384":
		return elliptic.P384()
	case "ES512":
		return elliptic.P521()
	}
	return elliptic.P256()
}
