package ngxtmpl

import (
	"errors"
	"regexp"
	"testing"
)

func TestCompileSub(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"$", "$x", "${1", "${x}", "a$", "${}"} {
		if _, err := CompileSub(bad); !errors.Is(err, errCaptureName) {
			t.Errorf("%q: got %v, want %v", bad, err, errCaptureName)
		}
	}
	for _, good := range []string{"", "plain", "$$", "$0", "${10}x"} {
		if _, err := CompileSub(good); err != nil {
			t.Errorf("%q: %v", good, err)
		}
	}
}

func TestExpand(t *testing.T) {
	t.Parallel()
	tmpl, err := CompileSub("<$0|$1|${2}|$12|$$>")
	if err != nil {
		t.Fatal(err)
	}
	src := "ab"
	loc := []int{0, 2, 0, 1, 1, 2} // whole, $1 = a, $2 = b
	if got := string(tmpl.Expand([]byte("pre:"), src, loc)); got != "pre:<ab|a|b||$>" {
		t.Fatalf("got %q", got)
	}
}

func TestGroup(t *testing.T) {
	t.Parallel()
	re := regexp.MustCompile(`(a)(x)?(b)`)
	src := "-ab-"
	loc := re.FindStringSubmatchIndex(src)
	tests := []struct {
		n    int
		want string
	}{
		{0, "ab"},
		{1, "a"},
		{2, ""}, // did not take part in the match
		{3, "b"},
		{4, ""}, // no such group
		{-1, ""},
	}
	for _, tt := range tests {
		if got := Group(src, loc, tt.n); got != tt.want {
			t.Errorf("group %d: got %q, want %q", tt.n, got, tt.want)
		}
	}
	if got := Group(src, nil, 0); got != "" {
		t.Errorf("no match: got %q", got)
	}
}

func TestSub(t *testing.T) {
	t.Parallel()
	re := regexp.MustCompile(`/(\w+)/(\w+)`)
	tmpl, err := CompileSub("/$2/$1")
	if err != nil {
		t.Fatal(err)
	}
	out, loc, ok := Sub(re, &tmpl, "x/a/b/c/d")
	if !ok || out != "x/b/a/c/d" {
		t.Fatalf("got %q, %v", out, ok)
	}
	if Group("x/a/b/c/d", loc, 1) != "a" {
		t.Fatalf("loc %v does not locate the match", loc)
	}
	if out, loc, ok := Sub(re, &tmpl, "nomatch"); ok || loc != nil || out != "nomatch" {
		t.Fatalf("no match: got %q, %v, %v", out, loc, ok)
	}
}

func TestGSub(t *testing.T) {
	t.Parallel()
	re := regexp.MustCompile(`(\d)`)
	tmpl, err := CompileSub("<$1>")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ in, want string }{
		{"a1b22c", "a<1>b<2><2>c"},
		{"9", "<9>"},
		{"none", "none"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := GSub(re, &tmpl, tt.in); got != tt.want {
			t.Errorf("%q: got %q, want %q", tt.in, got, tt.want)
		}
	}
	// An empty match between every byte, as ngx.re.gsub does.
	if got := GSub(regexp.MustCompile(`x*`), &tmpl, "ab"); got != "<>a<>b<>" {
		t.Errorf("empty matches: got %q", got)
	}
}
