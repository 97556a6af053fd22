package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Format is the syntax of a configuration document.
type Format int

// Supported formats. YAML documents are converted to the same JSON value tree a
// JSON document produces, so both go through one strict decoder.
const (
	FormatJSON Format = iota
	FormatYAML
)

// String returns "json" or "yaml".
func (f Format) String() string {
	if f == FormatYAML {
		return "yaml"
	}
	return "json"
}

// maxTreeValues bounds how many values a YAML document may expand to. YAML
// aliases can reference each other and blow a small file up exponentially
// ("billion laughs"), so conversion stops once this many values are produced.
const maxTreeValues = 1 << 20

// maxTreeDepth bounds nesting so a hostile document cannot exhaust the stack.
const maxTreeDepth = 256

// parseTree parses data into plain JSON values: map[string]any, []any, string,
// json.Number, bool and nil.
func parseTree(data []byte, f Format) (any, error) {
	if f == FormatYAML {
		return parseYAMLTree(data)
	}
	return parseJSONTree(data)
}

func parseJSONTree(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // keep integers exact; the walker decides int vs float per field
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("parse json: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("parse json: unexpected data after the top-level value")
	}
	if err := checkDepth(v, 0); err != nil {
		return nil, err
	}
	return v, nil
}

// checkDepth rejects JSON nested deeper than maxTreeDepth; encoding/json allows
// far deeper nesting than any configuration needs.
func checkDepth(v any, depth int) error {
	if depth > maxTreeDepth {
		return fmt.Errorf("parse json: nesting deeper than %d levels", maxTreeDepth)
	}
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			if err := checkDepth(e, depth+1); err != nil {
				return err
			}
		}
	case []any:
		for _, e := range x {
			if err := checkDepth(e, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

func parseYAMLTree(data []byte) (any, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil // no document at all (e.g. only comments)
		}
		return nil, fmt.Errorf("parse yaml: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, fmt.Errorf("parse yaml: %w", err)
		}
		return nil, errors.New("parse yaml: more than one document")
	}
	c := yamlConv{budget: maxTreeValues}
	return c.value(&doc, 0)
}

// yamlConv converts a yaml.Node tree into JSON values.
type yamlConv struct {
	budget int
}

func (c *yamlConv) value(n *yaml.Node, depth int) (any, error) {
	c.budget--
	if c.budget < 0 {
		return nil, fmt.Errorf("parse yaml: document expands to more than %d values", maxTreeValues)
	}
	if depth > maxTreeDepth {
		return nil, fmt.Errorf("parse yaml: nesting deeper than %d levels", maxTreeDepth)
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return c.value(n.Content[0], depth+1)
	case yaml.AliasNode:
		if n.Alias == nil {
			return nil, fmt.Errorf("parse yaml: line %d: unknown alias", n.Line)
		}
		return c.value(n.Alias, depth+1)
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, e := range n.Content {
			v, err := c.value(e, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		return c.mapping(n, depth)
	case yaml.ScalarNode:
		return scalar(n)
	}
	return nil, fmt.Errorf("parse yaml: line %d: unsupported node", n.Line)
}

// mapping converts a YAML mapping. Keys written explicitly win over keys pulled
// in with the "<<" merge key, as the YAML merge-key spec says.
func (c *yamlConv) mapping(n *yaml.Node, depth int) (map[string]any, error) {
	out := make(map[string]any, len(n.Content)/2)
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.AliasNode && k.Alias != nil {
			k = k.Alias
		}
		if k.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("parse yaml: line %d: mapping keys must be scalars", k.Line)
		}
		if k.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		if _, dup := out[k.Value]; dup {
			return nil, fmt.Errorf("parse yaml: line %d: duplicate key %q", k.Line, k.Value)
		}
		val, err := c.value(v, depth+1)
		if err != nil {
			return nil, err
		}
		out[k.Value] = val
	}
	for _, m := range merges {
		if err := c.merge(out, m, depth); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (c *yamlConv) merge(dst map[string]any, m *yaml.Node, depth int) error {
	v, err := c.value(m, depth+1)
	if err != nil {
		return err
	}
	srcs := []any{v}
	if seq, ok := v.([]any); ok {
		srcs = seq
	}
	for _, s := range srcs {
		sm, ok := s.(map[string]any)
		if !ok {
			return fmt.Errorf("parse yaml: line %d: merge value must be a mapping", m.Line)
		}
		for k, e := range sm {
			if _, set := dst[k]; !set {
				dst[k] = e
			}
		}
	}
	return nil
}

// scalar converts a YAML scalar by its resolved tag, so `port: 80` is a number
// and `port: "80"` a string, exactly as in JSON.
func scalar(n *yaml.Node) (any, error) {
	switch n.ShortTag() {
	case "!!null":
		return nil, nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return nil, fmt.Errorf("parse yaml: line %d: %w", n.Line, err)
		}
		return b, nil
	case "!!int", "!!float":
		var x any
		if err := n.Decode(&x); err != nil {
			return nil, fmt.Errorf("parse yaml: line %d: %w", n.Line, err)
		}
		switch v := x.(type) {
		case int:
			return json.Number(strconv.Itoa(v)), nil
		case int64:
			return json.Number(strconv.FormatInt(v, 10)), nil
		case uint64:
			return json.Number(strconv.FormatUint(v, 10)), nil
		case float64:
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("parse yaml: line %d: %q is not a finite number", n.Line, n.Value)
			}
			return json.Number(strconv.FormatFloat(v, 'g', -1, 64)), nil
		}
		return nil, fmt.Errorf("parse yaml: line %d: unsupported number %q", n.Line, n.Value)
	}
	// Strings, timestamps, binary and custom tags all keep their source text.
	return n.Value, nil
}

