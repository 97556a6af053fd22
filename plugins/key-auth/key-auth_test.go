package keyauth

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/plugintest"
)

var consumers = []plugintest.Consumer{
	{Username: "jack", Credential: `{"key":"k1"}`},
	{Username: "rose", Credential: `{"key":"k2"}`},
	{Username: "tom", Credential: `{"key":"a b&c"}`},
	{Username: "vault", Credential: `{"key":"$secret://vault/1/key"}`},
	{Username: "env", Credential: `{"key":"$ENV://KEY"}`},
}

func TestRegistered(t *testing.T) {
	t.Parallel()
	d, ok := plugin.Lookup("key-auth")
	if !ok {
		t.Fatal("key-auth is not registered")
	}
	if d.Priority != 2500 {
		t.Errorf("priority = %d, want APISIX's 2500", d.Priority)
	}
	if d.NewConsumerConfig == nil {
		t.Error("key-auth must declare a consumer config (auth plugin)")
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c := NewConfig()
	if c.Header != "apikey" || c.Query != "apikey" || c.Realm != "key" || c.HideCredentials || c.AnonymousConsumer != nil {
		t.Errorf("defaults = %+v", *c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc, cfg, err string
	}{
		{"empty object", `{}`, ""},
		{"all fields", `{"header":"X-Key","query":"k","realm":"my realm!","hide_credentials":true,"anonymous_consumer":"anon"}`, ""},
		{"empty header", `{"header":""}`, "plugins.key-auth: header: must not be empty"},
		{"empty query", `{"query":""}`, "plugins.key-auth: query: must not be empty"},
		{"header type", `{"header":1}`, "plugins.key-auth: header: must be a string, got number"},
		{"hide type", `{"hide_credentials":"yes"}`, "plugins.key-auth: hide_credentials: must be a boolean, got string"},
		{"empty realm", `{"realm":""}`, "plugins.key-auth: realm: must be between 1 and 128 characters"},
		{"long realm", `{"realm":"` + strings.Repeat("r", 129) + `"}`, "plugins.key-auth: realm: must be between 1 and 128 characters"},
		{"quote in realm", `{"realm":"a\"b"}`, `plugins.key-auth: realm: must be printable ASCII without '"' or '\'`},
		{"backslash in realm", `{"realm":"a\\b"}`, `plugins.key-auth: realm: must be printable ASCII without '"' or '\'`},
		{"control in realm", `{"realm":"a\tb"}`, `plugins.key-auth: realm: must be printable ASCII without '"' or '\'`},
		{"empty anonymous", `{"anonymous_consumer":""}`, "plugins.key-auth: anonymous_consumer: must not be empty"},
		{"unknown field", `{"key":"k1"}`, "plugins.key-auth: key: unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			_, err := plugintest.Build("key-auth", tt.cfg)
			if got := errString(err); got != tt.err {
				t.Errorf("error = %q, want %q", got, tt.err)
			}
		})
	}
}

func TestConsumerConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc, cred, err string
	}{
		{"ok", `{"key":"k"}`, ""},
		{"missing key", `{}`, "key: must not be empty"},
		{"empty key", `{"key":""}`, "key: must not be empty"},
		{"key type", `{"key":5}`, "key: must be a string, got number"},
		{"unknown field", `{"key":"k","secret":"s"}`, "secret: unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			err := plugintest.DecodeConsumer("key-auth", tt.cred)
			if got := errString(err); got != tt.err {
				t.Errorf("error = %q, want %q", got, tt.err)
			}
		})
	}
}

func TestDuplicateKey(t *testing.T) {
	t.Parallel()
	_, err := plugintest.BuildWithConsumers("key-auth", `{}`,
		plugintest.Consumer{Username: "jack", Credential: `{"key":"same"}`},
		plugintest.Consumer{Username: "rose", Credential: `{"key":"k2"}`},
		plugintest.Consumer{Username: "tom", Credential: `{"key":"same"}`},
	)
	want := `plugins.key-auth: key: duplicate key in consumer "jack" and consumer "tom"`
	if got := errString(err); got != want {
		t.Errorf("error = %q, want %q", got, want)
	}
}

const (
	bodyMissing = `{"message":"Missing API key in request"}` + "\n"
	bodyInvalid = `{"message":"Invalid API key in request"}` + "\n"
	bodyAnon    = `{"message":"Invalid user authorization"}` + "\n"
)

