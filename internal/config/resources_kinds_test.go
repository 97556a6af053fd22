package config

import (
	"encoding/json"
	"strings"
	"testing"
)

// everyKindYAML is a standalone file with every kind sluice decodes. SSLs use
// secret references so the file needs no real PEM (see TestParseResourcesFileSSL).
const everyKindYAML = `upstreams:
  - id: 1
    nodes: {"127.0.0.1:1980": 1}
    scheme: https
    tls: {client_cert_id: c1}
services:
  - id: s1
    upstream_id: 1
plugin_configs:
  - id: pc1
    name: any name, no limit
    plugins: {limit-count: {count: 1}}
consumer_groups:
  - id: 7
    name: gold
    plugins: {}
consumers:
  - username: jack
    group_id: 7
    plugins: {key-auth: {key: k1}}
  - username: jill
    id: jill
ssls:
  - id: c1
    type: client
    cert: $secret://vault/1/cert
    key: $secret://vault/1/key
  - id: s1
    snis: ["*.example.com"]
    cert: $env://CERT
    key: $env://KEY
global_rules:
  - id: 1
    plugins: {prometheus: {}}
  - id: 2
    plugins: {}
plugin_metadata:
  - id: http-logger
    log_format: {host: $host}
routes:
  - id: r1
    uri: /hello
    service_id: s1
    plugin_config_id: pc1
credentials: []
protos: []
secrets: []
ssls_conf_version: 2
consumers_conf_version: 2
#END
`

func TestParseResourcesFileEveryKind(t *testing.T) {
	t.Parallel()
	res, err := ParseResourcesFile([]byte(everyKindYAML), "apisix.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Validate(); err != nil {
		t.Fatal(err)
	}
	counts := []int{
		len(res.Routes), len(res.Services), len(res.Upstreams), len(res.Consumers), len(res.ConsumerGroups),
		len(res.PluginConfigs), len(res.GlobalRules), len(res.SSLs), len(res.PluginMetadata),
	}
	if want := []int{1, 1, 1, 2, 1, 1, 2, 2, 1}; !equalInts(counts, want) {
		t.Fatalf("counts = %v, want %v", counts, want)
	}
	if res.ConsumerGroups[0].ID != "7" || res.Consumers[0].GroupID != "7" {
		t.Errorf("integer ids not converted: %q %q", res.ConsumerGroups[0].ID, res.Consumers[0].GroupID)
	}
	if s := res.SSLs[1]; s.Type != "server" || *s.Status != 1 {
		t.Errorf("ssl defaults not applied: %+v", s)
	}
	if m := res.PluginMetadata[0]; m.ID != "http-logger" || m.Config["log_format"] == nil {
		t.Errorf("plugin metadata = %+v", m)
	}

	// The JSON encoding of what was decoded parses to the same thing.
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	res2, err := ParseResourcesFile(b, "apisix.json")
	if err != nil {
		t.Fatalf("re-parse %s: %v", b, err)
	}
	b2, _ := json.Marshal(res2)
	if string(b) != string(b2) {
		t.Errorf("round trip changed:\n%s\n%s", b, b2)
	}
	for _, key := range []string{`"consumers":`, `"consumer_groups":`, `"plugin_configs":`, `"global_rules":`, `"ssls":`, `"plugin_metadata":[{"id":"http-logger"`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("JSON lacks %s: %s", key, b)
		}
	}
}

