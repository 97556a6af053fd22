package config

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestDecodeKind(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("n", 300)
	tests := []struct {
		desc string
		kind string
		id   string
		body string
		want []string // "path: msg"; empty means success
		// check inspects a successful result.
		check func(t *testing.T, v any)
	}{
		// Routes, services and upstreams use the existing rules with root paths.
		{
			desc: "route takes the URL id and defaults", kind: "routes", id: "1",
			body: `{"uri":"/a","upstream_id":1}`,
			check: func(t *testing.T, v any) {
				r := v.(*Route)
				if r.ID != "1" || r.UpstreamID != "1" || r.Status == nil || *r.Status != 1 {
					t.Errorf("route = %+v", r)
				}
			},
		},
		{desc: "route integer body id equal to the URL id", kind: "routes", id: "1", body: `{"id":1,"uri":"/a","plugins":{}}`},
		{
			desc: "route body id differs from the URL id", kind: "routes", id: "1",
			body: `{"id":2,"uri":"/a","plugins":{}}`,
			want: []string{`id: must match the id in the URL "1" (got "2")`},
		},
		{
			desc: "route without URL id keeps the body id", kind: "routes",
			body: `{"id":"r9","uri":"/a","plugins":{}}`,
			check: func(t *testing.T, v any) {
				if id := v.(*Route).ID; id != "r9" {
					t.Errorf("id = %q", id)
				}
			},
		},
		{
			desc: "route errors have root paths", kind: "routes", id: "1",
			body: `{"uri":"a","upstream":{"nodes":[{"host":"h","port":1,"weight":1},{"host":"h","port":99999,"weight":1}]}}`,
			want: []string{`uri: must start with "/"`, "upstream.nodes[1].port: must be between 1 and 65535"},
		},
		{
			desc: "id mismatch is reported with the other problems", kind: "routes", id: "1",
			body: `{"id":"2","uri":"a","plugins":{}}`,
			want: []string{`id: must match the id in the URL "1" (got "2")`, `uri: must start with "/"`},
		},
		{desc: "route unknown field", kind: "routes", body: `{"uri":"/a","plugins":{},"urI":1}`, want: []string{"urI: unknown field"}},
		{desc: "body is not an object", kind: "routes", id: "1", body: `[]`, want: []string{": must be an object"}},
		{desc: "invalid URL id", kind: "routes", id: "a/b", body: `{"uri":"/a","plugins":{}}`, want: []string{"id: must be 1-64 characters of a-z, A-Z, 0-9, '-', '_' and '.'"}},
		{desc: "service", kind: "services", id: "s1", body: `{"upstream_id":"u1","create_time":1700000000,"update_time":1700000001}`},
		{desc: "service error", kind: "services", id: "s1", body: `{"hosts":[]}`, want: []string{"hosts: must have at least 1 item"}},
		{
			desc: "upstream defaults", kind: "upstreams", id: "u1", body: `{"nodes":{"h:80":1}}`,
			check: func(t *testing.T, v any) {
				if u := v.(*Upstream); u.ID != "u1" || u.Type != "roundrobin" || u.Scheme != "http" {
					t.Errorf("upstream = %+v", u)
				}
			},
		},

		// Consumers: the URL id is the username.
		{
			desc: "consumer", kind: "consumers", id: "jack",
			body: `{"username":"jack","desc":"d","labels":{"team":"a"},"group_id":1,"plugins":{"key-auth":{"key":"k"}},"create_time":1700000000,"update_time":1700000001}`,
			check: func(t *testing.T, v any) {
				if c := v.(*Consumer); c.Username != "jack" || c.GroupID != "1" || c.Plugins == nil {
					t.Errorf("consumer = %+v", c)
				}
			},
		},
		{
			desc: "consumer username from the URL", kind: "consumers", id: "jack_2-x", body: `{}`,
			check: func(t *testing.T, v any) {
				if c := v.(*Consumer); c.Username != "jack_2-x" {
					t.Errorf("username = %q", c.Username)
				}
			},
		},
		{desc: "consumer without plugins is allowed", kind: "consumers", body: `{"username":"a"}`},
		{desc: "consumer id equal to username", kind: "consumers", body: `{"username":"a","id":"a"}`},
		{
			desc: "consumer username differs from the URL", kind: "consumers", id: "jack", body: `{"username":"tom"}`,
			want: []string{`username: must match the username in the URL "jack" (got "tom")`},
		},
		{desc: "consumer username required", kind: "consumers", body: `{"plugins":{}}`, want: []string{"username: is required"}},
		{
			desc: "consumer username pattern", kind: "consumers", body: `{"username":"a.b"}`,
			want: []string{"username: must contain only a-z, A-Z, 0-9, '_' and '-'"},
		},
		{
			desc: "consumer username too long", kind: "consumers", body: `{"username":"` + strings.Repeat("u", 257) + `"}`,
			want: []string{"username: must be at most 256 characters"},
		},
		{
			desc: "consumer id differs from username", kind: "consumers", body: `{"username":"jack","id":"bob"}`,
			want: []string{`id: must equal username "jack" (a consumer's id is its username)`},
		},
		{
			desc: "consumer bad group_id, labels and desc", kind: "consumers",
			body: `{"username":"a","group_id":"g/1","labels":{"k":"a b"},"desc":"` + long + `"}`,
			want: []string{
				"desc: must be at most 256 characters",
				"labels.k: must be 1-256 characters without whitespace",
				"group_id: must be 1-64 characters of a-z, A-Z, 0-9, '-', '_' and '.'",
			},
		},
		{
			desc: "consumer type errors", kind: "consumers", body: `{"username":1,"group_id":0,"plugins":[],"name":"x"}`,
			want: []string{
				"group_id: must be a string or an integer >= 1",
				"name: unknown field",
				"plugins: must be an object",
				"username: must be a string",
			},
		},

		// Consumer groups, plugin configs and global rules require id and plugins.
		{
			desc: "consumer group", kind: "consumer_groups", id: "g1",
			body: `{"name":"gold","desc":"d","labels":{"a":"b"},"plugins":{"limit-count":{}},"create_time":1,"update_time":2}`,
			check: func(t *testing.T, v any) {
				if g := v.(*ConsumerGroup); g.ID != "g1" || g.Name != "gold" {
					t.Errorf("group = %+v", g)
				}
			},
		},
		{desc: "consumer group empty plugins", kind: "consumer_groups", id: "g1", body: `{"plugins":{}}`},
		{
			desc: "consumer group needs id and plugins", kind: "consumer_groups", body: `{}`,
			want: []string{"id: is required", "plugins: is required"},
		},
		{
			desc: "consumer group name limit", kind: "consumer_groups", id: "g", body: `{"plugins":{},"name":"` + long + `"}`,
			want: []string{"name: must be at most 256 characters"},
		},
		{desc: "consumer group null plugins", kind: "consumer_groups", id: "g", body: `{"plugins":null}`, want: []string{"plugins: is required"}},
		{desc: "plugin config name has no limit", kind: "plugin_configs", id: "1", body: `{"plugins":{"a":{}},"name":"` + long + `"}`},
		{
			desc: "plugin config problems", kind: "plugin_configs", body: `{"desc":"` + long + `"}`,
			want: []string{"id: is required", "desc: must be at most 256 characters", "plugins: is required"},
		},
		{desc: "plugin config wrong id", kind: "plugin_configs", id: "1", body: `{"id":"2","plugins":{}}`, want: []string{`id: must match the id in the URL "1" (got "2")`}},
		{desc: "global rule", kind: "global_rules", id: "1", body: `{"plugins":{"prometheus":{}},"create_time":1,"update_time":2}`},
		{desc: "global rule needs id", kind: "global_rules", body: `{"plugins":{}}`, want: []string{"id: is required"}},
		{desc: "global rule has no desc", kind: "global_rules", id: "1", body: `{"plugins":{},"desc":"x"}`, want: []string{"desc: unknown field"}},

		// Plugin metadata: the id is the plugin name, the rest belongs to the plugin.
		{
			desc: "plugin metadata", kind: "plugin_metadata", id: "http-logger",
			body: `{"log_format":{"host":"$host"},"anything":[1,2]}`,
			check: func(t *testing.T, v any) {
				m := v.(*PluginMetadata)
				if m.ID != "http-logger" || len(m.Config) != 2 || m.Config["log_format"] == nil {
					t.Errorf("metadata = %+v", m)
				}
			},
		},
		{desc: "plugin metadata body id equals URL", kind: "plugin_metadata", id: "syslog", body: `{"id":"syslog"}`},
		{
			desc: "plugin metadata body id differs", kind: "plugin_metadata", id: "http-logger", body: `{"id":"syslog"}`,
			want: []string{`id: must match the id in the URL "http-logger" (got "syslog")`},
		},
		{desc: "plugin metadata not an object", kind: "plugin_metadata", id: "x", body: `"x"`, want: []string{": must be an object"}},
		{desc: "plugin metadata needs a name", kind: "plugin_metadata", body: `{"a":1}`, want: []string{"id: is required"}},
		{desc: "plugin metadata bad id type", kind: "plugin_metadata", body: `{"id":true}`, want: []string{"id: must be a string or an integer >= 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			v, err := DecodeKind(tt.kind, tt.id, []byte(tt.body))
			assertErrs(t, err, tt.want)
			if len(tt.want) > 0 {
				if v != nil {
					t.Errorf("DecodeKind returned %T with an error", v)
				}
				return
			}
			if tt.check != nil && v != nil {
				tt.check(t, v)
			}
		})
	}
}

