package logentry

import (
	"encoding/json"
	"fmt"
	"maps"
	"strings"

	"github.com/sluicegw/sluice/internal/expr"
	"github.com/sluicegw/sluice/plugin"
)

// DefaultMaxBodyBytes is APISIX's max_req_body_bytes and max_resp_body_bytes
// default: 512 KiB.
const DefaultMaxBodyBytes = 524288

// Settings are the log-entry fields APISIX's loggers share. Loggers embed it
// in their config so the fields sit at the top level, as in APISIX.
type Settings struct {
	// LogFormat replaces the default entry with these fields: values
	// starting with "$" are variables ($remote_addr, $status,
	// $http_user_agent, $request_body...), other values are kept as they
	// are; objects nest (up to five levels).
	LogFormat map[string]any `json:"log_format,omitempty"`
	// LogFormatExtra adds fields (same syntax) to the default entry without
	// replacing any of its own. Ignored with LogFormat.
	LogFormatExtra map[string]any `json:"log_format_extra,omitempty"`
	// IncludeReqBody logs the request body (request.body), when
	// IncludeReqBodyExpr (a vars expression) matches, if set.
	IncludeReqBody     bool            `json:"include_req_body"`
	IncludeReqBodyExpr json.RawMessage `json:"include_req_body_expr,omitempty"`
	// IncludeRespBody logs the response body (response.body), when
	// IncludeRespBodyExpr matches, if set.
	IncludeRespBody     bool            `json:"include_resp_body"`
	IncludeRespBodyExpr json.RawMessage `json:"include_resp_body_expr,omitempty"`
	// MaxReqBodyBytes and MaxRespBodyBytes cap the logged bodies.
	MaxReqBodyBytes  int64 `json:"max_req_body_bytes"`
	MaxRespBodyBytes int64 `json:"max_resp_body_bytes"`
}

// NewSettings returns APISIX's defaults.
func NewSettings() Settings {
	return Settings{MaxReqBodyBytes: DefaultMaxBodyBytes, MaxRespBodyBytes: DefaultMaxBodyBytes}
}

// Validate checks the fields as APISIX's schema and log-util's
// check_log_schema do.
func (s *Settings) Validate() error {
	if _, err := compileBodyExpr("include_req_body_expr", s.IncludeReqBodyExpr); err != nil {
		return err
	}
	if _, err := compileBodyExpr("include_resp_body_expr", s.IncludeRespBodyExpr); err != nil {
		return err
	}
	if s.MaxReqBodyBytes < 1 {
		return fmt.Errorf("max_req_body_bytes: must be >= 1, got %d", s.MaxReqBodyBytes)
	}
	if s.MaxRespBodyBytes < 1 {
		return fmt.Errorf("max_resp_body_bytes: must be >= 1, got %d", s.MaxRespBodyBytes)
	}
	return nil
}

// compileBodyExpr compiles an include_*_body_expr: like route vars, but
// APISIX's schema also wants at least one item, each an array.
func compileBodyExpr(field string, raw json.RawMessage) (*expr.Expr, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var items []any
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf("%s: must be an array", field)
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("%s: must have at least 1 item", field)
	}
	for i, it := range items {
		if _, ok := it.([]any); !ok {
			return nil, fmt.Errorf("%s[%d]: must be an array", field, i)
		}
	}
	e, err := expr.Compile(raw)
	if err != nil {
		// expr names its root "vars"; name the field instead.
		msg, _ := strings.CutPrefix(err.Error(), "vars")
		return nil, fmt.Errorf("%s%s", field, msg)
	}
	return e, nil
}

// Schema returns the JSON Schema of a logger's config: the fields of cfg with
// the ones of its embedded structs (Settings, batch.Config) lifted to the top
// level, where the JSON decoder puts them, plus the required fields.
func Schema(cfg plugin.Config, required ...string) map[string]any {
	s := plugin.SchemaOf(plugin.Descriptor{NewConfig: func() plugin.Config { return cfg }})
	props, _ := s["properties"].(map[string]any)
	flat := map[string]any{}
	for name, p := range props {
		ps, _ := p.(map[string]any)
		// Embedded structs show up under their Go type name, capitalized.
		if inner, ok := ps["properties"].(map[string]any); ok && name != "" && name[0] >= 'A' && name[0] <= 'Z' {
			maps.Copy(flat, inner)
			continue
		}
		flat[name] = p
	}
	out := map[string]any{"type": "object", "properties": flat}
	if len(required) > 0 {
		out["required"] = required
	}
	return out
}
