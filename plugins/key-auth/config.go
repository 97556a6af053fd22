package keyauth

import (
	"errors"

	"github.com/sluicegw/sluice/plugin/authutil"
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
	if err := authutil.ValidateRealm(c.Realm); err != nil {
		return err
	}
	return authutil.ValidateAnonymousConsumer(c.AnonymousConsumer)
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
