package shdict

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"
)

func ptr(f float64) *float64 { return &f }

func TestErrorStrings(t *testing.T) {
	t.Parallel()
	for err, want := range map[error]string{
		ErrExists:    "exists",
		ErrNotFound:  "not found",
		ErrNoMemory:  "no memory",
		ErrNotNumber: "not a number",
		ErrNotList:   "value not a list",
	} {
		if err.Error() != want {
			t.Errorf("got %q, want %q", err.Error(), want)
		}
	}
}

func TestGetSetRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc  string
		v     Value
		flags uint32
	}{
		{"string", String("hello"), 0},
		{"empty string", String(""), 7},
		{"number", Number(-3.5), 1},
		{"true", Bool(true), 0},
		{"false", Bool(false), 1<<32 - 1},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			d := New("t", 1<<20)
			if forcible, err := d.Set("k", tc.v, 0, tc.flags); err != nil || forcible {
				t.Fatalf("Set = %v, %v", forcible, err)
			}
			v, flags, ok := d.Get("k")
			if !ok || v != tc.v || flags != tc.flags {
				t.Fatalf("Get = %+v, %d, %v; want %+v, %d", v, flags, ok, tc.v, tc.flags)
			}
			checkInvariants(t, d)
		})
	}
}

func TestGetMissing(t *testing.T) {
	t.Parallel()
	d := New("t", 1<<20)
	if v, flags, ok := d.Get("nope"); ok || v != (Value{}) || flags != 0 {
		t.Fatalf("Get = %+v, %d, %v", v, flags, ok)
	}
	if _, _, _, ok := d.GetStale("nope"); ok {
		t.Fatal("GetStale found a missing key")
	}
}

func TestSetOverwriteAndDelete(t *testing.T) {
	t.Parallel()
	d, _ := newTestDict(64 << 10)
	d.Set("k", String("a"), 0, 1)
	d.Set("k", Number(2), 0, 2)
	if v, f, _ := d.Get("k"); v != Number(2) || f != 2 {
		t.Fatalf("after overwrite: %+v, %d", v, f)
	}
	// Setting nil deletes, as set(key, nil) does.
	if _, err := d.Set("k", Value{}, 0, 0); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := d.Get("k"); ok {
		t.Fatal("set nil did not delete")
	}
	d.Set("k", Bool(true), 0, 0)
	d.Delete("k")
	d.Delete("never-there")
	if _, _, ok := d.Get("k"); ok {
		t.Fatal("Delete did not delete")
	}
	if d.FreeSpace() != d.Capacity() {
		t.Fatalf("FreeSpace = %d after deleting all, want %d", d.FreeSpace(), d.Capacity())
	}
	checkInvariants(t, d)
}

func TestArgumentErrors(t *testing.T) {
	t.Parallel()
	d := New("t", 1<<20)
	long := strings.Repeat("k", MaxKeyLen+1)
	tests := []struct {
		desc string
		err  error
		want error
	}{
		{"empty key", second(d.Set("", String("v"), 0, 0)), ErrEmptyKey},
		{"long key", second(d.Set(long, String("v"), 0, 0)), ErrKeyTooLong},
		{"negative ttl", second(d.Set("k", String("v"), -time.Second, 0)), ErrBadTTL},
		{"set list", second(d.Set("k", Value{Kind: KindList}, 0, 0)), ErrBadValue},
		{"add nil", second(d.Add("k", Value{}, 0, 0)), ErrNilValue},
		{"replace nil", second(d.Replace("k", Value{}, 0, 0)), ErrNilValue},
		{"incr empty key", third(d.Incr("", 1, nil, 0)), ErrEmptyKey},
		{"incr negative init_ttl", third(d.Incr("k", 1, ptr(0), -1)), ErrBadTTL},
		{"expire negative", d.Expire("k", -1), ErrBadTTL},
		{"push bool", second(d.LPush("l", Bool(true))), ErrBadValue},
	}
	for _, tc := range tests {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.desc, tc.err, tc.want)
		}
	}
}

func second[A, B any](_ A, b B) B        { return b }
func third[A, B, C any](_ A, _ B, c C) C { return c }

