package ratelimit

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/sluicegw/sluice/plugin"
)

// Policies: where limit state lives.
const (
	PolicyLocal        = "local"
	PolicyRedis        = "redis"
	PolicyRedisCluster = "redis-cluster"
)

func init() {
	// go-redis logs every failed dial to stderr; during a Redis outage that
	// would be a line per request. Failures are logged by Backend, rate
	// limited, instead.
	redis.SetLogger(quietLogger{})
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

// RedisConfig is the Redis part of a plugin's configuration, with
// APISIX's field names (apisix/utils/redis-schema.lua). Plugins keep the
// fields in their own Config (so the schema derived from it lists them)
// and copy them here.
type RedisConfig struct {
	Policy           string
	Host             string
	Port             int
	Username         *string
	Password         string
	Database         int
	Timeout          int // milliseconds
	SSL, SSLVerify   bool
	KeepaliveTimeout int // milliseconds
	KeepalivePool    int
	ClusterNodes     []string
	ClusterName      string
	ClusterSSL       bool
	ClusterSSLVerify bool
	// Direct turns coalescing (coalesce.go) off: every call is its own
	// round trip. Not an APISIX field; benchmarks compare both ways.
	Direct bool
}

// CheckPolicy validates policy and, for the Redis policies, the fields
// APISIX requires. Errors start with the field.
func (c *RedisConfig) CheckPolicy() error {
	switch c.Policy {
	case PolicyLocal:
		return nil
	case PolicyRedis:
		switch {
		case c.Host == "":
			return errors.New("redis_host: is required when policy is redis")
		case len(c.Host) < 2:
			return fmt.Errorf("redis_host: must be at least 2 characters, got %q", c.Host)
		case c.Port < 1 || c.Port > 65535:
			return fmt.Errorf("redis_port: must be between 1 and 65535, got %d", c.Port)
		case c.Username != nil && *c.Username == "":
			return errors.New("redis_username: must not be empty")
		case c.Database < 0:
			return fmt.Errorf("redis_database: must be at least 0, got %d", c.Database)
		}
	case PolicyRedisCluster:
		if len(c.ClusterNodes) == 0 {
			return errors.New("redis_cluster_nodes: is required when policy is redis-cluster (at least one host:port)")
		}
		for i, n := range c.ClusterNodes {
			if len(n) < 2 || len(n) > 100 {
				return fmt.Errorf("redis_cluster_nodes[%d]: must be 2 to 100 characters, got %q", i, n)
			}
		}
		if c.ClusterName == "" {
			return errors.New("redis_cluster_name: is required when policy is redis-cluster")
		}
	default:
		return fmt.Errorf("policy: must be one of local, redis, redis-cluster, got %q", c.Policy)
	}
	switch {
	case c.Timeout < 1:
		return fmt.Errorf("redis_timeout: must be at least 1 (milliseconds), got %d", c.Timeout)
	case c.KeepaliveTimeout < 1000:
		return fmt.Errorf("redis_keepalive_timeout: must be at least 1000 (milliseconds), got %d", c.KeepaliveTimeout)
	case c.KeepalivePool < 1:
		return fmt.Errorf("redis_keepalive_pool: must be at least 1, got %d", c.KeepalivePool)
	}
	return nil
}

// LastingKey names the Backend for c's connection settings in
// plugin.Deps.Lasting; owner (the plugin's name) keeps plugins' pools and
// failure logs apart. The password goes in as a digest, not in clear.
func (c *RedisConfig) LastingKey(owner string) string {
	pw := sha256.Sum256([]byte(c.Password))
	user := ""
	if c.Username != nil {
		user = *c.Username
	}
	common := fmt.Sprintf("timeout=%d pool=%d idle=%d user=%q pw=%s", c.Timeout, c.KeepalivePool,
		c.KeepaliveTimeout, user, hex.EncodeToString(pw[:8]))
	if c.Policy == PolicyRedisCluster {
		return fmt.Sprintf("%s/redis-cluster name=%q nodes=%q ssl=%t verify=%t %s", owner, c.ClusterName,
			c.ClusterNodes, c.ClusterSSL, c.ClusterSSLVerify, common)
	}
	return fmt.Sprintf("%s/redis addr=%s db=%d ssl=%t verify=%t %s", owner,
		net.JoinHostPort(c.Host, strconv.Itoa(c.Port)), c.Database, c.SSL, c.SSLVerify, common)
}

// SharedBackend returns the Backend for c's connection settings from
// deps.Lasting, building it on first use. It is nil in a validation-only
// compile (no Lasting): such an instance never serves and never connects.
func SharedBackend(deps plugin.Deps, c *RedisConfig, owner string) *Backend {
	// Building cannot fail (nothing is dialled), so neither can Get.
	o, _ := deps.Lasting.Get(c.LastingKey(owner), func() (any, error) {
		return NewBackend(c, owner, deps.Logger(owner)), nil
	})
	b, _ := o.(*Backend)
	return b
}

// Backend is one pooled Redis (or Redis Cluster) client, shared through
// plugin.Deps.Lasting by every instance with the same connection settings,
// so a reload keeps its connections.
type Backend struct {
	Client  redis.UniversalClient
	Timeout time.Duration
	co      *coalescer // nil when RedisConfig.Direct
	owner   string
	log     *slog.Logger

	// failures counts requests the backend could not serve; lastLog
	// rate-limits the log line about them.
	failures atomic.Int64
	lastLog  atomic.Int64
	logged   atomic.Int64 // failures as of the last log line
}

// Close closes the pool; Lasting calls it once no configuration uses it.
func (b *Backend) Close() error {
	if b.co != nil {
		b.co.close()
	}
	return b.Client.Close()
}

// NewBackend builds the client without connecting: connections are dialled
// on first use, so building never blocks a configuration load. Scripts are
// never retried by the client (MaxRetries -1): a retry after a lost reply
// would apply a request twice. Cluster redirects (MOVED/ASK: the script did
// not run) are followed.
func NewBackend(c *RedisConfig, owner string, log *slog.Logger) *Backend {
	timeout := time.Duration(c.Timeout) * time.Millisecond
	b := &Backend{Timeout: timeout, owner: owner, log: log}
	idle := time.Duration(c.KeepaliveTimeout) * time.Millisecond
	noMaint := &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	if c.Policy == PolicyRedisCluster {
		b.Client = redis.NewClusterClient(&redis.ClusterOptions{
			Addrs: c.ClusterNodes, Password: c.Password,
			TLSConfig: tlsConfig(c.ClusterSSL, c.ClusterSSLVerify, ""),
			Protocol:  2, DisableIdentity: true, MaxRetries: -1,
			DialTimeout: timeout, DialerRetries: 1, ReadTimeout: timeout, WriteTimeout: timeout, PoolTimeout: timeout,
			ContextTimeoutEnabled: true, PoolSize: c.KeepalivePool, ConnMaxIdleTime: idle,
			MaintNotificationsConfig: noMaint,
		})
		// Cluster calls stay direct: a ClusterClient pipeline re-sends a
		// node's whole batch after a read error or timeout (bounded by
		// MaxRedirects, not MaxRetries), which could run scripts twice.
		return b
	}
	user := ""
	if c.Username != nil {
		user = *c.Username
	}
	b.Client = redis.NewClient(&redis.Options{
		Addr:     net.JoinHostPort(c.Host, strconv.Itoa(c.Port)),
		Username: user, Password: c.Password, DB: c.Database,
		TLSConfig: tlsConfig(c.SSL, c.SSLVerify, c.Host),
		Protocol:  2, DisableIdentity: true, MaxRetries: -1,
		DialTimeout: timeout, DialerRetries: 1, ReadTimeout: timeout, WriteTimeout: timeout, PoolTimeout: timeout,
		ContextTimeoutEnabled: true, PoolSize: c.KeepalivePool, ConnMaxIdleTime: idle,
		MaintNotificationsConfig: noMaint,
	})
	b.coalesce(c)
	return b
}

// coalesce starts the senders unless c asks for direct calls.
func (b *Backend) coalesce(c *RedisConfig) {
	if !c.Direct {
		b.co = newCoalescer(b.Client)
	}
}

func tlsConfig(on, verify bool, serverName string) *tls.Config {
	if !on {
		return nil
	}
	// redis_ssl_verify defaults to false in APISIX: encrypted but not
	// authenticated unless asked for.
	return &tls.Config{ServerName: serverName, InsecureSkipVerify: !verify, MinVersion: tls.VersionTLS12} //nolint:gosec // APISIX's default
}

// FailureLogEvery bounds the failure log to one line per backend per
// interval; the line carries how many requests failed meanwhile.
const FailureLogEvery = 5 * time.Second

// What happened to a request the backend could not serve, for Failed.
const (
	OutcomeRejected = "requests rejected with 500"
	OutcomePassed   = "requests pass unlimited (allow_degradation)"
	OutcomeLeaked   = "releases left to expire"
)

// Failed counts a request the backend could not serve and logs at most once
// per FailureLogEvery, saying what became of such requests (an Outcome).
func (b *Backend) Failed(err error, outcome string) {
	total := b.failures.Add(1)
	now := time.Now().UnixNano()
	last := b.lastLog.Load()
	if now-last < int64(FailureLogEvery) || !b.lastLog.CompareAndSwap(last, now) {
		return
	}
	since := total - b.logged.Swap(total)
	b.log.Warn(b.owner+": redis unavailable, "+outcome, "err", err, "failed_since_last_log", since, "failed_total", total)
}

// FailedRequest is Failed for a request that passed unlimited
// (allow_degradation) or was rejected with 500.
func (b *Backend) FailedRequest(err error, passed bool) {
	if passed {
		b.Failed(err, OutcomePassed)
		return
	}
	b.Failed(err, OutcomeRejected)
}

// Failures reports how many requests the backend could not serve.
func (b *Backend) Failures() int64 { return b.failures.Load() }
