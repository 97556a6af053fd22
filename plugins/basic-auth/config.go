package basicauth

import (
	"errors"
	"fmt"
)

// Config is basic-auth's route (or service, global rule) configuration.
type Config struct {
	// HideCredentials removes the Authorization header from the request
	// before it is proxied upstream. Default false.
	HideCredentials bool `json:"hide_credentials"`
	// Realm goes in the WWW-Authenticate header of 401 responses:
	// `Basic realm="<realm>"`. Default "basic".
	Realm string `json:"realm"`
	// AnonymousConsumer names a consumer to use when authentication fails,
	// instead of rejecting the request. Unset by default.
	AnonymousConsumer *string `json:"anonymous_consumer,omitempty"`
}

// NewConfig returns a Config with APISIX's defaults.
func NewConfig() *Config { return &Config{Realm: "basic"} }

// Validate checks c without side effects.
func (c *Config) Validate() error {
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

// ConsumerConfig is the credential a consumer keeps for basic-auth.
type ConsumerConfig struct {
	// Username is the user name clients send. Required, unique across
	// consumers.
	Username string `json:"username"`
	// Password is the password clients send. Required.
	Password string `json:"password"`
}

// NewConsumerConfig returns an empty ConsumerConfig.
func NewConsumerConfig() *ConsumerConfig { return &ConsumerConfig{} }

// Validate checks c without side effects. APISIX only requires both fields
// to be present; sluice also refuses empty values. A password with ':' or
// white space is accepted as in APISIX but can never match, since APISIX cuts
// what the client sends at ':' and strips its white space.
func (c *ConsumerConfig) Validate() error {
	if c.Username == "" {
		return errors.New("username: must not be empty")
	}
	if c.Password == "" {
		return errors.New("password: must not be empty")
	}
	return nil
}
