package proxy

import "testing"

func TestQueryArg(t *testing.T) {
	tests := []struct {
		query, name, want string
		ok                bool
	}{
		{"a=1&b=2", "b", "2", true},
		{"a=1&b=2", "c", "", false},
		{"A=x", "a", "x", true},         // nginx compares names case-insensitively
		{"a=%20x", "a", "%20x", true},   // and does not decode values
		{"flag&a=1", "flag", "", false}, // a bare name without "=" is not an argument to nginx
		{"flag=&a=1", "flag", "", true},
		{"", "a", "", false},
	}
	for _, tc := range tests {
		got, ok := queryArg(tc.query, tc.name)
		if got != tc.want || ok != tc.ok {
			t.Errorf("queryArg(%q, %q) = %q, %v; want %q, %v", tc.query, tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func TestCookieValue(t *testing.T) {
	h := "sid=abc; theme=dark;  lang=en"
	for name, want := range map[string]string{"sid": "abc", "theme": "dark", "lang": "en"} {
		if got, ok := cookieValue(h, name); !ok || got != want {
			t.Errorf("cookieValue(%q) = %q, %v", name, got, ok)
		}
	}
	if _, ok := cookieValue(h, "missing"); ok {
		t.Error("missing cookie found")
	}
}

func TestHeaderVarMatches(t *testing.T) {
	if !headerVarMatches("x_api_key", "X-Api-Key") || headerVarMatches("x_api_key", "X-Api-Keys") ||
		!headerVarMatches("user_agent", "user-agent") {
		t.Fatal("header variable names must match nginx's lower-case, dash-to-underscore rule")
	}
}

func TestHostWithoutPort(t *testing.T) {
	for in, want := range map[string]string{
		"example.com:8080": "example.com", "example.com": "example.com",
		"[::1]:80": "::1", "[::1]": "::1", "": "",
	} {
		if got := hostWithoutPort(in); got != want {
			t.Errorf("hostWithoutPort(%q) = %q, want %q", in, got, want)
		}
	}
}
