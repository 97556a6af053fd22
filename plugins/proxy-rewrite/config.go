package proxyrewrite

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/sluicegw/sluice/plugin/ngxtmpl"
)

// Config is proxy-rewrite's configuration, with APISIX's field names.
type Config struct {
	// URI is the new upstream path, starting with "/". It may contain nginx
	// variables ($uri, $arg_name, ${http_x ?? default}); a '?' in it starts
	// the query string, and the client's query string is appended to it.
	// URI takes precedence over RegexURI.
	URI *string `json:"uri,omitempty"`
	// RegexURI is a list of [regex, replacement] pairs matched against the
	// request path; the first regex that matches rewrites the path, with
	// $0, $1, ${1} referring to its groups.
	RegexURI []string `json:"regex_uri,omitempty"`
	// Method replaces the request method.
	Method string `json:"method,omitempty"`
	// Host replaces the Host sent upstream (host, or host:port).
	Host string `json:"host,omitempty"`
	// Headers are header operations on the upstream request: either
	// {"add": {...}, "set": {...}, "remove": [...]}, applied in the order
	// add, set, remove, or a flat object of headers to set.
	Headers *Headers `json:"headers,omitempty"`
	// UseRealRequestURIUnsafe starts from the request URI as the client
	// sent it (not normalized, query string included) and sends the result
	// without re-encoding it. Unsafe: path normalization is bypassed.
	UseRealRequestURIUnsafe bool `json:"use_real_request_uri_unsafe"`
}

// NewConfig returns a Config with APISIX's defaults.
func NewConfig() *Config { return &Config{} }

// methods are the methods APISIX accepts for `method`.
var methods = []string{
	"COPY", "DELETE", "GET", "HEAD", "LOCK", "MKCOL", "MOVE", "OPTIONS",
	"PATCH", "POST", "PROPFIND", "PUT", "TRACE", "UNLOCK",
}

// Validate checks the config as APISIX's schema and check_schema do.
func (c *Config) Validate() error {
	if c.URI != nil {
		switch u := *c.URI; {
		case u == "":
			return errors.New("uri: must not be empty")
		case len(u) > 4096:
			return errors.New("uri: must be at most 4096 characters")
		case u[0] != '/':
			return fmt.Errorf("uri: must start with \"/\", got %q", u)
		}
	}
	if _, err := compileRegexURI(c.RegexURI); err != nil {
		return err
	}
	if c.Method != "" && !slices.Contains(methods, c.Method) {
		return fmt.Errorf("method: must be one of %s, got %q", strings.Join(methods, ", "), c.Method)
	}
	if c.Host != "" && !validHost(c.Host) {
		return fmt.Errorf("host: must be a host name or address with an optional port, got %q", c.Host)
	}
	if c.Headers != nil {
		return c.Headers.validate()
	}
	return nil
}

// regexRule is one compiled regex_uri pair.
type regexRule struct {
	re   *regexp.Regexp
	repl ngxtmpl.SubTemplate
}

func compileRegexURI(pairs []string) ([]regexRule, error) {
	if pairs == nil {
		return nil, nil
	}
	if len(pairs) < 2 {
		return nil, fmt.Errorf("regex_uri: must have at least 2 items, got %d", len(pairs))
	}
	if len(pairs)%2 != 0 {
		return nil, fmt.Errorf("regex_uri: the number of items must be even (regex, replacement pairs), got %d", len(pairs))
	}
	rules := make([]regexRule, 0, len(pairs)/2)
	for i := 0; i < len(pairs); i += 2 {
		re, err := regexp.Compile(pairs[i])
		if err == nil {
			var t ngxtmpl.SubTemplate
			t, err = ngxtmpl.CompileSub(pairs[i+1])
			rules = append(rules, regexRule{re: re, repl: t})
		}
		if err != nil {
			return nil, fmt.Errorf("regex_uri[%d]: invalid regex_uri(%s, %s): %w", i, pairs[i], pairs[i+1], err)
		}
	}
	return rules, nil
}

