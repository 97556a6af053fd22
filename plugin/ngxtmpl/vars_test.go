package ngxtmpl

import (
	"strings"
	"testing"
)

// vars is a VarSource over a map; a missing key is an unset variable.
type vars map[string]string

func (v vars) Var(name string) (string, bool) {
	s, ok := v[name]
	return s, ok
}

// testVars stand for a request GET /p?a=1.
var testVars = vars{"uri": "/p", "arg_a": "1", "a.b": "dot", "empty": ""}

// TestRender covers APISIX's resolve_var syntax.
func TestRender(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", ""},
		{"plain", "plain"},
		{"$uri|$arg_a", "/p|1"},
		{"${uri}x", "/px"},
		{"${ uri }", "/p"},
		{"${none ?? dflt}", "dflt"},
		{"${ none??a b }", "a b"},
		{"${none ?? a ?? b}", "a"},
		{"${empty ?? d}", ""}, // set but empty: no default
		{"$a.b", "dot"},
		{"$none-", "-"},
		{"cost: $", "cost: $"},
		{"$-x", "$-x"},
		{"${}", "${}"},
		{"${uri", "${uri"},
		{`\$uri`, `\$uri`},
		{"${uri}" + strings.Repeat("x", 200), "/p" + strings.Repeat("x", 200)}, // beyond the stack buffer
	}
	for _, tt := range tests {
		tmpl := Compile(tt.in)
		if got := tmpl.Render(testVars); got != tt.want {
			t.Errorf("%q: got %q, want %q", tt.in, got, tt.want)
		}
	}
	var zero Template
	if got := zero.Render(testVars); got != "" {
		t.Errorf("zero Template: got %q", got)
	}
}

func TestLiteral(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want string
		lit  bool
	}{
		{"", "", true},
		{"plain", "plain", true},
		{"cost: $", "cost: $", true}, // a lone '$' is text
		{`\$uri`, `\$uri`, true},
		{"$uri", "", false},
		{"a${b ?? c}", "", false},
	}
	for _, tt := range tests {
		tmpl := Compile(tt.in)
		if got, lit := tmpl.Literal(); got != tt.want || lit != tt.lit {
			t.Errorf("%q: got (%q, %v), want (%q, %v)", tt.in, got, lit, tt.want, tt.lit)
		}
	}
}

func TestAppend(t *testing.T) {
	t.Parallel()
	tmpl := Compile("/x?$arg_a&${none ?? d?}&$uri")
	upper := func(s string) string { return strings.ToUpper(s) + "!" }
	// The escaper applies to values and defaults, never to literal text.
	if got, want := string(tmpl.Append([]byte("pre:"), testVars, upper)), "pre:/x?1!&D?!&/P!"; got != want {
		t.Errorf("escape: got %q, want %q", got, want)
	}
	if got, want := string(tmpl.Append(nil, testVars, nil)), "/x?1&d?&/p"; got != want {
		t.Errorf("nil escape: got %q, want %q", got, want)
	}
}

func TestRenderAllocs(t *testing.T) {
	lit, tmpl := Compile("plain"), Compile("$uri and $arg_a")
	if n := testing.AllocsPerRun(100, func() { _ = lit.Render(testVars) }); n != 0 {
		t.Errorf("literal: %v allocations, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { _ = tmpl.Render(testVars) }); n != 1 {
		t.Errorf("template: %v allocations, want 1", n)
	}
}

func TestFormatNumber(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"1", "1"},
		{"-2", "-2"},
		{"1.5", "1.5"},
		{"0.1", "0.1"},
		{"1e3", "1000"},
		{"1.0", "1"},
		{"123456789012345678", "1.2345678901235e+17"}, // %.14g
		{"not a number", "not a number"},
	}
	for _, tt := range tests {
		if got := FormatNumber(tt.in); got != tt.want {
			t.Errorf("%q: got %q, want %q", tt.in, got, tt.want)
		}
	}
}
