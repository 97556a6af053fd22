package shdict

import (
	"errors"
	"testing"
	"time"
)

func TestListPushPop(t *testing.T) {
	t.Parallel()
	d, _ := newTestDict(64 << 10)
	if n, err := d.LLen("l"); n != 0 || err != nil {
		t.Fatalf("LLen of missing = %d, %v", n, err)
	}
	if _, ok, err := d.LPop("l"); ok || err != nil {
		t.Fatalf("LPop of missing: ok=%v err=%v", ok, err)
	}
	// Build [c b a 1 2] with pushes at both ends.
	for i, step := range []struct {
		left bool
		v    Value
	}{
		{true, String("a")}, {false, Number(1)}, {true, String("b")},
		{false, Number(2)}, {true, String("c")},
	} {
		var n int
		var err error
		if step.left {
			n, err = d.LPush("l", step.v)
		} else {
			n, err = d.RPush("l", step.v)
		}
		if err != nil || n != i+1 {
			t.Fatalf("push %d = %d, %v", i, n, err)
		}
	}
	if v, _, ok := d.Get("l"); !ok || v.Kind != KindList {
		t.Fatalf("Get of a list = %+v, %v; want KindList", v, ok)
	}
	checkInvariants(t, d)
	want := []struct {
		left bool
		v    Value
	}{
		{true, String("c")}, {false, Number(2)}, {false, Number(1)},
		{true, String("b")}, {false, String("a")},
	}
	for i, w := range want {
		var v Value
		var ok bool
		var err error
		if w.left {
			v, ok, err = d.LPop("l")
		} else {
			v, ok, err = d.RPop("l")
		}
		if !ok || err != nil || v != w.v {
			t.Fatalf("pop %d = %+v, %v, %v; want %+v", i, v, ok, err, w.v)
		}
		if n, _ := d.LLen("l"); n != len(want)-i-1 {
			t.Fatalf("LLen after pop %d = %d", i, n)
		}
		checkInvariants(t, d)
	}
	// The last pop removed the key and freed its memory.
	if _, _, ok := d.Get("l"); ok {
		t.Fatal("empty list still stored")
	}
	if d.FreeSpace() != d.Capacity() {
		t.Fatalf("FreeSpace = %d, want %d", d.FreeSpace(), d.Capacity())
	}
}

func TestListTypeErrors(t *testing.T) {
	t.Parallel()
	d, _ := newTestDict(64 << 10)
	d.Set("s", String("x"), 0, 0)
	if _, err := d.LPush("s", String("y")); !errors.Is(err, ErrNotList) {
		t.Errorf("LPush on string: %v", err)
	}
	if _, _, err := d.RPop("s"); !errors.Is(err, ErrNotList) {
		t.Errorf("RPop on string: %v", err)
	}
	if _, err := d.LLen("s"); !errors.Is(err, ErrNotList) {
		t.Errorf("LLen on string: %v", err)
	}
	d.RPush("l", Number(1))
	if _, _, err := d.Incr("l", 1, nil, 0); !errors.Is(err, ErrNotNumber) {
		t.Errorf("Incr on list: %v", err)
	}
	// Set replaces a list like any value.
	d.Set("l", Number(5), 0, 0)
	if v, _, _ := d.Get("l"); v != Number(5) {
		t.Errorf("Set over list: %+v", v)
	}
	checkInvariants(t, d)
}

func TestListExpiredAndNoMemory(t *testing.T) {
	t.Parallel()
	d, clock := newTestDict(2*EntryOverhead + 100)
	d.RPush("l", String("x"))
	d.Expire("l", time.Second)
	clock.advance(time.Second)
	if n, _ := d.LLen("l"); n != 0 {
		t.Fatalf("LLen of expired list = %d", n)
	}
	// Pushing onto an expired list starts a new one, without expiry.
	if n, err := d.RPush("l", String("y")); n != 1 || err != nil {
		t.Fatalf("RPush onto expired = %d, %v", n, err)
	}
	if ttl, _ := d.TTL("l"); ttl != 0 {
		t.Fatalf("TTL of new list = %v", ttl)
	}
	d.Set("v", Bool(true), 0, 0)
	// Pushes never evict valid entries.
	if _, err := d.RPush("l", String(string(make([]byte, 60)))); !errors.Is(err, ErrNoMemory) {
		t.Fatalf("RPush over capacity = %v", err)
	}
	if _, err := d.LPush("other", Number(1)); !errors.Is(err, ErrNoMemory) {
		t.Fatalf("LPush new list over capacity = %v", err)
	}
	if _, _, ok := d.Get("v"); !ok {
		t.Fatal("a push evicted a valid entry")
	}
	checkInvariants(t, d)
}