func TestDecodeKindTypes(t *testing.T) {
	t.Parallel()
	bodies := map[string]string{
		"routes":          `{"uri":"/","plugins":{}}`,
		"services":        `{}`,
		"upstreams":       `{"nodes":[]}`,
		"consumers":       `{}`,
		"consumer_groups": `{"plugins":{}}`,
		"plugin_configs":  `{"plugins":{}}`,
		"global_rules":    `{"plugins":{}}`,
		"ssls":            `{"type":"client","cert":"$secret://v/c","key":"$secret://v/k"}`,
		"plugin_metadata": `{}`,
	}
	want := map[string]any{
		"routes": (*Route)(nil), "services": (*Service)(nil), "upstreams": (*Upstream)(nil),
		"consumers": (*Consumer)(nil), "consumer_groups": (*ConsumerGroup)(nil),
		"plugin_configs": (*PluginConfig)(nil), "global_rules": (*GlobalRule)(nil),
		"ssls": (*SSL)(nil), "plugin_metadata": (*PluginMetadata)(nil),
	}
	names := KindNames()
	if len(names) != len(want) {
		t.Fatalf("KindNames() = %v", names)
	}
	for _, kind := range names {
		v, err := DecodeKind(kind, "x1", []byte(bodies[kind]))
		if err != nil {
			t.Errorf("%s: %v", kind, err)
			continue
		}
		if reflect.TypeOf(v) != reflect.TypeOf(want[kind]) {
			t.Errorf("%s: got %T, want %T", kind, v, want[kind])
		}
	}
	names[0] = "changed"
	if KindNames()[0] == "changed" {
		t.Error("KindNames shares its slice between calls")
	}
	if !slices.Contains(KindNames(), "plugin_metadata") || KindNames()[len(names)-1] != "routes" {
		t.Errorf("KindNames() = %v", KindNames())
	}
}

