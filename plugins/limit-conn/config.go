package limitconn

import (
	"errors"
	"fmt"
	"math"

	"github.com/sluicegw/sluice/internal/ratelimit"
)

// Config is limit-conn's configuration, with APISIX's field names and
// defaults. Fields APISIX only reads under one policy (redis_*,
// redis_cluster_*, key_ttl) are accepted under any policy, as APISIX's
// schema does.
type Config struct {
	// Conn is how many requests of a key may be in flight at once. Required,
	// > 0.
	Conn *int64 `json:"conn,omitempty"`
	// Burst is how many more are admitted, but delayed. Required, >= 0.
	// Requests past conn+burst are rejected.
	Burst *int64 `json:"burst,omitempty"`
	// DefaultConnDelay is the delay, in seconds, of a request admitted past
	// conn (per conn of excess: see the docs). Required, > 0.
	DefaultConnDelay *float64 `json:"default_conn_delay,omitempty"`
	// OnlyUseDefaultDelay keeps the delay at default_conn_delay instead of
	// following the requests' observed latency.
	OnlyUseDefaultDelay bool `json:"only_use_default_delay"`
	// KeyType says how Key is read: "var" (an nginx variable name) or
	// "var_combination" ($vars in a string).
	KeyType string `json:"key_type"`
	// Key is what requests are counted by. Required. When it resolves to
	// nothing, remote_addr is used, as in APISIX.
	Key string `json:"key"`
	// RejectedCode is the status of a rejected request, 200-599.
	RejectedCode int `json:"rejected_code"`
	// RejectedMsg, when set, is sent as {"error_msg": msg} with a rejection.
	RejectedMsg *string `json:"rejected_msg,omitempty"`
	// AllowDegradation lets requests through when Redis fails.
	AllowDegradation bool `json:"allow_degradation"`
	// Policy is "local", "redis" or "redis-cluster".
	Policy string `json:"policy"`
	// KeyTTL is how long, in seconds, Redis keeps a request counted that
	// was never released (its gateway died): the bound on a leak.
	KeyTTL int `json:"key_ttl"`
	// Rules is APISIX 3.16's list of rules; not supported yet, rejected.
	Rules []map[string]any `json:"rules,omitempty"`

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
		KeyTTL:                3600,
		RedisPort:             6379,
		RedisTimeout:          1000,
		RedisKeepaliveTimeout: 10000,
		RedisKeepalivePool:    100,
	}
}

// Validate checks c without side effects. Errors start with the field.
func (c *Config) Validate() error {
	if c.Rules != nil {
		return errors.New("rules: not supported yet; use conn, burst and key")
	}
	switch {
	case c.Conn == nil:
		return errors.New("conn: is required")
	case *c.Conn <= 0:
		return fmt.Errorf("conn: must be greater than 0, got %d", *c.Conn)
	case c.Burst == nil:
		return errors.New("burst: is required")
	case *c.Burst < 0:
		return fmt.Errorf("burst: must be at least 0, got %d", *c.Burst)
	case *c.Burst > math.MaxInt64-*c.Conn:
		return fmt.Errorf("burst: conn+burst must fit in 64 bits, got %d", *c.Burst)
	case c.DefaultConnDelay == nil:
		return errors.New("default_conn_delay: is required")
	case !(*c.DefaultConnDelay > 0) || *c.DefaultConnDelay > maxDelaySeconds:
		return fmt.Errorf("default_conn_delay: must be greater than 0 (seconds) and at most %d, got %v",
			maxDelaySeconds, *c.DefaultConnDelay)
	case c.KeyTTL < 1:
		return fmt.Errorf("key_ttl: must be at least 1 (seconds), got %d", c.KeyTTL)
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

// maxDelaySeconds bounds default_conn_delay (a day) so that delays stay far
// from overflowing a time.Duration.
const maxDelaySeconds = 86400

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
