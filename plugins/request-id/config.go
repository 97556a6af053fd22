package requestid

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// DefaultCharSet is APISIX's default range_id.char_set, kept as APISIX has
// it (with "HIGK": no "J", a second "G").
const DefaultCharSet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIGKLMNOPQRSTUVWXYZ0123456789"

// Config is request-id's configuration, with APISIX's field names.
type Config struct {
	// HeaderName is the request header carrying the ID. A request that
	// already has a non-empty one keeps it.
	HeaderName string `json:"header_name"`
	// IncludeInResponse also sends the ID in the response, under the same
	// header, unless the upstream response already has that header.
	IncludeInResponse bool `json:"include_in_response"`
	// Algorithm is uuid (v4, default), uuidv7, nanoid (21 URL-safe
	// characters), range_id (see RangeID) or ksuid (27 base62 characters).
	Algorithm string `json:"algorithm"`
	// RangeID configures the range_id algorithm.
	RangeID RangeID `json:"range_id"`
}

// RangeID is the range_id algorithm's configuration: Length characters
// drawn uniformly from CharSet.
type RangeID struct {
	Length  int    `json:"length"`
	CharSet string `json:"char_set"`
}

// NewConfig returns a Config with APISIX's defaults.
func NewConfig() *Config {
	return &Config{
		HeaderName:        "X-Request-Id",
		IncludeInResponse: true,
		Algorithm:         "uuid",
		RangeID:           RangeID{Length: 16, CharSet: DefaultCharSet},
	}
}

// Validate checks the config as APISIX's schema does.
func (c *Config) Validate() error {
	if c.HeaderName == "" {
		return errors.New("header_name: must not be empty")
	}
	for i := 0; i < len(c.HeaderName); i++ {
		if b := c.HeaderName[i]; b <= ' ' || b >= 0x7f || b == ':' {
			return fmt.Errorf("header_name: invalid character in header name %q", c.HeaderName)
		}
	}
	switch c.Algorithm {
	case "uuid", "uuidv7", "nanoid", "range_id", "ksuid":
	default:
		return fmt.Errorf("algorithm: must be one of uuid, nanoid, range_id, ksuid, uuidv7, got %q", c.Algorithm)
	}
	if c.RangeID.Length < 6 {
		return fmt.Errorf("range_id.length: must be >= 6, got %d", c.RangeID.Length)
	}
	if c.RangeID.Length > 1024 {
		return fmt.Errorf("range_id.length: must be <= 1024, got %d", c.RangeID.Length)
	}
	if n := utf8.RuneCountInString(c.RangeID.CharSet); n < 6 {
		return fmt.Errorf("range_id.char_set: must have at least 6 characters, got %d", n)
	} else if n > 65535 {
		return fmt.Errorf("range_id.char_set: must have at most 65535 characters, got %d", n)
	}
	if !utf8.ValidString(c.RangeID.CharSet) {
		return errors.New("range_id.char_set: must be valid UTF-8")
	}
	return nil
}
