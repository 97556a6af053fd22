package ngxtmpl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Header is a header to send whose value is a variable template, resolved
// per request.
type Header struct {
	Name  string
	Value Template
}

// DecodeHeaders decodes a JSON object of header names to values, as
// APISIX's plugin schemas accept it (fault-injection's abort.headers,
// mocking's response_headers), and compiles each value. A value is a
// string or a number (see JSONScalar); names must be non-empty and without
// ':', values without CR or LF, and the object must not be empty. path
// names the field in errors. The headers are sorted by name, so they are
// sent in the same order every time.
func DecodeHeaders(path string, m map[string]json.RawMessage) ([]Header, error) {
	if len(m) == 0 {
		return nil, fmt.Errorf("%s: must have at least 1 header", path)
	}
	out := make([]Header, 0, len(m))
	for _, name := range slices.Sorted(maps.Keys(m)) {
		if err := CheckHeaderName(path, name); err != nil {
			return nil, err
		}
		s, ok := JSONScalar(m[name])
		if !ok {
			return nil, fmt.Errorf("%s.%s: must be a string or a number", path, name)
		}
		if strings.ContainsAny(s, "\r\n") {
			return nil, fmt.Errorf("%s.%s: value must not contain CR or LF", path, name)
		}
		out = append(out, Header{Name: name, Value: Compile(s)})
	}
	return out, nil
}

// JSONScalar returns the text of a JSON string, or of a JSON number as Lua
// prints it (FormatNumber): APISIX's schemas take either for a header value
// and use it as a string. ok is false for any other JSON value.
func JSONScalar(v json.RawMessage) (s string, ok bool) {
	v = bytes.TrimSpace(v)
	switch {
	case len(v) == 0:
		return "", false
	case v[0] == '"':
		err := json.Unmarshal(v, &s)
		return s, err == nil
	case v[0] == '-' || ('0' <= v[0] && v[0] <= '9'):
		return FormatNumber(string(v)), true
	}
	return "", false
}

// CheckHeaderName rejects a header name that is empty or has a ':' (it
// could not be sent as one field). path names the field in the error.
func CheckHeaderName(path, name string) error {
	if name == "" || strings.IndexByte(name, ':') >= 0 {
		return fmt.Errorf("%s: header name must be non-empty and without ':', got %q", path, name)
	}
	return nil
}

// HeaderConfig is the part of a plugin's `headers` config (proxy-rewrite,
// response-rewrite) that does not depend on the plugin. It keeps the JSON
// as the user wrote it, for MarshalJSON: APISIX takes two forms, which the
// decoded fields do not tell apart. It also keeps the error found while
// decoding, for the plugin's Validate to report: UnmarshalJSON fails only
// when `headers` is not an object, so other mistakes get Validate's
// messages. A plugin's Headers type holds one and decodes through Decode.
type HeaderConfig struct {
	raw json.RawMessage
	err error
}

// Decode records b and decodes it, calling the plugin back for the parts
// whose shape differs between plugins. The action form {"add": ...,
// "set": ..., "remove": ...} is recognized as APISIX does: add, set or
// remove holds an object or an array (so a header named "set" with a
// string value still reads as a legacy header). Then action is called for
// each key in name order, so the error kept is always the same one, and
// any other key is an error. Otherwise b is the legacy flat object of
// headers to set, and legacy is called with it. Decode returns an error
// only when b is not a JSON object; the first error of the callbacks is
// kept for Err.
func (c *HeaderConfig) Decode(b []byte, legacy func(obj map[string]json.RawMessage) error, action func(name string, v json.RawMessage) error) error {
	*c = HeaderConfig{raw: append(json.RawMessage(nil), b...)}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		return errors.New("headers: must be an object")
	}
	c.err = decodeHeaderActions(obj, legacy, action)
	return nil
}

// Err returns the error Decode kept, nil when the headers decoded cleanly.
func (c *HeaderConfig) Err() error { return c.err }

// MarshalJSON returns the JSON Decode was given ("null" before any), so
// that a config read back through the Admin API is what the user wrote.
func (c *HeaderConfig) MarshalJSON() ([]byte, error) {
	if c.raw == nil {
		return []byte("null"), nil
	}
	return c.raw, nil
}

func decodeHeaderActions(obj map[string]json.RawMessage, legacy func(obj map[string]json.RawMessage) error, action func(name string, v json.RawMessage) error) error {
	if !isHeaderActions(obj) {
		return legacy(obj)
	}
	for _, key := range slices.Sorted(maps.Keys(obj)) {
		switch key {
		case "add", "set", "remove":
			if err := action(key, obj[key]); err != nil {
				return err
			}
		default:
			return fmt.Errorf("headers.%s: unknown field (with add, set or remove, headers takes only those)", key)
		}
	}
	return nil
}

func isHeaderActions(obj map[string]json.RawMessage) bool {
	for _, k := range []string{"add", "set", "remove"} {
		if v, ok := obj[k]; ok && len(v) > 0 && (v[0] == '{' || v[0] == '[') {
			return true
		}
	}
	return false
}

// DecodeHeaderList decodes a `headers` action that is a list: a non-empty
// JSON array of strings, such as `remove` (header names) or
// response-rewrite's `add` ("Name: value" lines). An empty list is an
// error, as in APISIX's schemas (minItems 1). path names the field in
// errors.
func DecodeHeaderList(path string, v json.RawMessage) ([]string, error) {
	var list []string
	if json.Unmarshal(v, &list) != nil {
		return nil, fmt.Errorf("%s: must be an array of strings", path)
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("%s: must have at least 1 item", path)
	}
	return list, nil
}
