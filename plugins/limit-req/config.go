package limitreq

import (
	"errors"
	"fmt"
	"math"

	"github.com/sluicegw/sluice/internal/ratelimit"
)

// Config is limit-req's configuration, with APISIX's field names and
// defaults. Fields APISIX only reads under one policy (redis_*,
// redis_cluster_*) are accepted under any policy, as APISIX's schema does.
type Config struct {
	// Rate is the sustained rate, in requests per second. Required, > 0.
	Rate *float64 `json:"rate,omitempty"`
	// Burst is how many requests beyond the rate are delayed (or, with
	// nodelay, let through at once) rather than rejected. Required, >= 0.
	Burst *float64 `json:"burst,omitempty"`
	// KeyType says how Key is read: "var" (an nginx variable name) or
	// "var_combination" ($vars in a string).
	KeyType string `json:"key_type"`
	// Key is what requests are limited by. Required. When it resolves to
	// nothing, remote_addr is used, as in APISIX.
	Key string `json:"key"`
	// RejectedCode is the status of a rejected request, 200-599.
	RejectedCode int `json:"rejected_code"`
	// RejectedMsg, when set, is sent as {"error_msg": msg} with a rejection.
	RejectedMsg *string `json:"rejected_msg,omitempty"`
	// NoDelay lets requests within the burst through at once instead of
	// delaying them to the rate.
	NoDelay bool `json:"nodelay"`
	// AllowDegradation lets requests through when Redis fails.
	AllowDegradation bool `json:"allow_degradation"`
	// Policy is "local", "redis" or "redis-cluster".
	Policy string `json:"policy"`

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
		KeyType:               ratelimit.KeyVar,
		RejectedCode:          503,
		Policy:                ratelimit.PolicyLocal,
		RedisPort:             6379,
		RedisTimeout:          1000,
		RedisKeepaliveTimeout: 10000,
		RedisKeepalivePool:    100,
	}
}

// Validate checks c without side effects. Errors start with the field.
func (c *Config) Validate() error {
	switch {
	case c.Rate == nil:
		return errors.New("rate: is required")
	case !(*c.Rate > 0) || math.IsInf(*c.Rate, 0):
		return fmt.Errorf("rate: must be greater than 0, got %v", *c.Rate)
	case c.Burst == nil:
		return errors.New("burst: is required")
	case !(*c.Burst >= 0) || math.IsInf(*c.Burst, 0):
		return fmt.Errorf("burst: must be at least 0, got %v", *c.Burst)
	}
	if err := ratelimit.CheckKey(c.KeyType, c.Key); err != nil {
		return err
	}
	if err := ratelimit.CheckRejection(c.RejectedCode, c.RejectedMsg); err != nil {
		return err
	}
	rc := c.redis()
	return rc.CheckPolicy()
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
