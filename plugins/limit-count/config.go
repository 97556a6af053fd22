package limitcount

import (
	"errors"
	"fmt"

	"github.com/sluicegw/sluice/internal/ratelimit"
)

// Policies: where the counters live.
const (
	PolicyLocal        = ratelimit.PolicyLocal
	PolicyRedis        = ratelimit.PolicyRedis
	PolicyRedisCluster = ratelimit.PolicyRedisCluster
)

// Window types.
const (
	windowFixed   = "fixed"
	windowSliding = "sliding"
)

// noDelayedSync is APISIX's sync_interval default: every request goes to the
// counter store.
const noDelayedSync = -1

// Config is limit-count's configuration, with APISIX's field names and
// defaults. Fields APISIX only reads under one policy (redis_*,
// redis_cluster_*) are accepted under any policy, as APISIX's schema does.
type Config struct {
	// Count is how many requests a key may make per window. Required, > 0.
	Count *int64 `json:"count,omitempty"`
	// TimeWindow is the window length in seconds. Required, > 0.
	TimeWindow *int64 `json:"time_window,omitempty"`
	// WindowType is "fixed" (the window starts with a key's first request
	// and lasts time_window seconds) or "sliding" (APISIX's estimate of a
	// sliding window from the current and previous epoch-aligned windows;
	// sliding.go). Sliding is not available in the batched mode
	// (sync_interval) yet.
	WindowType string `json:"window_type"`
	// KeyType says how Key is read: "var" (an nginx variable name),
	// "var_combination" ($vars in a string) or "constant".
	KeyType string `json:"key_type"`
	// Key is what requests are counted by. When it resolves to nothing,
	// remote_addr is used, as in APISIX.
	Key string `json:"key"`
	// RejectedCode is the status of a rejected request, 200-599.
	RejectedCode int `json:"rejected_code"`
	// RejectedMsg, when set, is sent as {"error_msg": msg} with a rejection.
	RejectedMsg *string `json:"rejected_msg,omitempty"`
	// Policy is "local", "redis" or "redis-cluster".
	Policy string `json:"policy"`
	// AllowDegradation lets requests through when the counter store fails.
	AllowDegradation bool `json:"allow_degradation"`
	// ShowLimitQuotaHeader adds X-RateLimit-Limit, -Remaining and -Reset.
	ShowLimitQuotaHeader bool `json:"show_limit_quota_header"`
	// Group makes routes share counters; all of them must carry the same
	// configuration.
	Group *string `json:"group,omitempty"`
	// SyncInterval, in seconds, turns on the batched cluster mode under the
	// redis policies (APISIX's delayed synchronization): requests count
	// against leases of the quota the gateway reserves in Redis in the
	// background, synced every sync_interval (batched.go). -1 (the
	// default) counts in Redis on every request. Otherwise at least 0.1
	// and smaller than time_window, as APISIX requires; policy local
	// ignores it, as APISIX does.
	SyncInterval float64 `json:"sync_interval"`

	RedisHost             string  `json:"redis_host,omitempty"`
	RedisPort             int     `json:"redis_port"`
	RedisUsername         *string `json:"redis_username,omitempty"`
	RedisPassword         string  `json:"redis_password,omitempty"`
	RedisDatabase         int     `json:"redis_database"`
	RedisTimeout          int     `json:"redis_timeout"`
	RedisSSL              bool    `json:"redis_ssl"`
	RedisSSLVerify        bool    `json:"redis_ssl_verify"`
	RedisKeepaliveTimeout int     `json:"redis_keepalive_timeout"`
	RedisKeepalivePool    int     `json:"redis_keepalive_pool"`

	RedisClusterNodes     []string `json:"redis_cluster_nodes,omitempty"`
	RedisClusterName      string   `json:"redis_cluster_name,omitempty"`
	RedisClusterSSL       bool     `json:"redis_cluster_ssl"`
	RedisClusterSSLVerify bool     `json:"redis_cluster_ssl_verify"`
}

// NewConfig returns a Config with APISIX's defaults.
func NewConfig() *Config {
	return &Config{
		WindowType:            windowFixed,
		KeyType:               ratelimit.KeyVar,
		Key:                   "remote_addr",
		RejectedCode:          503,
		Policy:                PolicyLocal,
		ShowLimitQuotaHeader:  true,
		SyncInterval:          noDelayedSync,
		RedisPort:             6379,
		RedisTimeout:          1000,
		RedisKeepaliveTimeout: 10000,
		RedisKeepalivePool:    100,
	}
}