// idFields are the JSON names whose values are APISIX ids. APISIX accepts an id
// as a string or a positive integer; sluice holds them as strings.
func isIDField(name string) bool {
	switch name {
	case "id", "upstream_id", "service_id", "plugin_config_id", "script_id", "client_cert_id", "group_id":
		return true
	}
	return false
}

// walker checks a JSON value tree against a Go type before the typed decode. It
// reports every unknown field and type mismatch with its full path (encoding/json
// stops at the first and does not say where an unknown field was), turns integer
// ids into strings, converts the map form of nodes into the array form, and fills
// schema-level defaults that need to see whether a key was present.
type walker struct {
	errs FieldErrors
}

func (w *walker) check(v any, t reflect.Type, path string) any {
	switch t {
	case reflect.TypeFor[json.RawMessage]():
		return v
	case reflect.TypeFor[Nodes]():
		return w.nodes(v, path)
	case reflect.TypeFor[Duration]():
		return w.duration(v, path)
	case reflect.TypeFor[PluginMetadata]():
		return w.pluginMetadata(v, path)
	}
	switch t.Kind() {
	case reflect.Pointer:
		if v == nil {
			return nil
		}
		return w.check(v, t.Elem(), path)
	case reflect.Struct:
		return w.object(v, t, path)
	case reflect.Slice:
		if v == nil {
			return nil
		}
		a, ok := v.([]any)
		if !ok {
			w.errs.add(path, "must be an array")
			return v
		}
		for i := range a {
			a[i] = w.check(a[i], t.Elem(), index(path, i))
		}
		return a
	case reflect.Map:
		if v == nil {
			return nil
		}
		m, ok := v.(map[string]any)
		if !ok {
			w.errs.add(path, "must be an object")
			return v
		}
		if t.Elem().Kind() != reflect.Interface {
			for _, k := range sortedKeys(m) {
				m[k] = w.check(m[k], t.Elem(), join(path, k))
			}
		}
		return m
	case reflect.String:
		if _, ok := v.(string); !ok {
			w.errs.add(path, "must be a string")
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			w.errs.add(path, "must be a boolean")
		}
	case reflect.Int, reflect.Int64, reflect.Int32:
		if n, ok := v.(json.Number); !ok || !isInt(n, t.Bits()) {
			w.errs.add(path, "must be an integer")
		}
	case reflect.Float64:
		if n, ok := v.(json.Number); !ok || !isFloat(n) {
			w.errs.add(path, "must be a number")
		}
	}
	return v
}

func (w *walker) object(v any, t reflect.Type, path string) any {
	if v == nil {
		return nil // an empty YAML section (`listen:`) keeps the defaults
	}
	m, ok := v.(map[string]any)
	if !ok {
		w.errs.add(path, "must be an object")
		return v
	}
	fields := jsonFields(t)
	for _, k := range sortedKeys(m) {
		ft, ok := fields[k]
		if !ok {
			w.errs.add(join(path, k), "unknown field")
			continue
		}
		if ft.Kind() == reflect.String && isIDField(k) {
			m[k] = w.id(m[k], join(path, k))
			continue
		}
		m[k] = w.check(m[k], ft, join(path, k))
	}
	switch t {
	case reflect.TypeFor[KeepalivePool]():
		keepaliveDefaults(m)
	case reflect.TypeFor[HealthChecks]():
		checksDefaults(m)
	}
	return m
}

// keepaliveDefaults fills APISIX's keepalive_pool defaults for absent keys only:
// an explicit size 0 must still fail validation and an explicit idle_timeout 0 is
// a valid setting, which a zero-means-default rule on the struct could not tell.
func keepaliveDefaults(m map[string]any) {
	defs := [...]struct {
		key string
		val json.Number
	}{
		{"size", json.Number(strconv.Itoa(DefaultKeepaliveSize))},
		{"idle_timeout", json.Number(strconv.Itoa(DefaultKeepaliveIdleTimeout))},
		{"requests", json.Number(strconv.Itoa(DefaultKeepaliveRequests))},
	}
	for _, d := range defs {
		if _, ok := m[d.key]; !ok {
			m[d.key] = d.val
		}
	}
}

func (w *walker) id(v any, path string) any {
	switch x := v.(type) {
	case string:
		return x // the pattern is checked by Validate
	case json.Number:
		n, err := strconv.ParseInt(string(x), 10, 64)
		if err == nil && n >= 1 {
			return strconv.FormatInt(n, 10)
		}
	}
	w.errs.add(path, "must be a string or an integer >= 1")
	return v
}

