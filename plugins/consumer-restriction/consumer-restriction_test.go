package consumerrestriction

import (
	"strings"
	"testing"

	"github.com/sluicegw/sluice/internal/pipeline"
	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/plugintest"

	_ "github.com/sluicegw/sluice/plugins/basic-auth"
	_ "github.com/sluicegw/sluice/plugins/key-auth"
)

func TestRegistered(t *testing.T) {
	t.Parallel()
	want := map[string]int{"consumer-restriction": 2400, "key-auth": 2500, "basic-auth": 2520}
	for name, prio := range want {
		d, ok := plugin.Lookup(name)
		if !ok {
			t.Errorf("%s is not registered", name)
			continue
		}
		if d.Priority != prio {
			t.Errorf("%s priority = %d, want APISIX's %d", name, d.Priority, prio)
		}
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c := NewConfig()
	if c.Type != "consumer_name" || c.RejectedCode != 403 || c.RejectedMsg != nil ||
		c.Blacklist != nil || c.Whitelist != nil || c.AllowedByMethods != nil {
		t.Errorf("defaults = %+v", *c)
	}
	if err := c.Validate(); err == nil {
		t.Error("defaults validate, but one list is required")
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	const p = "plugins.consumer-restriction: "
	tests := []struct {
		desc, cfg, err string
	}{
		{"whitelist", `{"whitelist":["jack"]}`, ""},
		{"blacklist", `{"blacklist":["jack"]}`, ""},
		{"both lists", `{"whitelist":["jack"],"blacklist":["rose"]}`, ""},
		{"allowed_by_methods", `{"allowed_by_methods":[{"user":"jack","methods":["GET"]}]}`, ""},
		{"empty allowed_by_methods is enough", `{"allowed_by_methods":[]}`, ""},
		{"rule without methods", `{"allowed_by_methods":[{"user":"jack"}]}`, ""},
		{"every type", `{"type":"consumer_group_id","whitelist":["g"]}`, ""},
		{"service_id", `{"type":"service_id","whitelist":["1"]}`, ""},
		{"route_id", `{"type":"route_id","whitelist":["1"]}`, ""},
		{"all fields", `{"type":"route_id","whitelist":["1"],"blacklist":["2"],"allowed_by_methods":[{"user":"3","methods":["PURGE"]}],"rejected_code":429,"rejected_msg":"no"}`, ""},
		{"no list", `{}`, p + "must set at least one of blacklist, whitelist or allowed_by_methods"},
		{"nothing", ``, p + "must set at least one of blacklist, whitelist or allowed_by_methods"},
		{"empty whitelist", `{"whitelist":[]}`, p + "whitelist: must have at least 1 item"},
		{"empty blacklist", `{"blacklist":[]}`, p + "blacklist: must have at least 1 item"},
		{"bad type", `{"type":"consumer","whitelist":["a"]}`, p + "type: must be one of consumer_name, service_id, route_id, consumer_group_id"},
		{"whitelist item type", `{"whitelist":[1]}`, p + "whitelist: must be a string, got number"},
		{"empty methods", `{"allowed_by_methods":[{"user":"jack","methods":[]}]}`, p + "allowed_by_methods[0].methods: must have at least 1 item"},
		{"bad method", `{"allowed_by_methods":[{"user":"a","methods":["GET"]},{"user":"jack","methods":["GET","get"]}]}`, p + "allowed_by_methods[1].methods[1]: must be one of GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS, CONNECT, TRACE, PURGE"},
		{"rejected_code too low", `{"whitelist":["a"],"rejected_code":199}`, p + "rejected_code: must be between 200 and 599"},
		{"rejected_code too high", `{"whitelist":["a"],"rejected_code":600}`, p + "rejected_code: must be between 200 and 599"},
		{"rejected_code type", `{"whitelist":["a"],"rejected_code":"403"}`, p + "rejected_code: must be a number, got string"},
		{"unknown field", `{"whitelist":["a"],"rejected_message":"x"}`, p + "rejected_message: unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			_, err := plugintest.Build("consumer-restriction", tt.cfg)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.err {
				t.Errorf("error = %q, want %q", got, tt.err)
			}
		})
	}
}

type who struct {
	consumer, group, route, service string
}

