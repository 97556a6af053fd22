package expr

import (
	"encoding/json"
	"math"
	"net/netip"
	"strings"
	"testing"
)

// vars is a map-backed VarSource for tests.
type vars map[string]string

func (v vars) Var(name string) (string, bool) {
	s, ok := v[name]
	return s, ok
}

func mustCompile(tb testing.TB, src string) *Expr {
	tb.Helper()
	e, err := Compile(json.RawMessage(src))
	if err != nil {
		tb.Fatalf("Compile(%s): %v", src, err)
	}
	return e
}

func TestEvalOperators(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		expr string
		vars vars
		want bool
	}{
		// == and ~= with strings, numbers and null.
		{"eq string", `[["arg_v","==","v2"]]`, vars{"arg_v": "v2"}, true},
		{"eq string differs", `[["arg_v","==","v2"]]`, vars{"arg_v": "V2"}, false},
		{"eq missing", `[["arg_v","==","v2"]]`, vars{}, false},
		{"eq empty value is present", `[["arg_v","==",""]]`, vars{"arg_v": ""}, true},
		{"eq number converts var", `[["arg_n","==",10]]`, vars{"arg_n": "10.0"}, true},
		{"eq number hex var", `[["arg_n","==",16]]`, vars{"arg_n": "0x10"}, true},
		{"eq number non-numeric var", `[["arg_n","==",10]]`, vars{"arg_n": "ten"}, false},
		{"eq number missing", `[["arg_n","==",10]]`, vars{}, false},
		{"eq null means missing", `[["arg_n","==",null]]`, vars{}, true},
		{"eq null present", `[["arg_n","==",null]]`, vars{"arg_n": ""}, false},
		{"ne string", `[["arg_v","~=","v2"]]`, vars{"arg_v": "v1"}, true},
		{"ne string same", `[["arg_v","~=","v2"]]`, vars{"arg_v": "v2"}, false},
		{"ne missing is true", `[["arg_v","~=","v2"]]`, vars{}, true},
		{"ne number non-numeric is true", `[["arg_n","~=",1]]`, vars{"arg_n": "x"}, true},
		{"ne number equal", `[["arg_n","~=",1]]`, vars{"arg_n": " 1 "}, false},
		{"ne number missing", `[["arg_n","~=",1]]`, vars{}, true},
		{"ne null present", `[["arg_n","~=",null]]`, vars{"arg_n": "1"}, true},
		{"ne null missing", `[["arg_n","~=",null]]`, vars{}, false},
		// Ordering.
		{"gt", `[["arg_ttl",">",3600]]`, vars{"arg_ttl": "3601"}, true},
		{"gt equal", `[["arg_ttl",">",3600]]`, vars{"arg_ttl": "3600"}, false},
		{"gt string operand", `[["arg_ttl",">","3600"]]`, vars{"arg_ttl": "4000"}, true},
		{"gt non-numeric var", `[["arg_ttl",">",1]]`, vars{"arg_ttl": "abc"}, false},
		{"gt missing", `[["arg_ttl",">",1]]`, vars{}, false},
		{"gt numeric not lexical", `[["arg_ttl",">",9]]`, vars{"arg_ttl": "10"}, true},
		{"ge", `[["arg_ttl",">=",3600]]`, vars{"arg_ttl": "3600"}, true},
		{"ge below", `[["arg_ttl",">=",3600]]`, vars{"arg_ttl": "3599.9"}, false},
		{"lt", `[["arg_ttl","<",1.5]]`, vars{"arg_ttl": "-2e1"}, true},
		{"lt missing", `[["arg_ttl","<",1.5]]`, vars{}, false},
		{"le", `[["arg_ttl","<=",1.5]]`, vars{"arg_ttl": "1.5"}, true},
		{"le above", `[["arg_ttl","<=",1.5]]`, vars{"arg_ttl": "1.6"}, false},
		{"lt inf", `[["arg_ttl","<",1]]`, vars{"arg_ttl": "-inf"}, true},
		{"gt huge", `[["arg_ttl",">",1e300]]`, vars{"arg_ttl": "1e999"}, true},
		{"nan never ordered", `[["arg_ttl","<",1]]`, vars{"arg_ttl": "nan"}, false},
		// Regexes.
		{"regex", `[["http_env","~~","[Dd]ev"]]`, vars{"http_env": "my-dev-box"}, true},
		{"regex no match", `[["http_env","~~","^dev$"]]`, vars{"http_env": "DEV"}, false},
		{"regex case-insensitive", `[["http_env","~*","^dev$"]]`, vars{"http_env": "DEV"}, true},
		{"regex missing", `[["http_env","~~",".*"]]`, vars{}, false},
		{"regex empty value", `[["http_env","~~","^$"]]`, vars{"http_env": ""}, true},
		// in / has.
		{"in", `[["arg_v","in",["v1","v2"]]]`, vars{"arg_v": "v2"}, true},
		{"in absent", `[["arg_v","in",["v1","v2"]]]`, vars{"arg_v": "v3"}, false},
		{"in missing", `[["arg_v","in",["v1"]]]`, vars{}, false},
		{"in empty list", `[["arg_v","in",[]]]`, vars{"arg_v": ""}, false},
		{"has", `[["graphql_root_fields","has","owner"]]`, vars{"graphql_root_fields": "repo, owner"}, true},
		{"has single", `[["graphql_root_fields","has","owner"]]`, vars{"graphql_root_fields": "owner"}, true},
		{"has not substring", `[["graphql_root_fields","has","own"]]`, vars{"graphql_root_fields": "owner,repo"}, false},
		{"has missing", `[["graphql_root_fields","has","owner"]]`, vars{}, false},
		// ipmatch.
		{"ipmatch cidr", `[["remote_addr","ipmatch",["192.168.3.0/24"]]]`, vars{"remote_addr": "192.168.3.7"}, true},
		{"ipmatch single string", `[["remote_addr","ipmatch","10.0.0.1"]]`, vars{"remote_addr": "10.0.0.1"}, true},
		{"ipmatch other", `[["remote_addr","ipmatch",["192.168.3.0/24","10.0.0.1"]]]`, vars{"remote_addr": "10.0.0.2"}, false},
		{"ipmatch v6", `[["remote_addr","ipmatch",["fe80::/32"]]]`, vars{"remote_addr": "fe80::1:2"}, true},
		{"ipmatch v4-mapped var", `[["remote_addr","ipmatch",["10.0.0.0/8"]]]`, vars{"remote_addr": "::ffff:10.1.2.3"}, true},
		{"ipmatch v4 vs v6 prefix", `[["remote_addr","ipmatch",["::/0"]]]`, vars{"remote_addr": "10.1.2.3"}, false},
		{"ipmatch invalid var", `[["remote_addr","ipmatch",["0.0.0.0/0"]]]`, vars{"remote_addr": "not-an-ip"}, false},
		{"ipmatch missing", `[["remote_addr","ipmatch",["0.0.0.0/0"]]]`, vars{}, false},
		// Negation.
		{"not eq", `[["arg_v","!","==","v2"]]`, vars{"arg_v": "v1"}, true},
		{"not eq same", `[["arg_v","!","==","v2"]]`, vars{"arg_v": "v2"}, false},
		{"not eq missing", `[["arg_v","!","==","v2"]]`, vars{}, true},
		{"not regex", `[["http_env","!","~~","dev"]]`, vars{"http_env": "prod"}, true},
		{"not gt missing", `[["arg_n","!",">",1]]`, vars{}, true},
		{"not in", `[["arg_v","!","in",["a"]]]`, vars{"arg_v": "b"}, true},
		{"not ipmatch invalid", `[["remote_addr","!","ipmatch","10.0.0.0/8"]]`, vars{"remote_addr": "junk"}, true},
		// Operators are case-insensitive; legacy two-element form.
		{"upper IN", `[["arg_v","IN",["x"]]]`, vars{"arg_v": "x"}, true},
		{"legacy form", `[["arg_v","json"]]`, vars{"arg_v": "json"}, true},
		{"legacy form lower-cases", `[["arg_v","JSON"]]`, vars{"arg_v": "json"}, true},
		// Empty expression.
		{"empty", `[]`, vars{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			e := mustCompile(t, tt.expr)
			if got := e.Eval(tt.vars); got != tt.want {
				t.Errorf("Eval(%s, %v) = %v, want %v", tt.expr, tt.vars, got, tt.want)
			}
		})
	}
}