func TestDecodeKindErrors(t *testing.T) {
	t.Parallel()
	_, err := DecodeKind("route", "1", []byte(`{}`))
	if !errors.Is(err, ErrUnknownKind) || !strings.Contains(err.Error(), `"route"`) {
		t.Errorf("unknown kind: %v", err)
	}
	_, err = DecodeKind("routes", "1", []byte(`{"uri":`))
	if err == nil || err.Error() != "parse json: unexpected EOF" {
		t.Errorf("truncated body: %v", err)
	}
	_, err = DecodeKind("routes", "1", []byte(`{} {}`))
	if err == nil || !strings.Contains(err.Error(), "unexpected data after the top-level value") {
		t.Errorf("trailing data: %v", err)
	}
	_, err = DecodeKind("routes", "1", []byte(`null`))
	if err == nil || err.Error() != "must be an object" {
		t.Errorf("null body: %v", err)
	}
}

func TestKindValidateMethods(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		v    interface{ Validate() error }
		want []string
	}{
		{"consumer", &Consumer{}, []string{"consumer.username: is required"}},
		{"consumer ok", &Consumer{Username: "a", GroupID: "g"}, nil},
		{"consumer group", &ConsumerGroup{}, []string{"consumer_group.id: is required", "consumer_group.plugins: is required"}},
		{"plugin config", &PluginConfig{ID: "1"}, []string{"plugin_config.plugins: is required"}},
		{"global rule", &GlobalRule{ID: "1", Plugins: map[string]any{}}, nil},
		{"global rule no id", &GlobalRule{Plugins: map[string]any{}}, []string{"global_rule.id: is required"}},
		{"plugin metadata", &PluginMetadata{}, []string{"plugin_metadata.id: is required"}},
		{"plugin metadata bad name", &PluginMetadata{ID: "a b"}, []string{"plugin_metadata.id: must be 1-64 characters of a-z, A-Z, 0-9, '-', '_' and '.'"}},
		{"ssl", &SSL{}, []string{"ssl.snis: is required for type server (or set sni)", "ssl.cert: is required", "ssl.key: is required"}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			assertErrs(t, tt.v.Validate(), tt.want)
		})
	}
}

