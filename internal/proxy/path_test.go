package proxy

import (
	"strings"
	"testing"
)

func TestNormalizePath(t *testing.T) {
	tests := []struct {
		raw, want  string
		structural bool
		bad        bool
	}{
		{raw: "/", want: "/"},
		{raw: "/api/users", want: "/api/users"},
		{raw: "/a%20b", want: "/a b"},
		{raw: "/a%2Fb", want: "/a/b"},
		{raw: "//a///b", want: "/a/b", structural: true},
		{raw: "/a/./b", want: "/a/b", structural: true},
		{raw: "/a/b/..", want: "/a/", structural: true},
		{raw: "/a/b/../c", want: "/a/c", structural: true},
		{raw: "/public/../admin", want: "/admin", structural: true},
		{raw: "/public/%2e%2e/admin", want: "/admin", structural: true},
		{raw: "/a/.", want: "/a/", structural: true},
		{raw: "/..", bad: true},
		{raw: "/a/../../b", bad: true},
		{raw: "/a%zz", bad: true},
		{raw: "/a%2", bad: true},
		{raw: "/a%00b", bad: true},
		{raw: "relative", bad: true},
		{raw: "", bad: true},
		{raw: "*", want: "*"},
	}
	for _, tc := range tests {
		got, structural, err := normalizePath(tc.raw)
		if tc.bad {
			if err == nil {
				t.Errorf("normalizePath(%q) = %q, want error", tc.raw, got)
			}
			continue
		}
		if err != nil || got != tc.want || structural != tc.structural {
			t.Errorf("normalizePath(%q) = %q, %v, %v; want %q, %v", tc.raw, got, structural, err, tc.want, tc.structural)
		}
	}
}

func TestNormalizePathCleanDoesNotAllocate(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		_, _, _ = normalizePath("/api/v1/users/123")
	})
	if allocs != 0 {
		t.Fatalf("clean path allocated %v times", allocs)
	}
}

func TestEscapePathRoundTrips(t *testing.T) {
	for _, p := range []string{"/a b", "/ü", "/a?b#c", "/a%b", "/plain/path"} {
		esc := escapePath(p)
		if strings.ContainsAny(esc, " ?#") {
			t.Errorf("escapePath(%q) = %q still has unsafe bytes", p, esc)
		}
		back, _, err := normalizePath(esc)
		if err != nil || back != p {
			t.Errorf("normalizePath(escapePath(%q)) = %q, %v", p, back, err)
		}
	}
}

func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"/", "/a/../b", "//x", "/%2e%2e/", "/a/./b/", "/%41"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if strings.ContainsFunc(raw, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return // both HTTP parsers reject raw control bytes in a target
		}
		p, _, err := normalizePath(raw)
		if err != nil {
			return
		}
		if p == "*" {
			return
		}
		// A normalized path is absolute, has no dot segments and no "//".
		if !strings.HasPrefix(p, "/") || strings.Contains(p, "//") ||
			strings.Contains(p+"/", "/./") || strings.Contains(p+"/", "/../") {
			t.Fatalf("normalizePath(%q) = %q is not normal", raw, p)
		}
		// Normalizing is idempotent through the escaped form.
		again, _, err := normalizePath(escapePath(p))
		if err != nil || again != p {
			t.Fatalf("re-normalizing %q gave %q, %v", p, again, err)
		}
	})
}