func TestEvalLogic(t *testing.T) {
	t.Parallel()
	const a, b = `["arg_a","==","1"]`, `["arg_b","==","1"]`
	tests := []struct {
		desc string
		expr string
		want [4]bool // for (a,b) = (0,0), (1,0), (0,1), (1,1)
	}{
		{"implicit and", `[` + a + `,` + b + `]`, [4]bool{false, false, false, true}},
		{"AND", `["AND",` + a + `,` + b + `]`, [4]bool{false, false, false, true}},
		{"OR", `["OR",` + a + `,` + b + `]`, [4]bool{false, true, true, true}},
		{"!AND", `["!AND",` + a + `,` + b + `]`, [4]bool{true, true, true, false}},
		{"!OR", `["!OR",` + a + `,` + b + `]`, [4]bool{true, false, false, false}},
		{"lower-case or", `["or",` + a + `,` + b + `]`, [4]bool{false, true, true, true}},
		{"nested or in list", `[["OR",` + a + `,` + b + `]]`, [4]bool{false, true, true, true}},
		{"nested list is and", `[[` + a + `,` + b + `]]`, [4]bool{false, false, false, true}},
		{"or of negated", `["OR",["arg_a","!","==","1"],` + b + `]`, [4]bool{true, false, true, true}},
		{"and of or", `["AND",["OR",` + a + `,` + b + `],["!AND",` + a + `,` + b + `]]`, [4]bool{false, true, true, false}},
	}
	inputs := [4]vars{{}, {"arg_a": "1"}, {"arg_b": "1"}, {"arg_a": "1", "arg_b": "1"}}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			e := mustCompile(t, tt.expr)
			for i, in := range inputs {
				if got := e.Eval(in); got != tt.want[i] {
					t.Errorf("Eval(%s, %v) = %v, want %v", tt.expr, in, got, tt.want[i])
				}
			}
		})
	}
}

