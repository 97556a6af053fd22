package keyauth

import (
	"errors"
	"fmt"
)

// Config is key-auth's route (or service, global rule) configuration.
type Config struct {
	// Header is the request header that carries the key. Default "apikey".
	Header string `json:"header"`
	// Query is the query argument that carries the key when the header is
	// absent. Default "apikey".
	Query string `json:"query"`
	// Realm goes in the WWW-Authenticate header of 401 responses:
	// `apikey realm="<realm>"`. Default "key".
	Realm string `json:"realm"`
	// HideCredentials removes the key (header or query argument) from the
	// request before it is proxied upstream. Default false.
	HideCredentials bool `json:"hide_credentials"`
	// AnonymousConsumer names a consumer to use when authentication fails,
	// instead of rejecting the request. Unset by default.
	AnonymousConsumer *string `json:"anonymous_consumer,omitempty"`
}

// NewConfig returns a Config with APISIX's defaults.
func NewConfig() *Config {
	return &Config{Header: "apikey", Query: "apikey", Realm: "key"}
}

// Validate checks c without side effects.
func (c *Config) Validate() error {
	// APISIX accepts empty header and query names, which can never match a
	// key; sluice rejects them so the mistake shows at write time.
	if c.Header == "" {
		return errors.New("header: must not be empty")
	}
	if c.Query == "" {
		return errors.New("query: must not be empty")
	}
	if err := validateRealm(c.Realm); err != nil {
		return fmt.Errorf("realm: %w", err)
	}
	if c.AnonymousConsumer != nil && *c.AnonymousConsumer == "" {
		return errors.New("anonymous_consumer: must not be empty")
	}
	return nil
}

// validateRealm applies APISIX's realm schema (schema_def.get_realm_schema):
// 1 to 128 printable ASCII characters, without '"' or '\', since the realm is
// written inside a quoted string.
func validateRealm(r string) error {
	if len(r) < 1 || len(r) > 128 {
		return errors.New("must be between 1 and 128 characters")
	}
	for i := 0; i < len(r); i++ {
		if b := r[i]; b < 0x20 || b > 0x7e || b == '"' || b == '\\' {
			return errors.New(`must be printable ASCII without '"' or '\'`)
		}
	}
	return nil
}

// ConsumerConfig is the credential a consumer keeps for key-auth.
type ConsumerConfig struct {
	// Key identifies the consumer. Required, unique across consumers.
	Key string `json:"key"`
}

// NewConsumerConfig returns an empty ConsumerConfig.
func NewConsumerConfig() *ConsumerConfig { return &ConsumerConfig{} }

// Validate checks c without side effects. APISIX only requires the key to be
// present; sluice also refuses an empty key, which an empty header or a bare
// `?apikey=` would otherwise match.
func (c *ConsumerConfig) Validate() error {
	if c.Key == "" {
		return errors.New("key: must not be empty")
	}
	return nil
}
