// Package config holds sluice's typed resource models (Route, Service, Upstream,
// Consumer, ConsumerGroup, PluginConfig, GlobalRule, SSL, PluginMetadata) in
// Apache APISIX v3 shape, their strict decoding, defaults and validation, and the
// gateway's own configuration file.
package config

import "encoding/json"

// Route says what to match and what to run. Field names follow APISIX v3.
//
// Lists and plugins use omitzero rather than omitempty: APISIX tells an empty
// value from an absent one (`plugins: {}` satisfies "route needs plugins or an
// upstream"; `hosts: []` is invalid), so the JSON encoding must keep the
// difference.
type Route struct {
	ID          string          `json:"id,omitempty"`
	Name        string          `json:"name,omitempty"`
	Desc        string          `json:"desc,omitempty"`
	URI         string          `json:"uri,omitempty"`
	URIs        []string        `json:"uris,omitzero"`
	Host        string          `json:"host,omitempty"`
	Hosts       []string        `json:"hosts,omitzero"`
	RemoteAddr  string          `json:"remote_addr,omitempty"`
	RemoteAddrs []string        `json:"remote_addrs,omitzero"`
	Methods     []string        `json:"methods,omitempty"`
	Priority    int             `json:"priority"`
	Vars        json.RawMessage `json:"vars,omitempty"`
	FilterFunc  string          `json:"filter_func,omitempty"`
	Plugins     map[string]any  `json:"plugins,omitzero"`
	Script      string          `json:"script,omitempty"`
	ScriptID    string          `json:"script_id,omitempty"`
	Upstream    *Upstream       `json:"upstream,omitempty"`
	// UpstreamID wins over an inline Upstream when both are set, as in APISIX.
	UpstreamID      string            `json:"upstream_id,omitempty"`
	ServiceID       string            `json:"service_id,omitempty"`
	PluginConfigID  string            `json:"plugin_config_id,omitempty"`
	Labels          map[string]string `json:"labels,omitempty"`
	Timeout         *Timeout          `json:"timeout,omitempty"`
	EnableWebsocket *bool             `json:"enable_websocket,omitempty"`
	// Status is 1 (enabled, the default) or 0 (disabled).
	Status     *int  `json:"status,omitempty"`
	CreateTime int64 `json:"create_time,omitempty"`
	UpdateTime int64 `json:"update_time,omitempty"`
}

// Service is a reusable bundle of plugins and an upstream that routes point at.
type Service struct {
	ID              string            `json:"id,omitempty"`
	Name            string            `json:"name,omitempty"`
	Desc            string            `json:"desc,omitempty"`
	Plugins         map[string]any    `json:"plugins,omitzero"`
	Upstream        *Upstream         `json:"upstream,omitempty"`
	UpstreamID      string            `json:"upstream_id,omitempty"`
	Script          string            `json:"script,omitempty"`
	EnableWebsocket *bool             `json:"enable_websocket,omitempty"`
	Hosts           []string          `json:"hosts,omitzero"`
	Labels          map[string]string `json:"labels,omitempty"`
	CreateTime      int64             `json:"create_time,omitempty"`
	UpdateTime      int64             `json:"update_time,omitempty"`
}

// Upstream is a set of nodes with a balancer type and proxy settings.
type Upstream struct {
	ID   string `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
	Desc string `json:"desc,omitempty"`
	Type string `json:"type,omitempty"` // roundrobin (default), chash, least_conn, ewma
	// Nodes uses omitzero, not omitempty: an empty node list is a valid,
	// present value in APISIX and must survive a JSON round trip.
	Nodes         Nodes             `json:"nodes,omitzero"`
	ServiceName   string            `json:"service_name,omitempty"`
	DiscoveryType string            `json:"discovery_type,omitempty"`
	DiscoveryArgs map[string]any    `json:"discovery_args,omitempty"`
	HashOn        string            `json:"hash_on,omitempty"` // vars (default), header, cookie, consumer, vars_combinations
	Key           string            `json:"key,omitempty"`
	Checks        *HealthChecks     `json:"checks,omitempty"`
	Retries       *int              `json:"retries,omitempty"`
	RetryTimeout  *float64          `json:"retry_timeout,omitempty"`
	Timeout       *Timeout          `json:"timeout,omitempty"`
	Scheme        string            `json:"scheme,omitempty"`    // http (default), https, grpc, grpcs
	PassHost      string            `json:"pass_host,omitempty"` // pass (default), node, rewrite
	UpstreamHost  string            `json:"upstream_host,omitempty"`
	KeepalivePool *KeepalivePool    `json:"keepalive_pool,omitempty"`
	TLS           *UpstreamTLS      `json:"tls,omitempty"`
	Labels        map[string]string `json:"labels,omitempty"`
	CreateTime    int64             `json:"create_time,omitempty"`
	UpdateTime    int64             `json:"update_time,omitempty"`
}

// Node is one backend address with a weight. Host holds IPv6 literals without
// brackets (ready for net.JoinHostPort); Port 0 means the scheme's default port.
type Node struct {
	Host     string         `json:"host"`
	Port     int            `json:"port,omitempty"`
	Weight   int            `json:"weight"`
	Priority int            `json:"priority,omitempty"`
	Metadata map[string]any `json:"metadata,omitempty"`
}

// Nodes accepts both APISIX forms: the map {"host:port": weight} and the array
// [{"host":..,"port":..,"weight":..}]. It always holds the array form after decoding.
type Nodes []Node

// Timeout holds connect/send/read timeouts in seconds (APISIX allows fractions).
type Timeout struct {
	Connect float64 `json:"connect"`
	Send    float64 `json:"send"`
	Read    float64 `json:"read"`
}

// KeepalivePool bounds idle upstream connections per node.
type KeepalivePool struct {
	Size        int     `json:"size"`         // idle connections kept, default 320
	IdleTimeout float64 `json:"idle_timeout"` // seconds, default 60
	Requests    int     `json:"requests"`     // requests per connection, default 1000
}

// UpstreamTLS carries client certificate settings for https/grpcs upstreams.
type UpstreamTLS struct {
	ClientCertID string `json:"client_cert_id,omitempty"`
	ClientCert   string `json:"client_cert,omitempty"`
	ClientKey    string `json:"client_key,omitempty"`
	Verify       *bool  `json:"verify,omitempty"`
}

// Resources is the full set of resources a Store serves, as in APISIX standalone
// mode. The JSON names are APISIX's top-level keys (and etcd directory names).
type Resources struct {
	Routes         []Route          `json:"routes,omitempty"`
	Services       []Service        `json:"services,omitempty"`
	Upstreams      []Upstream       `json:"upstreams,omitempty"`
	Consumers      []Consumer       `json:"consumers,omitempty"`
	ConsumerGroups []ConsumerGroup  `json:"consumer_groups,omitempty"`
	PluginConfigs  []PluginConfig   `json:"plugin_configs,omitempty"`
	GlobalRules    []GlobalRule     `json:"global_rules,omitempty"`
	SSLs           []SSL            `json:"ssls,omitempty"`
	PluginMetadata []PluginMetadata `json:"plugin_metadata,omitempty"`
}
