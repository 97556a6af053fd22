package shdict

import "strings"

// list is a deque of strings and numbers: its elements are front reversed,
// then back, so pushes and pops at both ends are amortized O(1).
type list struct {
	front, back []Value
}

func (l *list) len() int { return len(l.front) + len(l.back) }

func (l *list) pop(left bool) Value {
	var v Value
	switch {
	case left && len(l.front) > 0:
		i := len(l.front) - 1
		v, l.front[i] = l.front[i], Value{}
		l.front = l.front[:i]
	case left:
		v, l.back[0] = l.back[0], Value{}
		l.back = l.back[1:]
	case len(l.back) > 0:
		i := len(l.back) - 1
		v, l.back[i] = l.back[i], Value{}
		l.back = l.back[:i]
	default:
		v, l.front[0] = l.front[0], Value{}
		l.front = l.front[1:]
	}
	return v
}

// LPush inserts v at the head of the list stored under key, creating the list
// if key is absent or expired, and returns the list's new length
// (ngx.shared.DICT's lpush). v must be a string or a number (ErrBadValue).
// It fails with ErrNotList when key holds another kind of value, and with
// ErrNoMemory rather than evict a valid entry. A new list never expires.
func (d *Dict) LPush(key string, v Value) (int, error) { return d.push(key, v, true) }

// RPush is LPush at the tail of the list (ngx.shared.DICT's rpush).
func (d *Dict) RPush(key string, v Value) (int, error) { return d.push(key, v, false) }

// LPop removes and returns the head of the list stored under key
// (ngx.shared.DICT's lpop). ok is false when key is absent or expired; a list
// is removed with its last element. It fails with ErrNotList when key holds
// another kind of value.
func (d *Dict) LPop(key string) (v Value, ok bool, err error) { return d.pop(key, true) }

// RPop is LPop at the tail of the list (ngx.shared.DICT's rpop).
func (d *Dict) RPop(key string) (v Value, ok bool, err error) { return d.pop(key, false) }

// LLen returns the length of the list stored under key, 0 when key is absent
// or expired (ngx.shared.DICT's llen). It fails with ErrNotList when key
// holds another kind of value.
func (d *Dict) LLen(key string) (int, error) {
	s := d.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[key]
	if e == nil || (e.expires != 0 && e.expires <= d.now()) {
		return 0, nil
	}
	if e.list == nil {
		return 0, ErrNotList
	}
	return e.list.len(), nil
}

func (d *Dict) push(key string, v Value, left bool) (int, error) {
	if err := checkKey(key); err != nil {
		return 0, err
	}
	switch v.Kind {
	case KindString:
		v.Str = strings.Clone(v.Str)
	case KindNumber:
	default:
		return 0, ErrBadValue
	}
	add := v.size() + ListNodeOverhead
	s := d.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.begin(d, false)
	e := s.m[key]
	if e != nil && !e.live(now) {
		s.remove(e)
		e = nil
	}
	if e == nil {
		size := len(key) + EntryOverhead + add
		if size > s.capacity {
			return 0, ErrNoMemory
		}
		if _, err := s.makeRoom(size, true, now); err != nil {
			return 0, err
		}
		e = &entry{key: strings.Clone(key), hidx: -1, list: &list{}, val: Value{Kind: KindList}, size: size}
		s.m[e.key] = e
		s.used += size
		s.lruPushFront(e)
	} else {
		if e.list == nil {
			return 0, ErrNotList
		}
		// makeRoom only frees expired entries here (safe), so it cannot
		// free e, which is live.
		if e.size+add > s.capacity {
			return 0, ErrNoMemory
		}
		if _, err := s.makeRoom(add, true, now); err != nil {
			return 0, err
		}
		e.size += add
		s.used += add
		s.touch(e)
	}
	if left {
		e.list.front = append(e.list.front, v)
	} else {
		e.list.back = append(e.list.back, v)
	}
	return e.list.len(), nil
}

func (d *Dict) pop(key string, left bool) (Value, bool, error) {
	s := d.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.begin(d, false)
	e := s.m[key]
	if e == nil || !e.live(now) {
		return Value{}, false, nil
	}
	if e.list == nil {
		return Value{}, false, ErrNotList
	}
	v := e.list.pop(left)
	freed := v.size() + ListNodeOverhead
	e.size -= freed
	s.used -= freed
	if e.list.len() == 0 {
		s.remove(e)
	} else {
		s.touch(e)
	}
	return v, true, nil
}
