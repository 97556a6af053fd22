package realip

import (
	"errors"
	"fmt"

	"github.com/sluicegw/sluice/internal/expr"
)

// Config is real-ip's configuration, field for field APISIX's schema
// (apisix/plugins/real-ip.lua).
type Config struct {
	// Source is the variable that carries the client's address, with an
	// optional port: `http_x_forwarded_for` (the X-Forwarded-For header, read
	// from the right), any other `http_<header>` such as `http_x_real_ip`,
	// `arg_<name>` for a query argument, or another request variable.
	// Required.
	Source string `json:"source"`
	// TrustedAddresses lists the IP addresses and CIDR ranges of the proxies
	// allowed to set the client address; a request from any other peer keeps
	// its address. When unset, every peer is trusted. At least one entry
	// when set.
	TrustedAddresses []string `json:"trusted_addresses,omitempty"`
	// Recursive, with `http_x_forwarded_for` and trusted_addresses, takes the
	// last address of X-Forwarded-For that is not trusted (walking from the
	// right) instead of the last one. Default false.
	Recursive bool `json:"recursive"`
}

// NewConfig returns a Config with APISIX's defaults.
func NewConfig() *Config { return &Config{} }

// Validate checks c without side effects; errors name the field.
func (c *Config) Validate() error {
	if c.Source == "" {
		return errors.New("source: must not be empty")
	}
	if c.TrustedAddresses != nil && len(c.TrustedAddresses) == 0 {
		return errors.New("trusted_addresses: must not be empty")
	}
	for i, a := range c.TrustedAddresses {
		if _, err := expr.ParsePrefix(a); err != nil {
			// APISIX's message (check_schema).
			return fmt.Errorf("trusted_addresses[%d]: invalid ip address: %s", i, a)
		}
	}
	return nil
}