func TestCompileNil(t *testing.T) {
	t.Parallel()
	for _, src := range []string{"", " ", "null"} {
		e, err := Compile(json.RawMessage(src))
		if err != nil || e != nil {
			t.Errorf("Compile(%q) = %v, %v; want nil, nil", src, e, err)
		}
		if !e.Eval(vars{}) {
			t.Errorf("nil Expr must evaluate to true")
		}
	}
}

func TestCompileErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		expr string
		want string // substring of the error
	}{
		{"not json", `[`, "vars: invalid JSON"},
		{"trailing data", `[] []`, "vars: invalid JSON: trailing data"},
		{"object", `{}`, "vars: must be an array, got object"},
		{"bare comparison", `["arg_a","==","1"]`, "vars: comparisons must be wrapped"},
		{"unknown operator", `[["a","==","1"],["b","=~","x"]]`, `vars[1][1]: unknown operator "=~"`},
		{"unknown operator negated", `[["a","==","1"],["b","!","=~","x"]]`, `vars[1][2]: unknown operator "=~"`},
		{"bad not", `[["a","?","==","1"]]`, `vars[0][1]: a 4-element comparison must be`},
		{"too many", `[["a","==","1","2","3"]]`, "vars[0]: too many elements (5)"},
		{"too few", `[["a"]]`, "vars[0]: incomplete comparison"},
		{"empty group", `[[]]`, "vars[0]: empty expression"},
		{"operator without value", `[["a","=="]]`, `vars[0]: operator "==" has no value`},
		{"var not string", `[[1,"==","1"]]`, "vars[0][0]: variable name must be a non-empty string, got number"},
		{"op not string", `[["a",1,"1"]]`, "vars[0][1]: operator must be a string"},
		{"logic too short", `["OR",["a","==","1"]]`, "vars: OR needs at least two operands"},
		{"nested logic too short", `[["AND",["a","==","1"]]]`, "vars[0]: AND needs at least two operands"},
		{"logic child not array", `["OR",["a","==","1"],"b"]`, "vars[2]: must be an array, got string"},
		{"list child not array", `[["a","==","1"],5]`, "vars[1]: must be an array, got number"},
		{"deep position", `["OR",["a","==","1"],["AND",["b","==","1"],["c",">","x"]]]`, `vars[2][2][2]: >: value "x" is not a number`},
		{"eq bool", `[["a","==",true]]`, "vars[0][2]: ==: value must be a string, number or null, got boolean"},
		{"gt null", `[["a",">",null]]`, "vars[0][2]: >: value must be a number, got null"},
		{"regex not string", `[["a","~~",1]]`, "vars[0][2]: ~~: value must be a regex string"},
		{"regex lookahead", `[["a","~~","a(?=b)"]]`, `vars[0][2]: ~~: regex "a(?=b)" is not valid RE2 syntax`},
		{"regex backref", `[["a","~*","(a)\\1"]]`, `vars[0][2]: ~*: regex "(a)\\1" is not valid RE2 syntax`},
		{"in not array", `[["a","in","x"]]`, "vars[0][2]: in: value must be an array of strings, got string"},
		{"in number element", `[["a","in",["x",1]]]`, "vars[0][2]: in: element [1] must be a string, got number"},
		{"has not string", `[["a","has",["x"]]]`, "vars[0][2]: has: value must be a string, got array"},
		{"ipmatch empty", `[["a","ipmatch",[]]]`, "vars[0][2]: ipmatch: empty address list"},
		{"ipmatch bad cidr", `[["a","ipmatch",["10.0.0.0/33"]]]`, `vars[0][2]: ipmatch: element [0]: invalid CIDR "10.0.0.0/33"`},
		{"ipmatch bad ip", `[["a","ipmatch","10.0.0.256"]]`, `vars[0][2]: ipmatch: element [0]: invalid IP address "10.0.0.256"`},
		{"ipmatch number", `[["a","ipmatch",5]]`, "vars[0][2]: ipmatch: value must be an IP/CIDR string"},
		{"legacy value not string", `[["a",5]]`, "vars[0][1]: must be a string, got number"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			_, err := Compile(json.RawMessage(tt.expr))
			if err == nil {
				t.Fatalf("Compile(%s) succeeded, want error containing %q", tt.expr, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Compile(%s) error = %q, want it to contain %q", tt.expr, err, tt.want)
			}
		})
	}
}

