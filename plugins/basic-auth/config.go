package basicauth

import (
	"errors"

	"github.com/sluicegw/sluice/plugin/authutil"
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
	if err := authutil.ValidateRealm(c.Realm); err != nil {
		return err
	}
	return authutil.ValidateAnonymousConsumer(c.AnonymousConsumer)
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
