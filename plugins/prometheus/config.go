package prometheus

import "github.com/sluicegw/sluice/internal/metrics"

// Config is the prometheus plugin's configuration, as APISIX's schema
// (apisix/plugins/prometheus.lua).
type Config struct {
	// PreferName labels the route and service of the metrics by their name
	// instead of their id (the id when the name is empty). Default false.
	PreferName bool `json:"prefer_name"`
}

// NewConfig returns a Config with APISIX's defaults.
func NewConfig() *Config { return &Config{} }

// Validate has nothing to check: prefer_name's type is checked by decoding.
func (c *Config) Validate() error { return nil }

// MetricsOptions are the settings the runtime gives the route's counters.
func (c *Config) MetricsOptions() metrics.Options { return metrics.Options{PreferName: c.PreferName} }