func TestAccess(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc    string
		cfg     string
		target  string
		headers []plugin.Header
		// want* describe a rejection; wantUser an accepted request.
		wantStatus int
		wantBody   string
		wantRealm  string
		wantUser   string
		// wantQuery and wantKeyHeader are what goes upstream.
		wantQuery     string
		wantKeyHeader string
	}{
		{desc: "header", target: "/hello", headers: hdr("apikey", "k1"), wantUser: "jack", wantKeyHeader: "k1"},
		{desc: "second consumer", target: "/hello", headers: hdr("apikey", "k2"), wantUser: "rose", wantKeyHeader: "k2"},
		{desc: "header name is case-insensitive", target: "/hello", headers: hdr("APIKEY", "k2"), wantUser: "rose", wantKeyHeader: "k2"},
		{desc: "query", target: "/hello?a=1&apikey=k2", wantUser: "rose", wantQuery: "a=1&apikey=k2"},
		{desc: "query is decoded", target: "/hello?apikey=a+b%26c", wantUser: "tom", wantQuery: "apikey=a+b%26c"},
		{desc: "query name is decoded", target: "/hello?api%6Bey=k1", wantUser: "jack", wantQuery: "api%6Bey=k1"},
		{desc: "header wins over query", target: "/hello?apikey=k2", headers: hdr("apikey", "k1"), wantUser: "jack", wantQuery: "apikey=k2", wantKeyHeader: "k1"},
		{desc: "invalid header is not retried in query", target: "/hello?apikey=k2", headers: hdr("apikey", "nope"), wantStatus: 401, wantBody: bodyInvalid, wantRealm: `apikey realm="key"`},
		{desc: "missing", target: "/hello", wantStatus: 401, wantBody: bodyMissing, wantRealm: `apikey realm="key"`},
		{desc: "empty header is missing", target: "/hello", headers: hdr("apikey", ""), wantStatus: 401, wantBody: bodyMissing, wantRealm: `apikey realm="key"`},
		{desc: "other query arg", target: "/hello?apikeys=k1&xapikey=k1", wantStatus: 401, wantBody: bodyMissing, wantRealm: `apikey realm="key"`},
		{desc: "invalid header", target: "/hello", headers: hdr("apikey", "k3"), wantStatus: 401, wantBody: bodyInvalid, wantRealm: `apikey realm="key"`},
		{desc: "invalid query", target: "/hello?apikey=k3", wantStatus: 401, wantBody: bodyInvalid, wantRealm: `apikey realm="key"`},
		{desc: "empty query value", target: "/hello?apikey=", wantStatus: 401, wantBody: bodyInvalid, wantRealm: `apikey realm="key"`},
		{desc: "query flag without value", target: "/hello?apikey", wantStatus: 401, wantBody: bodyInvalid, wantRealm: `apikey realm="key"`},
		{desc: "repeated query arg", target: "/hello?apikey=k1&apikey=k1", wantStatus: 401, wantBody: bodyInvalid, wantRealm: `apikey realm="key"`},
		{desc: "unresolved secret is not a key", target: "/hello", headers: hdr("apikey", "$secret://vault/1/key"), wantStatus: 401, wantBody: bodyInvalid, wantRealm: `apikey realm="key"`},
		{desc: "unresolved env is not a key", target: "/hello", headers: hdr("apikey", "$ENV://KEY"), wantStatus: 401, wantBody: bodyInvalid, wantRealm: `apikey realm="key"`},
		{desc: "custom header", cfg: `{"header":"X-Key"}`, target: "/hello", headers: hdr("x-key", "k1"), wantUser: "jack", wantKeyHeader: "k1"},
		{desc: "custom header ignores apikey", cfg: `{"header":"X-Key","query":"key"}`, target: "/hello", headers: hdr("apikey", "k1"), wantStatus: 401, wantBody: bodyMissing, wantRealm: `apikey realm="key"`},
		{desc: "custom query", cfg: `{"query":"auth"}`, target: "/hello?auth=k1", wantUser: "jack", wantQuery: "auth=k1"},
		{desc: "custom realm", cfg: `{"realm":"my-custom-realm"}`, target: "/hello", wantStatus: 401, wantBody: bodyMissing, wantRealm: `apikey realm="my-custom-realm"`},
		{desc: "hide header", cfg: `{"hide_credentials":true}`, target: "/hello?apikey=k2", headers: hdr("apikey", "k1"), wantUser: "jack", wantQuery: "apikey=k2"},
		{desc: "hide query", cfg: `{"hide_credentials":true}`, target: "/hello?a=1&apikey=k1&b=%20", wantUser: "jack", wantQuery: "a=1&b=%20"},
		{desc: "hide only query", cfg: `{"hide_credentials":true}`, target: "/hello?apikey=k1", wantUser: "jack", wantQuery: ""},
		{desc: "hide escaped query name", cfg: `{"hide_credentials":true}`, target: "/hello?api%6bey=k1&x=y", wantUser: "jack", wantQuery: "x=y"},
		{desc: "hide does not apply on rejection", cfg: `{"hide_credentials":true}`, target: "/hello?apikey=bad", wantStatus: 401, wantBody: bodyInvalid, wantRealm: `apikey realm="key"`, wantQuery: "apikey=bad"},
		{desc: "anonymous on missing key", cfg: `{"anonymous_consumer":"rose"}`, target: "/hello", wantUser: "rose"},
		{desc: "anonymous on invalid key", cfg: `{"anonymous_consumer":"rose"}`, target: "/hello?apikey=bad", wantUser: "rose", wantQuery: "apikey=bad"},
		{desc: "valid key beats anonymous", cfg: `{"anonymous_consumer":"rose"}`, target: "/hello", headers: hdr("apikey", "k1"), wantUser: "jack", wantKeyHeader: "k1"},
		{desc: "anonymous strips both when hiding", cfg: `{"anonymous_consumer":"rose","hide_credentials":true}`, target: "/hello?apikey=bad&x=1", headers: hdr("apikey", "bad2"), wantUser: "rose", wantQuery: "x=1"},
		{desc: "unknown anonymous consumer", cfg: `{"anonymous_consumer":"ghost"}`, target: "/hello", wantStatus: 401, wantBody: bodyAnon, wantRealm: `apikey realm="key"`},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			inst := plugintest.NewWithConsumers(t, "key-auth", tt.cfg, consumers...)
			req := plugintest.NewRequest("GET", tt.target)
			for _, h := range tt.headers {
				req.WithHeader(h.Name, h.Value)
			}
			res := plugintest.Run(inst, req, nil)
			if tt.wantStatus != 0 {
				if res.Exit == nil {
					t.Fatalf("request passed as %v, want %d", res.Ctx.Consumer, tt.wantStatus)
				}
				if res.Exit.Status != tt.wantStatus || string(res.Exit.Body) != tt.wantBody {
					t.Errorf("exit = %d %q, want %d %q", res.Exit.Status, res.Exit.Body, tt.wantStatus, tt.wantBody)
				}
				if got := header(res.Exit.Headers, "WWW-Authenticate"); got != tt.wantRealm {
					t.Errorf("WWW-Authenticate = %q, want %q", got, tt.wantRealm)
				}
				if got := header(res.Exit.Headers, "Content-Type"); got != "application/json" {
					t.Errorf("Content-Type = %q", got)
				}
				if res.Ctx.Consumer != nil {
					t.Errorf("consumer = %v, want none", res.Ctx.Consumer)
				}
			} else {
				if res.Exit != nil {
					t.Fatalf("exit = %d %s, want consumer %s", res.Exit.Status, res.Exit.Body, tt.wantUser)
				}
				if res.Ctx.Consumer == nil || res.Ctx.Consumer.Username != tt.wantUser {
					t.Fatalf("consumer = %v, want %s", res.Ctx.Consumer, tt.wantUser)
				}
				if got := req.Header("X-Consumer-Username"); got != tt.wantUser {
					t.Errorf("X-Consumer-Username = %q, want %q", got, tt.wantUser)
				}
				if got := req.Header(keyHeader(tt.cfg)); got != tt.wantKeyHeader {
					t.Errorf("upstream key header = %q, want %q", got, tt.wantKeyHeader)
				}
			}
			if tt.wantQuery != "" || strings.Contains(tt.desc, "hide") {
				if req.Q != tt.wantQuery {
					t.Errorf("upstream query = %q, want %q", req.Q, tt.wantQuery)
				}
			}
		})
	}
}

