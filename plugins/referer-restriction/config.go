package refererrestriction

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// Config is the referer-restriction plugin's configuration, field for field
// APISIX's schema (apisix/plugins/referer-restriction.lua).
type Config struct {
	// Whitelist lists the Referer hosts that may pass; every other host is
	// rejected. An entry is an exact host ("example.com") or starts with "*"
	// to match by suffix ("*.example.com"; a lone "*" matches every host).
	// Exactly one of Whitelist and Blacklist must be set.
	Whitelist []string `json:"whitelist,omitempty"`
	// Blacklist lists the Referer hosts that are rejected, with the same
	// syntax as Whitelist.
	Blacklist []string `json:"blacklist,omitempty"`
	// BypassMissing lets requests through whose Referer header is missing
	// or malformed; otherwise they are rejected.
	BypassMissing bool `json:"bypass_missing"`
	// Message is returned as {"message": ...} to a rejected client, 1 to
	// 1024 characters.
	Message string `json:"message"`
	// Category is accepted because APISIX stores its default with the
	// plugin's config; it has no effect.
	Category string `json:"category,omitempty"`
}

// NewConfig returns a Config with APISIX's defaults.
func NewConfig() *Config {
	return &Config{Message: "Your referer host is not allowed", Category: "security"}
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
	return nil
}

func validateList(field string, list []string) error {
	if list == nil {
		return nil
	}
	if len(list) == 0 {
		return fmt.Errorf("%s: must not be empty", field)
	}
	for i, h := range list {
		if !validHostPattern(h) {
			return fmt.Errorf(`%s[%d]: invalid host %q: must be "*" or a host name of letters, digits and "-._[]:", optionally starting with "*"`, field, i, h)
		}
	}
	return nil
}

// validHostPattern is APISIX's host_def: ^\*$|^\*?[0-9a-zA-Z-._\[\]:]+$.
func validHostPattern(h string) bool {
	if h == "*" {
		return true
	}
	if len(h) > 0 && h[0] == '*' {
		h = h[1:]
	}
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '.', c == '_', c == '[', c == ']', c == ':':
		default:
			return false
		}
	}
	return true
}
