package shdict

import "time"

// Get returns the value stored under key and its user flags (ngx.shared.DICT's
// get). ok is false when the key is absent or expired. A list is reported as
// a Value of KindList with no contents (OpenResty returns "value is a list").
// Get marks the entry as recently used and does not allocate.
func (d *Dict) Get(key string) (v Value, flags uint32, ok bool) {
	s := d.shard(key)
	s.mu.Lock()
	e := s.m[key]
	if e == nil || (e.expires != 0 && e.expires <= d.now()) {
		s.mu.Unlock()
		return Value{}, 0, false
	}
	s.touch(e)
	v, flags = e.val, e.flags
	s.mu.Unlock()
	return v, flags, true
}

// GetStale is Get that also returns expired entries that have not been freed
// yet, with stale set (ngx.shared.DICT's get_stale). Expired entries are freed
// at any time to make room, so callers must not rely on finding them.
func (d *Dict) GetStale(key string) (v Value, flags uint32, stale, ok bool) {
	s := d.shard(key)
	s.mu.Lock()
	e := s.m[key]
	if e == nil {
		s.mu.Unlock()
		return Value{}, 0, false, false
	}
	stale = e.expires != 0 && e.expires <= d.now()
	if !stale {
		s.touch(e)
	}
	v, flags = e.val, e.flags
	s.mu.Unlock()
	return v, flags, stale, true
}

// Set stores v under key whatever is there (ngx.shared.DICT's set). ttl 0
// means the entry never expires; flags are returned by Get. When room is
// needed, expired entries are freed first, then least recently used ones;
// forcible reports that a valid entry was evicted. Setting a Value of KindNil
// deletes the key. The only error for a valid call is ErrNoMemory, when the
// entry is larger than a shard.
func (d *Dict) Set(key string, v Value, ttl time.Duration, flags uint32) (forcible bool, err error) {
	return d.store(key, v, ttl, flags, opSet, false)
}

// SafeSet is Set that never evicts valid entries: it returns ErrNoMemory
// instead (ngx.shared.DICT's safe_set).
func (d *Dict) SafeSet(key string, v Value, ttl time.Duration, flags uint32) error {
	_, err := d.store(key, v, ttl, flags, opSet, true)
	return err
}

// Add is Set that fails with ErrExists when key holds a value that has not
// expired (ngx.shared.DICT's add).
func (d *Dict) Add(key string, v Value, ttl time.Duration, flags uint32) (forcible bool, err error) {
	return d.store(key, v, ttl, flags, opAdd, false)
}

// SafeAdd is Add that never evicts valid entries: it returns ErrNoMemory
// instead (ngx.shared.DICT's safe_add).
func (d *Dict) SafeAdd(key string, v Value, ttl time.Duration, flags uint32) error {
	_, err := d.store(key, v, ttl, flags, opAdd, true)
	return err
}

// Replace is Set that fails with ErrNotFound when key is absent or expired
// (ngx.shared.DICT's replace).
func (d *Dict) Replace(key string, v Value, ttl time.Duration, flags uint32) (forcible bool, err error) {
	return d.store(key, v, ttl, flags, opReplace, false)
}

// Delete removes key, whatever it holds (ngx.shared.DICT's delete).
func (d *Dict) Delete(key string) {
	s := d.shard(key)
	s.mu.Lock()
	if e := s.m[key]; e != nil {
		s.remove(e)
	}
	s.mu.Unlock()
}

type storeOp uint8

const (
	opSet storeOp = iota
	opAdd
	opReplace
)

func (d *Dict) store(key string, v Value, ttl time.Duration, flags uint32, op storeOp, safe bool) (bool, error) {
	if err := checkKey(key); err != nil {
		return false, err
	}
	if ttl < 0 {
		return false, ErrBadTTL
	}
	switch v.Kind {
	case KindNil:
		if op != opSet {
			return false, ErrNilValue
		}
	case KindString, KindNumber, KindBool:
	default:
		return false, ErrBadValue
	}
	s := d.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.begin(d, ttl > 0)
	e := s.m[key]
	live := e != nil && e.live(now)
	switch {
	case op == opAdd && live:
		return false, ErrExists
	case op == opReplace && !live:
		return false, ErrNotFound
	case v.Kind == KindNil:
		if e != nil {
			s.remove(e)
		}
		return false, nil
	}
	var exp int64
	if ttl > 0 {
		exp = now + int64(ttl)
	}
	return s.put(e, key, v, exp, flags, len(key)+v.size()+EntryOverhead, safe, now)
}

// begin starts a write: it reads the clock when an expiry is involved and
// frees up to two expired entries, as OpenResty does on every write, so
// memory held by expired entries is reclaimed without a background task. It
// returns 0 when no entry in the shard can be expired and needClock is
// false, which entry.live accepts.
func (s *shard) begin(d *Dict, needClock bool) int64 {
	if len(s.heap) == 0 && !needClock {
		return 0
	}
	now := d.now()
	s.sweep(now, 2)
	return now
}

