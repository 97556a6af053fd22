package responserewrite

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/sluicegw/sluice/internal/expr"
	"github.com/sluicegw/sluice/plugin/ngxtmpl"
)

// DefaultMaxRespBodySize is APISIX's default for max_resp_body_size: 64 MiB.
const DefaultMaxRespBodySize = 64 << 20

// Config is response-rewrite's configuration, with APISIX's field names.
type Config struct {
	// MaxRespBodySize caps, in bytes, the body buffered for Filters. A
	// longer body is truncated to this size (then filtered).
	MaxRespBodySize int64 `json:"max_resp_body_size"`
	// StatusCode replaces the response status (200 to 598).
	StatusCode *int `json:"status_code,omitempty"`
	// Body replaces the response body; Content-Length, Content-Encoding,
	// Last-Modified and ETag are dropped. Not allowed with Filters.
	Body *string `json:"body,omitempty"`
	// BodyBase64 says Body is base64: it is decoded once, at load.
	BodyBase64 bool `json:"body_base64"`
	// Headers are header operations on the response: {"add": ["Name:
	// value", ...], "set": {...}, "remove": [...]}, run as add, set,
	// remove; or a flat object of headers to set. Values may contain nginx
	// variables.
	Headers *Headers `json:"headers,omitempty"`
	// Vars is a vars expression evaluated in header_filter (request
	// variables, plus status and sent_http_*/upstream_http_* from the
	// response): the plugin only rewrites when it matches.
	Vars json.RawMessage `json:"vars,omitempty"`
	// Filters are regex substitutions over the whole response body. Not
	// allowed with Body.
	Filters Filters `json:"filters,omitempty"`
}

// Filters is the list of body filters.
type Filters []Filter

// UnmarshalJSON decodes each filter strictly over its defaults, naming the
// filter in errors.
func (fs *Filters) UnmarshalJSON(b []byte) error {
	var raws []json.RawMessage
	if err := json.Unmarshal(b, &raws); err != nil {
		return errors.New("filters: must be an array")
	}
	out := make(Filters, len(raws))
	for i, raw := range raws {
		f := Filter{Scope: "once", Options: "jo"}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				return fmt.Errorf("filters[%d].%s: must be a %s", i, te.Field, strings.TrimPrefix(te.Type.String(), "*"))
			}
			if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
				return fmt.Errorf("filters[%d].%s: unknown field", i, strings.Trim(name, `"`))
			}
			return fmt.Errorf("filters[%d]: %w", i, err)
		}
		out[i] = f
	}
	*fs = out
	return nil
}

// Filter is one body substitution.
type Filter struct {
	// Regex is the pattern (Go RE2 syntax, which covers most PCRE).
	Regex string `json:"regex"`
	// Scope is "once" (default: first match) or "global" (every match).
	Scope string `json:"scope"`
	// Replace is the replacement; $0, $1, ${1} are groups and $$ a dollar.
	Replace *string `json:"replace"`
	// Options are ngx.re option letters: i (case-insensitive), m
	// (multi-line), s (dot matches newline), a (anchored); j, o, u, U, d,
	// D and J are accepted and have no effect. Default "jo".
	Options string `json:"options"`
}

// NewConfig returns a Config with APISIX's defaults.
func NewConfig() *Config { return &Config{MaxRespBodySize: DefaultMaxRespBodySize} }

// Validate checks the config as APISIX's schema and check_schema do.
func (c *Config) Validate() error {
	if c.MaxRespBodySize < 1 {
		return fmt.Errorf("max_resp_body_size: must be >= 1, got %d", c.MaxRespBodySize)
	}
	if c.StatusCode != nil && (*c.StatusCode < 200 || *c.StatusCode > 598) {
		return fmt.Errorf("status_code: must be between 200 and 598, got %d", *c.StatusCode)
	}
	if c.Body != nil && c.Filters != nil {
		return errors.New("body: must not be set together with filters")
	}
	if c.BodyBase64 {
		if c.Body == nil || *c.Body == "" {
			return errors.New("body: invalid base64 content")
		}
		if _, err := decodeBase64(*c.Body); err != nil {
			return errors.New("body: invalid base64 content")
		}
	}
	if c.Headers != nil {
		if err := c.Headers.validate(); err != nil {
			return err
		}
	}
	if _, err := expr.Compile(c.Vars); err != nil {
		return err
	}
	_, err := compileFilters(c.Filters)
	return err
}

// decodeBase64 accepts padded and unpadded standard base64, as nginx's
// ngx_decode_base64 does.
func decodeBase64(s string) ([]byte, error) {
	return base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
}

// filter is a compiled Filter.
type filter struct {
	re     *regexp.Regexp
	repl   ngxtmpl.SubTemplate
	global bool
}