// Validate checks c without side effects. Errors start with the field.
func (c *Config) Validate() error {
	if err := positive("count", c.Count); err != nil {
		return err
	}
	if err := positive("time_window", c.TimeWindow); err != nil {
		return err
	}
	switch c.WindowType {
	case windowFixed, windowSliding:
	default:
		return fmt.Errorf("window_type: must be one of fixed, sliding, got %q", c.WindowType)
	}
	// Not ratelimit.CheckKey: limit-count also has constant keys, and key
	// is optional (it defaults to remote_addr).
	switch c.KeyType {
	case ratelimit.KeyVar, ratelimit.KeyVarCombination, ratelimit.KeyConstant:
	default:
		return fmt.Errorf("key_type: must be one of var, var_combination, constant, got %q", c.KeyType)
	}
	if err := ratelimit.CheckRejection(c.RejectedCode, c.RejectedMsg); err != nil {
		return err
	}
	if c.Group != nil && *c.Group == "" {
		return errors.New("group: must not be empty")
	}
	if err := c.validateSyncInterval(); err != nil {
		return err
	}
	if c.WindowType == windowSliding && c.batched() {
		// The batched mode's leases are shares of a fixed window's quota;
		// under a sliding window the quota free at a given moment depends
		// on the previous window's decaying weight, which the lease
		// bookkeeping and its over-admission bound do not model.
		return errors.New("window_type: sliding is not supported with sync_interval (the batched mode) yet; use sync_interval -1 or window_type fixed")
	}
	if c.Policy == "redis-sentinel" {
		return errors.New("policy: redis-sentinel is not supported yet; use redis or redis-cluster")
	}
	rc := c.redis()
	return rc.CheckPolicy()
}

// validateSyncInterval applies APISIX's rules, under the redis policies
// only (APISIX ignores sync_interval under policy local).
func (c *Config) validateSyncInterval() error {
	if c.SyncInterval == noDelayedSync || (c.Policy != PolicyRedis && c.Policy != PolicyRedisCluster) {
		return nil
	}
	if c.SyncInterval < 0.1 {
		return fmt.Errorf("sync_interval: must be -1 (off) or at least 0.1 (seconds), got %g", c.SyncInterval)
	}
	if float64(*c.TimeWindow) <= c.SyncInterval {
		return fmt.Errorf("sync_interval: must be smaller than time_window (%d), got %g", *c.TimeWindow, c.SyncInterval)
	}
	return nil
}

// batched reports whether c selects the batched cluster mode.
func (c *Config) batched() bool {
	return c.SyncInterval != noDelayedSync && (c.Policy == PolicyRedis || c.Policy == PolicyRedisCluster)
}

func positive(field string, v *int64) error {
	if v == nil {
		return fmt.Errorf("%s: is required", field)
	}
	if *v <= 0 {
		return fmt.Errorf("%s: must be greater than 0, got %d", field, *v)
	}
	return nil
}

// redis returns the Redis settings.
func (c *Config) redis() ratelimit.RedisConfig {
	return ratelimit.RedisConfig{
		Policy: c.Policy, Host: c.RedisHost, Port: c.RedisPort, Username: c.RedisUsername,
		Password: c.RedisPassword, Database: c.RedisDatabase, Timeout: c.RedisTimeout,
		SSL: c.RedisSSL, SSLVerify: c.RedisSSLVerify, KeepaliveTimeout: c.RedisKeepaliveTimeout,
		KeepalivePool: c.RedisKeepalivePool, ClusterNodes: c.RedisClusterNodes, ClusterName: c.RedisClusterName,
		ClusterSSL: c.RedisClusterSSL, ClusterSSLVerify: c.RedisClusterSSLVerify,
	}
}

// fingerprint identifies c's content (ratelimit.Fingerprint): counters are
// kept under it, so they survive a reload that leaves the configuration as
// it was, and gateways with the same configuration share Redis counters.
func (c *Config) fingerprint() string { return ratelimit.Fingerprint(c) }
