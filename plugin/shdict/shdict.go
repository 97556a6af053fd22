// Package shdict provides shared dictionaries: named, memory-bounded key/value
// stores shared by every request, with TTLs, LRU eviction and atomic
// operations. It is the Go counterpart of OpenResty's ngx.shared.DICT
// (lua-nginx-module), and follows its semantics and error strings so that
// plugins ported from APISIX, and Lua scripts later, behave the same.
//
// A Dict is split into shards by key hash; each shard has one mutex, its own
// LRU list, its own expiry heap and an equal share of the capacity. Every
// method is atomic with respect to the key it touches.
//
// Memory is a budget, not a measurement: each entry is charged
// len(key) + the value's size + EntryOverhead bytes (see EntryOverhead and
// docs/shared-dict.md).
package shdict

import (
	"errors"
	"hash/maphash"
	"time"
)

// Errors returned by Dict methods. Their messages are exactly OpenResty's, so
// a Lua binding can hand err.Error() back to scripts unchanged.
var (
	// ErrExists is returned by Add and SafeAdd when the key holds a value
	// that has not expired.
	ErrExists = errors.New("exists")
	// ErrNotFound is returned by Replace, Incr (without init), TTL and Expire
	// when the key is absent or expired.
	ErrNotFound = errors.New("not found")
	// ErrNoMemory is returned when an entry cannot be stored: it is larger
	// than a shard, or room could only be made by evicting valid entries and
	// the method is one that never does (Safe*, LPush, RPush).
	ErrNoMemory = errors.New("no memory")
	// ErrNotNumber is returned by Incr when the key holds a non-number.
	ErrNotNumber = errors.New("not a number")
	// ErrNotList is returned by the list methods when the key holds a
	// non-list value.
	ErrNotList = errors.New("value not a list")
	// ErrEmptyKey is returned by writes with an empty key.
	ErrEmptyKey = errors.New("empty key")
	// ErrKeyTooLong is returned by writes with a key over MaxKeyLen bytes.
	ErrKeyTooLong = errors.New("key too long")
	// ErrBadValue is returned when a value's kind cannot be stored: lists
	// through Set, or anything but strings and numbers through the pushes.
	ErrBadValue = errors.New("bad value type")
	// ErrNilValue is returned by Add, SafeAdd and Replace with a nil value.
	ErrNilValue = errors.New("attempt to add or replace nil values")
	// ErrBadTTL is returned for a negative TTL.
	ErrBadTTL = errors.New(`bad "exptime" argument`)
)

// MaxKeyLen is the longest key, in bytes, as in OpenResty.
const MaxKeyLen = 65535

// EntryOverhead is the fixed number of bytes charged to every entry on top of
// its key and value. It approximates what an entry really costs on the Go heap
// on 64-bit platforms: the entry struct (112-byte size class), its slot in the
// shard's map and its slot in the expiry heap. Measured with Go 1.26 on amd64
// (TestEntryOverheadIsRealistic), an entry costs 115 to 147 bytes beyond its
// key, depending on how full the map's tables are; the budget takes the high
// end so that a full dictionary does not use more than its capacity.
const EntryOverhead = 144

// ListNodeOverhead is charged per list element on top of the element's own
// size: one Value (40 bytes) in the list's backing array.
const ListNodeOverhead = 40

// Value sizes charged for non-string values, the same as OpenResty stores
// them (a C double and one byte).
const (
	numberSize = 8
	boolSize   = 1
)

// ValueKind is the type of a stored value.
type ValueKind uint8

// The kinds of Value. KindNil is the zero Value; setting it deletes the key.
// KindList is only ever returned by Get and GetStale, for a key created by
// LPush or RPush: its elements are read with LPop, RPop and LLen.
const (
	KindNil ValueKind = iota
	KindString
	KindNumber
	KindBool
	KindList
)

// String returns the kind's Lua type name ("nil", "string", "number",
// "boolean", "list").
func (k ValueKind) String() string {
	switch k {
	case KindNil:
		return "nil"
	case KindString:
		return "string"
	case KindNumber:
		return "number"
	case KindBool:
		return "boolean"
	case KindList:
		return "list"
	}
	return "unknown"
}