func TestParseResourcesFileSSL(t *testing.T) {
	t.Parallel()
	a := newTestCert(t, "a.example.com", false)
	b := newTestCert(t, "b.example.com", false)
	doc, err := json.Marshal(map[string]any{
		"ssls": []map[string]any{
			{"id": 1, "sni": "a.example.com", "cert": a.cert, "key": a.key},
			{"id": 2, "sni": "b.example.com", "cert": b.cert, "key": a.key},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := ParseResourcesFile(doc, "apisix.json")
	if err != nil {
		t.Fatal(err)
	}
	assertErrs(t, res.Validate(), []string{"ssls[1].key: does not match the certificate in cert"})
}

func TestResourcesValidateKinds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		doc  string
		want []string
	}{
		{
			desc: "missing references",
			doc: `routes:
  - {id: r1, uri: /a, plugin_config_id: pc9, upstream: {nodes: [], tls: {client_cert_id: c9}}}
services:
  - {id: s1, upstream: {nodes: [], tls: {client_cert_id: srv}}}
upstreams:
  - {id: u1, nodes: [], tls: {client_cert_id: srv}}
consumers:
  - {username: jack, group_id: g9}
ssls:
  - {id: srv, sni: a.com, cert: $secret://c, key: $secret://k}
#END
`,
			want: []string{
				`routes[0].plugin_config_id: plugin config "pc9" not found`,
				`routes[0].upstream.tls.client_cert_id: ssl "c9" not found`,
				`services[0].upstream.tls.client_cert_id: ssl "srv" must be of type client, not server`,
				`upstreams[0].tls.client_cert_id: ssl "srv" must be of type client, not server`,
				`consumers[0].group_id: consumer group "g9" not found`,
			},
		},
		{
			desc: "ids and usernames required and unique",
			doc: `consumers:
  - {username: jack}
  - {}
  - {username: jack, id: jack}
consumer_groups:
  - {plugins: {}}
plugin_configs:
  - {id: p, plugins: {}}
  - {id: p, plugins: {}}
global_rules:
  - {plugins: {}}
ssls:
  - {id: s, type: client, cert: $secret://c, key: $secret://k}
  - {id: s, type: client, cert: $secret://c, key: $secret://k}
plugin_metadata:
  - {log_format: {}}
  - {id: syslog}
  - {id: syslog}
#END
`,
			want: []string{
				"consumers[1].username: is required",
				`consumers[2].username: duplicate username "jack" (first used at index 0)`,
				"consumer_groups[0].id: is required in a resources file",
				`plugin_configs[1].id: duplicate id "p" (first used at index 0)`,
				"global_rules[0].id: is required in a resources file",
				`ssls[1].id: duplicate id "s" (first used at index 0)`,
				"plugin_metadata[0].id: is required in a resources file",
				`plugin_metadata[2].id: duplicate id "syslog" (first used at index 1)`,
			},
		},
		{
			desc: "plugins required, and a plugin in one global rule only",
			doc: `consumer_groups:
  - {id: g}
plugin_configs:
  - {id: p}
global_rules:
  - {id: 1, plugins: {limit-count: {}, prometheus: {}}}
  - {id: 2}
  - {id: 3, plugins: {prometheus: {}, cors: {}, limit-count: {}}}
#END
`,
			want: []string{
				"consumer_groups[0].plugins: is required",
				"plugin_configs[0].plugins: is required",
				"global_rules[1].plugins: is required",
				`global_rules[2].plugins.limit-count: already configured by global rule "1" (global_rules[0])`,
				`global_rules[2].plugins.prometheus: already configured by global rule "1" (global_rules[0])`,
			},
		},
		{
			desc: "each kind's own rules with index paths",
			doc: `consumers:
  - {username: "a b", id: x}
ssls:
  - {id: 1, cert: short, key: short, snis: []}
#END
`,
			want: []string{
				"consumers[0].username: must contain only a-z, A-Z, 0-9, '_' and '-'",
				`consumers[0].id: must equal username "a b" (a consumer's id is its username)`,
				"ssls[0].snis: must have at least 1 item",
				"ssls[0].cert: must be between 128 and 65536 characters",
				"ssls[0].key: must be between 64 and 65536 characters",
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
			assertErrs(t, res.Validate(), tt.want)
		})
	}
}

func TestParseResourcesFileKindErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		doc  string
		want string
	}{
		{
			desc: "plugin metadata in map form",
			doc:  "plugin_metadata:\n  http-logger: {log_format: {}}\n#END\n",
			want: "apisix.yaml: plugin_metadata: must be an array",
		},
		{
			desc: "plugin metadata item not an object",
			doc:  "plugin_metadata:\n  - http-logger\n#END\n",
			want: "apisix.yaml: plugin_metadata[0]: must be an object",
		},
		{
			desc: "unknown fields in new kinds",
			doc:  "consumers:\n  - {username: a, credentials: []}\nssls:\n  - {id: 1, validity_end: 1}\nglobal_rules:\n  - {id: 1, plugins: {}, name: x}\n#END\n",
			want: "apisix.yaml: consumers[0].credentials: unknown field; global_rules[0].name: unknown field; ssls[0].validity_end: unknown field",
		},
		{
			desc: "wrong types",
			doc:  "consumer_groups:\n  - {id: 0, plugins: []}\nssls:\n  - {id: s, status: \"1\", snis: a.com}\n#END\n",
			want: "apisix.yaml: consumer_groups[0].id: must be a string or an integer >= 1; consumer_groups[0].plugins: must be an object; ssls[0].snis: must be an array; ssls[0].status: must be an integer",
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			_, err := ParseResourcesFile([]byte(tt.doc), "apisix.yaml")
			if err == nil || err.Error() != tt.want {
				t.Fatalf("err = %v\nwant %s", err, tt.want)
			}
		})
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
