package iprestriction

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/sluicegw/sluice/internal/expr"
)

// Config is the ip-restriction plugin's configuration, field for field
// APISIX's schema (apisix/plugins/ip-restriction/init.lua).
type Config struct {
	// Whitelist lists the IP addresses and CIDR ranges (IPv4 or IPv6) that
	// may pass; every other client is rejected. Exactly one of Whitelist and
	// Blacklist must be set.
	Whitelist []string `json:"whitelist,omitempty"`
	// Blacklist lists the IP addresses and CIDR ranges (IPv4 or IPv6) that
	// are rejected; every other client passes.
	Blacklist []string `json:"blacklist,omitempty"`
	// Message is returned as {"message": ...} to a rejected client, 1 to
	// 1024 characters.
	Message string `json:"message"`
	// ResponseCode is the status of a rejection: 403 or 404.
	ResponseCode int `json:"response_code"`
}

// NewConfig returns a Config with APISIX's defaults.
func NewConfig() *Config {
	return &Config{Message: "Your IP address is not allowed", ResponseCode: 403}
}

// Validate checks c without side effects; errors name the field.
func (c *Config) Validate() error {
	if (c.Whitelist == nil) == (c.Blacklist == nil) {
		return errors.New("whitelist, blacklist: exactly one must be set")
	}
	if err := validateList("whitelist", c.Whitelist); err != nil {
		return err
	}
	if err := validateList("blacklist", c.Blacklist); err != nil {
		return err
	}
	if n := utf8.RuneCountInString(c.Message); n < 1 || n > 1024 {
		return errors.New("message: length must be between 1 and 1024")
	}
	if c.ResponseCode != 403 && c.ResponseCode != 404 {
		return fmt.Errorf("response_code: must be 403 or 404, got %d", c.ResponseCode)
	}
	return nil
}

func validateList(field string, list []string) error {
	if list == nil {
		return nil
	}
	if len(list) == 0 {
		return fmt.Errorf("%s: must not be empty", field)
	}
	for i, s := range list {
		if _, err := expr.ParsePrefix(s); err != nil {
			return fmt.Errorf("%s[%d]: invalid ip address: %s", field, i, s)
		}
	}
	return nil
}
