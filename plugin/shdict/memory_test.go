package shdict

import (
	"errors"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// slot is the charge of a one-letter key holding a number.
var slot = entrySize("a", Number(0))

func TestLRUEvictionOrder(t *testing.T) {
	t.Parallel()
	d, _ := newTestDict(3 * slot)
	for _, k := range []string{"a", "b", "c"} {
		if forcible, err := d.Set(k, Number(1), 0, 0); forcible || err != nil {
			t.Fatalf("Set(%q) = %v, %v", k, forcible, err)
		}
	}
	if d.FreeSpace() != 0 {
		t.Fatalf("FreeSpace = %d, want 0", d.FreeSpace())
	}
	d.Get("a")                                   // order, most recent first: a c b
	d.Incr("b", 1, nil, 0)                       // b a c
	forcible, err := d.Set("d", Number(1), 0, 0) // evicts c
	if err != nil || !forcible {
		t.Fatalf("Set(d) = %v, %v; want forcible", forcible, err)
	}
	if keys := d.Keys(0); !slices.Equal(keys, []string{"a", "b", "d"}) {
		t.Fatalf("Keys = %v, want c evicted", keys)
	}
	// Overwriting an existing key in place needs no eviction.
	if forcible, _ = d.Set("a", Number(2), 0, 0); forcible {
		t.Fatal("overwrite with same size was forcible")
	}
	// A bigger value evicts as many LRU entries as needed: b, then d.
	big := String(strings.Repeat("x", 2*slot))
	if forcible, err = d.Set("a", big, 0, 0); err != nil || !forcible {
		t.Fatalf("growing Set = %v, %v", forcible, err)
	}
	if keys := d.Keys(0); !slices.Equal(keys, []string{"a"}) {
		t.Fatalf("Keys = %v, want only a", keys)
	}
	checkInvariants(t, d)
}

func TestExpiredEvictedBeforeLRU(t *testing.T) {
	t.Parallel()
	d, clock := newTestDict(3 * slot)
	d.Set("a", Number(1), 0, 0)           // least recently used, valid
	d.Set("b", Number(1), time.Second, 0) // most recent, about to expire
	d.Set("c", Number(1), 0, 0)
	d.Get("a")
	d.Get("b")
	clock.advance(time.Second)
	forcible, err := d.Set("d", Number(1), 0, 0)
	if err != nil || forcible {
		t.Fatalf("Set = %v, %v; want an expired entry freed, not forcible", forcible, err)
	}
	if keys := d.Keys(0); !slices.Equal(keys, []string{"c", "a", "d"}) {
		t.Fatalf("Keys = %v", keys)
	}
	checkInvariants(t, d)
}

func TestSafeSetNoMemory(t *testing.T) {
	t.Parallel()
	d, clock := newTestDict(2 * slot)
	d.Set("a", Number(1), 0, 0)
	d.Set("b", Number(1), time.Second, 0)
	if err := d.SafeSet("c", Number(1), 0, 0); !errors.Is(err, ErrNoMemory) {
		t.Fatalf("SafeSet = %v, want no memory", err)
	}
	if err := d.SafeAdd("c", Number(1), 0, 0); !errors.Is(err, ErrNoMemory) {
		t.Fatalf("SafeAdd = %v, want no memory", err)
	}
	// A failed SafeSet growing an existing key leaves the old value.
	if err := d.SafeSet("a", String("longer than eight"), 0, 0); !errors.Is(err, ErrNoMemory) {
		t.Fatalf("SafeSet grow = %v", err)
	}
	if v, _, ok := d.Get("a"); !ok || v != Number(1) {
		t.Fatalf("after failed SafeSet: %+v, %v", v, ok)
	}
	// Expired entries are fair game for Safe* variants.
	clock.advance(time.Second)
	if err := d.SafeSet("c", Number(1), 0, 0); err != nil {
		t.Fatalf("SafeSet with an expired entry to free = %v", err)
	}
	if keys := d.Keys(0); !slices.Equal(keys, []string{"a", "c"}) {
		t.Fatalf("Keys = %v", keys)
	}
	checkInvariants(t, d)
}

func TestTooLargeEvictsNothing(t *testing.T) {
	t.Parallel()
	d, _ := newTestDict(4 * slot)
	d.Set("a", Number(1), 0, 0)
	huge := String(strings.Repeat("x", 4*slot))
	if forcible, err := d.Set("b", huge, 0, 0); !errors.Is(err, ErrNoMemory) || forcible {
		t.Fatalf("Set = %v, %v; want no memory", forcible, err)
	}
	if _, err := d.Replace("a", huge, 0, 0); !errors.Is(err, ErrNoMemory) {
		t.Fatalf("Replace = %v; want no memory", err)
	}
	if _, _, ok := d.Get("a"); !ok {
		t.Fatal("an impossible Set evicted entries")
	}
	checkInvariants(t, d)
}

func TestIncrInitForcible(t *testing.T) {
	t.Parallel()
	d, _ := newTestDict(2 * slot)
	d.Set("a", Number(1), 0, 0)
	d.Set("b", Number(1), 0, 0)
	v, forcible, err := d.Incr("c", 1, ptr(0), 0)
	if err != nil || !forcible || v != 1 {
		t.Fatalf("Incr = %v, %v, %v; want 1, forcible", v, forcible, err)
	}
	if _, _, ok := d.Get("a"); ok {
		t.Fatal("a (LRU) was not evicted")
	}
}

func TestFreeSpaceAccounting(t *testing.T) {
	t.Parallel()
	d, clock := newTestDict(64 << 10)
	capacity := d.Capacity()
	if d.FreeSpace() != capacity {
		t.Fatalf("empty FreeSpace = %d", d.FreeSpace())
	}
	used := 0
	set := func(k string, v Value, ttl time.Duration) {
		t.Helper()
		if _, err := d.Set(k, v, ttl, 0); err != nil {
			t.Fatal(err)
		}
	}
	set("str", String("hello"), 0)
	used += entrySize("str", String("hello"))
	set("num", Number(1), 0)
	used += entrySize("num", Number(1))
	set("bool", Bool(true), time.Second)
	used += 4 + 1 + EntryOverhead
	if got := capacity - d.FreeSpace(); got != used {
		t.Fatalf("used = %d, want %d", got, used)
	}
	set("str", String("hello, world"), 0) // grows by 7
	used += 7
	if got := capacity - d.FreeSpace(); got != used {
		t.Fatalf("used after grow = %d, want %d", got, used)
	}
	d.LPush("list", String("abc"))
	d.RPush("list", Number(2))
	used += 4 + EntryOverhead + 3 + 8 + 2*ListNodeOverhead
	if got := capacity - d.FreeSpace(); got != used {
		t.Fatalf("used with list = %d, want %d", got, used)
	}
	clock.advance(time.Second)
	d.FlushExpired(0)
	used -= 4 + 1 + EntryOverhead
	d.Delete("num")
	used -= entrySize("num", Number(1))
	if got := capacity - d.FreeSpace(); got != used {
		t.Fatalf("used at end = %d, want %d", got, used)
	}
	checkInvariants(t, d)
}

// TestEntryOverheadIsRealistic measures the heap cost of entries so that
// EntryOverhead stays close to it. It allows a wide margin: map growth is
// stepwise.
func TestEntryOverheadIsRealistic(t *testing.T) {
	if testing.Short() {
		t.Skip("measures the heap")
	}
	const n = 100_000
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "k" + strconv.Itoa(1_000_000+i) // 8 bytes
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	d := New("m", 1<<30)
	for _, k := range keys {
		d.Set(k, Number(1), time.Hour, 0)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perEntry := float64(after.HeapAlloc-before.HeapAlloc)/n - 8 // minus the copied key
	t.Logf("measured %.0f bytes per entry (EntryOverhead = %d)", perEntry, EntryOverhead)
	if perEntry < EntryOverhead/2 || perEntry > EntryOverhead*2 {
		t.Errorf("EntryOverhead %d is far from the measured %.0f", EntryOverhead, perEntry)
	}
	runtime.KeepAlive(d)
}
