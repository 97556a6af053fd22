package config

import (
	"errors"
	"fmt"
)

// ErrUnknownKind is returned (wrapped) by DecodeKind for a kind it does not know.
var ErrUnknownKind = errors.New("unknown resource kind")

// KindNames returns every resource kind DecodeKind accepts, spelled as APISIX's
// etcd directories and Admin API paths, in a fixed order (routes last, since
// they refer to most other kinds). Each call returns a new slice.
func KindNames() []string {
	return []string{
		"upstreams", "services", "plugin_configs", "consumer_groups", "consumers",
		"ssls", "global_rules", "plugin_metadata", "routes",
	}
}

// DecodeKind is the Admin API's decode path for one resource body: it strictly
// decodes the JSON data as the given kind (see KindNames), applies APISIX's
// defaults and validates the single resource, without references to other
// resources (Resources.Validate checks those). It returns a pointer to the typed
// resource: *Route, *Service, *Upstream, *Consumer, *ConsumerGroup,
// *PluginConfig, *GlobalRule, *SSL or *PluginMetadata.
//
// id is the id from the URL, or "" when there is none. A body without an id
// takes it; a body whose id differs is rejected, as APISIX rejects PUT
// /routes/1 with {"id": 2} ("wrong route id"). For consumers the id is the
// username and for plugin metadata the plugin name.
//
// Problems are returned together as FieldErrors with paths relative to the
// resource, without a kind prefix: `uri: must start with "/"`,
// `upstream.nodes[0].port: must be between 1 and 65535`. A body that is not a
// JSON object is reported with an empty path. An unknown kind returns an error
// wrapping ErrUnknownKind.
func DecodeKind(kind string, id string, data []byte) (any, error) {
	switch kind {
	case "routes":
		return decodeKind(data, id, "id", func(r *Route) *string { return &r.ID },
			(*Route).ApplyDefaults, validateRoute)
	case "services":
		return decodeKind(data, id, "id", func(s *Service) *string { return &s.ID },
			(*Service).ApplyDefaults, validateService)
	case "upstreams":
		return decodeKind(data, id, "id", func(u *Upstream) *string { return &u.ID },
			(*Upstream).ApplyDefaults, validateUpstream)
	case "consumers":
		return decodeKind(data, id, "username", func(c *Consumer) *string { return &c.Username },
			nil, validateConsumer)
	case "consumer_groups":
		return decodeKind(data, id, "id", func(g *ConsumerGroup) *string { return &g.ID },
			nil, withID(validateConsumerGroup, func(g *ConsumerGroup) string { return g.ID }))
	case "plugin_configs":
		return decodeKind(data, id, "id", func(pc *PluginConfig) *string { return &pc.ID },
			nil, withID(validatePluginConfig, func(pc *PluginConfig) string { return pc.ID }))
	case "global_rules":
		return decodeKind(data, id, "id", func(g *GlobalRule) *string { return &g.ID },
			nil, withID(validateGlobalRule, func(g *GlobalRule) string { return g.ID }))
	case "ssls":
		return decodeKind(data, id, "id", func(s *SSL) *string { return &s.ID },
			(*SSL).ApplyDefaults, validateSSL)
	case "plugin_metadata":
		return decodeKind(data, id, "id", func(m *PluginMetadata) *string { return &m.ID },
			nil, withID(validatePluginMetadata, func(m *PluginMetadata) string { return m.ID }))
	}
	return nil, fmt.Errorf("%w %q (want one of %v)", ErrUnknownKind, kind, KindNames())
}

// withID adds the "id is required" check for the kinds whose APISIX schema
// requires an id.
func withID[T any](validate func(*T, string, *FieldErrors), id func(*T) string) func(*T, string, *FieldErrors) {
	return func(v *T, p string, es *FieldErrors) {
		requireID(p, id(v), es)
		validate(v, p, es)
	}
}

// decodeKind decodes, reconciles the URL id with the body's idField, applies
// defaults and validates, with paths starting at the resource root.
func decodeKind[T any](data []byte, urlID, idField string, idOf func(*T) *string,
	defaults func(*T), validate func(*T, string, *FieldErrors),
) (any, error) {
	// The result is `any` so that a failure returns a nil interface rather
	// than a typed nil pointer inside one.
	v, err := decodeValue[T](data, FormatJSON, "")
	if err != nil {
		return nil, err
	}
	var es FieldErrors
	switch body := idOf(v); {
	case urlID == "":
	case *body == "":
		*body = urlID
	case *body != urlID:
		es.add(idField, "must match the %s in the URL %q (got %q)", idField, urlID, *body)
	}
	if defaults != nil {
		defaults(v)
	}
	validate(v, "", &es)
	if err := es.err(); err != nil {
		return nil, err
	}
	return v, nil
}

// AppendKind is the load-time path for one stored resource body: it decodes
// data as the given kind (see KindNames) the way a resources-file entry is
// decoded (strictly, integer ids turned into strings, APISIX's defaults
// applied) and appends the result to r. key is the item's store key and
// becomes its id (the username for consumers, the plugin name for plugin
// metadata) whatever the body says, as the key is what other resources refer
// to. Nothing is validated: call Resources.Validate on the whole set.
//
// Errors are FieldErrors with paths relative to the body, or wrap
// ErrUnknownKind; on error r is unchanged.
func (r *Resources) AppendKind(kind, key string, data []byte) error {
	switch kind {
	case "routes":
		return appendKind(&r.Routes, data, key, func(v *Route) *string { return &v.ID }, (*Route).ApplyDefaults)
	case "services":
		return appendKind(&r.Services, data, key, func(v *Service) *string { return &v.ID }, (*Service).ApplyDefaults)
	case "upstreams":
		return appendKind(&r.Upstreams, data, key, func(v *Upstream) *string { return &v.ID }, (*Upstream).ApplyDefaults)
	case "consumers":
		return appendKind(&r.Consumers, data, key, func(v *Consumer) *string { return &v.Username }, nil)
	case "consumer_groups":
		return appendKind(&r.ConsumerGroups, data, key, func(v *ConsumerGroup) *string { return &v.ID }, nil)
	case "plugin_configs":
		return appendKind(&r.PluginConfigs, data, key, func(v *PluginConfig) *string { return &v.ID }, nil)
	case "global_rules":
		return appendKind(&r.GlobalRules, data, key, func(v *GlobalRule) *string { return &v.ID }, nil)
	case "ssls":
		return appendKind(&r.SSLs, data, key, func(v *SSL) *string { return &v.ID }, (*SSL).ApplyDefaults)
	case "plugin_metadata":
		return appendKind(&r.PluginMetadata, data, key, func(v *PluginMetadata) *string { return &v.ID }, nil)
	}
	return fmt.Errorf("%w %q (want one of %v)", ErrUnknownKind, kind, KindNames())
}

func appendKind[T any](dst *[]T, data []byte, key string, idOf func(*T) *string, defaults func(*T)) error {
	v, err := decodeValue[T](data, FormatJSON, "")
	if err != nil {
		return err
	}
	if key != "" {
		*idOf(v) = key
	}
	if defaults != nil {
		defaults(v)
	}
	*dst = append(*dst, *v)
	return nil
}
