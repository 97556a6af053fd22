package apibreaker

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/sluicegw/sluice/plugin/ngxtmpl"
)

// Config is api-breaker's configuration, field for field APISIX's schema
// (apisix/plugins/api-breaker.lua).
type Config struct {
	// BreakResponseCode is the status answered while the breaker is open,
	// 200 to 599. Required.
	BreakResponseCode int `json:"break_response_code"`
	// BreakResponseBody, when set, is the body answered while the breaker
	// is open, sent as is. Unset: nginx's error page for the status.
	BreakResponseBody *string `json:"break_response_body,omitempty"`
	// BreakResponseHeaders are added to the break answer; values may hold
	// nginx variables ($remote_addr, ${route_id}...). As in APISIX they are
	// only sent with a BreakResponseBody.
	BreakResponseHeaders Headers `json:"break_response_headers,omitempty"`
	// MaxBreakerSec caps a break, in seconds (at least 3). Breaks last 2, 4,
	// 8... seconds, doubling with each trip until this cap.
	MaxBreakerSec int `json:"max_breaker_sec"`
	// Unhealthy says which upstream statuses count as failures and how many
	// trip the breaker.
	Unhealthy Unhealthy `json:"unhealthy"`
	// Healthy says which upstream statuses count as successes and how many
	// in a row close the breaker for good (resetting every counter).
	Healthy Healthy `json:"healthy"`
}

// Headers are the headers of the break answer, in order.
type Headers []HeaderKV

// HeaderKV is one header of the break answer.
type HeaderKV struct {
	// Key is the header name (non-empty, without ':').
	Key string `json:"key"`
	// Value is the header value (non-empty); it may hold nginx variables.
	Value string `json:"value"`
}

// Unhealthy is the failure side of the breaker.
type Unhealthy struct {
	// HTTPStatuses are upstream statuses (500 to 599, unique, at least one)
	// that count as failures.
	HTTPStatuses []int `json:"http_statuses"`
	// Failures is how many failures trip the breaker (at least 1); every
	// further Failures failures trip it again, for twice as long.
	Failures int `json:"failures"`
}

// Healthy is the recovery side of the breaker.
type Healthy struct {
	// HTTPStatuses are upstream statuses (200 to 499, unique, at least one)
	// that count as successes.
	HTTPStatuses []int `json:"http_statuses"`
	// Successes is how many successes in a row (no failure between them)
	// forget the failures (at least 1).
	Successes int `json:"successes"`
}

// UnmarshalJSON decodes each header strictly, so that an error names the
// item: encoding/json would name only the innermost field.
func (h *Headers) UnmarshalJSON(b []byte) error {
	var items []json.RawMessage
	if err := decodeAt("break_response_headers", b, &items); err != nil {
		return err
	}
	if items == nil {
		*h = nil
		return nil
	}
	out := make(Headers, len(items))
	for i, raw := range items {
		if err := decodeAt(fmt.Sprintf("break_response_headers[%d]", i), raw, (*headerFields)(&out[i])); err != nil {
			return err
		}
	}
	*h = out
	return nil
}

// headerFields, unhealthyFields and healthyFields are their types without
// the UnmarshalJSON method, to decode into.
type (
	headerFields    HeaderKV
	unhealthyFields Unhealthy
	healthyFields   Healthy
)

// UnmarshalJSON decodes over the defaults already in u (a field left out
// keeps its default), naming nested fields in errors.
func (u *Unhealthy) UnmarshalJSON(b []byte) error {
	return decodeAt("unhealthy", b, (*unhealthyFields)(u))
}

// UnmarshalJSON is Unhealthy's, for healthy.
func (h *Healthy) UnmarshalJSON(b []byte) error {
	return decodeAt("healthy", b, (*healthyFields)(h))
}

// decodeAt decodes b strictly into v and describes a failure as the
// gateway's decoder does, with the field's whole path: "unhealthy.failure:
// unknown field", "healthy.successes: must be a number, got string". The
// error is a fresh description: wrapping the *json.UnmarshalTypeError would
// let the gateway's decoder rename it after the innermost field again.
func decodeAt(path string, b []byte, v any) error {
	if string(bytes.TrimSpace(b)) == "null" {
		return nil // as encoding/json: null leaves the value alone
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := path
		if te.Field != "" {
			field += "." + te.Field
		}
		return fmt.Errorf("%s: must be %s, got %s", field, jsonKind(te.Type), te.Value)
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return fmt.Errorf("%s.%s: unknown field", path, strings.Trim(f, `"`))
	}
	return fmt.Errorf("%s: %w", path, err)
}

// jsonKind names the JSON type a Go type decodes from.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct, reflect.Pointer:
		return "an object"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "an integer"
	}
	return "a number"
}

