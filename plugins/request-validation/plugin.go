// Package requestvalidation implements APISIX's request-validation plugin:
// it checks the request headers and body against JSON Schemas before the
// request goes upstream.
package requestvalidation

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/sluicegw/sluice/plugin"
)

// Name and Priority are APISIX's (apisix/plugins/request-validation.lua).
const (
	Name     = "request-validation"
	Priority = 2800
)

func init() {
	plugin.Register(plugin.Descriptor{
		Name:      Name,
		Priority:  Priority,
		NewConfig: func() plugin.Config { return NewConfig() },
		New:       newValidation,
	})
}

// validation is one compiled request-validation config; immutable (a
// compiled jsonschema.Schema is safe for concurrent use).
type validation struct {
	header, body *compiled
	// headerNames are the header names the header schema looks at: the SDK
	// cannot list a request's headers, so the object validated holds these.
	headerNames []string
	max         int64
	code        int
	msg         *string
	// fixed is the rejection with rejected_msg, or without a body.
	fixed *plugin.Exit
}

// compiled is a compiled schema and its source, for error messages.
type compiled struct {
	schema *jsonschema.Schema
	doc    any
}

func newValidation(cfg plugin.Config, _ plugin.Deps) (any, error) {
	c := cfg.(*Config)
	v := &validation{max: c.MaxReqBodySize, code: c.RejectedCode, msg: c.RejectedMsg}
	var err error
	if c.HeaderSchema != nil {
		if v.header, err = compile("header_schema", c.HeaderSchema); err != nil {
			return nil, err
		}
		v.headerNames = headerNames(v.header.doc, nil)
	}
	if c.BodySchema != nil {
		if v.body, err = compile("body_schema", c.BodySchema); err != nil {
			return nil, err
		}
	}
	v.fixed = &plugin.Exit{Status: c.RejectedCode}
	if c.RejectedMsg != nil {
		v.fixed = v.textExit(*c.RejectedMsg)
	}
	return v, nil
}

// compile compiles a schema from the config. $ref may point inside the
// schema only: nothing is ever loaded from files or the network.
func compile(field string, m map[string]any) (*compiled, error) {
	// Re-read through the library's decoder so numbers are json.Number.
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	comp := jsonschema.NewCompiler()
	comp.UseLoader(jsonschema.SchemeURLLoader{})
	comp.DefaultDraft(jsonschema.Draft7)
	comp.AssertFormat()
	loc := "sluice:///" + field + ".json"
	if err := comp.AddResource(loc, doc); err != nil {
		return nil, fmt.Errorf("%s: invalid JSON Schema: %w", field, err)
	}
	s, err := comp.Compile(loc)
	if err != nil {
		return nil, fmt.Errorf("%s: invalid JSON Schema: %w", field, &schemaError{oneLine(err), err})
	}
	return &compiled{schema: s, doc: doc}, nil
}

// schemaError is a schema compile error shown on one line, wrapping the
// library's error.
type schemaError struct {
	msg string
	err error
}

func (e *schemaError) Error() string { return e.msg }
func (e *schemaError) Unwrap() error { return e.err }

// oneLine keeps the "at '<pointer>': <problem>" lines of the library's
// multi-line schema error, joined with "; ", for one-line config errors.
// The wrapped error still carries the full detail.
func oneLine(err error) string {
	var parts []string
	for _, l := range strings.Split(err.Error(), "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "- at ") {
			parts = append(parts, l[2:])
		}
	}
	if len(parts) == 0 {
		return err.Error()
	}
	return strings.Join(parts, "; ")
}

// textExit is APISIX's rejection with a string body: sent as is, without
// a JSON wrapper or a newline.
func (v *validation) textExit(msg string) *plugin.Exit {
	return &plugin.Exit{
		Status:  v.code,
		Headers: []plugin.Header{{Name: "Content-Type", Value: "text/plain; charset=utf-8"}},
		Body:    []byte(msg),
	}
}

// reject answers with rejected_msg when set, else with the error message.
func (v *validation) reject(err string) *plugin.Exit {
	if v.msg != nil || err == "" {
		return v.fixed
	}
	return v.textExit(err)
}

