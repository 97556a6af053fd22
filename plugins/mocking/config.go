package mocking

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/sluicegw/sluice/plugin/ngxtmpl"
)

// Config is mocking's configuration, with APISIX's field names. At least
// one of ResponseExample and ResponseSchema must be set.
type Config struct {
	// Delay is how long to wait before answering, in whole seconds.
	Delay int `json:"delay"`
	// ResponseStatus is the answer's status (default 200).
	ResponseStatus int `json:"response_status"`
	// ContentType is the answer's Content-Type (default
	// "application/json;charset=utf8"); its media type must be one of
	// application/json, application/xml, text/plain, text/html, text/xml.
	ContentType string `json:"content_type"`
	// ResponseExample is the answer's body; it may contain nginx variables.
	// It wins over ResponseSchema.
	ResponseExample *string `json:"response_example,omitempty"`
	// ResponseSchema is a JSON schema from which a random body is made per
	// request (JSON, or XML for the XML content types).
	ResponseSchema map[string]any `json:"response_schema,omitempty"`
	// WithMockHeader adds `x-mock-by: sluice/<version>` (APISIX sends
	// APISIX/<version>).
	WithMockHeader bool `json:"with_mock_header"`
	// ResponseHeaders are added to the answer (string or number values;
	// strings may contain nginx variables).
	ResponseHeaders map[string]json.RawMessage `json:"response_headers,omitempty"`
}

// NewConfig returns a Config with APISIX's defaults.
func NewConfig() *Config {
	return &Config{ResponseStatus: 200, ContentType: "application/json;charset=utf8", WithMockHeader: true}
}

var supportedTypes = map[string]bool{
	"application/xml": true, "application/json": true, "text/plain": true, "text/html": true, "text/xml": true,
}

// mediaType is what precedes the last ';', as APISIX's parse_content_type
// takes it.
func mediaType(ct string) string {
	if i := strings.LastIndexByte(ct, ';'); i >= 0 {
		return ct[:i]
	}
	return ct
}

// Validate checks the config as APISIX's schema and check_schema do.
func (c *Config) Validate() error {
	if c.ResponseExample == nil && c.ResponseSchema == nil {
		return errors.New("at least one of response_example and response_schema must be set")
	}
	if c.ResponseStatus < 100 || c.ResponseStatus > 599 {
		return fmt.Errorf("response_status: must be between 100 and 599, got %d", c.ResponseStatus)
	}
	if !supportedTypes[mediaType(c.ContentType)] {
		return fmt.Errorf("content_type: unsupported content type %q (use application/json, application/xml, text/plain, text/html or text/xml)", c.ContentType)
	}
	if c.ResponseHeaders != nil {
		if _, err := ngxtmpl.DecodeHeaders("response_headers", c.ResponseHeaders); err != nil {
			return err
		}
	}
	return nil
}