func TestAdd(t *testing.T) {
	t.Parallel()
	d, clock := newTestDict(64 << 10)
	if _, err := d.Add("k", String("first"), time.Second, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Add("k", String("second"), 0, 0); !errors.Is(err, ErrExists) {
		t.Fatalf("Add on existing key: %v, want exists", err)
	}
	if err := d.SafeAdd("k", String("second"), 0, 0); !errors.Is(err, ErrExists) {
		t.Fatalf("SafeAdd on existing key: %v, want exists", err)
	}
	if v, _, _ := d.Get("k"); v.Str != "first" {
		t.Fatalf("failed Add changed the value to %q", v.Str)
	}
	// An expired key does not exist for Add.
	clock.advance(time.Second)
	if _, err := d.Add("k", String("again"), 0, 3); err != nil {
		t.Fatalf("Add on expired key: %v", err)
	}
	if v, f, ok := d.Get("k"); !ok || v.Str != "again" || f != 3 {
		t.Fatalf("Get = %+v, %d, %v", v, f, ok)
	}
	if ttl, _ := d.TTL("k"); ttl != 0 {
		t.Fatalf("TTL = %v, want 0 (the new entry has no expiry)", ttl)
	}
	checkInvariants(t, d)
}

func TestReplace(t *testing.T) {
	t.Parallel()
	d, clock := newTestDict(64 << 10)
	if _, err := d.Replace("k", Number(1), 0, 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Replace on missing key: %v, want not found", err)
	}
	d.Set("k", Number(1), time.Second, 0)
	if _, err := d.Replace("k", Number(2), 0, 9); err != nil {
		t.Fatal(err)
	}
	if v, f, _ := d.Get("k"); v != Number(2) || f != 9 {
		t.Fatalf("Get = %+v, %d", v, f)
	}
	d.Set("k", Number(1), time.Second, 0)
	clock.advance(2 * time.Second)
	if _, err := d.Replace("k", Number(3), 0, 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Replace on expired key: %v, want not found", err)
	}
	checkInvariants(t, d)
}

func TestIncr(t *testing.T) {
	t.Parallel()
	d, clock := newTestDict(64 << 10)
	if _, _, err := d.Incr("n", 1, nil, 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Incr without init on missing key: %v, want not found", err)
	}
	v, forcible, err := d.Incr("n", 1, ptr(10), 0)
	if err != nil || forcible || v != 11 {
		t.Fatalf("Incr with init = %v, %v, %v; want 11", v, forcible, err)
	}
	if v, _, _ = d.Incr("n", -0.5, ptr(100), 0); v != 10.5 {
		t.Fatalf("Incr on existing key = %v, want 10.5 (init ignored)", v)
	}
	if got, _, _ := d.Get("n"); got != Number(10.5) {
		t.Fatalf("Get = %+v", got)
	}

	d.Set("s", String("x"), 0, 0)
	if _, _, err := d.Incr("s", 1, ptr(0), 0); !errors.Is(err, ErrNotNumber) {
		t.Fatalf("Incr on string: %v, want not a number", err)
	}
	d.Set("b", Bool(true), 0, 0)
	if _, _, err := d.Incr("b", 1, nil, 0); !errors.Is(err, ErrNotNumber) {
		t.Fatalf("Incr on bool: %v, want not a number", err)
	}

	// init_ttl applies when init is used, and the entry then expires.
	if v, _, _ = d.Incr("t", 1, ptr(0), 100*time.Millisecond); v != 1 {
		t.Fatalf("Incr = %v, want 1", v)
	}
	d.Incr("t", 1, ptr(0), time.Hour) // existing: init_ttl has no effect
	if ttl, _ := d.TTL("t"); ttl != 100*time.Millisecond {
		t.Fatalf("TTL = %v, want 100ms", ttl)
	}
	clock.advance(200 * time.Millisecond)
	if _, _, ok := d.Get("t"); ok {
		t.Fatal("incr'd key did not expire")
	}
	if _, _, err := d.Incr("t", 1, nil, 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Incr on expired key without init: %v, want not found", err)
	}
	// An expired key of another kind, with flags, is re-initialised as a
	// number with flags 0.
	d.Set("e", String("old"), time.Millisecond, 5)
	clock.advance(time.Second)
	if v, _, err = d.Incr("e", 2, ptr(40), 0); err != nil || v != 42 {
		t.Fatalf("Incr on expired string = %v, %v", v, err)
	}
	if got, f, _ := d.Get("e"); got != Number(42) || f != 0 {
		t.Fatalf("Get = %+v, %d", got, f)
	}
	checkInvariants(t, d)
}

func TestTTLAndExpire(t *testing.T) {
	t.Parallel()
	d, clock := newTestDict(64 << 10)
	if _, err := d.TTL("k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("TTL on missing: %v", err)
	}
	if err := d.Expire("k", time.Second); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Expire on missing: %v", err)
	}
	d.Set("k", String("v"), 0, 0)
	if ttl, err := d.TTL("k"); ttl != 0 || err != nil {
		t.Fatalf("TTL of non-expiring = %v, %v", ttl, err)
	}
	d.Set("k", String("v"), 500*time.Millisecond, 0)
	clock.advance(200 * time.Millisecond)
	if ttl, err := d.TTL("k"); ttl != 300*time.Millisecond || err != nil {
		t.Fatalf("TTL = %v, %v; want 300ms", ttl, err)
	}
	// Expire extends from now.
	if err := d.Expire("k", time.Second); err != nil {
		t.Fatal(err)
	}
	clock.advance(900 * time.Millisecond)
	if _, _, ok := d.Get("k"); !ok {
		t.Fatal("key expired despite Expire")
	}
	// Expire 0 removes the expiry.
	if err := d.Expire("k", 0); err != nil {
		t.Fatal(err)
	}
	clock.advance(time.Hour)
	if ttl, err := d.TTL("k"); ttl != 0 || err != nil {
		t.Fatalf("TTL after Expire(0) = %v, %v", ttl, err)
	}
	// Expire on a non-expiring key gives it an expiry.
	d.Expire("k", time.Millisecond)
	clock.advance(time.Millisecond)
	if _, err := d.TTL("k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("TTL on expired: %v", err)
	}
	if err := d.Expire("k", time.Hour); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Expire on expired: %v", err)
	}
	checkInvariants(t, d)
}

