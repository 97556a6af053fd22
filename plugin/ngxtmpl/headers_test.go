package ngxtmpl

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func raw(m map[string]string) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(m))
	for k, v := range m {
		out[k] = json.RawMessage(v)
	}
	return out
}

func TestDecodeHeaders(t *testing.T) {
	t.Parallel()
	hs, err := DecodeHeaders("h", raw(map[string]string{
		"X-B": ` "$arg_a" `,
		"X-A": `1e3`,
		"X-C": `"${none ?? d}"`,
	}))
	if err != nil {
		t.Fatal(err)
	}
	var got [][2]string
	for _, h := range hs {
		got = append(got, [2]string{h.Name, h.Value.Render(testVars)})
	}
	want := [][2]string{{"X-A", "1000"}, {"X-B", "1"}, {"X-C", "d"}} // sorted
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}

	bad := []struct {
		m   map[string]string
		err string
	}{
		{nil, "h: must have at least 1 header"},
		{map[string]string{}, "h: must have at least 1 header"},
		{map[string]string{"": `"v"`}, `h: header name must be non-empty and without ':', got ""`},
		{map[string]string{"a:b": `"v"`}, `h: header name must be non-empty and without ':', got "a:b"`},
		{map[string]string{"X": `true`}, "h.X: must be a string or a number"},
		{map[string]string{"X": `["v"]`}, "h.X: must be a string or a number"},
		{map[string]string{"X": `"a\r\nb"`}, "h.X: value must not contain CR or LF"},
	}
	for _, tt := range bad {
		var m map[string]json.RawMessage
		if tt.m != nil {
			m = raw(tt.m)
		}
		if _, err := DecodeHeaders("h", m); err == nil || err.Error() != tt.err {
			t.Errorf("%v: got %v, want %q", tt.m, err, tt.err)
		}
	}
}

func TestJSONScalar(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{`"text"`, "text", true},
		{` "a\u0041" `, "aA", true},
		{`""`, "", true},
		{`42`, "42", true},
		{`-1.50`, "-1.5", true},
		{`1e3`, "1000", true},
		{`"unterminated`, "", false},
		{`true`, "", false},
		{`null`, "", false},
		{`{}`, "", false},
		{`[]`, "", false},
		{`  `, "", false},
		{``, "", false},
	}
	for _, tt := range tests {
		if got, ok := JSONScalar(json.RawMessage(tt.in)); got != tt.want || ok != tt.ok {
			t.Errorf("%q: got (%q, %v), want (%q, %v)", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestCheckHeaderName(t *testing.T) {
	t.Parallel()
	if err := CheckHeaderName("p", "X-Ok"); err != nil {
		t.Errorf("X-Ok: %v", err)
	}
	for _, name := range []string{"", "a:b", ":"} {
		err := CheckHeaderName("p", name)
		if want := "p: header name must be non-empty and without ':', got " + `"` + name + `"`; err == nil || err.Error() != want {
			t.Errorf("%q: got %v, want %q", name, err, want)
		}
	}
}

func TestHeaderConfigDecode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want string // the calls made, then the error
	}{
		{`{"remove": ["X"], "add": {"X": "1"}, "set": {"X": "1"}}`, "add remove set "}, // name order
		{`{"add": ["X: 1"]}`, "add "},
		{`{"set": "1"}`, "legacy "}, // a legacy header named "set"
		{`{"X-Foo": "1", "add": 2}`, "legacy "},
		{`{"other": {"X": "1"}}`, "legacy "},
		{`{}`, "legacy "},
		{`{"set": {}, "zzz": 1}`, "set error: headers.zzz: unknown field (with add, set or remove, headers takes only those)"},
		{`{"add": {"fail": 1}, "set": {}, "remove": []}`, "add error: add failed"}, // stops at the first error
		{`{"fail": 1}`, "legacy error: legacy failed"},
	}
	for _, tt := range tests {
		var calls string
		legacy := func(obj map[string]json.RawMessage) error {
			calls += "legacy "
			if _, ok := obj["fail"]; ok {
				return errors.New("legacy failed")
			}
			return nil
		}
		action := func(name string, v json.RawMessage) error {
			calls += name + " "
			if strings.Contains(string(v), "fail") {
				return errors.New(name + " failed")
			}
			return nil
		}
		var c HeaderConfig
		if err := c.Decode([]byte(tt.in), legacy, action); err != nil {
			t.Fatalf("%s: %v", tt.in, err)
		}
		if err := c.Err(); err != nil {
			calls += "error: " + err.Error()
		}
		if calls != tt.want {
			t.Errorf("%s: got %q, want %q", tt.in, calls, tt.want)
		}
		if got, _ := c.MarshalJSON(); string(got) != tt.in {
			t.Errorf("%s: MarshalJSON gave %s", tt.in, got)
		}
	}
}

func TestHeaderConfigNotObject(t *testing.T) {
	t.Parallel()
	var c HeaderConfig
	if got, _ := c.MarshalJSON(); string(got) != "null" {
		t.Errorf("zero: MarshalJSON gave %s", got)
	}
	called := func(map[string]json.RawMessage) error { t.Error("legacy called"); return nil }
	action := func(string, json.RawMessage) error { t.Error("action called"); return nil }
	in := []byte(`["add"]`)
	if err := c.Decode(in, called, action); err == nil || err.Error() != "headers: must be an object" {
		t.Fatalf("got %v", err)
	}
	in[0] = '{' // Decode kept a copy
	if got, _ := c.MarshalJSON(); string(got) != `["add"]` || c.Err() != nil {
		t.Errorf("MarshalJSON gave %s, Err %v", got, c.Err())
	}
}

func TestDecodeHeaderList(t *testing.T) {
	t.Parallel()
	got, err := DecodeHeaderList("p", json.RawMessage(`["A", "B"]`))
	if err != nil || !reflect.DeepEqual(got, []string{"A", "B"}) {
		t.Fatalf("got %v, %v", got, err)
	}
	for in, want := range map[string]string{
		`[]`:      "p: must have at least 1 item",
		`null`:    "p: must have at least 1 item",
		`"A"`:     "p: must be an array of strings",
		`[1]`:     "p: must be an array of strings",
		`{"A":1}`: "p: must be an array of strings",
	} {
		if _, err := DecodeHeaderList("p", json.RawMessage(in)); err == nil || err.Error() != want {
			t.Errorf("%s: got %v, want %q", in, err, want)
		}
	}
}
