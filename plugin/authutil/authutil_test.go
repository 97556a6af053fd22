package authutil_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/authutil"
	"github.com/sluicegw/sluice/plugin/plugintest"
)

func TestAttach(t *testing.T) {
	t.Parallel()
	forged := func() *plugintest.Request {
		return plugintest.NewRequest("GET", "/").
			WithHeader("X-Consumer-Username", "admin").
			WithHeader("x-credential-identifier", "forged").
			WithHeader("X-Consumer-Custom-Id", "forged")
	}
	tests := []struct {
		desc string
		cons *plugin.Consumer
		want map[string]string
	}{
		{"all identity", &plugin.Consumer{Username: "jack", CredentialID: "cred-1", Labels: map[string]string{"custom_id": "c-42"}},
			map[string]string{"X-Consumer-Username": "jack", "X-Credential-Identifier": "cred-1", "X-Consumer-Custom-ID": "c-42"}},
		// Values the consumer lacks are removed, not left as the client sent them.
		{"username only", &plugin.Consumer{Username: "rose"},
			map[string]string{"X-Consumer-Username": "rose", "X-Credential-Identifier": "", "X-Consumer-Custom-ID": ""}},
		{"other labels", &plugin.Consumer{Username: "tom", Labels: map[string]string{"team": "a"}},
			map[string]string{"X-Consumer-Username": "tom", "X-Credential-Identifier": "", "X-Consumer-Custom-ID": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			r := forged()
			c := &plugin.Ctx{}
			c.Reset(r)
			authutil.Attach(c, tt.cons)
			if c.Consumer != tt.cons {
				t.Errorf("consumer = %p, want the given pointer %p", c.Consumer, tt.cons)
			}
			for name, want := range tt.want {
				if got := r.Header(name); got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
			for _, h := range r.Headers {
				if strings.EqualFold(h.Name, "X-Consumer-Username") && h.Value != tt.cons.Username {
					t.Errorf("a forged %s = %q is left", h.Name, h.Value)
				}
			}
		})
	}
}

func TestIsSecretRef(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]bool{
		"$secret://vault/1/key": true,
		"$secret://":            true,
		"$env://KEY":            true,
		"$ENV://KEY":            true,
		"$Env://":               true,
		"$SECRET://vault/1/key": false, // only $env is case-insensitive
		"$env:/KEY":             false,
		"$env":                  false,
		"secret://vault":        false,
		" $env://KEY":           false,
		"key$env://":            false,
		"":                      false,
	} {
		if got := authutil.IsSecretRef(v); got != want {
			t.Errorf("IsSecretRef(%q) = %v, want %v", v, got, want)
		}
	}
}

func deps(cs ...*plugin.Consumer) plugin.Deps {
	var d plugin.Deps
	for _, c := range cs {
		d.Consumers = append(d.Consumers, plugin.ConsumerCredential{Consumer: c})
	}
	return d
}

func TestFindConsumer(t *testing.T) {
	t.Parallel()
	jack, rose := &plugin.Consumer{Username: "jack"}, &plugin.Consumer{Username: "rose"}
	d := deps(jack, rose)
	if got := authutil.FindConsumer(d, "rose"); got != rose {
		t.Errorf("FindConsumer(rose) = %v", got)
	}
	if got := authutil.FindConsumer(d, "Rose"); got != nil {
		t.Errorf("FindConsumer(Rose) = %v, want nil (names are case-sensitive)", got)
	}
	if got := authutil.FindConsumer(plugin.Deps{}, "jack"); got != nil {
		t.Errorf("FindConsumer without consumers = %v", got)
	}
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	if got, want := authutil.Describe(&plugin.Consumer{Username: "jack"}), `consumer "jack"`; got != want {
		t.Errorf("Describe = %q, want %q", got, want)
	}
	if got, want := authutil.Describe(&plugin.Consumer{Username: "jack", CredentialID: "c1"}), `credential "c1" of consumer "jack"`; got != want {
		t.Errorf("Describe = %q, want %q", got, want)
	}
}

func TestValidateRealm(t *testing.T) {
	t.Parallel()
	const (
		length = "realm: must be between 1 and 128 characters"
		chars  = `realm: must be printable ASCII without '"' or '\'`
	)
	for realm, want := range map[string]string{
		"key":                    "",
		"my realm!":              "",
		" ~":                     "",
		strings.Repeat("r", 128): "",
		"":                       length,
		strings.Repeat("r", 129): length,
		`a"b`:                    chars,
		`a\b`:                    chars,
		"a\tb":                   chars,
		"a\x7fb":                 chars,
		"é":                      chars,
	} {
		if got := errString(authutil.ValidateRealm(realm)); got != want {
			t.Errorf("ValidateRealm(%q) = %q, want %q", realm, got, want)
		}
	}
}