func TestFlushAllThenGetStale(t *testing.T) {
	t.Parallel()
	d, _ := newTestDict(64 << 10)
	d.Set("a", String("va"), 0, 1)
	d.Set("b", Number(2), time.Hour, 2)
	d.FlushAll()
	checkInvariants(t, d)
	for _, k := range []string{"a", "b"} {
		if _, _, ok := d.Get(k); ok {
			t.Errorf("Get(%q) found a flushed key", k)
		}
		if _, err := d.TTL(k); !errors.Is(err, ErrNotFound) {
			t.Errorf("TTL(%q) = %v, want not found", k, err)
		}
	}
	v, f, stale, ok := d.GetStale("a")
	if !ok || !stale || v.Str != "va" || f != 1 {
		t.Fatalf("GetStale = %+v, %d, %v, %v", v, f, stale, ok)
	}
	if len(d.Keys(0)) != 0 {
		t.Fatalf("Keys after FlushAll = %v", d.Keys(0))
	}
	// Memory is only freed by FlushExpired.
	if d.FreeSpace() == d.Capacity() {
		t.Fatal("FlushAll freed memory")
	}
	if n := d.FlushExpired(0); n != 2 {
		t.Fatalf("FlushExpired = %d, want 2", n)
	}
	if _, _, _, ok := d.GetStale("a"); ok {
		t.Fatal("GetStale found a freed key")
	}
	if d.FreeSpace() != d.Capacity() {
		t.Fatalf("FreeSpace = %d, want %d", d.FreeSpace(), d.Capacity())
	}
	checkInvariants(t, d)
}

func TestGetStaleLive(t *testing.T) {
	t.Parallel()
	d, clock := newTestDict(64 << 10)
	d.Set("k", String("v"), time.Second, 4)
	if v, f, stale, ok := d.GetStale("k"); !ok || stale || v.Str != "v" || f != 4 {
		t.Fatalf("GetStale = %+v, %d, %v, %v", v, f, stale, ok)
	}
	clock.advance(time.Second)
	if _, _, stale, ok := d.GetStale("k"); !ok || !stale {
		t.Fatalf("GetStale after expiry: stale=%v ok=%v", stale, ok)
	}
}

