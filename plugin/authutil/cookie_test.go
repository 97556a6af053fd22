package authutil_test

import (
	"testing"

	"github.com/sluicegw/sluice/plugin/authutil"
)

func TestCookieValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		header, name string
		want         string
		ok           bool
	}{
		{"", "jwt", "", false},
		{"jwt=tok", "jwt", "tok", true},
		{"a=1; jwt=tok; b=2", "jwt", "tok", true},
		{"a=1;jwt=tok", "jwt", "tok", true},
		{"a=1;\t jwt= tok ", "jwt", "tok", true},
		{"jwt=first; jwt=second", "jwt", "first", true},
		{"jwt=", "jwt", "", true},
		{"jwt=a=b", "jwt", "a=b", true},
		{"JWT=tok", "jwt", "", false}, // names are case-sensitive
		{"xjwt=tok; jwtx=tok", "jwt", "", false},
		{"jwt", "jwt", "", false},
		{"jwt =tok", "jwt", "", false},
	}
	for _, tt := range tests {
		got, ok := authutil.CookieValue(tt.header, tt.name)
		if got != tt.want || ok != tt.ok {
			t.Errorf("CookieValue(%q, %q) = %q, %v; want %q, %v", tt.header, tt.name, got, ok, tt.want, tt.ok)
		}
	}
}

func TestRemoveCookie(t *testing.T) {
	t.Parallel()
	tests := []struct{ header, name, want string }{
		{"", "jwt", ""},
		{"jwt=tok", "jwt", ""},
		{"a=b/c; jwt=tok;c=%7B", "jwt", "a=b/c; c=%7B"},
		{"jwt=1; a=1; jwt=2", "jwt", "a=1"},
		{" a=1 ;; b=2 ", "jwt", "a=1; b=2"},
		{"jwt", "jwt", ""},
		{"JWT=tok", "jwt", "JWT=tok"},
	}
	for _, tt := range tests {
		if got := authutil.RemoveCookie(tt.header, tt.name); got != tt.want {
			t.Errorf("RemoveCookie(%q, %q) = %q, want %q", tt.header, tt.name, got, tt.want)
		}
	}
}