func TestAccess(t *testing.T) {
	t.Parallel()
	const (
		forbidden = `{"message":"The consumer_name is forbidden."}` + "\n"
		missing   = `{"message":"The request is rejected, please check the consumer_name for this request"}` + "\n"
	)
	methods := `"allowed_by_methods":[{"user":"jack","methods":["POST","GET"]},{"user":"rose","methods":["DELETE"]},{"user":"jack","methods":["PUT"]}]`
	tests := []struct {
		desc       string
		cfg        string
		who        who
		method     string
		wantStatus int // 0: allowed
		wantBody   string
	}{
		{desc: "whitelisted", cfg: `{"whitelist":["jack"]}`, who: who{consumer: "jack"}},
		{desc: "not whitelisted", cfg: `{"whitelist":["jack"]}`, who: who{consumer: "rose"}, wantStatus: 403, wantBody: forbidden},
		{desc: "no consumer", cfg: `{"whitelist":["jack"]}`, wantStatus: 401, wantBody: missing},
		{desc: "blacklisted", cfg: `{"blacklist":["jack"]}`, who: who{consumer: "jack"}, wantStatus: 403, wantBody: forbidden},
		{desc: "not blacklisted", cfg: `{"blacklist":["jack"]}`, who: who{consumer: "rose"}},
		{desc: "no consumer with blacklist", cfg: `{"blacklist":["jack"]}`, wantStatus: 401, wantBody: missing},
		{desc: "blacklist wins over whitelist", cfg: `{"blacklist":["jack"],"whitelist":["jack"]}`, who: who{consumer: "jack"}, wantStatus: 403, wantBody: forbidden},
		{desc: "names are case-sensitive", cfg: `{"whitelist":["Jack"]}`, who: who{consumer: "jack"}, wantStatus: 403, wantBody: forbidden},
		{desc: "rejected_code", cfg: `{"blacklist":["jack"],"rejected_code":429}`, who: who{consumer: "jack"}, wantStatus: 429, wantBody: forbidden},
		{desc: "rejected_msg", cfg: `{"blacklist":["jack"],"rejected_msg":"request is forbidden"}`, who: who{consumer: "jack"}, wantStatus: 403, wantBody: `{"message":"request is forbidden"}` + "\n"},
		{desc: "empty rejected_msg", cfg: `{"blacklist":["jack"],"rejected_msg":""}`, who: who{consumer: "jack"}, wantStatus: 403, wantBody: `{"message":""}` + "\n"},
		{desc: "missing ignores rejected_code and msg", cfg: `{"blacklist":["jack"],"rejected_code":429,"rejected_msg":"no"}`, wantStatus: 401, wantBody: missing},
		{desc: "method allowed", cfg: `{` + methods + `}`, who: who{consumer: "jack"}, method: "POST"},
		{desc: "method not allowed", cfg: `{` + methods + `}`, who: who{consumer: "jack"}, method: "DELETE", wantStatus: 403, wantBody: forbidden},
		{desc: "first rule for a user wins", cfg: `{` + methods + `}`, who: who{consumer: "jack"}, method: "PUT", wantStatus: 403, wantBody: forbidden},
		{desc: "method match is case-sensitive", cfg: `{` + methods + `}`, who: who{consumer: "jack"}, method: "post", wantStatus: 403, wantBody: forbidden},
		{desc: "user without rule may use any method", cfg: `{` + methods + `}`, who: who{consumer: "tom"}, method: "DELETE"},
		{desc: "methods need a consumer", cfg: `{` + methods + `}`, method: "GET", wantStatus: 401, wantBody: missing},
		{desc: "rule without methods allows none", cfg: `{"allowed_by_methods":[{"user":"jack"}]}`, who: who{consumer: "jack"}, method: "GET", wantStatus: 403, wantBody: forbidden},
		{desc: "empty allowed_by_methods allows all", cfg: `{"allowed_by_methods":[]}`, who: who{consumer: "jack"}, method: "GET"},
		{desc: "whitelist skips methods", cfg: `{"whitelist":["jack"],` + methods + `}`, who: who{consumer: "jack"}, method: "DELETE"},
		{desc: "not whitelisted, method allowed", cfg: `{"whitelist":["tom"],` + methods + `}`, who: who{consumer: "rose"}, method: "DELETE", wantStatus: 403, wantBody: forbidden},
		{desc: "blacklist then methods", cfg: `{"blacklist":["tom"],` + methods + `}`, who: who{consumer: "rose"}, method: "GET", wantStatus: 403, wantBody: forbidden},
		{desc: "blacklist then methods allowed", cfg: `{"blacklist":["tom"],` + methods + `}`, who: who{consumer: "rose"}, method: "DELETE"},
		{desc: "group whitelisted", cfg: `{"type":"consumer_group_id","whitelist":["gold"]}`, who: who{consumer: "jack", group: "gold"}},
		{desc: "group not whitelisted", cfg: `{"type":"consumer_group_id","whitelist":["gold"]}`, who: who{consumer: "jack", group: "free"}, wantStatus: 403, wantBody: `{"message":"The consumer_group_id is forbidden."}` + "\n"},
		{desc: "consumer without group", cfg: `{"type":"consumer_group_id","whitelist":["gold"]}`, who: who{consumer: "jack"}, wantStatus: 401, wantBody: `{"message":"The request is rejected, please check the consumer_group_id for this request"}` + "\n"},
		{desc: "group without consumer", cfg: `{"type":"consumer_group_id","blacklist":["gold"]}`, wantStatus: 401, wantBody: `{"message":"The request is rejected, please check the consumer_group_id for this request"}` + "\n"},
		{desc: "route whitelisted", cfg: `{"type":"route_id","whitelist":["1"]}`, who: who{route: "1"}},
		{desc: "route blacklisted", cfg: `{"type":"route_id","blacklist":["1"]}`, who: who{route: "1", consumer: "jack"}, wantStatus: 403, wantBody: `{"message":"The route_id is forbidden."}` + "\n"},
		{desc: "service whitelisted", cfg: `{"type":"service_id","whitelist":["s1"]}`, who: who{service: "s1"}},
		{desc: "service not whitelisted", cfg: `{"type":"service_id","whitelist":["s1"]}`, who: who{service: "s2"}, wantStatus: 403, wantBody: `{"message":"The service_id is forbidden."}` + "\n"},
		{desc: "route without service", cfg: `{"type":"service_id","blacklist":["s1"]}`, who: who{route: "1", consumer: "jack"}, wantStatus: 401, wantBody: `{"message":"The request is rejected, please check the service_id for this request"}` + "\n"},
		{desc: "service methods", cfg: `{"type":"service_id","allowed_by_methods":[{"user":"s1","methods":["GET"]}]}`, who: who{service: "s1"}, method: "POST", wantStatus: 403, wantBody: `{"message":"The service_id is forbidden."}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			inst := plugintest.New(t, "consumer-restriction", tt.cfg).(plugin.Accessor)
			method := tt.method
			if method == "" {
				method = "GET"
			}
			c := &plugin.Ctx{}
			c.Reset(plugintest.NewRequest(method, "/hello"))
			c.RouteID, c.ServiceID = tt.who.route, tt.who.service
			if tt.who.consumer != "" {
				c.Consumer = &plugin.Consumer{Username: tt.who.consumer, GroupID: tt.who.group}
			}
			e := inst.Access(c)
			if tt.wantStatus == 0 {
				if e != nil {
					t.Fatalf("exit = %d %s, want the request to pass", e.Status, e.Body)
				}
				return
			}
			if e == nil {
				t.Fatalf("request passed, want %d", tt.wantStatus)
			}
			if e.Status != tt.wantStatus || string(e.Body) != tt.wantBody {
				t.Errorf("exit = %d %q, want %d %q", e.Status, e.Body, tt.wantStatus, tt.wantBody)
			}
		})
	}
}

// TestWithKeyAuth runs key-auth and consumer-restriction together, as a
// route would: key-auth identifies the consumer in rewrite, and
// consumer-restriction checks it in access.
func TestWithKeyAuth(t *testing.T) {
	t.Parallel()
	jack := &plugin.Consumer{Username: "jack"}
	rose := &plugin.Consumer{Username: "rose"}
	creds := func(name string) plugin.Deps {
		if name != "key-auth" {
			return plugin.Deps{}
		}
		var out []plugin.ConsumerCredential
		for _, c := range []struct {
			cons *plugin.Consumer
			key  string
		}{{jack, "k1"}, {rose, "k2"}} {
			cfg, err := pipeline.DecodeConsumer("key-auth", map[string]any{"key": c.key})
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, plugin.ConsumerCredential{Consumer: c.cons, Config: cfg})
		}
		return plugin.Deps{Consumers: out}
	}
	ps, err := pipeline.Build(map[string]any{
		"key-auth":             map[string]any{},
		"consumer-restriction": map[string]any{"whitelist": []any{"jack"}},
	}, nil, creds)
	if err != nil {
		t.Fatal(err)
	}
	ch := pipeline.NewChain(nil, ps)
	run := func(key string) *plugin.Exit {
		req := plugintest.NewRequest("GET", "/hello")
		if key != "" {
			req.WithHeader("apikey", key)
		}
		c := &plugin.Ctx{}
		c.Reset(req)
		if e := ch.Rewrite(c); e != nil {
			return e
		}
		return ch.Access(c)
	}
	if e := run("k1"); e != nil {
		t.Errorf("jack: exit %d %s, want pass", e.Status, e.Body)
	}
	if e := run("k2"); e == nil || e.Status != 403 || !strings.Contains(string(e.Body), "The consumer_name is forbidden.") {
		t.Errorf("rose: exit %+v, want 403", e)
	}
	if e := run(""); e == nil || e.Status != 401 || !strings.Contains(string(e.Body), "Missing API key") {
		t.Errorf("no key: exit %+v, want key-auth's 401", e)
	}
}

func BenchmarkAccess(b *testing.B) {
	inst := plugintest.New(b, "consumer-restriction",
		`{"whitelist":["a","b","c","d","jack"],"allowed_by_methods":[{"user":"rose","methods":["GET"]}]}`).(plugin.Accessor)
	c := &plugin.Ctx{}
	req := plugintest.NewRequest("GET", "/")
	jack := &plugin.Consumer{Username: "jack"}
	b.ReportAllocs()
	for b.Loop() {
		c.Reset(req)
		c.Consumer = jack
		if e := inst.Access(c); e != nil {
			b.Fatal("rejected")
		}
	}
}