// Value is a dictionary value: a string, a number (float64, like a Lua
// number) or a boolean, as told by Kind. Only the field matching Kind is
// meaningful. Build values with String, Number and Bool.
type Value struct {
	Kind ValueKind
	Str  string
	Num  float64
	Bool bool
}

// String returns a string Value.
func String(s string) Value { return Value{Kind: KindString, Str: s} }

// Number returns a number Value.
func Number(n float64) Value { return Value{Kind: KindNumber, Num: n} }

// Bool returns a boolean Value.
func Bool(b bool) Value { return Value{Kind: KindBool, Bool: b} }

// size is the number of bytes a value is charged, excluding EntryOverhead.
func (v Value) size() int {
	switch v.Kind {
	case KindString:
		return len(v.Str)
	case KindNumber:
		return numberSize
	case KindBool:
		return boolSize
	}
	return 0
}

// Sharding: a Dict has up to maxShards shards, halved until each shard has at
// least minShardBytes, so small dictionaries (under 128 KiB) have one shard
// and an exact LRU, and the largest storable entry is never under 64 KiB
// (or the whole capacity, when smaller).
const (
	maxShards     = 16
	minShardBytes = 64 << 10
)

// Dict is one shared dictionary. It is safe for concurrent use; create it
// with New or Registry.Define.
type Dict struct {
	name     string
	capacity int
	seed     maphash.Seed
	mask     uint64
	shards   []shard
	// now returns the current time in nanoseconds on a monotonic scale that
	// is always > 0; expiry times are on the same scale.
	now func() int64
}

// option configures a Dict; only tests use them.
type option func(*Dict)

// withClock replaces the dictionary's time source; now must return values
// > 0 that never go backwards.
func withClock(now func() int64) option { return func(d *Dict) { d.now = now } }

// withShards forces the number of shards (a power of two).
func withShards(n int) option {
	return func(d *Dict) { d.shards = make([]shard, n) }
}

// New returns an empty dictionary holding at most capacityBytes bytes of
// entries, as accounted by EntryOverhead. It panics if capacityBytes <= 0;
// configuration is checked with Validate before.
func New(name string, capacityBytes int) *Dict {
	return newDict(name, capacityBytes)
}

func newDict(name string, capacity int, opts ...option) *Dict {
	if capacity <= 0 {
		panic("shdict.New: capacity must be > 0")
	}
	d := &Dict{name: name, capacity: capacity, seed: maphash.MakeSeed()}
	base := time.Now()
	// +1 keeps now() > 0, so 0 can mean "never expires".
	d.now = func() int64 { return int64(time.Since(base)) + 1 }
	for _, o := range opts {
		o(d)
	}
	if d.shards == nil {
		n := maxShards
		for n > 1 && capacity/n < minShardBytes {
			n /= 2
		}
		d.shards = make([]shard, n)
	}
	n := len(d.shards)
	d.mask = uint64(n - 1)
	for i := range d.shards {
		c := capacity / n
		if i == n-1 {
			c = capacity - c*(n-1)
		}
		d.shards[i].init(c)
	}
	return d
}

// Name returns the dictionary's name.
func (d *Dict) Name() string { return d.name }

// Capacity returns the capacity in bytes given to New (ngx.shared.DICT's
// capacity).
func (d *Dict) Capacity() int { return d.capacity }

// FreeSpace returns the bytes not charged to any entry, summed over shards
// (ngx.shared.DICT's free_space). An entry larger than one shard's free space
// may still need evictions even when FreeSpace is larger.
func (d *Dict) FreeSpace() int {
	free := 0
	for i := range d.shards {
		s := &d.shards[i]
		s.mu.Lock()
		free += s.capacity - s.used
		s.mu.Unlock()
	}
	return free
}

func (d *Dict) shard(key string) *shard {
	if d.mask == 0 {
		return &d.shards[0]
	}
	return &d.shards[maphash.String(d.seed, key)&d.mask]
}

func checkKey(key string) error {
	if key == "" {
		return ErrEmptyKey
	}
	if len(key) > MaxKeyLen {
		return ErrKeyTooLong
	}
	return nil
}

// expiresAt converts a TTL to an absolute expiry time; 0 means never.
func (d *Dict) expiresAt(ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	return d.now() + int64(ttl)
}
