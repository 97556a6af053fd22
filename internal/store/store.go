// Package store defines where resources live and how changes reach the runtime:
// a Store lists every resource at a revision and then streams changes after it.
// Backends: file (standalone YAML/JSON, this package's file.go); embedded (bbolt)
// and etcd come behind the same interface.
package store

import (
	"context"
	"encoding/json"
)

// Kind names a resource collection, spelled as in APISIX's etcd layout.
type Kind string

// The resource kinds the gateway core serves.
const (
	Routes    Kind = "routes"
	Services  Kind = "services"
	Upstreams Kind = "upstreams"
)

// Item is one stored resource: its raw JSON value and revisions.
type Item struct {
	Kind      Kind
	ID        string
	Value     json.RawMessage
	CreateRev int64
	ModRev    int64
}

// Listing is every item at one store revision.
type Listing struct {
	Revision int64
	Items    []Item
}

// EventType says whether an item was written or removed.
type EventType int

// Event types.
const (
	Put EventType = iota
	Delete
)

// Event is one change to one item.
type Event struct {
	Type EventType
	Item Item
}

// Batch is what a watch delivers: either incremental events up to Revision, or,
// when Reset is set, a full Listing that replaces everything known before (after a
// resync, a compaction, or a file reload).
type Batch struct {
	Revision int64
	Reset    bool
	Listing  Listing
	Events   []Event
}

// Store is a source of resources with revisions and change notification.
type Store interface {
	// List returns every resource at one revision.
	List(ctx context.Context) (Listing, error)
	// Watch streams batches after afterRev until ctx ends; the channel is then closed.
	Watch(ctx context.Context, afterRev int64) <-chan Batch
	// Close releases the store's resources.
	Close() error
}