// Rewrite validates the headers, then the body. Like APISIX it runs in the
// rewrite phase, so an invalid request costs no authentication.
func (v *validation) Rewrite(c *plugin.Ctx) *plugin.Exit {
	r := c.Request
	if v.header != nil {
		hs := make(map[string]any, len(v.headerNames))
		for _, n := range v.headerNames {
			if val := r.Header(n); val != "" {
				hs[n] = val
			}
		}
		if err := v.header.schema.Validate(hs); err != nil {
			return v.reject(v.header.message(err, hs))
		}
	}
	if v.body == nil {
		return nil
	}
	body, err := r.ReadBody(v.max)
	if err != nil || len(body) == 0 {
		// APISIX answers an unreadable, too large or empty body with the
		// rejection and rejected_msg only (no error text).
		return v.fixed
	}
	ct := strings.ToLower(r.Header("Content-Type"))
	if strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		form := decodeForm(string(body))
		if err := v.body.schema.Validate(form); err != nil {
			return v.reject(v.body.message(err, form))
		}
		return nil
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return v.reject(jsonError(err))
	}
	if err := v.body.schema.Validate(doc); err != nil {
		return v.reject(v.body.message(err, doc))
	}
	// Send upstream the JSON that was checked, not the bytes received, so
	// the upstream's parser cannot read it differently (duplicate keys...):
	// https://bishopfox.com/blog/json-interoperability-vulnerabilities
	out, err := encodeJSON(doc)
	if err != nil {
		return v.fixed
	}
	r.SetBody(out)
	return nil
}

func encodeJSON(doc any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// jsonError describes a body that is not JSON, in lua-cjson's words where
// the cause is the same (the character position may differ).
func jsonError(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("Expected value but found invalid token at character %d", se.Offset)
	}
	return "Expected the end but found invalid token"
}

// decodeForm decodes an urlencoded body like ngx.decode_args(body, 0): a
// field given once is a string, a repeated field an array of strings, and a
// field without '=' the boolean true.
func decodeForm(s string) map[string]any {
	out := map[string]any{}
	for s != "" {
		var kv string
		kv, s, _ = strings.Cut(s, "&")
		if kv == "" {
			continue
		}
		k, val, hasEq := strings.Cut(kv, "=")
		k = unescape(k)
		if k == "" {
			continue
		}
		var value any = true
		if hasEq {
			value = unescape(val)
		}
		switch prev := out[k].(type) {
		case nil:
			out[k] = value
		case []any:
			out[k] = append(prev, value)
		default:
			out[k] = []any{prev, value}
		}
	}
	return out
}

func unescape(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return strings.ReplaceAll(s, "+", " ")
}

// headerNames collects the property names a header schema refers to at its
// top level (properties, required, dependencies, and the same inside
// allOf/anyOf/oneOf/not/if/then/else), each once.
func headerNames(doc any, acc []string) []string {
	m, ok := doc.(map[string]any)
	if !ok {
		return acc
	}
	add := func(n string) {
		// Names differing in case are kept apart: each gets the header's
		// value, as APISIX's case-insensitive header table would give.
		for _, e := range acc {
			if e == n {
				return
			}
		}
		acc = append(acc, n)
	}
	if props, ok := m["properties"].(map[string]any); ok {
		for n := range props {
			add(n)
		}
	}
	if req, ok := m["required"].([]any); ok {
		for _, n := range req {
			if s, ok := n.(string); ok {
				add(s)
			}
		}
	}
	if deps, ok := m["dependencies"].(map[string]any); ok {
		for n, d := range deps {
			add(n)
			if list, ok := d.([]any); ok {
				for _, e := range list {
					if s, ok := e.(string); ok {
						add(s)
					}
				}
			}
		}
	}
	for _, k := range []string{"allOf", "anyOf", "oneOf"} {
		if subs, ok := m[k].([]any); ok {
			for _, s := range subs {
				acc = headerNames(s, acc)
			}
		}
	}
	for _, k := range []string{"not", "if", "then", "else"} {
		acc = headerNames(m[k], acc)
	}
	return acc
}

// Interface guards.
var (
	_ plugin.Rewriter = (*validation)(nil)
	_ plugin.Config   = (*Config)(nil)
)