func compileFilters(fs []Filter) ([]filter, error) {
	if fs == nil {
		return nil, nil
	}
	if len(fs) == 0 {
		return nil, errors.New("filters: must have at least 1 item")
	}
	out := make([]filter, 0, len(fs))
	for i, f := range fs {
		if f.Regex == "" {
			return nil, fmt.Errorf("filters[%d].regex: must not be empty", i)
		}
		if f.Replace == nil {
			return nil, fmt.Errorf("filters[%d].replace: is required", i)
		}
		if f.Scope != "once" && f.Scope != "global" {
			return nil, fmt.Errorf("filters[%d].scope: must be one of once, global, got %q", i, f.Scope)
		}
		re, err := compileRegex(f.Regex, f.Options)
		if err != nil {
			return nil, fmt.Errorf("filters[%d].regex: regex %q validation failed: %w", i, f.Regex, err)
		}
		repl, err := ngxtmpl.CompileSub(*f.Replace)
		if err != nil {
			return nil, fmt.Errorf("filters[%d].replace: %w", i, err)
		}
		out = append(out, filter{re: re, repl: repl, global: f.Scope == "global"})
	}
	return out, nil
}

// compileRegex maps ngx.re options onto RE2 flags.
func compileRegex(pattern, options string) (*regexp.Regexp, error) {
	var flags []byte
	anchored := false
	for i := 0; i < len(options); i++ {
		switch o := options[i]; o {
		case 'i', 'm', 's':
			flags = append(flags, o)
		case 'a':
			anchored = true
		case 'j', 'o', 'u', 'U', 'd', 'D', 'J':
			// JIT, compile-once, UTF-8 and friends change nothing for RE2.
		case 'x':
			return nil, errors.New(`option "x" (extended syntax) is not supported`)
		default:
			return nil, fmt.Errorf("unknown regex option %q", o)
		}
	}
	if anchored {
		pattern = `\A(?:` + pattern + `)`
	}
	if len(flags) > 0 {
		pattern = "(?" + string(flags) + ")" + pattern
	}
	return regexp.Compile(pattern)
}

// Headers is response-rewrite's `headers`.
type Headers struct {
	// Add lists "Name: value" headers to append.
	Add []string
	// Set replaces the named headers.
	Set map[string]string
	// Remove deletes the named headers.
	Remove []string
	cfg    ngxtmpl.HeaderConfig // the JSON as written and the decoding error
}

// UnmarshalJSON reads either form: the action object (when add, set or
// remove holds an object or array, as in APISIX) or a flat object of
// headers to set.
func (h *Headers) UnmarshalJSON(b []byte) error {
	*h = Headers{}
	return h.cfg.Decode(b, h.decodeLegacy, h.decodeAction)
}

// decodeLegacy reads the flat form: every header is set.
func (h *Headers) decodeLegacy(obj map[string]json.RawMessage) (err error) {
	h.Set, err = decodeSet("headers", obj)
	return err
}

// decodeAction reads one action; add takes "Name: value" lines and set one
// value per header.
func (h *Headers) decodeAction(action string, v json.RawMessage) (err error) {
	switch action {
	case "add":
		h.Add, err = ngxtmpl.DecodeHeaderList("headers.add", v)
	case "set":
		var m map[string]json.RawMessage
		if json.Unmarshal(v, &m) != nil {
			return errors.New("headers.set: must be an object")
		}
		h.Set, err = decodeSet("headers.set", m)
	case "remove":
		h.Remove, err = ngxtmpl.DecodeHeaderList("headers.remove", v)
	}
	return err
}

// MarshalJSON returns the JSON the headers were decoded from.
func (h *Headers) MarshalJSON() ([]byte, error) { return h.cfg.MarshalJSON() }

func decodeSet(path string, obj map[string]json.RawMessage) (map[string]string, error) {
	if len(obj) == 0 {
		return nil, fmt.Errorf("%s: must have at least 1 header", path)
	}
	out := make(map[string]string, len(obj))
	for _, name := range slices.Sorted(maps.Keys(obj)) {
		s, ok := ngxtmpl.JSONScalar(obj[name])
		if !ok {
			return nil, fmt.Errorf("%s.%s: must be a string or a number", path, name)
		}
		out[name] = s
	}
	return out, nil
}

// addLine matches APISIX's schema pattern for headers.add items.
var addLine = regexp.MustCompile(`^[^:]+:[^:]*[^/]$`)

// parseAdd splits "Name: value" as APISIX does (^([^:\s]+)\s*:\s*([^:]+)$).
func parseAdd(line string) (name, value string, ok bool) {
	name, value, ok = strings.Cut(line, ":")
	name = strings.TrimRight(name, " \t")
	value = strings.TrimLeft(value, " \t")
	if !ok || name == "" || value == "" || strings.ContainsAny(name, " \t\r\n") {
		return "", "", false
	}
	return name, value, true
}

func (h *Headers) validate() error {
	if err := h.cfg.Err(); err != nil {
		return err
	}
	for i, line := range h.Add {
		if _, _, ok := parseAdd(line); !ok || !addLine.MatchString(line) {
			return fmt.Errorf(`headers.add[%d]: must be "Name: value" (no ':' in the value, not ending with '/'), got %q`, i, line)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(h.Set)) {
		if err := ngxtmpl.CheckHeaderName("headers.set", name); err != nil {
			return err
		}
		if strings.ContainsAny(h.Set[name], "\r\n") {
			return fmt.Errorf("headers.set.%s: value must not contain CR or LF", name)
		}
	}
	for i, name := range h.Remove {
		if err := ngxtmpl.CheckHeaderName(fmt.Sprintf("headers.remove[%d]", i), name); err != nil {
			return err
		}
	}
	return nil
}
