package csrf

import (
	"errors"
)

// Config is csrf's configuration, field for field APISIX's schema
// (apisix/plugins/csrf.lua).
type Config struct {
	// Key signs the tokens. Required. Tokens signed by an APISIX csrf plugin
	// with the same key are accepted, and the other way round.
	Key string `json:"key"`
	// Expires is the token lifetime in seconds: the cookie's Expires, and
	// the age after which a token is refused. 0 or less: tokens never
	// expire (the cookie then expires at once). Default 7200.
	Expires int64 `json:"expires"`
	// Name is the cookie and the request header that carry the token.
	// Default "apisix-csrf-token".
	Name string `json:"name"`
}

// NewConfig returns a Config with APISIX's defaults.
func NewConfig() *Config {
	return &Config{Expires: 7200, Name: "apisix-csrf-token"}
}

// Validate checks c without side effects; errors name the field.
func (c *Config) Validate() error {
	// APISIX only requires key to be present; an empty key signs nothing.
	if c.Key == "" {
		return errors.New("key: must not be empty")
	}
	if c.Name == "" {
		return errors.New("name: must not be empty")
	}
	// The name goes in a Set-Cookie header and is a request header name:
	// it must be an HTTP token (RFC 9110, section 5.6.2).
	for i := 0; i < len(c.Name); i++ {
		if !isTokenChar(c.Name[i]) {
			return errors.New("name: must be a valid header and cookie name")
		}
	}
	return nil
}

func isTokenChar(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	switch b {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}
