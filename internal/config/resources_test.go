package config

import (
	"errors"
	"strings"
	"testing"
)

func TestHasEndFlag(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		data string
		want bool
	}{
		{"last line", "routes: []\n#END", true},
		{"trailing newline", "routes: []\n#END\n", true},
		{"trailing whitespace and CRLF", "routes: []\n#END \t\r\n", true},
		{"six trailing bytes still fit the 10-byte window", "routes: []\n#END\n\n\n\n\n\n", true},
		{"seven trailing bytes do not", "routes: []\n#END\n\n\n\n\n\n\n", false},
		{"not at line start (APISIX does not require it)", "routes: [] #END\n", true},
		{"file is only the flag", "#END", true},
		{"missing", "routes: []\n", false},
		{"lower case", "routes: []\n#end\n", false},
		{"followed by text", "#END\nroutes: []\n", false},
		{"flag with suffix", "routes: []\n#ENDX\n", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			if got := HasEndFlag([]byte(tt.data)); got != tt.want {
				t.Errorf("HasEndFlag(%q) = %v, want %v", tt.data, got, tt.want)
			}
		})
	}
}

const goodYAML = `# sample standalone file
upstreams:
  - id: 1
    nodes:
      "127.0.0.1:1980": 1
services:
  - id: s1
    upstream_id: 1
routes:
  - id: r1
    uri: /hello
    service_id: s1
  - id: r2
    uris: [/a, /b]
    upstream_id: 1
plugins:
  - name: key-auth
consumers:
  - username: jack
global_rules: []
plugin_configs: []
ssls: []
stream_routes: []
routes_conf_version: 3
#END
`

func TestParseResourcesFile(t *testing.T) {
	t.Parallel()
	res, err := ParseResourcesFile([]byte(goodYAML), "conf/apisix.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(res.Routes) != 2 || len(res.Services) != 1 || len(res.Upstreams) != 1 {
		t.Fatalf("got %d routes, %d services, %d upstreams", len(res.Routes), len(res.Services), len(res.Upstreams))
	}
	if res.Upstreams[0].ID != "1" || res.Services[0].UpstreamID != "1" {
		t.Errorf("integer ids not converted: %q %q", res.Upstreams[0].ID, res.Services[0].UpstreamID)
	}
	if res.Upstreams[0].Type != "roundrobin" || *res.Routes[0].Status != 1 {
		t.Error("defaults not applied")
	}

	jsonDoc := `{"upstreams":[{"id":"1","nodes":[{"host":"127.0.0.1","port":1980,"weight":1}]}],
"routes":[{"id":"r1","uri":"/hello","upstream_id":"1"}]}`
	for _, name := range []string{"apisix.json", "resources"} { // by extension, then by content
		res, err := ParseResourcesFile([]byte(jsonDoc), name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := res.Validate(); err != nil || len(res.Routes) != 1 {
			t.Fatalf("%s: %v, %d routes", name, err, len(res.Routes))
		}
	}
}

func TestParseResourcesFileErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		name string
		doc  string
		want string
	}{
		{desc: "yaml without #END", name: "apisix.yaml", doc: "routes: []\n", want: "apisix.yaml: missing #END flag: APISIX loads a YAML resources file only when it ends with #END"},
		{desc: "yml without #END", name: "a.yml", doc: "routes: []\n", want: "a.yml: missing #END flag: APISIX loads a YAML resources file only when it ends with #END"},
		{desc: "truncated json", name: "apisix.json", doc: `{"routes":[`, want: "apisix.json: parse json: unexpected EOF"},
		{desc: "unknown top-level key", name: "apisix.yaml", doc: "routs: []\nupstreams: []\n#END\n", want: "apisix.yaml: routs: unknown field"},
		{desc: "top level not an object", name: "apisix.yaml", doc: "- a\n#END\n", want: "apisix.yaml: the top level must be an object"},
		{desc: "bad yaml", name: "apisix.yaml", doc: "routes: [\n#END\n", want: "apisix.yaml: parse yaml: yaml: line 2: did not find expected node content"},
		{desc: "field errors with index paths", name: "apisix.yaml", doc: "routes:\n  - id: 1\n    uri: /\n    plugins: {}\n  - id: 2\n    ur: /\n#END\n", want: "apisix.yaml: routes[1].ur: unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			_, err := ParseResourcesFile([]byte(tt.doc), tt.name)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("err = %v\nwant %s", err, tt.want)
			}
		})
	}
	if _, err := ParseResourcesFile([]byte("routes: []\n"), "x.yaml"); !errors.Is(err, ErrMissingEndFlag) {
		t.Errorf("missing #END error does not wrap ErrMissingEndFlag: %v", err)
	}
	if res, err := ParseResourcesFile([]byte("#END\n"), "x.yaml"); err != nil || len(res.Routes) != 0 {
		t.Errorf("file with only #END: %v", err)
	}
	if res, err := ParseResourcesFile([]byte(`{}`), "x.json"); err != nil || res == nil {
		t.Errorf("empty json object: %v", err)
	}
}

func TestResourcesValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		doc  string
		want []string
	}{
		{
			desc: "missing references",
			doc: `routes:
  - {id: r1, uri: /a, upstream_id: 9, service_id: s9}
services:
  - {id: s1, upstream_id: "9"}
upstreams:
  - {id: 1, nodes: []}
#END
`,
			want: []string{
				`routes[0].upstream_id: upstream "9" not found`,
				`routes[0].service_id: service "s9" not found`,
				`services[0].upstream_id: upstream "9" not found`,
			},
		},
		{
			desc: "ids required and unique",
			doc: `routes:
  - {uri: /a, plugins: {}}
  - {id: r, uri: /a, plugins: {}}
  - {id: r, uri: /b, plugins: {}}
services:
  - {}
upstreams:
  - {id: u, nodes: []}
  - {id: u, nodes: []}
#END
`,
			want: []string{
				"routes[0].id: is required in a resources file",
				`routes[2].id: duplicate id "r" (first used at index 1)`,
				"services[0].id: is required in a resources file",
				`upstreams[1].id: duplicate id "u" (first used at index 0)`,
			},
		},
		{
			desc: "every error in the file is returned with its path",
			doc: `routes:
  - id: r1
    uri: /a
    upstream:
      nodes: [{host: h, port: 0, weight: 1}, {host: h, port: 99999, weight: 1}]
      type: chash
  - id: r2
    uri: b
    upstream_id: u1
upstreams:
  - id: u1
    nodes: {"h:80": 1}
    scheme: kafka
#END
`,
			want: []string{
				"routes[0].upstream.nodes[1].port: must be between 1 and 65535",
				"routes[0].upstream.key: is required when type is chash",
				`routes[1].uri: must start with "/"`,
				"upstreams[0].scheme: must be one of http, https, grpc, grpcs",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			res, err := ParseResourcesFile([]byte(tt.doc), "apisix.yaml")
			if err != nil {
				t.Fatal(err)
			}
			err = res.Validate()
			assertErrs(t, err, tt.want)
			if err != nil && !strings.Contains(err.Error(), tt.want[0]) {
				t.Errorf("Error() = %q lacks %q", err, tt.want[0])
			}
		})
	}
}
