package basicauth

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/plugintest"
)

var consumers = []plugintest.Consumer{
	{Username: "jack", Credential: `{"username":"jack","password":"123456"}`},
	{Username: "rose", Credential: `{"username":"rose-login","password":"p@ss=w0rd"}`},
	{Username: "long", Credential: `{"username":"` + strings.Repeat("u", 300) + `","password":"pw"}`},
	{Username: "vault", Credential: `{"username":"vault","password":"$secret://vault/1/pw"}`},
	{Username: "env", Credential: `{"username":"env","password":"$env://PW"}`},
}

func TestRegistered(t *testing.T) {
	t.Parallel()
	d, ok := plugin.Lookup("basic-auth")
	if !ok {
		t.Fatal("basic-auth is not registered")
	}
	if d.Priority != 2520 {
		t.Errorf("priority = %d, want APISIX's 2520", d.Priority)
	}
	if d.NewConsumerConfig == nil {
		t.Error("basic-auth must declare a consumer config (auth plugin)")
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c := NewConfig()
	if c.HideCredentials || c.Realm != "basic" || c.AnonymousConsumer != nil {
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
		{"all fields", `{"hide_credentials":true,"realm":"secure-zone","anonymous_consumer":"anon"}`, ""},
		{"hide type", `{"hide_credentials":1}`, "plugins.basic-auth: hide_credentials: must be a boolean, got number"},
		{"empty realm", `{"realm":""}`, "plugins.basic-auth: realm: must be between 1 and 128 characters"},
		{"long realm", `{"realm":"` + strings.Repeat("r", 129) + `"}`, "plugins.basic-auth: realm: must be between 1 and 128 characters"},
		{"quote in realm", `{"realm":"a\"b"}`, `plugins.basic-auth: realm: must be printable ASCII without '"' or '\'`},
		{"non-ASCII realm", `{"realm":"é"}`, `plugins.basic-auth: realm: must be printable ASCII without '"' or '\'`},
		{"empty anonymous", `{"anonymous_consumer":""}`, "plugins.basic-auth: anonymous_consumer: must not be empty"},
		{"anonymous type", `{"anonymous_consumer":true}`, "plugins.basic-auth: anonymous_consumer: must be a string, got bool"},
		{"unknown field", `{"username":"jack"}`, "plugins.basic-auth: username: unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			_, err := plugintest.Build("basic-auth", tt.cfg)
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
		{"ok", `{"username":"u","password":"p"}`, ""},
		{"password with colon is accepted", `{"username":"u","password":"a:b"}`, ""},
		{"missing username", `{"password":"p"}`, "username: must not be empty"},
		{"missing password", `{"username":"u"}`, "password: must not be empty"},
		{"empty password", `{"username":"u","password":""}`, "password: must not be empty"},
		{"password type", `{"username":"u","password":1}`, "password: must be a string, got number"},
		{"unknown field", `{"username":"u","password":"p","key":"k"}`, "key: unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			err := plugintest.DecodeConsumer("basic-auth", tt.cred)
			if got := errString(err); got != tt.err {
				t.Errorf("error = %q, want %q", got, tt.err)
			}
		})
	}
}

func TestDuplicateUsername(t *testing.T) {
	t.Parallel()
	_, err := plugintest.BuildWithConsumers("basic-auth", `{}`,
		plugintest.Consumer{Username: "jack", Credential: `{"username":"login","password":"a"}`},
		plugintest.Consumer{Username: "rose", Credential: `{"username":"other","password":"b"}`},
		plugintest.Consumer{Username: "tom", Credential: `{"username":"login","password":"c"}`},
	)
	want := `plugins.basic-auth: username: duplicate username "login" in consumer "jack" and consumer "tom"`
	if got := errString(err); got != want {
		t.Errorf("error = %q, want %q", got, want)
	}
}

const (
	bodyMissing     = `{"message":"Missing authorization in request"}` + "\n"
	bodyInvalidAuth = `{"message":"Invalid authorization in request"}` + "\n"
	bodyInvalidUser = `{"message":"Invalid user authorization"}` + "\n"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestAccess(t *testing.T) {
	t.Parallel()
	jack := "Basic " + b64("jack:123456")
	tests := []struct {
		desc       string
		cfg        string
		auth       string // Authorization; "" sends none
		wantStatus int
		wantBody   string
		wantRealm  string
		wantUser   string
		// wantAuth is the Authorization header sent upstream.
		wantAuth string
	}{
		{desc: "valid", auth: jack, wantUser: "jack", wantAuth: jack},
		{desc: "credential username differs from consumer", auth: "Basic " + b64("rose-login:p@ss=w0rd"), wantUser: "rose"},
		{desc: "scheme is case-insensitive", auth: "bAsIc " + b64("jack:123456"), wantUser: "jack"},
		{desc: "tab after scheme", auth: "Basic\t" + b64("jack:123456"), wantUser: "jack"},
		{desc: "scheme anywhere (unanchored regex)", auth: "Foo basic " + b64("jack:123456"), wantUser: "jack"},
		{desc: "unpadded base64", auth: "Basic " + strings.TrimRight(b64("jack:123456"), "="), wantUser: "jack"},
		{desc: "text after '=' is ignored", auth: "Basic " + b64("jack:123456") + "!!!", wantUser: "jack"},
		{desc: "password stops at ':'", auth: "Basic " + b64("jack:123456:extra"), wantUser: "jack"},
		{desc: "trailing ':'", auth: "Basic " + b64("jack:123456:"), wantUser: "jack"},
		{desc: "white space is removed", auth: "Basic " + b64(" ja\tck : 123 456 "), wantUser: "jack"},
		{desc: "long username", auth: "Basic " + b64(strings.Repeat("u", 300)+":pw"), wantUser: "long"},
		{desc: "missing", wantStatus: 401, wantBody: bodyMissing, wantRealm: `Basic realm="basic"`},
		{desc: "custom realm", cfg: `{"realm":"secure-zone"}`, wantStatus: 401, wantBody: bodyMissing, wantRealm: `Basic realm="secure-zone"`},
		{desc: "other scheme", auth: "Bearer " + b64("jack:123456"), wantStatus: 401, wantBody: bodyInvalidAuth, wantRealm: `Basic realm="basic"`},
		{desc: "scheme only", auth: "Basic", wantStatus: 401, wantBody: bodyInvalidAuth, wantRealm: `Basic realm="basic"`},
		{desc: "scheme and space only", auth: "Basic ", wantStatus: 401, wantBody: bodyInvalidAuth, wantRealm: `Basic realm="basic"`},
		{desc: "no space after scheme", auth: "Basic" + b64("jack:123456"), wantStatus: 401, wantBody: bodyInvalidAuth, wantRealm: `Basic realm="basic"`},
		{desc: "bad base64", auth: "Basic !!!!", wantStatus: 401, wantBody: bodyInvalidAuth, wantRealm: `Basic realm="basic"`},
		{desc: "base64 of length 4n+1", auth: "Basic amFja", wantStatus: 401, wantBody: bodyInvalidAuth, wantRealm: `Basic realm="basic"`},
		{desc: "url-safe alphabet", auth: "Basic " + base64.URLEncoding.EncodeToString([]byte("jack:\xfb\xff")), wantStatus: 401, wantBody: bodyInvalidAuth, wantRealm: `Basic realm="basic"`},
		{desc: "no colon", auth: "Basic " + b64("jack123456"), wantStatus: 401, wantBody: bodyInvalidAuth, wantRealm: `Basic realm="basic"`},
		{desc: "empty password", auth: "Basic " + b64("jack:"), wantStatus: 401, wantBody: bodyInvalidAuth, wantRealm: `Basic realm="basic"`},
		{desc: "only colons after username", auth: "Basic " + b64("jack:::"), wantStatus: 401, wantBody: bodyInvalidAuth, wantRealm: `Basic realm="basic"`},
		{desc: "empty password field then more", auth: "Basic " + b64("jack::123456"), wantStatus: 401, wantBody: bodyInvalidUser, wantRealm: `Basic realm="basic"`},
		{desc: "wrong password", auth: "Basic " + b64("jack:654321"), wantStatus: 401, wantBody: bodyInvalidUser, wantRealm: `Basic realm="basic"`},
		{desc: "password prefix", auth: "Basic " + b64("jack:12345"), wantStatus: 401, wantBody: bodyInvalidUser, wantRealm: `Basic realm="basic"`},
		{desc: "unknown user", auth: "Basic " + b64("ghost:123456"), wantStatus: 401, wantBody: bodyInvalidUser, wantRealm: `Basic realm="basic"`},
		{desc: "consumer name is not the login", auth: "Basic " + b64("rose:p@ss=w0rd"), wantStatus: 401, wantBody: bodyInvalidUser, wantRealm: `Basic realm="basic"`},
		{desc: "unresolved secret is not a password", auth: "Basic " + b64("vault:$secret://vault/1/pw"), wantStatus: 401, wantBody: bodyInvalidUser, wantRealm: `Basic realm="basic"`},
		{desc: "unresolved env is not a password", auth: "Basic " + b64("env:$env://PW"), wantStatus: 401, wantBody: bodyInvalidUser, wantRealm: `Basic realm="basic"`},
		{desc: "hide credentials", cfg: `{"hide_credentials":true}`, auth: jack, wantUser: "jack", wantAuth: ""},
		{desc: "anonymous on missing", cfg: `{"anonymous_consumer":"jack"}`, wantUser: "jack"},
		{desc: "anonymous on invalid", cfg: `{"anonymous_consumer":"jack"}`, auth: "Basic " + b64("ghost:x"), wantUser: "jack", wantAuth: "Basic " + b64("ghost:x")},
		{desc: "anonymous hides credentials", cfg: `{"anonymous_consumer":"jack","hide_credentials":true}`, auth: "Basic " + b64("ghost:x"), wantUser: "jack", wantAuth: ""},
		{desc: "valid beats anonymous", cfg: `{"anonymous_consumer":"jack"}`, auth: "Basic " + b64("rose-login:p@ss=w0rd"), wantUser: "rose"},
		{desc: "unknown anonymous consumer", cfg: `{"anonymous_consumer":"ghost"}`, wantStatus: 401, wantBody: bodyInvalidUser, wantRealm: `Basic realm="basic"`},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			inst := plugintest.NewWithConsumers(t, "basic-auth", tt.cfg, consumers...)
			req := plugintest.NewRequest("GET", "/hello")
			if tt.auth != "" {
				req.WithHeader("Authorization", tt.auth)
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
				if res.Ctx.Consumer != nil {
					t.Errorf("consumer = %v, want none", res.Ctx.Consumer)
				}
				return
			}
			if res.Exit != nil {
				t.Fatalf("exit = %d %s, want consumer %s", res.Exit.Status, res.Exit.Body, tt.wantUser)
			}
			if res.Ctx.Consumer == nil || res.Ctx.Consumer.Username != tt.wantUser {
				t.Fatalf("consumer = %v, want %s", res.Ctx.Consumer, tt.wantUser)
			}
			if got := req.Header("X-Consumer-Username"); got != tt.wantUser {
				t.Errorf("X-Consumer-Username = %q, want %q", got, tt.wantUser)
			}
			if tt.wantAuth != "" || strings.Contains(tt.desc, "hide") {
				if got := req.Header("Authorization"); got != tt.wantAuth {
					t.Errorf("upstream Authorization = %q, want %q", got, tt.wantAuth)
				}
			}
		})
	}
}

