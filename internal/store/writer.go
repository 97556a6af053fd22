package store

import (
	"context"
	"encoding/json"
	"errors"
)

// More resource kinds, spelled as APISIX's etcd directories. The core serves
// routes, services and upstreams; the others are validated and stored now and
// get behaviour in later changes (plugins, consumers, TLS).
const (
	Consumers      Kind = "consumers"
	ConsumerGroups Kind = "consumer_groups"
	GlobalRules    Kind = "global_rules"
	PluginConfigs  Kind = "plugin_configs"
	PluginMetadata Kind = "plugin_metadata"
	SSLs           Kind = "ssls"
)

// Kinds lists every kind a Store holds, in the order a listing applies them
// (referenced kinds before the kinds that reference them).
var Kinds = []Kind{Upstreams, Services, PluginConfigs, ConsumerGroups, Consumers, SSLs, GlobalRules, PluginMetadata, Routes}

// Errors every Writer returns (wrapped), so the Admin API can map them to
// APISIX's status codes.
var (
	// ErrNotFound: no item with that kind and id.
	ErrNotFound = errors.New("key not found")
	// ErrConflict: a compare-and-set write lost to a concurrent writer.
	ErrConflict = errors.New("revision conflict")
	// ErrReadOnly: the store does not accept writes (the file store).
	ErrReadOnly = errors.New("store is read-only")
	// ErrUnavailable: the backend cannot be reached (etcd down).
	ErrUnavailable = errors.New("store unavailable")
)

// AnyRevision as a Put/Delete prevRev skips the compare-and-set check.
const AnyRevision int64 = -1

// Writer is a Store that accepts writes: the embedded store and etcd. Writes
// are durable when they return, and every watcher sees them.
type Writer interface {
	Store
	// Get returns one item, or ErrNotFound.
	Get(ctx context.Context, kind Kind, id string) (Item, error)
	// Put creates or replaces an item. prevRev makes it a compare-and-set:
	// 0 means "must not exist yet", a positive value "must still be at that
	// ModRev", AnyRevision means unconditional. A lost race is ErrConflict.
	Put(ctx context.Context, kind Kind, id string, value json.RawMessage, prevRev int64) (Item, error)
	// Delete removes an item, with the same prevRev rule; ErrNotFound if absent.
	Delete(ctx context.Context, kind Kind, id string, prevRev int64) (Item, error)
	// NewID returns a fresh, unique id for a POST (APISIX ids are decimal
	// strings; any unique string is valid).
	NewID(ctx context.Context) (string, error)
}