// TestConsumerIdentity checks the consumer set is the one from Deps (not a
// copy) and the identity headers sent upstream, which a client cannot forge.
func TestConsumerIdentity(t *testing.T) {
	t.Parallel()
	jack := &plugin.Consumer{Username: "jack", CredentialID: "cred-1", Labels: map[string]string{"custom_id": "c-42"}}
	rose := &plugin.Consumer{Username: "rose"}
	deps := plugin.Deps{Consumers: []plugin.ConsumerCredential{
		{Consumer: jack, Config: &ConsumerConfig{Key: "k1"}},
		{Consumer: rose, Config: &ConsumerConfig{Key: "k2"}},
	}}
	inst, err := newKeyAuth(NewConfig(), deps)
	if err != nil {
		t.Fatal(err)
	}
	forged := func(key string) *plugintest.Request {
		return plugintest.NewRequest("GET", "/").WithHeader("apikey", key).
			WithHeader("X-Consumer-Username", "admin").
			WithHeader("X-Credential-Identifier", "forged").
			WithHeader("X-Consumer-Custom-ID", "forged")
	}

	req := forged("k1")
	res := plugintest.Run(inst, req, nil)
	if res.Ctx.Consumer != jack {
		t.Fatalf("consumer = %p, want the Deps pointer %p", res.Ctx.Consumer, jack)
	}
	for name, want := range map[string]string{"X-Consumer-Username": "jack", "X-Credential-Identifier": "cred-1", "X-Consumer-Custom-ID": "c-42"} {
		if got := req.Header(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}

	req = forged("k2")
	if res := plugintest.Run(inst, req, nil); res.Ctx.Consumer != rose {
		t.Fatalf("consumer = %v, want rose", res.Ctx.Consumer)
	}
	if got := req.Header("X-Consumer-Username"); got != "rose" {
		t.Errorf("X-Consumer-Username = %q, want rose", got)
	}
	for _, name := range []string{"X-Credential-Identifier", "X-Consumer-Custom-ID"} {
		if got := req.Header(name); got != "" {
			t.Errorf("%s = %q, want it removed", name, got)
		}
	}
}

// TestManyConsumers checks the index over a larger set of consumers.
func TestManyConsumers(t *testing.T) {
	t.Parallel()
	var cs []plugintest.Consumer
	for i := range 500 {
		cs = append(cs, plugintest.Consumer{Username: "user" + itoa(i), Credential: `{"key":"key-` + itoa(i) + `"}`})
	}
	inst := plugintest.NewWithConsumers(t, "key-auth", `{}`, cs...)
	for _, i := range []int{0, 1, 250, 499} {
		res := plugintest.Run(inst, plugintest.NewRequest("GET", "/?apikey=key-"+itoa(i)), nil)
		if res.Exit != nil || res.Ctx.Consumer == nil || res.Ctx.Consumer.Username != "user"+itoa(i) {
			t.Errorf("key-%d: exit %v, consumer %v", i, res.Exit, res.Ctx.Consumer)
		}
	}
	if res := plugintest.Run(inst, plugintest.NewRequest("GET", "/?apikey=key-500"), nil); res.Exit == nil || res.Exit.Status != 401 {
		t.Errorf("key-500 was accepted")
	}
}

func TestNoConsumers(t *testing.T) {
	t.Parallel()
	inst := plugintest.New(t, "key-auth", "")
	res := plugintest.Run(inst, plugintest.NewRequest("GET", "/").WithHeader("apikey", "k1"), nil)
	if res.Exit == nil || res.Exit.Status != 401 || string(res.Exit.Body) != bodyInvalid {
		t.Errorf("exit = %+v, want 401 invalid", res.Exit)
	}
}

func BenchmarkRewriteHeader(b *testing.B) {
	benchmarkRewrite(b, plugintest.NewRequest("GET", "/hello").WithHeader("apikey", "key-777"))
}

func BenchmarkRewriteQuery(b *testing.B) {
	benchmarkRewrite(b, plugintest.NewRequest("GET", "/hello?a=1&b=2&apikey=key-777"))
}

func benchmarkRewrite(b *testing.B, req *plugintest.Request) {
	var cs []plugintest.Consumer
	for i := range 1000 {
		cs = append(cs, plugintest.Consumer{Username: "user" + itoa(i), Credential: `{"key":"key-` + itoa(i) + `"}`})
	}
	inst := plugintest.NewWithConsumers(b, "key-auth", `{}`, cs...).(plugin.Rewriter)
	c := &plugin.Ctx{}
	b.ReportAllocs()
	for b.Loop() {
		c.Reset(req)
		if e := inst.Rewrite(c); e != nil || c.Consumer == nil {
			b.Fatal("rejected")
		}
	}
}

func hdr(name, value string) []plugin.Header { return []plugin.Header{{Name: name, Value: value}} }

func header(hs []plugin.Header, name string) string {
	for _, h := range hs {
		if strings.EqualFold(h.Name, name) {
			return h.Value
		}
	}
	return ""
}

func keyHeader(cfg string) string {
	if strings.Contains(cfg, `"header":"X-Key"`) {
		return "X-Key"
	}
	return "apikey"
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}