func TestToNumber(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want float64
		ok   bool
	}{
		{"10", 10, true},
		{" \t10\n", 10, true},
		{"-1.5", -1.5, true},
		{"+2", 2, true},
		{".5", 0.5, true},
		{"5.", 5, true},
		{"1e3", 1000, true},
		{"1E-2", 0.01, true},
		{"0x1F", 31, true},
		{"-0x10", -16, true},
		{"0.000001e6", 1, true},
		{"1e309", math.Inf(1), true},
		{"-1e400", math.Inf(-1), true},
		{"1e-500", 0, true},
		{"INF", math.Inf(1), true},
		{"-Infinity", math.Inf(-1), true},
		{"", 0, false},
		{"-", 0, false},
		{".", 0, false},
		{"1e", 0, false},
		{"1x", 0, false},
		{"0x", 0, false},
		{"0xg", 0, false},
		{"1_000", 0, false},
		{"1 2", 0, false},
		{"abc", 0, false},
	}
	for _, tt := range tests {
		got, ok := toNumber(tt.in)
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("toNumber(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
	if f, ok := toNumber("nan"); !ok || !math.IsNaN(f) {
		t.Errorf("toNumber(nan) = %v, %v", f, ok)
	}
}

func TestParseAddr(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		"1.2.3.4", "0.0.0.0", "255.255.255.255", "::", "::1", "1::", "fe80::1:2",
		"2001:db8::8a2e:370:7334", "1:2:3:4:5:6:7:8", "::ffff:1.2.3.4", "1:2:3:4:5:6:1.2.3.4",
		"", "1.2.3", "1.2.3.4.5", "01.2.3.4", "256.1.1.1", "1..2.3", ":::", "1:2:3:4:5:6:7:8:9",
		"1::2::3", "12345::", "::1.2.3", "1:2:3:4:5:6:7::8", "fe80::1%eth0", "1.2.3.4:80", ":1", "1:",
		"1:2:3:4:5:6:7:1.2.3.4", "::1.2.3.4", "::ffff:01.2.3.4", "a:b:c:d:e:f::", "1:2:3:4:5:6:7::",
	} {
		checkParseAddr(t, s)
	}
}

