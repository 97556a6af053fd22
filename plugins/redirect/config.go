package redirect

import (
	"errors"
	"fmt"
	"regexp"

	"github.com/sluicegw/sluice/plugin/ngxtmpl"
)

// Config is redirect's configuration, with APISIX's field names. Exactly
// one of HTTPToHTTPS, URI and RegexURI must be set.
type Config struct {
	// HTTPToHTTPS redirects plain-HTTP requests to https://$host$request_uri
	// with 301 (GET, HEAD) or 308 (other methods), ignoring RetCode. The
	// scheme is X-Forwarded-Proto when present, else the connection's.
	HTTPToHTTPS *bool `json:"http_to_https,omitempty"`
	// URI is the Location, with nginx variables: $name or ${name}
	// ([A-Za-z0-9_] names; unset variables are empty). `\$name` is literal.
	URI *string `json:"uri,omitempty"`
	// RegexURI is [regex, replacement]: when the path matches, Location is
	// the path with the first match replaced ($1, ${1}); otherwise the
	// request goes on.
	RegexURI []string `json:"regex_uri,omitempty"`
	// RetCode is the status of the redirect (default 302).
	RetCode int `json:"ret_code"`
	// EncodeURI percent-encodes the Location's path part as nginx does.
	EncodeURI bool `json:"encode_uri"`
	// AppendQueryString appends the request's query string to Location
	// (with '&' when Location already has one).
	AppendQueryString bool `json:"append_query_string"`
}

// NewConfig returns a Config with APISIX's defaults.
func NewConfig() *Config { return &Config{RetCode: 302} }

// Validate checks the config as APISIX's schema and check_schema do.
func (c *Config) Validate() error {
	n := 0
	for _, set := range []bool{c.HTTPToHTTPS != nil, c.URI != nil, c.RegexURI != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return errors.New("exactly one of uri, regex_uri and http_to_https must be set")
	}
	if c.URI != nil && len(*c.URI) < 2 {
		return fmt.Errorf("uri: must be at least 2 characters, got %q", *c.URI)
	}
	if _, _, err := compileRegexURI(c.RegexURI); err != nil {
		return err
	}
	if c.RetCode < 200 || c.RetCode > 599 {
		return fmt.Errorf("ret_code: must be between 200 and 599, got %d", c.RetCode)
	}
	if c.HTTPToHTTPS != nil && *c.HTTPToHTTPS && c.AppendQueryString {
		return errors.New("append_query_string: only one of `http_to_https` and `append_query_string` can be configured")
	}
	return nil
}

func compileRegexURI(pair []string) (*regexp.Regexp, ngxtmpl.SubTemplate, error) {
	if pair == nil {
		return nil, ngxtmpl.SubTemplate{}, nil
	}
	if len(pair) != 2 {
		return nil, ngxtmpl.SubTemplate{}, fmt.Errorf("regex_uri: must have exactly 2 items (regex, replacement), got %d", len(pair))
	}
	re, err := regexp.Compile(pair[0])
	var t ngxtmpl.SubTemplate
	if err == nil {
		t, err = ngxtmpl.CompileSub(pair[1])
	}
	if err != nil {
		return nil, ngxtmpl.SubTemplate{}, fmt.Errorf("regex_uri: invalid regex_uri (%s, %s), err:%w", pair[0], pair[1], err)
	}
	return re, t, nil
}
