package luangx

import (
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"

	"github.com/sluicegw/sluice/plugin/shdict"
)

// The cases in testdata/*.cases are Lua snippets with the output the real
// nginx + lua-nginx-module prints for them. TestLuaCases runs them here;
// TestNginxReference runs them in nginx and checks the recorded outputs, and
// with -update records nginx's outputs instead.
//
// Format: "### name" starts a case, "--- out" separates the code from the
// expected body. A status other than 200 is recorded as "<status>". A case
// whose code starts with "-- sluice-only: why" is not run in nginx, because
// sluice deliberately differs (documented in docs/lua-ngx-libraries.md) or
// Debian's lua-cjson lacks the OpenResty extension it uses.
var update = flag.Bool("update", false, "record nginx's outputs in testdata/*.cases")

type luaCase struct {
	file, name, code, want string
	sluiceOnly             bool
}

func loadCases(t testing.TB) []luaCase {
	t.Helper()
	files, err := filepath.Glob("testdata/*.cases")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/*.cases: %v", err)
	}
	sort.Strings(files)
	var cases []luaCase
	seen := map[string]bool{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, block := range strings.Split(string(data), "### ")[1:] {
			name, body, _ := strings.Cut(block, "\n")
			code, want, ok := strings.Cut(body, "--- out\n")
			if !ok {
				t.Fatalf("%s: case %q has no --- out", f, name)
			}
			name = strings.TrimSpace(name)
			if seen[name] {
				t.Fatalf("%s: duplicate case name %q", f, name)
			}
			seen[name] = true
			cases = append(cases, luaCase{
				file: f, name: name, code: code,
				want:       strings.TrimRight(want, "\n"),
				sluiceOnly: strings.HasPrefix(code, "-- sluice-only:"),
			})
		}
	}
	return cases
}

// newTestState returns a VM with every library of this package opened on a
// global ngx table, plus test versions of ngx.say and ngx.print that write to
// out. The shared dict "dogs" has nginx's 1m capacity.
func newTestState(t testing.TB, out *strings.Builder) *lua.LState {
	t.Helper()
	L := lua.NewState()
	ngx := L.NewTable()
	reg := shdict.NewRegistry()
	if _, err := reg.Define("dogs", 1<<20); err != nil {
		t.Fatal(err)
	}
	OpenConstants(L, ngx)
	OpenRe(L, ngx)
	OpenCodec(L, ngx)
	OpenTime(L, ngx)
	OpenShared(L, ngx, reg)
	OpenCJSON(L)
	null := Null(L)
	var write func(v lua.LValue)
	write = func(v lua.LValue) {
		switch v := v.(type) {
		case lua.LNumber:
			switch f := float64(v); {
			case math.IsInf(f, 1):
				out.WriteString("inf")
			case math.IsInf(f, -1):
				out.WriteString("-inf")
			case math.IsNaN(f):
				out.WriteString("nan")
			default:
				out.WriteString(formatG(f, 14))
			}
		case *lua.LTable:
			for i := 1; i <= v.Len(); i++ {
				write(v.RawGetInt(i))
			}
		default:
			if v == null {
				out.WriteString("null")
				return
			}
			out.WriteString(v.String())
		}
	}
	say := func(nl bool) lua.LGFunction {
		return func(L *lua.LState) int {
			for i := 1; i <= L.GetTop(); i++ {
				write(L.Get(i))
			}
			if nl {
				out.WriteByte('\n')
			}
			L.Push(lua.LNumber(1))
			return 1
		}
	}
	ngx.RawSetString("say", L.NewFunction(say(true)))
	ngx.RawSetString("print", L.NewFunction(say(false)))
	L.SetGlobal("ngx", ngx)
	return L
}

// runCase runs one snippet and returns what nginx would send: the body, or
// "<500>" when the snippet raised an error.
func runCase(t testing.TB, code string) (string, error) {
	var out strings.Builder
	L := newTestState(t, &out)
	defer L.Close()
	if err := L.DoString(code); err != nil {
		return "<500>", err
	}
	return strings.TrimSuffix(out.String(), "\n"), nil
}

func TestLuaCases(t *testing.T) {
	t.Parallel()
	for _, c := range loadCases(t) {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, err := runCase(t, c.code)
			if got != c.want {
				t.Errorf("%s: %s\n got: %q\nwant: %q\n(lua error: %v)", c.file, c.name, got, c.want, err)
			}
		})
	}
}

func TestLoadCasesCoversEveryFunction(t *testing.T) {
	t.Parallel()
	var all strings.Builder
	for _, c := range loadCases(t) {
		all.WriteString(c.code)
	}
	var out strings.Builder
	L := newTestState(t, &out)
	defer L.Close()
	ngx := L.GetGlobal("ngx").(*lua.LTable)
	var missing []string
	check := func(prefix string, tbl *lua.LTable) {
		tbl.ForEach(func(k, v lua.LValue) {
			name := prefix + k.String()
			if k.String() == "say" || k.String() == "print" {
				return // test doubles of the request-bound API
			}
			if _, ok := v.(*lua.LFunction); ok && !strings.Contains(all.String(), k.String()) {
				missing = append(missing, name)
			}
		})
	}
	check("ngx.", ngx)
	check("ngx.re.", ngx.RawGetString("re").(*lua.LTable))
	check("dict:", sharedMethodsTable(L))
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("functions without a case: %v", missing)
	}
}

func sharedMethodsTable(L *lua.LState) *lua.LTable {
	t := L.NewTable()
	L.SetFuncs(t, sharedMethods)
	return t
}

func ExampleOpenRe() {
	L := lua.NewState()
	defer L.Close()
	ngx := L.NewTable()
	OpenRe(L, ngx)
	L.SetGlobal("ngx", ngx)
	if err := L.DoString(`m = ngx.re.match("hello 1234", [[(?<word>\w+) (\d+)]], "jo")`); err != nil {
		panic(err)
	}
	m := L.GetGlobal("m").(*lua.LTable)
	fmt.Println(m.RawGet(lua.LNumber(0)), m.RawGetString("word"), m.RawGetInt(2))
	// Output: hello 1234 hello 1234
}
