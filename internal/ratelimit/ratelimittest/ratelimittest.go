// Package ratelimittest holds the test helpers the rate-limiting plugins
// (limit-count, limit-req, limit-conn) share: a gateway's Lasting registry,
// two of them standing for two gateways on one Redis, and looking at a real
// Redis or Redis Cluster (internal/redistest) from the test.
package ratelimittest

import (
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/sluicegw/sluice/internal/redistest"
	"github.com/sluicegw/sluice/plugin"
)

// Lasting is one gateway's Lasting registry, closed (its Redis pools with
// it) when the test ends.
func Lasting(t testing.TB) *plugin.Lasting {
	t.Helper()
	l := plugin.NewLasting(nil)
	t.Cleanup(l.Close)
	return l
}

// TwoGateways are two independent Lasting registries: instances built on
// them share no client, as two gateway processes would not.
func TwoGateways(t testing.TB) (a, b *plugin.Lasting) {
	t.Helper()
	return Lasting(t), Lasting(t)
}

// NodesJSON is the cluster's addresses as a redis_cluster_nodes value.
func NodesJSON(cl *redistest.Cluster) string {
	return `["` + strings.Join(cl.Addrs(), `","`) + `"]`
}

// MastersUsed counts the cluster's masters holding at least one key: keys
// of many clients should spread over them.
func MastersUsed(cl *redistest.Cluster) int {
	used := 0
	for _, s := range cl.Servers {
		if r, _ := s.Do("DBSIZE"); r != ":0" {
			used++
		}
	}
	return used
}

// Client is a plain client for looking at s from the test, closed when the
// test ends.
func Client(t testing.TB, s *redistest.Server) *redis.Client {
	t.Helper()
	rc := redis.NewClient(&redis.Options{Addr: s.Addr(), Protocol: 2, DisableIdentity: true})
	t.Cleanup(func() { rc.Close() })
	return rc
}
