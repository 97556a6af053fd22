package proxymirror

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Path concatenation modes (path_concat_mode).
const (
	ModeReplace = "replace"
	ModePrefix  = "prefix"
)

// minSampleRatio is APISIX's lower bound for sample_ratio.
const minSampleRatio = 0.00001

// Config is proxy-mirror's configuration, with APISIX's field names and
// defaults.
type Config struct {
	// Host is where copies go: "http://host[:port]" or "https://host[:port]",
	// with no path. Required.
	Host string `json:"host"`
	// Path, when set, is the copy's path instead of the client's (replace)
	// or in front of it (prefix). It starts with "/" and holds no "?" or "&".
	Path *string `json:"path,omitempty"`
	// PathConcatMode is "replace" (default) or "prefix".
	PathConcatMode string `json:"path_concat_mode"`
	// SampleRatio is the share of requests mirrored, 0.00001 to 1.
	SampleRatio float64 `json:"sample_ratio"`
}

// NewConfig returns a Config with APISIX's defaults.
func NewConfig() *Config {
	return &Config{PathConcatMode: ModeReplace, SampleRatio: 1}
}

// Validate checks c as APISIX's schema does. Errors start with the field.
func (c *Config) Validate() error {
	if c.Host == "" {
		return errors.New("host: is required")
	}
	if _, _, err := splitHost(c.Host); err != nil {
		return fmt.Errorf("host: %w", err)
	}
	if c.Path != nil {
		if err := checkPath(*c.Path); err != nil {
			return fmt.Errorf("path: %w", err)
		}
	}
	if c.PathConcatMode != ModeReplace && c.PathConcatMode != ModePrefix {
		return fmt.Errorf("path_concat_mode: must be one of replace, prefix, got %q", c.PathConcatMode)
	}
	// The negated form also rejects NaN.
	if !(c.SampleRatio >= minSampleRatio && c.SampleRatio <= 1) {
		return fmt.Errorf("sample_ratio: must be between 0.00001 and 1, got %v", c.SampleRatio)
	}
	return nil
}

// splitHost checks a mirror address as APISIX's pattern does
// (scheme://host[:port], the host a name, an IPv4 address or a bracketed
// IPv6 address, nothing after the port) and returns its scheme and
// host[:port].
func splitHost(s string) (scheme, hostPort string, err error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return "", "", fmt.Errorf("must be scheme://host[:port], got %q", s)
	}
	switch scheme {
	case "http", "https":
	case "grpc", "grpcs":
		return "", "", fmt.Errorf("grpc and grpcs mirrors are not supported yet; use http or https, got %q", s)
	default:
		return "", "", fmt.Errorf("scheme must be http or https, got %q", s)
	}
	host, port := rest, ""
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return "", "", fmt.Errorf("unclosed IPv6 address in %q", s)
		}
		host, port = rest[1:end], rest[end+1:]
		if host == "" || strings.Trim(host, "0123456789abcdefABCDEF:") != "" {
			return "", "", fmt.Errorf("invalid IPv6 address in %q", s)
		}
	} else if i := strings.IndexByte(rest, ':'); i >= 0 {
		host, port = rest[:i], rest[i:]
		if host == "" || !isHostName(host) {
			return "", "", fmt.Errorf("must be scheme://host[:port] with no path, got %q", s)
		}
	} else if host == "" || !isHostName(host) {
		return "", "", fmt.Errorf("must be scheme://host[:port] with no path, got %q", s)
	}
	if port != "" {
		p, ok := strings.CutPrefix(port, ":")
		n, err := strconv.Atoi(p)
		if !ok || err != nil || n < 1 || n > 65535 || strings.Trim(p, "0123456789") != "" {
			return "", "", fmt.Errorf("must be scheme://host[:port] with a port of 1-65535 and no path, got %q", s)
		}
	}
	return scheme, rest, nil
}

// isHostName reports whether s holds only the characters APISIX's pattern
// allows in a host: letters, digits, '.' and '-'.
func isHostName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// checkPath applies APISIX's pattern for path: "/" followed by at least one
// character, none of them '?' or '&'. Control characters and spaces are
// refused too: they cannot go on a request line.
func checkPath(p string) error {
	if len(p) < 2 || p[0] != '/' {
		return fmt.Errorf("must start with / and have at least one more character, got %q", p)
	}
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '?' || c == '&':
			return fmt.Errorf("must not contain ? or &, got %q", p)
		case c <= ' ' || c == 0x7f:
			return fmt.Errorf("must not contain spaces or control characters, got %q", p)
		}
	}
	return nil
}

// schema is the JSON Schema served by the Admin API, APISIX's own.
func schema() map[string]any {
	return map[string]any{
		"type":     "object",
		"required": []string{"host"},
		"properties": map[string]any{
			"host": map[string]any{
				"type":    "string",
				"pattern": `^(http(s)?):\/\/([\da-zA-Z.-]+|\[[\da-fA-F:]+\])(:\d+)?$`,
			},
			"path": map[string]any{"type": "string", "pattern": `^/[^?&]+$`},
			"path_concat_mode": map[string]any{
				"type": "string", "enum": []string{ModeReplace, ModePrefix}, "default": ModeReplace,
			},
			"sample_ratio": map[string]any{
				"type": "number", "minimum": minSampleRatio, "maximum": 1, "default": 1,
			},
		},
	}
}
