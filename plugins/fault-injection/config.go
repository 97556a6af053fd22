package faultinjection

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/sluicegw/sluice/internal/expr"
	"github.com/sluicegw/sluice/plugin/ngxtmpl"
)

// Config is fault-injection's configuration, with APISIX's field names. At
// least one of Abort and Delay must be set.
type Config struct {
	// Abort answers the request itself instead of proxying it.
	Abort *Abort `json:"abort,omitempty"`
	// Delay holds the request before it goes on (or is aborted).
	Delay *Delay `json:"delay,omitempty"`
}

// Abort is the abort fault.
type Abort struct {
	// HTTPStatus is the status of the answer (required, 200 to 599).
	HTTPStatus int `json:"http_status"`
	// Body is the answer's body; it may contain nginx variables.
	Body *string `json:"body,omitempty"`
	// Headers are the answer's headers (string or number values); string
	// values may contain nginx variables.
	Headers map[string]json.RawMessage `json:"headers,omitempty"`
	// Percentage (0 to 100) of matching requests to abort; all when unset.
	Percentage *int `json:"percentage,omitempty"`
	// Vars is a list of vars expressions: the fault applies when any of
	// them matches (an empty list never matches). Unset: always.
	Vars []json.RawMessage `json:"vars,omitempty"`
}

// Delay is the delay fault.
type Delay struct {
	// Duration is the delay in seconds (decimals allowed; required).
	Duration *float64 `json:"duration"`
	// Percentage (0 to 100) of matching requests to delay; all when unset.
	Percentage *int `json:"percentage,omitempty"`
	// Vars is as Abort.Vars.
	Vars []json.RawMessage `json:"vars,omitempty"`
}

// NewConfig returns a Config with APISIX's defaults (none).
func NewConfig() *Config { return &Config{} }

// Validate checks the config as APISIX's schema and check_schema do.
func (c *Config) Validate() error {
	if c.Abort == nil && c.Delay == nil {
		return errors.New("at least one of abort and delay must be set")
	}
	if a := c.Abort; a != nil {
		if a.HTTPStatus < 200 || a.HTTPStatus > 599 {
			return fmt.Errorf("abort.http_status: is required and must be between 200 and 599, got %d", a.HTTPStatus)
		}
		if a.Headers != nil {
			if _, err := ngxtmpl.DecodeHeaders("abort.headers", a.Headers); err != nil {
				return err
			}
		}
		if err := checkCommon("abort", a.Percentage, a.Vars); err != nil {
			return err
		}
	}
	if d := c.Delay; d != nil {
		if d.Duration == nil {
			return errors.New("delay.duration: is required")
		}
		if *d.Duration < 0 {
			return fmt.Errorf("delay.duration: must be >= 0, got %g", *d.Duration)
		}
		if err := checkCommon("delay", d.Percentage, d.Vars); err != nil {
			return err
		}
	}
	return nil
}

func checkCommon(path string, pct *int, vars []json.RawMessage) error {
	if pct != nil && (*pct < 0 || *pct > 100) {
		return fmt.Errorf("%s.percentage: must be between 0 and 100, got %d", path, *pct)
	}
	_, err := compileVars(path, vars)
	return err
}

func compileVars(path string, vars []json.RawMessage) ([]*expr.Expr, error) {
	if vars == nil {
		return nil, nil
	}
	if len(vars) > 20 {
		return nil, fmt.Errorf("%s.vars: must have at most 20 items, got %d", path, len(vars))
	}
	out := make([]*expr.Expr, 0, len(vars))
	for i, v := range vars {
		if t := bytes.TrimSpace(v); len(t) == 0 || t[0] != '[' {
			return nil, fmt.Errorf("%s.vars[%d]: must be an array", path, i)
		}
		e, err := expr.Compile(v)
		if err != nil {
			return nil, fmt.Errorf("%s.vars[%d]: %w", path, i, err)
		}
		out = append(out, e)
	}
	return out, nil
}
