package config

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestNodesForms(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		json string
		want Nodes
	}{
		{
			desc: "map form sorted by host then port",
			json: `{"b.example.com:8080":1,"10.0.0.1:80":2,"10.0.0.1:8":3}`,
			want: Nodes{{Host: "10.0.0.1", Port: 8, Weight: 3}, {Host: "10.0.0.1", Port: 80, Weight: 2}, {Host: "b.example.com", Port: 8080, Weight: 1}},
		},
		{
			desc: "ipv6 with and without port, bare ipv6",
			json: `{"[::1]:80":1,"[fe80::2]":2,"2001:db8::3":3}`,
			want: Nodes{{Host: "2001:db8::3", Weight: 3}, {Host: "::1", Port: 80, Weight: 1}, {Host: "fe80::2", Weight: 2}},
		},
		{
			desc: "missing port leaves 0",
			json: `{"example.com":0}`,
			want: Nodes{{Host: "example.com", Weight: 0}},
		},
		{
			desc: "array form kept in order",
			json: `[{"host":"b","port":2,"weight":1},{"host":"a","weight":5,"priority":-1,"metadata":{"k":"v"}}]`,
			want: Nodes{{Host: "b", Port: 2, Weight: 1}, {Host: "a", Weight: 5, Priority: -1, Metadata: map[string]any{"k": "v"}}},
		},
		{desc: "empty array", json: `[]`, want: Nodes{}},
		{desc: "empty map", json: `{}`, want: Nodes{}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			// Through the config decoder.
			u, err := DecodeUpstream([]byte(`{"nodes":`+tt.json+`}`), FormatJSON)
			if err != nil {
				t.Fatalf("DecodeUpstream: %v", err)
			}
			if !reflect.DeepEqual(u.Nodes, tt.want) {
				t.Errorf("DecodeUpstream nodes = %#v, want %#v", u.Nodes, tt.want)
			}
			// Through plain encoding/json, which other packages may use.
			var n Nodes
			if err := json.Unmarshal([]byte(tt.json), &n); err != nil {
				t.Fatalf("json.Unmarshal: %v", err)
			}
			u2 := Upstream{Nodes: n}
			u2.ApplyDefaults()
			if !reflect.DeepEqual(u2.Nodes, tt.want) {
				t.Errorf("json.Unmarshal nodes = %#v, want %#v", u2.Nodes, tt.want)
			}
		})
	}
}

func TestNodesEmptySurvivesRoundTrip(t *testing.T) {
	t.Parallel()
	u, err := DecodeUpstream([]byte(`{"nodes":{}}`), FormatJSON)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	u2, err := DecodeUpstream(b, FormatJSON)
	if err != nil {
		t.Fatalf("re-decode %s: %v", b, err)
	}
	if err := u2.Validate(); err != nil {
		t.Errorf("re-decoded %s: %v", b, err)
	}
}

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc   string
		format Format
		doc    string
		want   []string
	}{
		{
			desc: "unknown fields at every level, all reported", format: FormatJSON,
			doc: `{"uri":"/a","hots":["a"],"upstream":{"nodes":[{"host":"h","weight":1,"wieght":2}],"keepalive_pool":{"sise":1}}}`,
			want: []string{
				"route.hots: unknown field",
				"route.upstream.keepalive_pool.sise: unknown field",
				"route.upstream.nodes[0].wieght: unknown field",
			},
		},
		{
			desc: "type mismatches", format: FormatJSON,
			doc: `{"uri":1,"priority":"high","methods":"GET","enable_websocket":"yes","timeout":{"connect":"1s","send":1,"read":1},"labels":{"a":1},"plugins":[]}`,
			want: []string{
				"route.enable_websocket: must be a boolean",
				"route.labels.a: must be a string",
				"route.methods: must be an array",
				"route.plugins: must be an object",
				"route.priority: must be an integer",
				"route.timeout.connect: must be a number",
				"route.uri: must be a string",
			},
		},
		{
			desc: "bad ids", format: FormatJSON,
			doc: `{"id":0,"uri":"/","upstream_id":1.5,"service_id":true}`,
			want: []string{
				"route.id: must be a string or an integer >= 1",
				"route.service_id: must be a string or an integer >= 1",
				"route.upstream_id: must be a string or an integer >= 1",
			},
		},
		{
			desc: "array node requires host and weight", format: FormatJSON,
			doc:  `{"uri":"/","upstream":{"nodes":[{"port":80}]}}`,
			want: []string{"route.upstream.nodes[0].host: is required", "route.upstream.nodes[0].weight: is required"},
		},
		{
			desc: "bad map node addresses", format: FormatJSON,
			doc: `{"uri":"/","upstream":{"nodes":{"h:abc":1,"h:0":1,"[::1":1,":80":1,"h:1":"x"}}}`,
			want: []string{
				`route.upstream.nodes[":80"]: invalid address: missing host`,
				`route.upstream.nodes["[::1"]: invalid address: missing ']'`,
				`route.upstream.nodes["h:0"]: invalid port "0": must be between 1 and 65535`,
				`route.upstream.nodes["h:1"]: weight must be an integer`,
				`route.upstream.nodes["h:abc"]: invalid port "abc": must be between 1 and 65535`,
			},
		},
		{
			desc: "nodes of wrong type", format: FormatJSON,
			doc:  `{"uri":"/","upstream":{"nodes":"h:80"}}`,
			want: []string{`route.upstream.nodes: must be an object of "host:port": weight or an array of nodes`},
		},
		{
			desc: "yaml null for a string", format: FormatYAML,
			doc:  "uri: ~\nupstream_id: 1\n",
			want: []string{"route.uri: must be a string"},
		},
		{
			desc: "not an object", format: FormatJSON,
			doc:  `[1]`,
			want: []string{"route: must be an object"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			_, err := DecodeRoute([]byte(tt.doc), tt.format)
			if err == nil {
				t.Fatal("no error")
			}
			assertErrs(t, err, tt.want)
		})
	}
}