// Incr adds delta to the number stored under key and returns the result
// (ngx.shared.DICT's incr). When key is absent or expired it fails with
// ErrNotFound if init is nil, and otherwise stores *init + delta with flags 0
// and a TTL of initTTL (0 for never), evicting like Set (forcible). The TTL of
// an existing entry is left as is. It fails with ErrNotNumber when key holds
// a non-number. Incrementing an existing key does not allocate.
func (d *Dict) Incr(key string, delta float64, init *float64, initTTL time.Duration) (float64, bool, error) {
	if err := checkKey(key); err != nil {
		return 0, false, err
	}
	if initTTL < 0 {
		return 0, false, ErrBadTTL
	}
	s := d.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.begin(d, init != nil && initTTL > 0)
	e := s.m[key]
	if e != nil && e.live(now) {
		if e.val.Kind != KindNumber {
			return 0, false, ErrNotNumber
		}
		e.val.Num += delta
		s.touch(e)
		return e.val.Num, false, nil
	}
	if init == nil {
		return 0, false, ErrNotFound
	}
	v := Number(*init + delta)
	var exp int64
	if initTTL > 0 {
		exp = now + int64(initTTL)
	}
	forcible, err := s.put(e, key, v, exp, 0, len(key)+numberSize+EntryOverhead, false, now)
	if err != nil {
		return 0, forcible, err
	}
	return v.Num, forcible, nil
}

// TTL returns the time key has left to live, 0 for an entry that never
// expires (ngx.shared.DICT's ttl). It fails with ErrNotFound when key is
// absent or expired.
func (d *Dict) TTL(key string) (time.Duration, error) {
	s := d.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[key]
	if e == nil {
		return 0, ErrNotFound
	}
	if e.expires == 0 {
		return 0, nil
	}
	left := e.expires - d.now()
	if left <= 0 {
		return 0, ErrNotFound
	}
	return time.Duration(left), nil
}

// Expire sets the time key has left to live, from now; ttl 0 makes it never
// expire (ngx.shared.DICT's expire). It fails with ErrNotFound when key is
// absent or already expired: unlike OpenResty's C code, which revives expired
// entries, this follows its documentation, so a flushed entry stays flushed.
func (d *Dict) Expire(key string, ttl time.Duration) error {
	if ttl < 0 {
		return ErrBadTTL
	}
	s := d.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[key]
	if e == nil {
		return ErrNotFound
	}
	var now int64
	if e.expires != 0 || ttl > 0 {
		now = d.now()
	}
	if !e.live(now) {
		return ErrNotFound
	}
	var exp int64
	if ttl > 0 {
		exp = now + int64(ttl)
	}
	s.setExpires(e, exp)
	return nil
}

// FlushAll marks every entry as expired without freeing it
// (ngx.shared.DICT's flush_all): Get stops finding them, GetStale still does
// until they are freed by FlushExpired or to make room.
func (d *Dict) FlushAll() {
	for i := range d.shards {
		s := &d.shards[i]
		s.mu.Lock()
		// Every entry gets the same expiry, so any order is a valid heap.
		s.heap = s.heap[:0]
		for e := s.head; e != nil; e = e.next {
			e.expires = -1
			e.hidx = int32(len(s.heap))
			s.heap = append(s.heap, e)
		}
		s.mu.Unlock()
	}
}

// FlushExpired frees expired entries, at most max of them (0 for all), and
// returns how many it freed (ngx.shared.DICT's flush_expired).
func (d *Dict) FlushExpired(max int) int {
	freed := 0
	for i := range d.shards {
		s := &d.shards[i]
		s.mu.Lock()
		left := 0
		if max > 0 {
			left = max - freed
		}
		if len(s.heap) > 0 {
			freed += s.sweep(d.now(), left)
		}
		s.mu.Unlock()
		if max > 0 && freed >= max {
			break
		}
	}
	return freed
}

// Keys returns up to max keys that have not expired, 0 for all
// (ngx.shared.DICT's get_keys, whose Lua default is 1024). Within a shard
// keys come least recently used first; across shards the order is
// unspecified. Keys locks one shard at a time, so it is not a snapshot of the
// whole dictionary, and it walks every entry: keep it off the request path.
func (d *Dict) Keys(max int) []string {
	var keys []string
	for i := range d.shards {
		s := &d.shards[i]
		s.mu.Lock()
		var now int64
		if len(s.heap) > 0 {
			now = d.now()
		}
		for e := s.tail; e != nil; e = e.prev {
			if max > 0 && len(keys) >= max {
				break
			}
			if e.live(now) {
				keys = append(keys, e.key)
			}
		}
		s.mu.Unlock()
		if max > 0 && len(keys) >= max {
			break
		}
	}
	return keys
}