func TestValidateAnonymousConsumer(t *testing.T) {
	t.Parallel()
	empty, name := "", "anon"
	if err := authutil.ValidateAnonymousConsumer(nil); err != nil {
		t.Errorf("unset: %v", err)
	}
	if err := authutil.ValidateAnonymousConsumer(&name); err != nil {
		t.Errorf("set: %v", err)
	}
	if got, want := errString(authutil.ValidateAnonymousConsumer(&empty)), "anonymous_consumer: must not be empty"; got != want {
		t.Errorf("empty: %q, want %q", got, want)
	}
}

func TestUnauthorized(t *testing.T) {
	t.Parallel()
	e := authutil.Unauthorized("Basic", "my zone", `Missing "key"`)
	if e.Status != 401 || string(e.Body) != `{"message":"Missing \"key\""}`+"\n" {
		t.Errorf("exit = %d %q", e.Status, e.Body)
	}
	want := []plugin.Header{{Name: "Content-Type", Value: "application/json"}, {Name: "WWW-Authenticate", Value: `Basic realm="my zone"`}}
	if len(e.Headers) != len(want) || e.Headers[0] != want[0] || e.Headers[1] != want[1] {
		t.Errorf("headers = %v, want %v", e.Headers, want)
	}
}

func TestAnonymous(t *testing.T) {
	t.Parallel()
	jack, anon := &plugin.Consumer{Username: "jack"}, &plugin.Consumer{Username: "anon"}
	d := deps(jack, anon)
	reject := plugin.MessageExit(401, "reject")
	missing := plugin.MessageExit(401, "missing")
	str := func(s string) *string { return &s }
	tests := []struct {
		desc       string
		a          authutil.Anonymous
		cons       *plugin.Consumer
		configured bool
		wantCons   *plugin.Consumer
		wantExit   *plugin.Exit
	}{
		{"zero value, authenticated", authutil.Anonymous{}, jack, false, jack, nil},
		{"zero value, failed", authutil.Anonymous{}, nil, false, nil, reject},
		{"unset, failed", authutil.NewAnonymous(nil, d, missing), nil, false, nil, reject},
		{"existing, authenticated", authutil.NewAnonymous(str("anon"), d, missing), jack, true, jack, nil},
		{"existing, failed", authutil.NewAnonymous(str("anon"), d, missing), nil, true, anon, nil},
		{"unknown, authenticated", authutil.NewAnonymous(str("ghost"), d, missing), jack, true, jack, nil},
		{"unknown, failed", authutil.NewAnonymous(str("ghost"), d, missing), nil, true, nil, missing},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			if got := tt.a.Configured(); got != tt.configured {
				t.Errorf("Configured() = %v, want %v", got, tt.configured)
			}
			var r *plugin.Exit
			if tt.cons == nil {
				r = reject
			}
			cons, exit := tt.a.Resolve(tt.cons, r)
			if cons != tt.wantCons || exit != tt.wantExit {
				t.Errorf("Resolve = %v, %v; want %v, %v", cons, exit, tt.wantCons, tt.wantExit)
			}
		})
	}
}

func TestDecodeBase64(t *testing.T) {
	t.Parallel()
	std, url := base64.RawStdEncoding, base64.RawURLEncoding
	tests := []struct {
		in   string
		enc  *base64.Encoding
		want string
		ok   bool
	}{
		{"amFjazoxMjM0NTY=", std, "jack:123456", true},
		{"amFjazoxMjM0NTY", std, "jack:123456", true},
		{"amFjazoxMjM0NTY=!!!", std, "jack:123456", true}, // stops at '='
		{"YQ==", std, "a", true},
		{"", std, "", true},
		{"=", std, "", true},
		{"-_8", url, "\xfb\xff", true},
		{"-_8", std, "", false},
		{"+/8", url, "", false},
		{"am\nFj", std, "", false}, // nginx refuses what encoding/base64 skips
		{"am\rFj", std, "", false},
		{"amFja", std, "", false}, // 4n+1 characters
		{"a*b", url, "", false},
	}
	for _, tt := range tests {
		got, ok := authutil.DecodeBase64(tt.in, tt.enc)
		if string(got) != tt.want || ok != tt.ok {
			t.Errorf("DecodeBase64(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