// validHost matches APISIX's ^[0-9a-zA-Z-.]+(:\d{1,5})?$.
func validHost(h string) bool {
	name, port, hasPort := strings.Cut(h, ":")
	if name == "" || (hasPort && (len(port) < 1 || len(port) > 5)) {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c == '-' || c == '.' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	for i := 0; i < len(port); i++ {
		if port[i] < '0' || port[i] > '9' {
			return false
		}
	}
	return true
}

// Headers is proxy-rewrite's `headers`. Values are strings; JSON numbers
// are kept as Lua prints them ("%.14g").
type Headers struct {
	// Add appends values to the named headers.
	Add map[string][]string
	// Set replaces the named headers (several values: several fields).
	Set map[string][]string
	// Remove deletes the named headers.
	Remove []string
	// cfg keeps the JSON the user wrote and the decoding error.
	cfg ngxtmpl.HeaderConfig
}

// UnmarshalJSON reads either form of `headers`: the object of actions, used
// when add, set or remove holds an object or array (as in APISIX), or the
// legacy flat object of headers to set.
func (h *Headers) UnmarshalJSON(b []byte) error {
	*h = Headers{}
	return h.cfg.Decode(b, h.decodeLegacy, h.decodeAction)
}

// decodeLegacy reads the flat form: every header is set.
func (h *Headers) decodeLegacy(obj map[string]json.RawMessage) error {
	h.Set = make(map[string][]string, len(obj))
	for name, v := range obj {
		s, ok := ngxtmpl.JSONScalar(v)
		if !ok {
			return fmt.Errorf("headers.%s: must be a string or a number", name)
		}
		h.Set[name] = []string{s}
	}
	return checkLegacy(obj)
}

// decodeAction reads one action; add and set take one value or a list per
// header.
func (h *Headers) decodeAction(action string, v json.RawMessage) (err error) {
	switch action {
	case "add":
		h.Add, err = decodeValues("headers.add", v)
	case "set":
		h.Set, err = decodeValues("headers.set", v)
	case "remove":
		h.Remove, err = ngxtmpl.DecodeHeaderList("headers.remove", v)
	}
	return err
}

// MarshalJSON returns the JSON the headers were decoded from.
func (h *Headers) MarshalJSON() ([]byte, error) { return h.cfg.MarshalJSON() }

func decodeValues(path string, v json.RawMessage) (map[string][]string, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(v, &obj); err != nil {
		return nil, fmt.Errorf("%s: must be an object", path)
	}
	if len(obj) == 0 {
		return nil, fmt.Errorf("%s: must have at least 1 header", path)
	}
	out := make(map[string][]string, len(obj))
	for name, raw := range obj {
		if s, ok := ngxtmpl.JSONScalar(raw); ok {
			out[name] = []string{s}
			continue
		}
		var list []json.RawMessage
		if json.Unmarshal(raw, &list) != nil || len(list) == 0 {
			return nil, fmt.Errorf("%s.%s: must be a string, a number or a non-empty array of them", path, name)
		}
		for _, item := range list {
			s, ok := ngxtmpl.JSONScalar(item)
			if !ok {
				return nil, fmt.Errorf("%s.%s: must be a string, a number or a non-empty array of them", path, name)
			}
			out[name] = append(out[name], s)
		}
	}
	return out, nil
}

// checkLegacy applies APISIX's check_set_headers to the flat form.
func checkLegacy(obj map[string]json.RawMessage) error {
	for _, name := range slices.Sorted(maps.Keys(obj)) {
		if name == "" {
			return errors.New("headers: invalid field length in header")
		}
		for i := 0; i < len(name); i++ {
			if c := name[i]; c <= ' ' || c >= 0x7f || c == ':' {
				return fmt.Errorf("headers.%s: invalid field character in header", name)
			}
		}
		s, _ := ngxtmpl.JSONScalar(obj[name])
		for i := 0; i < len(s); i++ {
			if c := s[i]; c < ' ' || c >= 0x7f {
				return fmt.Errorf("headers.%s: invalid value character in header", name)
			}
		}
	}
	return nil
}

func (h *Headers) validate() error {
	if err := h.cfg.Err(); err != nil {
		return err
	}
	if len(h.Add)+len(h.Set)+len(h.Remove) == 0 {
		return errors.New("headers: must have at least 1 header")
	}
	for _, group := range []struct {
		path string
		m    map[string][]string
	}{{"headers.add", h.Add}, {"headers.set", h.Set}} {
		for _, name := range slices.Sorted(maps.Keys(group.m)) {
			if err := ngxtmpl.CheckHeaderName(group.path, name); err != nil {
				return err
			}
			for _, v := range group.m[name] {
				if strings.ContainsAny(v, "\r\n") {
					return fmt.Errorf("%s.%s: value must not contain CR or LF", group.path, name)
				}
			}
		}
	}
	for i, name := range h.Remove {
		if err := ngxtmpl.CheckHeaderName(fmt.Sprintf("headers.remove[%d]", i), name); err != nil {
			return err
		}
	}
	return nil
}