// checkParseAddr compares parseAddr with netip.ParseAddr, the reference.
func checkParseAddr(t *testing.T, s string) {
	t.Helper()
	want, err := netip.ParseAddr(s)
	wantOK := err == nil && want.Zone() == "" // parseAddr rejects zones.
	got, ok := parseAddr(s)
	if ok != wantOK || (ok && got != want) {
		t.Errorf("parseAddr(%q) = %v, %v; netip.ParseAddr = %v, %v", s, got, ok, want, err)
	}
}

func FuzzParseAddr(f *testing.F) {
	for _, s := range []string{"1.2.3.4", "::1", "::ffff:1.2.3.4", "1:2:3:4:5:6:7:8", "1::2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkParseAddr(t, s)
	})
}

func FuzzCompile(f *testing.F) {
	for _, s := range []string{
		`[["arg_a","==","1"]]`,
		`["OR",["a","~~","x"],["AND",["b",">",1],["c","!","in",["x"]]]]`,
		`[["remote_addr","ipmatch",["10.0.0.0/8","::1"]]]`,
		`[["a","has","x"],["b","~*","^A"],["c","<=","0x10"]]`,
		`[["a","json"]]`, `[]`, `null`, `[[[]]]`,
	} {
		f.Add(s, "1", "10.0.0.1")
	}
	f.Fuzz(func(t *testing.T, src, val, ip string) {
		e, err := Compile(json.RawMessage(src))
		if err != nil {
			return
		}
		v := vars{"a": val, "b": val, "c": val, "arg_a": val, "remote_addr": ip}
		r1 := e.Eval(v)
		if r2 := e.Eval(v); r1 != r2 {
			t.Fatalf("Eval is not deterministic for %s", src)
		}
		e.Eval(vars{})
	})
}

// fixed is an allocation-free VarSource for benchmarks: a map lookup would
// not allocate either, but a switch keeps the benchmark about Eval itself.
type fixed struct{}

func (fixed) Var(name string) (string, bool) {
	switch name {
	case "arg_version":
		return "v2", true
	case "arg_ttl":
		return "3700", true
	case "http_user_agent":
		return "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0", true
	case "remote_addr":
		return "192.168.3.77", true
	case "graphql_root_fields":
		return "repo, owner", true
	}
	return "", false
}

func BenchmarkEval(b *testing.B) {
	cases := []struct{ name, expr string }{
		{"eq", `[["arg_version","==","v2"]]`},
		{"number", `[["arg_ttl",">",3600]]`},
		{"regex", `[["http_user_agent","~*","chrome/1[0-9]+"]]`},
		{"in", `[["arg_version","in",["v1","v2","v3"]]]`},
		{"has", `[["graphql_root_fields","has","owner"]]`},
		{"ipmatch", `[["remote_addr","ipmatch",["10.0.0.0/8","192.168.0.0/16"]]]`},
		{"missing", `[["arg_none","!","==","x"]]`},
		{"nested", `["AND",["arg_version","==","v2"],["OR",["arg_ttl","<",10],["remote_addr","ipmatch","192.168.3.0/24"]],["http_user_agent","!","~~","curl"]]`},
	}
	for _, c := range cases {
		e := mustCompile(b, c.expr)
		var src VarSource = fixed{}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !e.Eval(src) {
					b.Fatal("expected true")
				}
			}
		})
	}
}

func TestEvalDoesNotAllocate(t *testing.T) {
	e := mustCompile(t, `["AND",["arg_version","==","v2"],["arg_ttl",">","1e2"],["http_user_agent","~*","chrome"],`+
		`["remote_addr","ipmatch",["192.168.0.0/16"]],["graphql_root_fields","has","owner"],["arg_version","in",["v2"]],`+
		`["arg_ttl","!","==",5],["http_user_agent","!","ipmatch","::/0"],["http_user_agent","!",">",1]]`)
	var src VarSource = fixed{}
	if n := testing.AllocsPerRun(100, func() { e.Eval(src) }); n != 0 {
		t.Errorf("Eval allocated %v times per run, want 0", n)
	}
	if !e.Eval(src) {
		t.Error("expression should be true")
	}
}
