package hmacauth

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/sluicegw/sluice/plugin/authutil"
)

// Algorithms are the HMAC algorithms APISIX supports, in its order.
var Algorithms = []string{"hmac-sha1", "hmac-sha256", "hmac-sha512"}

// Config is hmac-auth's route (or service, global rule) configuration.
type Config struct {
	// AllowedAlgorithms are the algorithms a request may be signed with.
	// Default all of hmac-sha1, hmac-sha256 and hmac-sha512.
	AllowedAlgorithms []string `json:"allowed_algorithms"`
	// ClockSkew is the largest difference, in seconds, allowed between the
	// request's Date header and the gateway's clock. Default 300, minimum 1.
	ClockSkew int64 `json:"clock_skew"`
	// SignedHeaders are headers the client must include in the signature's
	// headers list. Default ["date"], which binds the Date that clock_skew
	// checks into the signature; [] removes the requirement.
	SignedHeaders []string `json:"signed_headers"`
	// ValidateRequestBody makes a correctly signed request also prove its
	// body: its Digest header must be "SHA-256=" and the base64 of the
	// body's SHA-256. Default false.
	ValidateRequestBody bool `json:"validate_request_body"`
	// MaxReqBodySize is the largest body, in bytes, read into memory to
	// check the digest; a longer one is answered 413. Default 67108864
	// (64 MiB).
	MaxReqBodySize int64 `json:"max_req_body_size"`
	// HideCredentials removes the Authorization header from the request
	// before it is proxied upstream. Default false.
	HideCredentials bool `json:"hide_credentials"`
	// Realm goes in the WWW-Authenticate header of 401 responses:
	// `hmac realm="<realm>"`. Default "hmac".
	Realm string `json:"realm"`
	// AnonymousConsumer names a consumer to use when authentication fails,
	// instead of rejecting the request. Unset by default.
	AnonymousConsumer *string `json:"anonymous_consumer,omitempty"`
}

// NewConfig returns a Config with APISIX's defaults.
func NewConfig() *Config {
	return &Config{
		AllowedAlgorithms: slices.Clone(Algorithms),
		ClockSkew:         300,
		SignedHeaders:     []string{"date"},
		MaxReqBodySize:    64 << 20,
		Realm:             "hmac",
	}
}

// Validate checks c without side effects.
func (c *Config) Validate() error {
	if len(c.AllowedAlgorithms) == 0 {
		return errors.New("allowed_algorithms: must have at least 1 item")
	}
	for i, a := range c.AllowedAlgorithms {
		if !slices.Contains(Algorithms, a) {
			return fmt.Errorf("allowed_algorithms[%d]: must be one of %s", i, strings.Join(Algorithms, ", "))
		}
	}
	if c.ClockSkew < 1 {
		return errors.New("clock_skew: must be >= 1")
	}
	if c.SignedHeaders == nil {
		// Absent keeps the default; only an explicit null gets here.
		return errors.New("signed_headers: must be an array")
	}
	for i, h := range c.SignedHeaders {
		if !lengthIn(h, 1, 50) {
			return fmt.Errorf("signed_headers[%d]: must be between 1 and 50 characters", i)
		}
	}
	if c.MaxReqBodySize < 1 {
		return errors.New("max_req_body_size: must be >= 1")
	}
	if err := authutil.ValidateRealm(c.Realm); err != nil {
		return err
	}
	return authutil.ValidateAnonymousConsumer(c.AnonymousConsumer)
}

// ConsumerConfig is the credential a consumer keeps for hmac-auth.
type ConsumerConfig struct {
	// KeyID identifies the credential: requests name it as keyId in their
	// Authorization header. Required, 1 to 256 characters, unique.
	KeyID string `json:"key_id"`
	// SecretKey is the HMAC key. Required, 1 to 256 characters.
	SecretKey string `json:"secret_key"`
}

// NewConsumerConfig returns an empty ConsumerConfig.
func NewConsumerConfig() *ConsumerConfig { return &ConsumerConfig{} }

// Validate checks c without side effects.
func (c *ConsumerConfig) Validate() error {
	if !lengthIn(c.KeyID, 1, 256) {
		return errors.New("key_id: must be between 1 and 256 characters")
	}
	if !lengthIn(c.SecretKey, 1, 256) {
		return errors.New("secret_key: must be between 1 and 256 characters")
	}
	return nil
}

// lengthIn reports whether s has between lo and hi characters, counted as
// JSON Schema counts them (code points, not bytes).
func lengthIn(s string, lo, hi int) bool {
	n := utf8.RuneCountInString(s)
	return lo <= n && n <= hi
}
