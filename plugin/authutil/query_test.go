package authutil_test

import (
	"testing"

	"github.com/sluicegw/sluice/plugin/authutil"
)

func TestQueryArg(t *testing.T) {
	t.Parallel()
	tests := []struct {
		q, name string
		want    string
		state   authutil.ArgState
	}{
		{"", "apikey", "", authutil.ArgAbsent},
		{"a=1&b=2", "apikey", "", authutil.ArgAbsent},
		{"apikeys=k1&xapikey=k1", "apikey", "", authutil.ArgAbsent},
		{"apikey=k1", "apikey", "k1", authutil.ArgOne},
		{"a=1&apikey=k2&b", "apikey", "k2", authutil.ArgOne},
		{"apikey=", "apikey", "", authutil.ArgOne},
		{"apikey=a+b%26c", "apikey", "a b&c", authutil.ArgOne},
		{"api%6Bey=k1", "apikey", "k1", authutil.ArgOne},
		{"a+b=1", "a b", "1", authutil.ArgOne},
		{"apikey=a=b", "apikey", "a=b", authutil.ArgOne},
		{"&&apikey=k1&&", "apikey", "k1", authutil.ArgOne},
		{"APIKEY=k1", "apikey", "", authutil.ArgAbsent}, // names are case-sensitive
		{"apikey", "apikey", "", authutil.ArgNotString},
		{"apikey=k1&apikey=k1", "apikey", "", authutil.ArgNotString},
		{"apikey=k1&apikey", "apikey", "", authutil.ArgNotString},
		{"apikey=k1&api%6bey=k2", "apikey", "", authutil.ArgNotString},
	}
	for _, tt := range tests {
		got, state := authutil.QueryArg(tt.q, tt.name)
		if got != tt.want || state != tt.state {
			t.Errorf("QueryArg(%q, %q) = %q, %v; want %q, %v", tt.q, tt.name, got, state, tt.want, tt.state)
		}
	}
}

func TestQueryArgAllocations(t *testing.T) {
	q := "a=1&b=2&apikey=key-777&c=%20"
	if n := testing.AllocsPerRun(100, func() { authutil.QueryArg(q, "apikey") }); n != 0 {
		t.Errorf("QueryArg of an unescaped value allocates %v times", n)
	}
}

func TestRemoveArg(t *testing.T) {
	t.Parallel()
	tests := []struct{ q, name, want string }{
		{"", "apikey", ""},
		{"apikey=k1", "apikey", ""},
		{"a=1&apikey=k1&b=%20", "apikey", "a=1&b=%20"},
		{"api%6bey=k1&x=y", "apikey", "x=y"},
		{"apikey&apikey=1&x=%zz+", "apikey", "x=%zz+"},
		{"b=2&a=1", "apikey", "b=2&a=1"}, // order and escaping are kept
		{"apikeys=1&xapikey=2", "apikey", "apikeys=1&xapikey=2"},
		{"a=1&&apikey=k&", "apikey", "a=1&"}, // empty arguments are kept too
	}
	for _, tt := range tests {
		if got := authutil.RemoveArg(tt.q, tt.name); got != tt.want {
			t.Errorf("RemoveArg(%q, %q) = %q, want %q", tt.q, tt.name, got, tt.want)
		}
	}
}

func TestUnescape(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"abc": "abc", "a+b": "a b", "%41%62": "Ab", "%4": "%4", "%zz": "%zz", "100%": "100%", "%%41": "%A", "%e4%B8%AD": "中",
		"": "", "%2B+": "+ ", "%0a": "\n",
	} {
		if got := authutil.Unescape(in); got != want {
			t.Errorf("Unescape(%q) = %q, want %q", in, got, want)
		}
	}
}
