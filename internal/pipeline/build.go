// Package pipeline turns `plugins` objects into compiled per-phase chains when
// a configuration is compiled, and runs them per request. It owns the rules a
// request must not pay for at run time: decoding and validating plugin
// configs, `_meta`, merging, ordering.
package pipeline

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/sluicegw/sluice/internal/expr"
	"github.com/sluicegw/sluice/plugin"
)

// Plugin is one decoded, validated and built plugin of a plugins object.
type Plugin struct {
	Name     string
	Priority int // the descriptor's, or _meta.priority
	Instance any
	Meta     Meta
}

// Meta is APISIX's common `_meta` block.
type Meta struct {
	Disable bool `json:"disable"`
	// ErrorResponse replaces the body of the plugin's rejections.
	ErrorResponse any `json:"error_response"`
	// Priority overrides the plugin's priority for this object.
	Priority *int `json:"priority"`
	// Filter is a vars expression: the plugin runs only when it matches.
	Filter json.RawMessage `json:"filter"`
}

// Enabled resolves the plugins configurations may use: it returns the
// descriptor of the plugin named name when the gateway's plugin list enables
// it, whether built in (plugin.Lookup) or loaded at run time (custom Lua
// plugins, which the gateway's runtime keeps). A nil Enabled allows every
// built-in plugin.
type Enabled func(name string) (plugin.Descriptor, bool)

// Lookup returns the descriptor of name if configurations may use it.
func (e Enabled) Lookup(name string) (plugin.Descriptor, bool) {
	if e == nil {
		return plugin.Lookup(name)
	}
	return e(name)
}

// Decode validates one plugin's config as the Admin API and the compiler do:
// it returns the typed config and its _meta, or an error naming the field.
func Decode(name string, raw any, enabled Enabled) (plugin.Config, Meta, error) {
	var meta Meta
	d, ok := enabled.Lookup(name)
	if !ok {
		return nil, meta, fmt.Errorf("unknown plugin [%s]", name)
	}
	obj, ok := raw.(map[string]any)
	if !ok {
		if raw != nil {
			return nil, meta, errors.New("must be an object")
		}
		obj = map[string]any{}
	}
	if m, has := obj["_meta"]; has {
		mb, _ := json.Marshal(m)
		dec := json.NewDecoder(bytes.NewReader(mb))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&meta); err != nil {
			return nil, meta, fmt.Errorf("_meta: %w", err)
		}
		if len(meta.Filter) > 0 && string(meta.Filter) != "null" {
			if _, err := expr.Compile(meta.Filter); err != nil {
				return nil, meta, fmt.Errorf("_meta.filter: %w", err)
			}
		}
		rest := make(map[string]any, len(obj))
		for k, v := range obj {
			if k != "_meta" {
				rest[k] = v
			}
		}
		obj = rest
	}
	cfg := d.NewConfig()
	if err := decodeStrict(obj, cfg); err != nil {
		return nil, meta, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, meta, err
	}
	return cfg, meta, nil
}

// DecodeConsumer validates the credentials an auth plugin keeps on a consumer.
func DecodeConsumer(name string, raw any) (plugin.Config, error) {
	d, ok := plugin.Lookup(name)
	if !ok {
		return nil, fmt.Errorf("unknown plugin [%s]", name)
	}
	newCfg := d.NewConsumerConfig
	if newCfg == nil {
		newCfg = d.NewConfig
	}
	cfg := newCfg()
	if err := decodeStrict(raw, cfg); err != nil {
		return nil, err
	}
	return cfg, cfg.Validate()
}

func decodeStrict(v any, into any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		return describeJSONError(err)
	}
	return nil
}

// describeJSONError turns encoding/json's messages into "field: problem".
func describeJSONError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("%s: must be %s, got %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value)
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return fmt.Errorf("%s: unknown field", strings.Trim(f, `"`))
	}
	return err
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	case "map", "struct", "ptr":
		return "an object"
	}
	return "a number"
}

// DepsFunc gives the Deps a named plugin is built with; nil means none.
type DepsFunc func(name string) plugin.Deps

// Build decodes, validates and builds every plugin of a plugins object.
// Errors name the plugin: `plugins.key-auth: header: must be a string`.
// Disabled plugins (_meta.disable) are left out.
func Build(plugins map[string]any, enabled Enabled, deps DepsFunc) ([]Plugin, error) {
	names := make([]string, 0, len(plugins))
	for n := range plugins {
		names = append(names, n)
	}
	sort.Strings(names)
	var errs []error
	out := make([]Plugin, 0, len(names))
	for _, name := range names {
		cfg, meta, err := Decode(name, plugins[name], enabled)
		if err != nil {
			errs = append(errs, fmt.Errorf("plugins.%s: %w", name, err))
			continue
		}
		if meta.Disable {
			continue
		}
		d, _ := enabled.Lookup(name)
		var pd plugin.Deps
		if deps != nil {
			pd = deps(name)
		}
		inst, err := d.New(cfg, pd)
		if err != nil {
			errs = append(errs, fmt.Errorf("plugins.%s: %w", name, err))
			continue
		}
		p := Plugin{Name: name, Priority: d.Priority, Instance: inst, Meta: meta}
		if meta.Priority != nil {
			p.Priority = *meta.Priority
		}
		out = append(out, p)
	}
	return out, errors.Join(errs...)
}

// Merge combines plugins objects by APISIX's precedence: for a plugin named in
// several, the config of the earliest argument wins (pass the highest
// precedence first: consumer, consumer group, route, plugin config, service).
func Merge(objs ...map[string]any) map[string]any {
	var out map[string]any
	for i := len(objs) - 1; i >= 0; i-- {
		for k, v := range objs[i] {
			if out == nil {
				out = make(map[string]any)
			}
			out[k] = v
		}
	}
	return out
}
