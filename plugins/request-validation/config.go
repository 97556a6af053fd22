package requestvalidation

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// DefaultMaxReqBodySize is APISIX's max_req_body_size default: 64 MiB.
const DefaultMaxReqBodySize = 64 << 20

// Config is request-validation's configuration, field for field APISIX's
// schema (apisix/plugins/request-validation.lua).
type Config struct {
	// HeaderSchema is a JSON Schema the request headers must match, as an
	// object of header name to value. At least one of HeaderSchema and
	// BodySchema is required.
	HeaderSchema map[string]any `json:"header_schema,omitempty"`
	// BodySchema is a JSON Schema the request body must match: the JSON
	// document, or for application/x-www-form-urlencoded bodies the object
	// of form fields.
	BodySchema map[string]any `json:"body_schema,omitempty"`
	// MaxReqBodySize is the largest body read, in bytes; larger bodies are
	// rejected. At least 1, default 67108864 (64 MiB).
	MaxReqBodySize int64 `json:"max_req_body_size"`
	// RejectedCode is the status of a rejection, 200 to 599. Default 400.
	RejectedCode int `json:"rejected_code"`
	// RejectedMsg replaces the validation error as the body of a rejection;
	// 1 to 256 characters. Unset: the error itself is sent.
	RejectedMsg *string `json:"rejected_msg,omitempty"`
}

// NewConfig returns a Config with APISIX's defaults.
func NewConfig() *Config {
	return &Config{MaxReqBodySize: DefaultMaxReqBodySize, RejectedCode: 400}
}

// Validate checks c without side effects; errors name the field. The
// schemas themselves are compiled, and checked, when the plugin is built.
func (c *Config) Validate() error {
	if c.HeaderSchema == nil && c.BodySchema == nil {
		// APISIX's anyOf message.
		return errors.New(`object matches none of the required: ["header_schema"] or ["body_schema"]`)
	}
	if c.MaxReqBodySize < 1 {
		return errors.New("max_req_body_size: must be >= 1")
	}
	// APISIX's (api7/jsonschema) wording.
	if c.RejectedCode < 200 {
		return fmt.Errorf("rejected_code: expected %d to be at least 200", c.RejectedCode)
	}
	if c.RejectedCode > 599 {
		return fmt.Errorf("rejected_code: expected %d to be at most 599", c.RejectedCode)
	}
	if c.RejectedMsg != nil {
		if n := utf8.RuneCountInString(*c.RejectedMsg); n < 1 || n > 256 {
			return errors.New("rejected_msg: length must be between 1 and 256")
		}
	}
	return nil
}
