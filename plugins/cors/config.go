package cors

import (
	"errors"
	"fmt"
	"regexp"
	"unicode/utf8"
)

// Config is the cors plugin's configuration, field for field APISIX's schema
// (apisix/plugins/cors.lua).
type Config struct {
	// AllowOrigins is "*" (any origin, answered with "*"), "**" (any origin,
	// echoed back, allowed even with credentials), "null", or a
	// comma-separated list of origins like "https://a.com,http://b.com:8080".
	// A request whose Origin is in the list gets it echoed back; others get
	// no CORS headers. Ignored when AllowOriginsByRegex is set.
	AllowOrigins string `json:"allow_origins"`
	// AllowMethods is sent as Access-Control-Allow-Methods; "**" stands for
	// every method (GET,POST,PUT,DELETE,PATCH,HEAD,OPTIONS,CONNECT,TRACE).
	AllowMethods string `json:"allow_methods"`
	// AllowHeaders is sent as Access-Control-Allow-Headers; "**" echoes the
	// request's Access-Control-Request-Headers.
	AllowHeaders string `json:"allow_headers"`
	// ExposeHeaders, when not empty, is sent as
	// Access-Control-Expose-Headers.
	ExposeHeaders string `json:"expose_headers,omitempty"`
	// MaxAge is sent as Access-Control-Max-Age, in seconds; -1 disables
	// caching of preflight results.
	MaxAge int `json:"max_age"`
	// AllowCredential sends Access-Control-Allow-Credentials: true. The CORS
	// specification then forbids "*" in the other fields ("**" is allowed).
	AllowCredential bool `json:"allow_credential"`
	// AllowOriginsByRegex lists regular expressions matched, unanchored,
	// against the request's Origin; a match is echoed back. When set,
	// AllowOrigins is not used to decide.
	AllowOriginsByRegex []string `json:"allow_origins_by_regex,omitempty"`
	// AllowOriginsByMetadata names origin lists kept in the plugin's
	// metadata. It is not supported yet: sluice has no plugin metadata.
	AllowOriginsByMetadata []string `json:"allow_origins_by_metadata,omitempty"`
	// TimingAllowOrigins, with the syntax of AllowOrigins, decides the
	// Timing-Allow-Origin header; empty sends none.
	TimingAllowOrigins string `json:"timing_allow_origins,omitempty"`
	// TimingAllowOriginsByRegex is AllowOriginsByRegex for
	// Timing-Allow-Origin; when set, TimingAllowOrigins is not used.
	TimingAllowOriginsByRegex []string `json:"timing_allow_origins_by_regex,omitempty"`
}

// NewConfig returns a Config with APISIX's defaults.
func NewConfig() *Config {
	return &Config{AllowOrigins: "*", AllowMethods: "*", AllowHeaders: "*", MaxAge: 5}
}

// originsPattern is APISIX's pattern for allow_origins and
// timing_allow_origins. It is compiled once and never changed.
var originsPattern = regexp.MustCompile(`^(\*|\*\*|null|\w+://[^,]+(,\w+://[^,]+)*)$`)

const originsRule = `must be "*", "**", "null" or comma-separated origins like "https://a.com,http://b.com:8080"`

// Validate checks c without side effects; errors name the field.
func (c *Config) Validate() error {
	if !originsPattern.MatchString(c.AllowOrigins) {
		return fmt.Errorf("allow_origins: %s, got %q", originsRule, c.AllowOrigins)
	}
	if c.TimingAllowOrigins != "" && !originsPattern.MatchString(c.TimingAllowOrigins) {
		return fmt.Errorf("timing_allow_origins: %s, got %q", originsRule, c.TimingAllowOrigins)
	}
	// These values become response headers.
	for _, f := range []struct{ name, value string }{
		{"allow_origins", c.AllowOrigins},
		{"allow_methods", c.AllowMethods},
		{"allow_headers", c.AllowHeaders},
		{"expose_headers", c.ExposeHeaders},
		{"timing_allow_origins", c.TimingAllowOrigins},
	} {
		if hasControl(f.value) {
			return fmt.Errorf("%s: must not contain control characters", f.name)
		}
		// The CORS specification ignores "*" on a request with credentials
		// (https://fetch.spec.whatwg.org/#cors-protocol-and-credentials).
		if c.AllowCredential && f.value == "*" {
			return fmt.Errorf(`%s: must not be "*" when allow_credential is true (use "**" to allow any)`, f.name)
		}
	}
	if err := validateRegexps("allow_origins_by_regex", c.AllowOriginsByRegex); err != nil {
		return err
	}
	if err := validateRegexps("timing_allow_origins_by_regex", c.TimingAllowOriginsByRegex); err != nil {
		return err
	}
	if c.AllowOriginsByMetadata != nil {
		return errors.New("allow_origins_by_metadata: not supported: sluice has no plugin metadata yet")
	}
	return nil
}

func validateRegexps(field string, list []string) error {
	if list == nil {
		return nil
	}
	if len(list) == 0 {
		return fmt.Errorf("%s: must not be empty", field)
	}
	for i, re := range list {
		if re == "" {
			return fmt.Errorf("%s[%d]: must not be empty", field, i)
		}
		if utf8.RuneCountInString(re) > 4096 {
			return fmt.Errorf("%s[%d]: length must be at most 4096", field, i)
		}
		for j := range i {
			if list[j] == re {
				return fmt.Errorf("%s[%d]: duplicate of %s[%d]", field, i, field, j)
			}
		}
		if _, err := regexp.Compile(re); err != nil {
			return fmt.Errorf("%s[%d]: invalid regular expression: %w", field, i, err)
		}
	}
	return nil
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] == 0x7f {
			return true
		}
	}
	return false
}
