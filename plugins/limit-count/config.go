package limitcount

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
)

// Policies: where the counters live.
const (
	PolicyLocal        = "local"
	PolicyRedis        = "redis"
	PolicyRedisCluster = "redis-cluster"
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
		KeyType:               "var",
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
	switch c.KeyType {
	case "var", "var_combination", "constant":
	default:
		return fmt.Errorf("key_type: must be one of var, var_combination, constant, got %q", c.KeyType)
	}
	if c.RejectedCode < 200 || c.RejectedCode > 599 {
		return fmt.Errorf("rejected_code: must be between 200 and 599, got %d", c.RejectedCode)
	}
	if c.RejectedMsg != nil && *c.RejectedMsg == "" {
		return errors.New("rejected_msg: must not be empty")
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
	switch c.Policy {
	case PolicyLocal:
		return nil
	case PolicyRedis:
		return c.validateRedis()
	case PolicyRedisCluster:
		return c.validateRedisCluster()
	case "redis-sentinel":
		return errors.New("policy: redis-sentinel is not supported yet; use redis or redis-cluster")
	}
	return fmt.Errorf("policy: must be one of local, redis, redis-cluster, got %q", c.Policy)
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

// validateRedis checks the fields APISIX requires under policy redis, and
// the ones both redis policies share.
func (c *Config) validateRedis() error {
	switch {
	case c.RedisHost == "":
		return errors.New("redis_host: is required when policy is redis")
	case len(c.RedisHost) < 2:
		return fmt.Errorf("redis_host: must be at least 2 characters, got %q", c.RedisHost)
	case c.RedisPort < 1 || c.RedisPort > 65535:
		return fmt.Errorf("redis_port: must be between 1 and 65535, got %d", c.RedisPort)
	case c.RedisUsername != nil && *c.RedisUsername == "":
		return errors.New("redis_username: must not be empty")
	case c.RedisDatabase < 0:
		return fmt.Errorf("redis_database: must be at least 0, got %d", c.RedisDatabase)
	}
	return c.validateRedisCommon()
}

func (c *Config) validateRedisCluster() error {
	if len(c.RedisClusterNodes) == 0 {
		return errors.New("redis_cluster_nodes: is required when policy is redis-cluster (at least one host:port)")
	}
	for i, n := range c.RedisClusterNodes {
		if len(n) < 2 || len(n) > 100 {
			return fmt.Errorf("redis_cluster_nodes[%d]: must be 2 to 100 characters, got %q", i, n)
		}
	}
	if c.RedisClusterName == "" {
		return errors.New("redis_cluster_name: is required when policy is redis-cluster")
	}
	return c.validateRedisCommon()
}

func (c *Config) validateRedisCommon() error {
	switch {
	case c.RedisTimeout < 1:
		return fmt.Errorf("redis_timeout: must be at least 1 (milliseconds), got %d", c.RedisTimeout)
	case c.RedisKeepaliveTimeout < 1000:
		return fmt.Errorf("redis_keepalive_timeout: must be at least 1000 (milliseconds), got %d", c.RedisKeepaliveTimeout)
	case c.RedisKeepalivePool < 1:
		return fmt.Errorf("redis_keepalive_pool: must be at least 1, got %d", c.RedisKeepalivePool)
	}
	return nil
}

// fingerprint identifies c's content: counters are kept under it, so they
// survive a reload that leaves the configuration as it was and restart when
// it changes (APISIX keys them by the plugin configuration's version). Two
// gateways with the same configuration compute the same fingerprint, which
// is what lets them share Redis counters.
func (c *Config) fingerprint() string {
	b, err := json.Marshal(c)
	if err != nil {
		panic(fmt.Sprintf("limit-count: marshalling a validated config: %v", err)) // plain data: cannot fail
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}
