package uarestriction

import (
	"errors"
	"fmt"
	"regexp"
	"unicode/utf8"
)

// Config is the ua-restriction plugin's configuration, field for field
// APISIX's schema (apisix/plugins/ua-restriction.lua). APISIX 3 renamed the
// lists from whitelist/blacklist to allowlist/denylist; only the new names
// are accepted.
type Config struct {
	// AllowList holds regular expressions; a User-Agent that matches none of
	// them is rejected. Exactly one of AllowList and DenyList must be set.
	AllowList []string `json:"allowlist,omitempty"`
	// DenyList holds regular expressions; a User-Agent that matches any of
	// them is rejected.
	DenyList []string `json:"denylist,omitempty"`
	// BypassMissing lets requests without a User-Agent header through;
	// otherwise they are rejected.
	BypassMissing bool `json:"bypass_missing"`
	// Message is returned as {"message": ...} to a rejected client, 1 to
	// 1024 characters.
	Message string `json:"message"`
}

// NewConfig returns a Config with APISIX's defaults.
func NewConfig() *Config {
	return &Config{Message: "Not allowed"}
}

// Validate checks c without side effects; errors name the field.
func (c *Config) Validate() error {
	if (c.AllowList == nil) == (c.DenyList == nil) {
		return errors.New("allowlist, denylist: exactly one must be set")
	}
	if err := validateList("allowlist", c.AllowList); err != nil {
		return err
	}
	if err := validateList("denylist", c.DenyList); err != nil {
		return err
	}
	if n := utf8.RuneCountInString(c.Message); n < 1 || n > 1024 {
		return errors.New("message: length must be between 1 and 1024")
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
	for i, re := range list {
		if re == "" {
			return fmt.Errorf("%s[%d]: must not be empty", field, i)
		}
		if _, err := regexp.Compile(re); err != nil {
			return fmt.Errorf("%s[%d]: invalid regular expression: %w", field, i, err)
		}
	}
	return nil
}
