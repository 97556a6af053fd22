package filelogger

import (
	"encoding/json"
	"fmt"

	"github.com/sluicegw/sluice/internal/expr"
	"github.com/sluicegw/sluice/plugin/logentry"
)

// Config is file-logger's configuration, with APISIX's field names.
type Config struct {
	// Path is the file entries are appended to, one JSON object a line.
	// When empty, the plugin metadata's path is used; one of them is
	// required.
	Path string `json:"path,omitempty"`
	// Match lists vars expressions; when set, only requests matching one
	// of them are logged.
	Match []json.RawMessage `json:"match,omitempty"`
	logentry.Settings
}

// NewConfig returns a Config with APISIX's defaults.
func NewConfig() *Config { return &Config{Settings: logentry.NewSettings()} }

// Validate checks the config as APISIX's schema does. Whether a path is set
// (here or in the metadata) is checked when the plugin is built.
func (c *Config) Validate() error {
	if len(c.Match) > 20 {
		return fmt.Errorf("match: must have at most 20 items, got %d", len(c.Match))
	}
	if _, err := compileMatch(c.Match); err != nil {
		return err
	}
	return c.Settings.Validate()
}

func compileMatch(raw []json.RawMessage) ([]*expr.Expr, error) {
	out := make([]*expr.Expr, 0, len(raw))
	for i, m := range raw {
		e, err := expr.Compile(m)
		if err != nil {
			return nil, fmt.Errorf("match[%d]: %w", i, err)
		}
		out = append(out, e)
	}
	return out, nil
}