// NewConfig returns a Config with APISIX's defaults.
func NewConfig() *Config {
	return &Config{
		MaxBreakerSec: 300,
		Unhealthy:     Unhealthy{HTTPStatuses: []int{500}, Failures: 3},
		Healthy:       Healthy{HTTPStatuses: []int{200}, Successes: 3},
	}
}

// Validate checks c without side effects; errors name the field.
func (c *Config) Validate() error {
	if c.BreakResponseCode == 0 {
		return errors.New("break_response_code: is required")
	}
	if c.BreakResponseCode < 200 || c.BreakResponseCode > 599 {
		return fmt.Errorf("break_response_code: must be between 200 and 599, got %d", c.BreakResponseCode)
	}
	for i, h := range c.BreakResponseHeaders {
		path := fmt.Sprintf("break_response_headers[%d]", i)
		if h.Key == "" {
			return fmt.Errorf("%s.key: is required and must not be empty", path)
		}
		if err := ngxtmpl.CheckHeaderName(path+".key", h.Key); err != nil {
			return err
		}
		if !isToken(h.Key) {
			return fmt.Errorf("%s.key: must be a valid header name, got %q", path, h.Key)
		}
		if h.Value == "" {
			return fmt.Errorf("%s.value: is required and must not be empty", path)
		}
		// APISIX would send a broken header; refuse it when it is written.
		if strings.ContainsAny(h.Value, "\r\n") {
			return fmt.Errorf("%s.value: must not contain CR or LF", path)
		}
	}
	if c.MaxBreakerSec < 3 {
		return fmt.Errorf("max_breaker_sec: must be at least 3, got %d", c.MaxBreakerSec)
	}
	if err := checkStatuses("unhealthy.http_statuses", c.Unhealthy.HTTPStatuses, 500, 599); err != nil {
		return err
	}
	if c.Unhealthy.Failures < 1 {
		return fmt.Errorf("unhealthy.failures: must be at least 1, got %d", c.Unhealthy.Failures)
	}
	if err := checkStatuses("healthy.http_statuses", c.Healthy.HTTPStatuses, 200, 499); err != nil {
		return err
	}
	if c.Healthy.Successes < 1 {
		return fmt.Errorf("healthy.successes: must be at least 1, got %d", c.Healthy.Successes)
	}
	return nil
}

// isToken reports whether s is an HTTP token (RFC 9110 5.6.2), the only
// thing a header name may be.
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return s != ""
}

// checkStatuses applies APISIX's array schema: at least one item, each in
// [lo, hi], no duplicates.
func checkStatuses(path string, s []int, lo, hi int) error {
	if len(s) == 0 {
		return fmt.Errorf("%s: must have at least 1 item", path)
	}
	for i, code := range s {
		if code < lo || code > hi {
			return fmt.Errorf("%s[%d]: must be between %d and %d, got %d", path, i, lo, hi, code)
		}
		for j := range i {
			if s[j] == code {
				return fmt.Errorf("%s[%d]: duplicate of %s[%d]", path, i, path, j)
			}
		}
	}
	return nil
}

// schema is the JSON Schema the Admin API serves for api-breaker: APISIX's
// constraints, which the derived schema could not express.
func schema() map[string]any {
	statuses := func(lo, hi, def int) map[string]any {
		return map[string]any{
			"type": "array", "minItems": 1, "uniqueItems": true, "default": []int{def},
			"items": map[string]any{"type": "integer", "minimum": lo, "maximum": hi},
		}
	}
	count := func(def int) map[string]any {
		return map[string]any{"type": "integer", "minimum": 1, "default": def}
	}
	return map[string]any{
		"type":     "object",
		"required": []string{"break_response_code"},
		"properties": map[string]any{
			"break_response_code": map[string]any{"type": "integer", "minimum": 200, "maximum": 599},
			"break_response_body": map[string]any{"type": "string"},
			"break_response_headers": map[string]any{
				"type": "array",
				"items": map[string]any{
					"type":     "object",
					"required": []string{"key", "value"},
					"properties": map[string]any{
						"key":   map[string]any{"type": "string", "minLength": 1},
						"value": map[string]any{"type": "string", "minLength": 1},
					},
				},
			},
			"max_breaker_sec": map[string]any{"type": "integer", "minimum": 3, "default": 300},
			"unhealthy": map[string]any{
				"type": "object",
				"properties": map[string]any{
					"http_statuses": statuses(500, 599, 500),
					"failures":      count(3),
				},
				"default": map[string]any{"http_statuses": []int{500}, "failures": 3},
			},
			"healthy": map[string]any{
				"type": "object",
				"properties": map[string]any{
					"http_statuses": statuses(200, 499, 200),
					"successes":     count(3),
				},
				"default": map[string]any{"http_statuses": []int{200}, "successes": 3},
			},
		},
	}
}
