package shdict

import (
	"slices"
	"testing"
)

func TestRegistry(t *testing.T) {
	t.Parallel()
	r := NewRegistry()
	if _, ok := r.Get("cache"); ok {
		t.Fatal("empty registry has a dict")
	}
	d, err := r.Define("cache", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	d.Set("k", Number(1), 0, 0)
	r.Define("limits", 64<<10)

	// Redefining with the same size keeps the contents (reload).
	again, _ := r.Define("cache", 1<<20)
	if again != d {
		t.Fatal("same-size Define returned a new dict")
	}
	if got, ok := r.Get("cache"); !ok || got != d {
		t.Fatal("Get did not return the defined dict")
	}
	// Another size gives a new, empty dictionary.
	resized, _ := r.Define("cache", 2<<20)
	if resized == d || resized.Capacity() != 2<<20 {
		t.Fatal("resize kept the old dict")
	}
	if _, _, ok := resized.Get("k"); ok {
		t.Fatal("resized dict is not empty")
	}
	if names := r.Names(); !slices.Equal(names, []string{"cache", "limits"}) {
		t.Fatalf("Names = %v", names)
	}
	r.Remove("limits")
	if _, ok := r.Get("limits"); ok {
		t.Fatal("Remove did not remove")
	}
}

func TestDefineValidates(t *testing.T) {
	t.Parallel()
	r := NewRegistry()
	for _, tc := range []struct {
		desc, name string
		capacity   int
		want       string
	}{
		{"empty name", "", 1 << 20, "shared_dicts: name must not be empty"},
		{"too small", "tiny", 1024, "shared_dicts.tiny: size 1024 is below the minimum of 8192 bytes"},
	} {
		if _, err := r.Define(tc.name, tc.capacity); err == nil || err.Error() != tc.want {
			t.Errorf("%s: err = %v, want %q", tc.desc, err, tc.want)
		}
	}
	if len(r.Names()) != 0 {
		t.Fatal("invalid Define registered a dict")
	}
}

func TestParseSize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want int
		ok   bool
	}{
		{"8192", 8192, true},
		{"10m", 10 << 20, true},
		{"10M", 10 << 20, true},
		{"512k", 512 << 10, true},
		{"1g", 1 << 30, true},
		{"", 0, false},
		{"m", 0, false},
		{"-1k", 0, false},
		{"10mb", 0, false},
		{"1.5m", 0, false},
	} {
		got, err := ParseSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v", tc.in, got, err)
		}
	}
}
