package httplogger

import (
	"errors"
	"fmt"
	"net/url"

	"github.com/sluicegw/sluice/plugin/batch"
	"github.com/sluicegw/sluice/plugin/logentry"
)

// Config is http-logger's configuration, with APISIX's field names; the
// log-entry and batch processor fields sit at the top level too.
type Config struct {
	// URI is the http:// or https:// endpoint batches are POSTed to.
	URI string `json:"uri"`
	// AuthHeader is sent as the Authorization header, when set.
	AuthHeader string `json:"auth_header,omitempty"`
	// Timeout, in seconds, bounds each POST (connect to response).
	Timeout int `json:"timeout"`
	// ConcatMethod is "json" (a batch is a JSON array; one entry alone when
	// batch_max_size is 1) or "new_line" (entries joined by "\n").
	ConcatMethod string `json:"concat_method"`
	// SSLVerify checks the endpoint's certificate.
	SSLVerify bool `json:"ssl_verify"`
	logentry.Settings
	batch.Config
}

// NewConfig returns a Config with APISIX's defaults.
func NewConfig() *Config {
	return &Config{Timeout: 3, ConcatMethod: "json", Settings: logentry.NewSettings(), Config: batch.NewConfig("http logger")}
}

// Validate checks the config as APISIX's schema and check_schema do.
func (c *Config) Validate() error {
	if c.URI == "" {
		return errors.New("uri: is required")
	}
	u, err := url.Parse(c.URI)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("uri: must be an http:// or https:// URL, got %q", c.URI)
	}
	if c.Timeout < 1 {
		return fmt.Errorf("timeout: must be >= 1, got %d", c.Timeout)
	}
	if c.ConcatMethod != "json" && c.ConcatMethod != "new_line" {
		return fmt.Errorf("concat_method: must be one of json, new_line, got %q", c.ConcatMethod)
	}
	if err := c.Settings.Validate(); err != nil {
		return err
	}
	return c.Config.Validate()
}