// pluginMetadata checks only that v is an object and that its id is an APISIX
// id; every other key belongs to the plugin, which validates it.
func (w *walker) pluginMetadata(v any, path string) any {
	m, ok := v.(map[string]any)
	if !ok {
		w.errs.add(path, "must be an object")
		return v
	}
	if id, ok := m["id"]; ok {
		m["id"] = w.id(id, join(path, "id"))
	}
	return m
}

// nodes accepts both APISIX node forms and always returns the array form.
func (w *walker) nodes(v any, path string) any {
	switch x := v.(type) {
	case nil:
		return nil
	case []any:
		for i, e := range x {
			p := index(path, i)
			if m, ok := e.(map[string]any); ok {
				// Port may be absent (it then follows the scheme) but APISIX
				// requires host and weight in the array form.
				for _, req := range [...]string{"host", "weight"} {
					if _, ok := m[req]; !ok {
						w.errs.add(join(p, req), "is required")
					}
				}
			}
			x[i] = w.check(e, reflect.TypeFor[Node](), p)
		}
		return x
	case map[string]any:
		out := make(Nodes, 0, len(x))
		for _, addr := range sortedKeys(x) {
			p := join(path, addr)
			num, ok := x[addr].(json.Number)
			if !ok || !isInt(num, 64) {
				w.errs.add(p, "weight must be an integer")
				continue
			}
			weight, _ := strconv.ParseInt(string(num), 10, 64)
			host, port, err := parseNodeAddr(addr)
			if err != nil {
				w.errs.add(p, "%s", err.Error())
				continue
			}
			out = append(out, Node{Host: host, Port: port, Weight: clampInt(weight)})
		}
		out.sort()
		arr := make([]any, len(out))
		for i, n := range out {
			m := map[string]any{"host": n.Host, "weight": json.Number(strconv.Itoa(n.Weight))}
			if n.Port != 0 {
				m["port"] = json.Number(strconv.Itoa(n.Port))
			}
			arr[i] = m
		}
		return arr
	}
	w.errs.add(path, "must be an object of \"host:port\": weight or an array of nodes")
	return v
}

func (w *walker) duration(v any, path string) any {
	var d Duration
	b, _ := json.Marshal(v)
	if v == nil || d.UnmarshalJSON(b) != nil {
		w.errs.add(path, `must be a duration like "60s" or a number of seconds`)
	}
	return v
}

func clampInt(n int64) int {
	return int(max(min(n, math.MaxInt32), math.MinInt32))
}

func isInt(n json.Number, bits int) bool {
	_, err := strconv.ParseInt(string(n), 10, bits)
	return err == nil
}

func isFloat(n json.Number) bool {
	f, err := strconv.ParseFloat(string(n), 64)
	return err == nil && !math.IsInf(f, 0) && !math.IsNaN(f)
}

// jsonFields maps each JSON name of struct type t to the field's type.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := make(map[string]reflect.Type, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// decodeTree decodes a walked tree into target with unknown fields rejected.
// The walker has already reported unknown fields and type mismatches with their
// paths; this strict decode is the single place values enter the Go types.
func decodeTree(tree any, target any, path string) error {
	b, err := json.Marshal(tree)
	if err != nil {
		return FieldErrors{{Path: path, Msg: err.Error()}}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(target); err != nil {
		return FieldErrors{{Path: path, Msg: err.Error()}}
	}
	return nil
}

// decodeValue runs the whole decode path for one document of type T.
func decodeValue[T any](data []byte, f Format, root string) (*T, error) {
	tree, err := parseTree(data, f)
	if err != nil {
		return nil, err
	}
	if _, ok := tree.(map[string]any); !ok {
		return nil, FieldErrors{{Path: root, Msg: "must be an object"}}
	}
	var w walker
	tree = w.check(tree, reflect.TypeFor[T](), root)
	if len(w.errs) > 0 {
		return nil, w.errs
	}
	out := new(T)
	if err := decodeTree(tree, out, root); err != nil {
		return nil, err
	}
	return out, nil
}

// DecodeRoute strictly decodes one route from JSON or YAML and applies APISIX's
// defaults. Unknown fields and type mismatches are returned together as
// FieldErrors with paths starting at "route". Call Validate on the result.
func DecodeRoute(data []byte, f Format) (*Route, error) {
	r, err := decodeValue[Route](data, f, "route")
	if err != nil {
		return nil, err
	}
	r.ApplyDefaults()
	return r, nil
}

// DecodeService strictly decodes one service like DecodeRoute, with paths
// starting at "service".
func DecodeService(data []byte, f Format) (*Service, error) {
	s, err := decodeValue[Service](data, f, "service")
	if err != nil {
		return nil, err
	}
	s.ApplyDefaults()
	return s, nil
}

// DecodeUpstream strictly decodes one upstream like DecodeRoute, with paths
// starting at "upstream".
func DecodeUpstream(data []byte, f Format) (*Upstream, error) {
	u, err := decodeValue[Upstream](data, f, "upstream")
	if err != nil {
		return nil, err
	}
	u.ApplyDefaults()
	return u, nil
}