func TestDecodeYAMLMatchesJSON(t *testing.T) {
	t.Parallel()
	y := `
id: 12
uri: /users/*
methods: [GET, PURGE]
hosts: ["*.example.com"]
priority: 10
vars: [["arg_name", "==", "json"]]
plugins:
  limit-count: {count: 2, time_window: 60}
labels: {env: "prod"}
timeout: {connect: 1.5, send: 2, read: 3}
upstream:
  type: chash
  key: remote_addr
  nodes:
    "127.0.0.1:1980": 1
    "[::1]:1981": 2
  keepalive_pool: {size: 8}
`
	j := `{"id":"12","uri":"/users/*","methods":["GET","PURGE"],"hosts":["*.example.com"],"priority":10,
"vars":[["arg_name","==","json"]],"plugins":{"limit-count":{"count":2,"time_window":60}},"labels":{"env":"prod"},
"timeout":{"connect":1.5,"send":2,"read":3},
"upstream":{"type":"chash","key":"remote_addr","nodes":[{"host":"127.0.0.1","port":1980,"weight":1},{"host":"[::1]","port":1981,"weight":2}],
"keepalive_pool":{"size":8}}}`
	ry, err := DecodeRoute([]byte(y), FormatYAML)
	if err != nil {
		t.Fatalf("yaml: %v", err)
	}
	rj, err := DecodeRoute([]byte(j), FormatJSON)
	if err != nil {
		t.Fatalf("json: %v", err)
	}
	by, _ := json.Marshal(ry)
	bj, _ := json.Marshal(rj)
	if string(by) != string(bj) {
		t.Errorf("yaml and json differ:\nyaml: %s\njson: %s", by, bj)
	}
	if err := ry.Validate(); err != nil {
		t.Errorf("validate: %v", err)
	}
	// Defaults applied.
	u := ry.Upstream
	if *ry.Status != 1 || u.HashOn != "vars" || u.Scheme != "http" || u.PassHost != "pass" {
		t.Errorf("defaults not applied: status=%d %+v", *ry.Status, u)
	}
	if *u.KeepalivePool != (KeepalivePool{Size: 8, IdleTimeout: 60, Requests: 1000}) {
		t.Errorf("keepalive_pool = %+v", *u.KeepalivePool)
	}
	if u.Nodes[1].Host != "::1" {
		t.Errorf("ipv6 host = %q, want ::1", u.Nodes[1].Host)
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	r, err := DecodeRoute([]byte(`{"uri":"/","upstream":{"nodes":[]}}`), FormatJSON)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(r)
	want := `{"uri":"/","priority":0,"upstream":{"type":"roundrobin","nodes":[],"hash_on":"vars","scheme":"http","pass_host":"pass"},"status":1}`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestYAMLFeatures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc    string
		doc     string
		wantErr string
		check   func(*testing.T, *Upstream)
	}{
		{
			desc: "anchors and merge keys; explicit keys win",
			doc:  "base: &b {type: chash, key: uri}\nup:\n  <<: *b\n  key: host\n  nodes: []\n",
			check: func(t *testing.T, u *Upstream) {
				if u.Type != "chash" || u.Key != "host" {
					t.Errorf("got type=%q key=%q", u.Type, u.Key)
				}
			},
		},
		{desc: "duplicate keys", doc: "up:\n  type: chash\n  type: ewma\n", wantErr: `parse yaml: line 3: duplicate key "type"`},
		{desc: "two documents", doc: "up: {}\n---\nup: {}\n", wantErr: "parse yaml: more than one document"},
		{desc: "infinite number", doc: "up: {retry_timeout: .inf}\n", wantErr: `parse yaml: line 1: ".inf" is not a finite number`},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			tree, err := parseTree([]byte(tt.doc), FormatYAML)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(tree.(map[string]any)["up"])
			u, err := DecodeUpstream(b, FormatJSON)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, u)
		})
	}
}

func TestYAMLAliasBomb(t *testing.T) {
	t.Parallel()
	doc := "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n" +
		"d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n" +
		"g: [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
	if _, err := parseTree([]byte(doc), FormatYAML); err == nil {
		t.Fatal("alias bomb accepted")
	}
}