func TestFlushExpiredMax(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	d := newDict("t", 1<<20, withClock(clock.now)) // 16 shards
	for i := range 10 {
		d.Set(keyN(i), Number(float64(i)), time.Second, 0)
	}
	d.Set("forever", Number(1), 0, 0)
	if n := d.FlushExpired(0); n != 0 {
		t.Fatalf("FlushExpired before expiry = %d", n)
	}
	clock.advance(time.Second)
	if n := d.FlushExpired(3); n != 3 {
		t.Fatalf("FlushExpired(3) = %d", n)
	}
	if n := d.FlushExpired(0); n != 7 {
		t.Fatalf("FlushExpired(0) = %d, want 7", n)
	}
	if keys := d.Keys(0); !slices.Equal(keys, []string{"forever"}) {
		t.Fatalf("Keys = %v", keys)
	}
	checkInvariants(t, d)
}

func keyN(i int) string { return "key-" + strconv.Itoa(i) }

func TestKeys(t *testing.T) {
	t.Parallel()
	d, clock := newTestDict(64 << 10)
	if keys := d.Keys(0); len(keys) != 0 {
		t.Fatalf("Keys of empty = %v", keys)
	}
	for _, k := range []string{"a", "b", "c", "d"} {
		d.Set(k, Bool(true), 0, 0)
	}
	d.Set("gone", Bool(true), time.Millisecond, 0)
	clock.advance(time.Millisecond)
	d.Get("a") // a becomes the most recently used
	if keys := d.Keys(0); !slices.Equal(keys, []string{"b", "c", "d", "a"}) {
		t.Fatalf("Keys(0) = %v, want LRU first without expired keys", keys)
	}
	if keys := d.Keys(2); !slices.Equal(keys, []string{"b", "c"}) {
		t.Fatalf("Keys(2) = %v", keys)
	}

	big := New("big", 4<<20)
	for i := range 2000 {
		big.Set(keyN(i), Number(1), 0, 0)
	}
	if n := len(big.Keys(1024)); n != 1024 {
		t.Fatalf("Keys(1024) returned %d", n)
	}
	if n := len(big.Keys(0)); n != 2000 {
		t.Fatalf("Keys(0) returned %d", n)
	}
}

func TestShardCount(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ capacity, shards int }{
		{8 << 10, 1}, {127 << 10, 1}, {128 << 10, 2}, {1 << 20, 16}, {100 << 20, 16},
	} {
		d := New("t", tc.capacity)
		if len(d.shards) != tc.shards {
			t.Errorf("capacity %d: %d shards, want %d", tc.capacity, len(d.shards), tc.shards)
		}
		total := 0
		for i := range d.shards {
			total += d.shards[i].capacity
		}
		if total != tc.capacity || d.Capacity() != tc.capacity || d.FreeSpace() != tc.capacity {
			t.Errorf("capacity %d: shards sum to %d", tc.capacity, total)
		}
	}
}

func TestNewPanicsOnZeroCapacity(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	New("t", 0)
}

func TestValueKindString(t *testing.T) {
	t.Parallel()
	got := []string{KindNil.String(), KindString.String(), KindNumber.String(), KindBool.String(), KindList.String(), ValueKind(99).String()}
	want := []string{"nil", "string", "number", "boolean", "list", "unknown"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v", got)
	}
}

func TestStoredStringsAreCopied(t *testing.T) {
	t.Parallel()
	d := New("t", 1<<20)
	buf := strings.Repeat("x", 4096)
	k, v := buf[:3], buf[3:8]
	d.Set(k, String(v), 0, 0)
	got, _, _ := d.Get(k)
	keys := d.Keys(0)
	// The dictionary must not pin buf through its key or value.
	if got.Str != v || unsafe.StringData(got.Str) == unsafe.StringData(v) ||
		unsafe.StringData(keys[0]) == unsafe.StringData(k) {
		t.Fatal("key or value shares the caller's buffer")
	}
}
