package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/url"
	"slices"

	"github.com/sluicegw/sluice/internal/store"
)

// idMode says where a resource's id comes from.
type idMode int

const (
	// idField: the URL or the body's "id"; it is stored in the value.
	idField idMode = iota
	// idUsername: the body's "username" (consumers); not stored as "id".
	idUsername
	// idName: the URL only, a plugin name (plugin_metadata); not stored.
	idName
)

// resource describes one Admin API collection as APISIX's admin/<name>.lua does.
type resource struct {
	kind store.Kind
	// word is APISIX's "kind" used in messages: "route", "plugin config".
	word string
	// unsupported are the lower-case methods answered with 405.
	unsupported []string
	ids         idMode
	// stamps says whether create_time and update_time are managed;
	// APISIX skips them for plugin_metadata.
	stamps bool
	// filterFields are the keys the list "filter" argument may match.
	filterFields []string
}

func (r *resource) allows(method string) bool { return !slices.Contains(r.unsupported, method) }

// resources are the collections sluice serves, with the methods APISIX
// allows for each (apisix/admin/*.lua, unsupported_methods).
var resources = []*resource{
	{kind: store.Routes, word: "route", stamps: true, filterFields: []string{"service_id", "upstream_id"}},
	{kind: store.Services, word: "service", stamps: true},
	{kind: store.Upstreams, word: "upstream", stamps: true},
	{kind: store.Consumers, word: "consumer", stamps: true, ids: idUsername, unsupported: []string{"post", "patch"}},
	{kind: store.ConsumerGroups, word: "consumer group", stamps: true, unsupported: []string{"post"}},
	{kind: store.PluginConfigs, word: "plugin config", stamps: true, unsupported: []string{"post"}},
	{kind: store.GlobalRules, word: "global rule", stamps: true, unsupported: []string{"post"}},
	{kind: store.SSLs, word: "ssl", stamps: true},
	{kind: store.PluginMetadata, word: "plugin_metadata", ids: idName, unsupported: []string{"post", "patch"}},
}

func resourceByName(name string) *resource {
	for _, r := range resources {
		if string(r.kind) == name {
			return r
		}
	}
	return nil
}

// request is one parsed Admin API request.
type request struct {
	res     *resource
	id      string
	subPath string
	body    json.RawMessage // nil when the request had no body
	args    url.Values
}

// object is a JSON object decoded with numbers kept exact.
type object = map[string]any

// decodeJSON decodes data keeping numbers as json.Number, so a value survives
// a decode-encode round trip unchanged.
func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

func decodeObject(data []byte) (object, error) {
	v, err := decodeJSON(data)
	if err != nil {
		return nil, err
	}
	m, ok := v.(object)
	if !ok {
		return nil, errors.New("must be a JSON object")
	}
	return m, nil
}

func encodeJSON(v any) json.RawMessage {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // values come from decodeJSON: always encodable
	return bytes.TrimRight(buf.Bytes(), "\n")
}

// idString returns an APISIX id value (a string or an integer) as a string.
func idString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	}
	return "", false
}

// idKeys are the fields holding ids of other resources. APISIX accepts them
// as strings or integers; they are stored as strings so the runtime's plain
// JSON decode of a listing reads them into its string fields.
var idKeys = []string{"id", "upstream_id", "service_id", "plugin_config_id", "script_id", "group_id", "client_cert_id"}

// normalizeIDs turns integer ids into strings at the top level and in the
// nested upstream and tls objects.
func normalizeIDs(m object) {
	for _, k := range idKeys {
		if n, ok := m[k].(json.Number); ok {
			m[k] = n.String()
		}
	}
	for _, k := range []string{"upstream", "tls"} {
		if sub, ok := m[k].(object); ok {
			normalizeIDs(sub)
		}
	}
}

// stripSecrets hides an SSL's private key from reads, as APISIX does.
func stripSecrets(kind store.Kind, v json.RawMessage) json.RawMessage {
	if kind != store.SSLs {
		return v
	}
	m, err := decodeObject(v)
	if err != nil {
		return v
	}
	if _, ok := m["key"]; !ok {
		return v
	}
	delete(m, "key")
	return encodeJSON(m)
}