func TestPluginMetadataJSON(t *testing.T) {
	t.Parallel()
	v, err := DecodeKind("plugin_metadata", "http-logger", []byte(`{"log_format":{"a":"$a"},"n":1}`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"id":"http-logger","log_format":{"a":"$a"},"n":1}`; string(b) != want {
		t.Errorf("marshal = %s, want %s", b, want)
	}
	var m PluginMetadata
	if err := json.Unmarshal([]byte(`{"id":7,"x":true}`), &m); err != nil || m.ID != "7" || m.Config["x"] != true {
		t.Errorf("unmarshal = %+v, %v", m, err)
	}
	if err := json.Unmarshal([]byte(`{"id":[1]}`), &m); err == nil {
		t.Error("array id accepted")
	}
	// Config's own "id" never overrides ID.
	b, _ = json.Marshal(PluginMetadata{ID: "a", Config: map[string]any{"id": "b"}})
	if string(b) != `{"id":"a"}` {
		t.Errorf("marshal with id in Config = %s", b)
	}
	b, _ = json.Marshal(PluginMetadata{Config: map[string]any{"id": "b", "k": 1}})
	if string(b) != `{"k":1}` {
		t.Errorf("marshal without ID = %s", b)
	}
}

// TestKindJSONShape checks that the typed kinds marshal to APISIX's field names
// and leave out what was not set.
func TestKindJSONShape(t *testing.T) {
	t.Parallel()
	tests := []struct {
		v    any
		want string
	}{
		{Consumer{Username: "jack"}, `{"username":"jack"}`},
		{Consumer{Username: "jack", GroupID: "g", Plugins: map[string]any{}}, `{"username":"jack","group_id":"g","plugins":{}}`},
		{ConsumerGroup{ID: "g", Plugins: map[string]any{}}, `{"id":"g","plugins":{}}`},
		{PluginConfig{ID: "p", Name: "n", Plugins: map[string]any{}}, `{"id":"p","name":"n","plugins":{}}`},
		{GlobalRule{ID: "1", Plugins: map[string]any{}, CreateTime: 5}, `{"id":"1","plugins":{},"create_time":5}`},
		{
			SSL{ID: "1", Type: "server", SNIs: []string{"a"}, Client: &SSLClient{CA: "c", SkipMTLSURIRegex: []string{"^/"}}, SSLProtocols: []string{"TLSv1.3"}},
			`{"id":"1","type":"server","snis":["a"],"client":{"ca":"c","skip_mtls_uri_regex":["^/"]},"ssl_protocols":["TLSv1.3"]}`,
		},
	}
	for _, tt := range tests {
		b, err := json.Marshal(tt.v)
		if err != nil || string(b) != tt.want {
			t.Errorf("%T: %s, %v\nwant %s", tt.v, b, err, tt.want)
		}
	}
}

func TestAppendKind(t *testing.T) {
	t.Parallel()
	var res Resources
	items := []struct{ kind, key, body string }{
		{"upstreams", "u1", `{"id":"u1","nodes":{"h:80":1},"create_time":1,"update_time":2}`},
		{"routes", "r1", `{"uri":"/a","service_id":"s1","priority":2,"plugin_config_id":"pc"}`},
		{"services", "s1", `{"upstream_id":"u1"}`},
		{"upstreams", "1", `{"nodes":[]}`},
		{"consumers", "jack", `{"username":"jack","group_id":7}`},
		{"consumer_groups", "7", `{"id":7,"plugins":{}}`},
		{"plugin_configs", "pc", `{"plugins":{}}`},
		{"global_rules", "1", `{"plugins":{}}`},
		{"ssls", "c1", `{"type":"client","cert":"$secret://c","key":"$secret://k"}`},
		{"plugin_metadata", "http-logger", `{"log_format":{}}`},
	}
	for _, it := range items {
		if err := res.AppendKind(it.kind, it.key, []byte(it.body)); err != nil {
			t.Fatalf("%s/%s: %v", it.kind, it.key, err)
		}
	}
	if err := res.Validate(); err != nil {
		t.Fatal(err)
	}
	if r := res.Routes[0]; r.ID != "r1" || r.Priority != 2 || *r.Status != 1 {
		t.Errorf("route = %+v", r)
	}
	if s := res.SSLs[0]; s.ID != "c1" || *s.Status != 1 {
		t.Errorf("ssl = %+v", s)
	}
	if res.PluginMetadata[0].ID != "http-logger" || res.Consumers[0].GroupID != "7" {
		t.Errorf("metadata %+v, consumer %+v", res.PluginMetadata[0], res.Consumers[0])
	}
	// The key wins over the body.
	if err := res.AppendKind("consumers", "jill", []byte(`{"username":"other"}`)); err != nil || res.Consumers[1].Username != "jill" {
		t.Errorf("consumer key: %v %+v", err, res.Consumers)
	}
	n := len(res.Routes)
	assertErrs(t, res.AppendKind("routes", "r2", []byte(`{"uri":"/a","bogus":1}`)), []string{"bogus: unknown field"})
	if len(res.Routes) != n {
		t.Error("a failed AppendKind changed r")
	}
	if err := res.AppendKind("protos", "1", []byte(`{}`)); !errors.Is(err, ErrUnknownKind) {
		t.Errorf("unknown kind: %v", err)
	}
}