// TestConsumerIdentity checks the consumer set is the one from Deps (not a
// copy) and that identity headers a client sends are replaced.
func TestConsumerIdentity(t *testing.T) {
	t.Parallel()
	jack := &plugin.Consumer{Username: "jack", CredentialID: "cred-1", Labels: map[string]string{"custom_id": "c-42"}}
	rose := &plugin.Consumer{Username: "rose"}
	deps := plugin.Deps{Consumers: []plugin.ConsumerCredential{
		{Consumer: jack, Config: &ConsumerConfig{Username: "jack", Password: "a"}},
		{Consumer: rose, Config: &ConsumerConfig{Username: "rose", Password: "b"}},
	}}
	inst, err := newBasicAuth(NewConfig(), deps)
	if err != nil {
		t.Fatal(err)
	}
	forged := func(auth string) *plugintest.Request {
		return plugintest.NewRequest("GET", "/").WithHeader("Authorization", "Basic "+b64(auth)).
			WithHeader("X-Consumer-Username", "admin").
			WithHeader("X-Credential-Identifier", "forged").
			WithHeader("X-Consumer-Custom-ID", "forged")
	}
	req := forged("jack:a")
	if res := plugintest.Run(inst, req, nil); res.Ctx.Consumer != jack {
		t.Fatalf("consumer = %p, want the Deps pointer %p", res.Ctx.Consumer, jack)
	}
	for name, want := range map[string]string{"X-Consumer-Username": "jack", "X-Credential-Identifier": "cred-1", "X-Consumer-Custom-ID": "c-42"} {
		if got := req.Header(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	req = forged("rose:b")
	if res := plugintest.Run(inst, req, nil); res.Ctx.Consumer != rose {
		t.Fatalf("consumer = %v, want rose", res.Ctx.Consumer)
	}
	for _, name := range []string{"X-Credential-Identifier", "X-Consumer-Custom-ID"} {
		if got := req.Header(name); got != "" {
			t.Errorf("%s = %q, want it removed", name, got)
		}
	}
}

func TestManyConsumers(t *testing.T) {
	t.Parallel()
	var cs []plugintest.Consumer
	for i := range 200 {
		n := itoa(i)
		cs = append(cs, plugintest.Consumer{Username: "c" + n, Credential: `{"username":"u` + n + `","password":"p` + n + `"}`})
	}
	inst := plugintest.NewWithConsumers(t, "basic-auth", `{}`, cs...)
	for _, i := range []int{0, 7, 199} {
		n := itoa(i)
		res := plugintest.Run(inst, plugintest.NewRequest("GET", "/").WithHeader("Authorization", "Basic "+b64("u"+n+":p"+n)), nil)
		if res.Exit != nil || res.Ctx.Consumer == nil || res.Ctx.Consumer.Username != "c"+n {
			t.Errorf("u%s: exit %v, consumer %v", n, res.Exit, res.Ctx.Consumer)
		}
	}
	// Another consumer's password does not work.
	res := plugintest.Run(inst, plugintest.NewRequest("GET", "/").WithHeader("Authorization", "Basic "+b64("u1:p2")), nil)
	if res.Exit == nil || string(res.Exit.Body) != bodyInvalidUser {
		t.Errorf("u1:p2 was accepted")
	}
}

func BenchmarkRewrite(b *testing.B) {
	var cs []plugintest.Consumer
	for i := range 1000 {
		n := itoa(i)
		cs = append(cs, plugintest.Consumer{Username: "c" + n, Credential: `{"username":"user` + n + `","password":"secret-password-` + n + `"}`})
	}
	inst := plugintest.NewWithConsumers(b, "basic-auth", `{}`, cs...).(plugin.Rewriter)
	req := plugintest.NewRequest("GET", "/hello").WithHeader("Authorization", "Basic "+b64("user777:secret-password-777"))
	c := &plugin.Ctx{}
	b.ReportAllocs()
	for b.Loop() {
		c.Reset(req)
		if e := inst.Rewrite(c); e != nil || c.Consumer == nil {
			b.Fatal("rejected")
		}
	}
}

func header(hs []plugin.Header, name string) string {
	for _, h := range hs {
		if strings.EqualFold(h.Name, name) {
			return h.Value
		}
	}
	return ""
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
