package config

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// Consumer is a client of the gateway, identified by its username. In APISIX v3
// a consumer's key is its username (/apisix/consumers/<username>), so Username
// is also its id.
type Consumer struct {
	// ID is accepted because APISIX's schema lists it (standalone mode fills it
	// from the username); when set it must equal Username.
	ID       string            `json:"id,omitempty"`
	Username string            `json:"username,omitempty"`
	Desc     string            `json:"desc,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	// GroupID names the consumer group whose plugins this consumer also runs.
	GroupID    string         `json:"group_id,omitempty"`
	Plugins    map[string]any `json:"plugins,omitzero"`
	CreateTime int64          `json:"create_time,omitempty"`
	UpdateTime int64          `json:"update_time,omitempty"`
}

// ConsumerGroup is a set of plugins shared by the consumers that name it in
// their group_id.
type ConsumerGroup struct {
	ID     string            `json:"id,omitempty"`
	Name   string            `json:"name,omitempty"`
	Desc   string            `json:"desc,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
	// Plugins is required; an empty object is allowed.
	Plugins    map[string]any `json:"plugins,omitzero"`
	CreateTime int64          `json:"create_time,omitempty"`
	UpdateTime int64          `json:"update_time,omitempty"`
}

// PluginConfig is a reusable set of plugins that routes point at with
// plugin_config_id.
type PluginConfig struct {
	ID string `json:"id,omitempty"`
	// Name has no length limit: APISIX's schema declares it a plain string.
	Name   string            `json:"name,omitempty"`
	Desc   string            `json:"desc,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
	// Plugins is required; an empty object is allowed.
	Plugins    map[string]any `json:"plugins,omitzero"`
	CreateTime int64          `json:"create_time,omitempty"`
	UpdateTime int64          `json:"update_time,omitempty"`
}

// GlobalRule is a set of plugins that runs for every request.
type GlobalRule struct {
	ID string `json:"id,omitempty"`
	// Plugins is required; an empty object is allowed.
	Plugins    map[string]any `json:"plugins,omitzero"`
	CreateTime int64          `json:"create_time,omitempty"`
	UpdateTime int64          `json:"update_time,omitempty"`
}

// SSL is a certificate and private key: for type server, presented to clients
// whose SNI matches Snis (or SNI); for type client, presented to upstreams that
// name it in tls.client_cert_id.
//
// Key and Keys are secrets: they never appear in error messages.
type SSL struct {
	ID     string            `json:"id,omitempty"`
	Desc   string            `json:"desc,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
	// Type is server (the default) or client.
	Type string `json:"type,omitempty"`
	// Cert is a PEM certificate chain, leaf first; Key its PEM private key.
	// Either may instead be a "$secret://" or "$env://" reference, which is
	// resolved when the certificate is loaded.
	Cert string `json:"cert,omitempty"`
	Key  string `json:"key,omitempty"`
	// SNI or SNIs (exactly one, for type server) list the host names the
	// certificate is served for; a leading "*." matches one label.
	SNI  string   `json:"sni,omitempty"`
	SNIs []string `json:"snis,omitzero"`
	// Certs and Keys hold extra pairs (e.g. an ECDSA certificate next to an
	// RSA one); Keys[i] belongs to Certs[i].
	Certs  []string   `json:"certs,omitzero"`
	Keys   []string   `json:"keys,omitzero"`
	Client *SSLClient `json:"client,omitempty"`
	// Status is 1 (enabled, the default) or 0 (disabled).
	Status *int `json:"status,omitempty"`
	// SSLProtocols limits the TLS versions offered for this certificate:
	// TLSv1.1, TLSv1.2 and TLSv1.3. Empty means the gateway's default.
	SSLProtocols []string `json:"ssl_protocols,omitzero"`
	CreateTime   int64    `json:"create_time,omitempty"`
	UpdateTime   int64    `json:"update_time,omitempty"`
}

// SSLClient turns on client certificate verification (mTLS) for an SSL.
type SSLClient struct {
	// CA is the PEM bundle client certificates must chain to. Required.
	CA string `json:"ca,omitempty"`
	// Depth is the maximum verification depth, default 1.
	Depth *int `json:"depth,omitempty"`
	// SkipMTLSURIRegex lists request-URI regular expressions for which no
	// client certificate is required.
	SkipMTLSURIRegex []string `json:"skip_mtls_uri_regex,omitzero"`
}

// PluginMetadata is the plugin-wide configuration of one plugin. ID is the
// plugin name; Config holds every other key of the object and is validated by
// the plugin itself, not by this package.
//
// Its JSON form is one flat object, as in APISIX: {"id": "http-logger",
// "log_format": {...}}.
type PluginMetadata struct {
	ID     string
	Config map[string]any
}

// MarshalJSON writes the flat APISIX form: Config's keys plus "id".
func (m PluginMetadata) MarshalJSON() ([]byte, error) {
	out := make(map[string]any, len(m.Config)+1)
	for k, v := range m.Config {
		out[k] = v
	}
	if m.ID != "" {
		out["id"] = m.ID
	} else {
		delete(out, "id")
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("plugin metadata %q: %w", m.ID, err)
	}
	return b, nil
}

// UnmarshalJSON reads the flat APISIX form. An integer id is turned into a
// string like every other APISIX id; null leaves m unchanged.
func (m *PluginMetadata) UnmarshalJSON(b []byte) error {
	var obj map[string]any
	if err := json.Unmarshal(b, &obj); err != nil {
		return fmt.Errorf("plugin metadata: %w", err)
	}
	if obj == nil {
		return nil
	}
	var id string
	switch v := obj["id"].(type) {
	case nil:
	case string:
		id = v
	case float64:
		id = strconv.FormatFloat(v, 'f', -1, 64)
	default:
		return fmt.Errorf("plugin metadata: id must be a string, not %T", v)
	}
	delete(obj, "id")
	m.ID, m.Config = id, obj
	return nil
}
