package shdict

import (
	"strings"
	"sync"
)

// entry is one key's slot. Its layout is what EntryOverhead charges for: 104
// bytes, allocated from the 112-byte size class.
type entry struct {
	key string
	// val is the value; for a list, val.Kind is KindList and list holds the
	// elements.
	val  Value
	list *list
	// expires is the expiry time on the Dict's clock, 0 for never. FlushAll
	// sets it to -1, which is expired at any time.
	expires int64
	// prev and next link the shard's LRU list; prev is more recently used.
	prev, next *entry
	// size is what the entry is charged: key, value and EntryOverhead.
	size  int
	flags uint32
	// hidx is the entry's index in the shard's expiry heap, -1 when absent.
	// Invariant: hidx >= 0 exactly when expires != 0.
	hidx int32
}

// live reports whether the entry has not expired at now. now may be 0 when
// the shard's heap is empty, since then no entry has an expiry.
func (e *entry) live(now int64) bool { return e.expires == 0 || e.expires > now }

// shard is one lock's worth of a Dict. All methods require mu to be held.
type shard struct {
	mu sync.Mutex
	m  map[string]*entry
	// head is the most recently used entry, tail the least.
	head, tail *entry
	// heap is a min-heap on expires of the entries that have an expiry, so
	// expired entries are found and freed before any valid one is evicted.
	heap     []*entry
	capacity int
	used     int
	// Padding keeps neighbouring shards' mutexes off one cache line.
	_ [64]byte
}

func (s *shard) init(capacity int) {
	s.m = make(map[string]*entry)
	s.capacity = capacity
}

// lruPushFront links e as the most recently used entry.
func (s *shard) lruPushFront(e *entry) {
	e.prev = nil
	e.next = s.head
	if s.head != nil {
		s.head.prev = e
	} else {
		s.tail = e
	}
	s.head = e
}

func (s *shard) lruRemove(e *entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		s.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		s.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

// touch marks e as the most recently used entry.
func (s *shard) touch(e *entry) {
	if s.head == e {
		return
	}
	s.lruRemove(e)
	s.lruPushFront(e)
}

// setExpires changes e's expiry, keeping the heap invariant.
func (s *shard) setExpires(e *entry, exp int64) {
	switch {
	case exp == 0 && e.hidx >= 0:
		s.heapRemove(e)
		e.expires = 0
	case exp == 0:
		e.expires = 0
	case e.hidx >= 0:
		e.expires = exp
		s.heapFix(int(e.hidx))
	default:
		e.expires = exp
		s.heapPush(e)
	}
}

// remove deletes e from the shard and frees its bytes.
func (s *shard) remove(e *entry) {
	delete(s.m, e.key)
	s.lruRemove(e)
	if e.hidx >= 0 {
		s.heapRemove(e)
	}
	s.used -= e.size
}

// detach unlinks e from the LRU list and the heap, so that makeRoom cannot
// evict it while it is being rewritten; reattach undoes it.
func (s *shard) detach(e *entry) {
	s.lruRemove(e)
	if e.hidx >= 0 {
		s.heapRemove(e)
	}
}

func (s *shard) reattach(e *entry) {
	s.lruPushFront(e)
	if e.expires != 0 {
		s.heapPush(e)
	}
}

// sweep frees expired entries, soonest-expired first, at most max of them
// (0 for all), and returns how many it freed.
func (s *shard) sweep(now int64, max int) int {
	n := 0
	for len(s.heap) > 0 && s.heap[0].expires <= now && (max == 0 || n < max) {
		s.remove(s.heap[0])
		n++
	}
	return n
}

// makeRoom frees entries until need more bytes fit: expired entries first,
// then, unless safe, least recently used ones. forcible reports whether a
// valid entry was evicted. The caller has checked that the entry fits in an
// empty shard, so a non-safe call always succeeds.
func (s *shard) makeRoom(need int, safe bool, now int64) (forcible bool, err error) {
	for s.used+need > s.capacity {
		if len(s.heap) > 0 && s.heap[0].expires <= now {
			s.remove(s.heap[0])
			continue
		}
		if safe || s.tail == nil {
			return forcible, ErrNoMemory
		}
		s.remove(s.tail)
		forcible = true
	}
	return forcible, nil
}

// put stores v under key, replacing e when it is not nil (e may be expired).
// size is the new entry's charge. On ErrNoMemory an existing entry is left
// as it was.
func (s *shard) put(e *entry, key string, v Value, exp int64, flags uint32, size int, safe bool, now int64) (bool, error) {
	if size > s.capacity {
		return false, ErrNoMemory
	}
	if e == nil {
		forcible, err := s.makeRoom(size, safe, now)
		if err != nil {
			return forcible, err
		}
		e = &entry{key: strings.Clone(key), hidx: -1}
		s.m[e.key] = e
		s.fill(e, v, exp, flags, size)
		return forcible, nil
	}
	s.detach(e)
	forcible, err := s.makeRoom(size-e.size, safe, now)
	if err != nil {
		s.reattach(e)
		return forcible, err
	}
	s.used -= e.size
	s.fill(e, v, exp, flags, size)
	return forcible, nil
}

// fill sets a detached or new entry's contents and links it in.
func (s *shard) fill(e *entry, v Value, exp int64, flags uint32, size int) {
	if v.Kind == KindString {
		// Copy so the dictionary never pins a caller's larger buffer, which
		// would make the byte accounting meaningless.
		v.Str = strings.Clone(v.Str)
	}
	e.val = v
	e.list = nil
	e.flags = flags
	e.expires = exp
	e.size = size
	s.used += size
	s.reattach(e)
}

// The expiry heap: a binary min-heap on entry.expires. It is written out
// rather than built on container/heap to keep interface calls off the write
// path.

func (s *shard) heapPush(e *entry) {
	e.hidx = int32(len(s.heap))
	s.heap = append(s.heap, e)
	s.heapUp(len(s.heap) - 1)
}

func (s *shard) heapRemove(e *entry) {
	i := int(e.hidx)
	last := len(s.heap) - 1
	if i != last {
		s.heapSwap(i, last)
	}
	s.heap[last] = nil
	s.heap = s.heap[:last]
	e.hidx = -1
	if i != last {
		s.heapFix(i)
	}
}

func (s *shard) heapFix(i int) {
	if !s.heapDown(i) {
		s.heapUp(i)
	}
}

func (s *shard) heapSwap(i, j int) {
	h := s.heap
	h[i], h[j] = h[j], h[i]
	h[i].hidx = int32(i)
	h[j].hidx = int32(j)
}

func (s *shard) heapUp(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if s.heap[p].expires <= s.heap[i].expires {
			return
		}
		s.heapSwap(i, p)
		i = p
	}
}

// heapDown sifts i down and reports whether it moved.
func (s *shard) heapDown(i int) bool {
	start, n := i, len(s.heap)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		c := l
		if r := l + 1; r < n && s.heap[r].expires < s.heap[l].expires {
			c = r
		}
		if s.heap[i].expires <= s.heap[c].expires {
			break
		}
		s.heapSwap(i, c)
		i = c
	}
	return i > start
}
