package hmacauth

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"hash"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/plugintest"
)

// now is the fixed clock of every test, and gmt its Date header.
var (
	now = time.Date(2024, 9, 6, 6, 41, 29, 0, time.UTC)
	gmt = now.Format(http.TimeFormat) // "Fri, 06 Sep 2024 06:41:29 GMT"
)

var consumers = []plugintest.Consumer{
	{Username: "john", Credential: `{"key_id":"john-key","secret_key":"john-secret-key"}`},
	{Username: "jack", Credential: `{"key_id":"my-access-key","secret_key":"my-secret-key"}`},
	{Username: "anon", Credential: `{"key_id":"anon-key","secret_key":"anon-secret"}`},
	{Username: "vault", Credential: `{"key_id":"vault-key","secret_key":"$secret://vault/1/hmac"}`},
}

// build builds hmac-auth over consumers with the fixed clock.
func build(t testing.TB, cfg string) *hmacAuth {
	t.Helper()
	h := plugintest.NewWithConsumers(t, Name, cfg, consumers...).(*hmacAuth)
	h.now = func() time.Time { return now }
	return h
}

// signature is the base64 HMAC of a signing string, computed here from the
// documentation (hmac-auth.md's Python example), not from the plugin.
func signature(alg, secret, signingString string) string {
	newHash := map[string]func() hash.Hash{"hmac-sha1": sha1.New, "hmac-sha256": sha256.New, "hmac-sha512": sha512.New}[alg]
	m := hmac.New(newHash, []byte(secret))
	m.Write([]byte(signingString))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// authorization builds the Authorization header.
func authorization(keyID, alg, headers, sig string) string {
	return fmt.Sprintf(`Signature keyId="%s",algorithm="%s",headers="%s",signature="%s"`, keyID, alg, headers, sig)
}

// john signs "GET /get" with a date, as in the documentation's example.
func john(alg string) string {
	ss := "john-key\nGET /get\ndate: " + gmt + "\n"
	return authorization("john-key", alg, "@request-target date", signature(alg, "john-secret-key", ss))
}

func TestRegistered(t *testing.T) {
	t.Parallel()
	// APISIX's priorities: apisix/plugins/hmac-auth.lua.
	d, ok := plugin.Lookup(Name)
	if !ok {
		t.Fatal("hmac-auth is not registered")
	}
	if d.Priority != 2530 {
		t.Errorf("priority = %d, want APISIX's 2530", d.Priority)
	}
	if d.NewConsumerConfig == nil {
		t.Error("hmac-auth must declare a consumer config (auth plugin)")
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c := NewConfig()
	if strings.Join(c.AllowedAlgorithms, ",") != "hmac-sha1,hmac-sha256,hmac-sha512" || c.ClockSkew != 300 ||
		strings.Join(c.SignedHeaders, ",") != "date" || c.ValidateRequestBody || c.MaxReqBodySize != 67108864 ||
		c.HideCredentials || c.Realm != "hmac" || c.AnonymousConsumer != nil {
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
		{"all fields", `{"allowed_algorithms":["hmac-sha256"],"clock_skew":10,"signed_headers":["date","x-a"],"validate_request_body":false,"max_req_body_size":1,"hide_credentials":true,"realm":"r","anonymous_consumer":"anon"}`, ""},
		{"no signed headers", `{"signed_headers":[]}`, ""},
		{"no algorithms", `{"allowed_algorithms":[]}`, "plugins.hmac-auth: allowed_algorithms: must have at least 1 item"},
		{"unknown algorithm", `{"allowed_algorithms":["hmac-md5"]}`, "plugins.hmac-auth: allowed_algorithms[0]: must be one of hmac-sha1, hmac-sha256, hmac-sha512"},
		{"zero clock skew", `{"clock_skew":0}`, "plugins.hmac-auth: clock_skew: must be >= 1"},
		{"null signed headers", `{"signed_headers":null}`, "plugins.hmac-auth: signed_headers: must be an array"},
		{"empty signed header", `{"signed_headers":[""]}`, "plugins.hmac-auth: signed_headers[0]: must be between 1 and 50 characters"},
		{"long signed header", `{"signed_headers":["date","` + strings.Repeat("h", 51) + `"]}`, "plugins.hmac-auth: signed_headers[1]: must be between 1 and 50 characters"},
		{"body validation", `{"validate_request_body":true}`, ""},
		{"zero body size", `{"max_req_body_size":0}`, "plugins.hmac-auth: max_req_body_size: must be >= 1"},
		{"empty realm", `{"realm":""}`, "plugins.hmac-auth: realm: must be between 1 and 128 characters"},
		{"empty anonymous", `{"anonymous_consumer":""}`, "plugins.hmac-auth: anonymous_consumer: must not be empty"},
		{"old consumer field", `{"keep_headers":true}`, "plugins.hmac-auth: keep_headers: unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			_, err := plugintest.Build(Name, tt.cfg)
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
		{"ok", `{"key_id":"k","secret_key":"s"}`, ""},
		{"256 characters", `{"key_id":"` + strings.Repeat("é", 256) + `","secret_key":"s"}`, ""},
		{"missing key_id", `{"secret_key":"s"}`, "key_id: must be between 1 and 256 characters"},
		{"long key_id", `{"key_id":"` + strings.Repeat("k", 257) + `","secret_key":"s"}`, "key_id: must be between 1 and 256 characters"},
		{"missing secret", `{"key_id":"k"}`, "secret_key: must be between 1 and 256 characters"},
		{"long secret", `{"key_id":"k","secret_key":"` + strings.Repeat("s", 257) + `"}`, "secret_key: must be between 1 and 256 characters"},
		{"old access_key", `{"access_key":"k","secret_key":"s"}`, "access_key: unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			err := plugintest.DecodeConsumer(Name, tt.cred)
			if got := errString(err); got != tt.err {
				t.Errorf("error = %q, want %q", got, tt.err)
			}
		})
	}
}

func TestDuplicateKeyID(t *testing.T) {
	t.Parallel()
	_, err := plugintest.BuildWithConsumers(Name, `{}`,
		plugintest.Consumer{Username: "jack", Credential: `{"key_id":"same","secret_key":"a"}`},
		plugintest.Consumer{Username: "rose", Credential: `{"key_id":"same","secret_key":"b"}`},
	)
	want := `plugins.hmac-auth: key_id: duplicate key_id in consumer "jack" and consumer "rose"`
	if got := errString(err); got != want {
		t.Errorf("error = %q, want %q", got, want)
	}
}

// newReq is a GET of target with the fixed Date and the given headers.
func newReq(method, target string, kv ...string) *plugintest.Request {
	r := plugintest.NewRequest(method, target)
	for i := 0; i < len(kv); i += 2 {
		r.WithHeader(kv[i], kv[i+1])
	}
	return r
}

func body(msg string) string { return `{"message":"` + msg + `"}` + "\n" }

// accept runs r and expects it to pass as user.
func accept(t *testing.T, h *hmacAuth, r *plugintest.Request, user string) {
	t.Helper()
	res := plugintest.Run(h, r, nil)
	if res.Exit != nil {
		_, _, reason := h.authenticate(r)
		t.Fatalf("exit = %d %s (%s), want consumer %s", res.Exit.Status, res.Exit.Body, reason, user)
	}
	if res.Ctx.Consumer == nil || res.Ctx.Consumer.Username != user {
		t.Fatalf("consumer = %v, want %s", res.Ctx.Consumer, user)
	}
	if got := r.Header("X-Consumer-Username"); got != user {
		t.Errorf("X-Consumer-Username = %q, want %q", got, user)
	}
}

// reject runs r and expects a 401 with msg; for msgInvalid it also checks
// the reason APISIX would log.
func reject(t *testing.T, h *hmacAuth, r *plugintest.Request, msg, reason string) {
	t.Helper()
	if _, _, got := h.authenticate(r); got != reason {
		t.Errorf("reason = %q, want %q", got, reason)
	}
	res := plugintest.Run(h, r, nil)
	if res.Exit == nil {
		t.Fatalf("request passed as %v, want 401 %q", res.Ctx.Consumer, msg)
	}
	if res.Exit.Status != 401 || string(res.Exit.Body) != body(msg) {
		t.Errorf("exit = %d %q, want 401 %q", res.Exit.Status, res.Exit.Body, body(msg))
	}
	if got := header(res.Exit.Headers, "WWW-Authenticate"); got != `hmac realm="hmac"` {
		t.Errorf("WWW-Authenticate = %q", got)
	}
	if res.Ctx.Consumer != nil {
		t.Errorf("consumer = %v, want none", res.Ctx.Consumer)
	}
}

func TestAccept(t *testing.T) {
	t.Parallel()
	h := build(t, `{}`)
	for _, alg := range Algorithms {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			accept(t, h, newReq("GET", "/get", "Date", gmt, "Authorization", john(alg)), "john")
		})
	}
	t.Run("apisix test 14: custom headers", func(t *testing.T) {
		t.Parallel()
		ss := "my-access-key\nGET /hello\ndate: " + gmt + "\nx-custom-header-a: asld$%dfasf\nx-custom-header-b: 23879fmsldfk\n"
		auth := `Signature algorithm="hmac-sha256",keyId="my-access-key",headers="@request-target date x-custom-header-a x-custom-header-b",signature="` +
			signature("hmac-sha256", "my-secret-key", ss) + `"`
		accept(t, h, newReq("GET", "/hello", "Date", gmt, "Authorization", auth,
			"X-Custom-Header-A", "asld$%dfasf", "x-custom-header-b", "23879fmsldfk"), "jack")
	})
	t.Run("request target keeps the query as sent", func(t *testing.T) {
		t.Parallel()
		ss := "john-key\nPOST /get?b=2&a=%20x\ndate: " + gmt + "\n"
		auth := authorization("john-key", "hmac-sha512", "@request-target date", signature("hmac-sha512", "john-secret-key", ss))
		accept(t, h, newReq("POST", "/get?b=2&a=%20x", "Date", gmt, "Authorization", auth), "john")
	})
	t.Run("request target is the original request uri", func(t *testing.T) {
		t.Parallel()
		ss := "john-key\nGET /a/../get?x\ndate: " + gmt + "\n"
		auth := authorization("john-key", "hmac-sha256", "@request-target date", signature("hmac-sha256", "john-secret-key", ss))
		r := newReq("GET", "/get", "Date", gmt, "Authorization", auth)
		r.Vars = map[string]string{"request_uri": "/a/../get?x"}
		accept(t, h, r, "john")
	})
	t.Run("header names keep their listed case and order", func(t *testing.T) {
		t.Parallel()
		ss := "john-key\nX-B: 2\ndate: " + gmt + "\nGET /get\nx-a: 1\n"
		auth := authorization("john-key", "hmac-sha1", "X-B date @request-target x-a", signature("hmac-sha1", "john-secret-key", ss))
		accept(t, h, newReq("GET", "/get", "Date", gmt, "Authorization", auth, "x-a", "1", "x-b", "2"), "john")
	})
	t.Run("absent headers add no line, empty ones do", func(t *testing.T) {
		t.Parallel()
		ss := "john-key\ndate: " + gmt + "\nx-empty: \n"
		auth := authorization("john-key", "hmac-sha256", "date x-absent x-empty", signature("hmac-sha256", "john-secret-key", ss))
		accept(t, h, newReq("GET", "/get", "Date", gmt, "Authorization", auth, "X-Empty", ""), "john")
	})
	t.Run("underscore reads as hyphen", func(t *testing.T) {
		t.Parallel()
		ss := "john-key\ndate: " + gmt + "\nx_a: 1\n"
		auth := authorization("john-key", "hmac-sha256", "date x_a", signature("hmac-sha256", "john-secret-key", ss))
		accept(t, h, newReq("GET", "/get", "Date", gmt, "Authorization", auth, "X-A", "1"), "john")
	})
	t.Run("unpadded signature", func(t *testing.T) {
		t.Parallel()
		auth := strings.TrimSuffix(strings.TrimSuffix(john("hmac-sha256"), `"`), "=") + `"`
		accept(t, h, newReq("GET", "/get", "Date", gmt, "Authorization", auth), "john")
	})
	t.Run("no signed headers required", func(t *testing.T) {
		t.Parallel()
		auth := authorization("john-key", "hmac-sha256", "", signature("hmac-sha256", "john-secret-key", "john-key\n"))
		auth = strings.Replace(auth, `headers="",`, "", 1)
		accept(t, build(t, `{"signed_headers":[]}`), newReq("GET", "/get", "Date", gmt, "Authorization", auth), "john")
	})
}

func TestReject(t *testing.T) {
	t.Parallel()
	h := build(t, `{}`)
	good := john("hmac-sha256")
	sig := signature("hmac-sha256", "john-secret-key", "john-key\nGET /get\ndate: "+gmt+"\n")
	tests := []struct {
		desc   string
		r      *plugintest.Request
		msg    string
		reason string
	}{
		{"no authorization", newReq("GET", "/get", "Date", gmt), msgMissingAuth, ""},
		{"empty authorization", newReq("GET", "/get", "Date", gmt, "Authorization", ""), msgNotSignature, ""},
		{"basic scheme", newReq("GET", "/get", "Date", gmt, "Authorization", "Basic am9objpz"), msgNotSignature, ""},
		{"lower-case scheme", newReq("GET", "/get", "Date", gmt, "Authorization", strings.ToLower(good[:9])+good[9:]), msgNotSignature, ""},
		{"no fields", newReq("GET", "/get", "Date", gmt, "Authorization", "Signature"), msgInvalid, reasonNoKeyOrSig},
		{"no signature", newReq("GET", "/get", "Date", gmt, "Authorization", `Signature keyId="john-key",algorithm="hmac-sha256"`), msgInvalid, reasonNoKeyOrSig},
		{"no algorithm", newReq("GET", "/get", "Date", gmt, "Authorization", `Signature keyId="john-key",headers="@request-target date",signature="`+sig+`"`), msgInvalid, reasonNoAlgorithm},
		{"unknown key id", newReq("GET", "/get", "Date", gmt, "Authorization", strings.Replace(good, "john-key", "jane-key", 1)), msgInvalid, reasonKeyID},
		{"unresolved secret reference", newReq("GET", "/get", "Date", gmt, "Authorization", authorization("vault-key", "hmac-sha256", "date", signature("hmac-sha256", "$secret://vault/1/hmac", "vault-key\ndate: "+gmt+"\n"))), msgInvalid, reasonKeyID},
		{"unknown algorithm", newReq("GET", "/get", "Date", gmt, "Authorization", strings.Replace(good, "hmac-sha256", "hmac-md5", 1)), msgInvalid, reasonAlgorithm},
		{"algorithm case", newReq("GET", "/get", "Date", gmt, "Authorization", strings.Replace(good, "hmac-sha256", "HMAC-SHA256", 1)), msgInvalid, reasonAlgorithm},
		{"no date", newReq("GET", "/get", "Authorization", good), msgInvalid, reasonNoDate},
		{"empty date", newReq("GET", "/get", "Date", "", "Authorization", good), msgInvalid, reasonBadDate},
		{"bad date", newReq("GET", "/get", "Date", "2024-09-06T06:41:29Z", "Authorization", good), msgInvalid, reasonBadDate},
		{"date not signed", newReq("GET", "/get", "Date", gmt, "Authorization", authorization("john-key", "hmac-sha256", "@request-target", signature("hmac-sha256", "john-secret-key", "john-key\nGET /get\n"))), msgInvalid, `expected header "date" missing in signing`},
		{"signed header list is case-sensitive", newReq("GET", "/get", "Date", gmt, "Authorization", authorization("john-key", "hmac-sha256", "@request-target Date", signature("hmac-sha256", "john-secret-key", "john-key\nGET /get\nDate: "+gmt+"\n"))), msgInvalid, `expected header "date" missing in signing`},
		{"wrong secret", newReq("GET", "/get", "Date", gmt, "Authorization", authorization("john-key", "hmac-sha256", "@request-target date", signature("hmac-sha256", "other", "john-key\nGET /get\ndate: "+gmt+"\n"))), msgInvalid, reasonSignature},
		{"other method", newReq("POST", "/get", "Date", gmt, "Authorization", good), msgInvalid, reasonSignature},
		{"other path", newReq("GET", "/get/", "Date", gmt, "Authorization", good), msgInvalid, reasonSignature},
		{"added query", newReq("GET", "/get?admin=1", "Date", gmt, "Authorization", good), msgInvalid, reasonSignature},
		{"algorithm swapped", newReq("GET", "/get", "Date", gmt, "Authorization", strings.Replace(good, "hmac-sha256", "hmac-sha512", 1)), msgInvalid, reasonSignature},
		{"signature not base64", newReq("GET", "/get", "Date", gmt, "Authorization", strings.Replace(good, sig, "!!"+sig[2:], 1)), msgInvalid, reasonSignature},
		{"truncated signature", newReq("GET", "/get", "Date", gmt, "Authorization", strings.Replace(good, sig, sig[:20], 1)), msgInvalid, reasonSignature},
		{"empty signature", newReq("GET", "/get", "Date", gmt, "Authorization", strings.Replace(good, sig, "", 1)), msgInvalid, reasonSignature},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			reject(t, h, tt.r, tt.msg, tt.reason)
		})
	}
}

func TestClockSkew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc, cfg string
		date      time.Time
		format    string
		reason    string
	}{
		{desc: "now", date: now},
		{desc: "300s late", date: now.Add(-300 * time.Second)},
		{desc: "301s late", date: now.Add(-301 * time.Second), reason: reasonSkew},
		{desc: "300s early", date: now.Add(300 * time.Second)},
		{desc: "301s early", date: now.Add(301 * time.Second), reason: reasonSkew},
		{desc: "custom skew", cfg: `{"clock_skew":1}`, date: now.Add(-2 * time.Second), reason: reasonSkew},
		{desc: "rfc 850", date: now, format: time.RFC850},
		{desc: "asctime", date: now, format: time.ANSIC},
		{desc: "rfc 1123 with offset", date: now, format: time.RFC1123Z, reason: reasonBadDate},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			format := tt.format
			if format == "" {
				format = http.TimeFormat
			}
			date := tt.date.UTC().Format(format)
			if format == time.RFC850 {
				date = strings.Replace(date, "UTC", "GMT", 1)
			}
			ss := "john-key\nGET /get\ndate: " + date + "\n"
			auth := authorization("john-key", "hmac-sha256", "@request-target date", signature("hmac-sha256", "john-secret-key", ss))
			r := newReq("GET", "/get", "Date", date, "Authorization", auth)
			h := build(t, tt.cfg)
			if tt.reason == "" {
				accept(t, h, r, "john")
			} else {
				reject(t, h, r, msgInvalid, tt.reason)
			}
		})
	}
}

func TestConfigChecks(t *testing.T) {
	t.Parallel()
	t.Run("allowed algorithms", func(t *testing.T) {
		t.Parallel()
		h := build(t, `{"allowed_algorithms":["hmac-sha512"]}`)
		accept(t, h, newReq("GET", "/get", "Date", gmt, "Authorization", john("hmac-sha512")), "john")
		reject(t, h, newReq("GET", "/get", "Date", gmt, "Authorization", john("hmac-sha1")), msgInvalid, reasonAlgorithm)
	})
	t.Run("signed headers", func(t *testing.T) {
		t.Parallel()
		h := build(t, `{"signed_headers":["date","x-a"]}`)
		reject(t, h, newReq("GET", "/get", "Date", gmt, "Authorization", john("hmac-sha256"), "x-a", "1"), msgInvalid, `expected header "x-a" missing in signing`)
		ss := "john-key\nGET /get\ndate: " + gmt + "\nx-a: 1\n"
		auth := authorization("john-key", "hmac-sha256", "@request-target date x-a", signature("hmac-sha256", "john-secret-key", ss))
		accept(t, h, newReq("GET", "/get", "Date", gmt, "Authorization", auth, "x-a", "1"), "john")
		// Listed but absent: allowed, and adds no line (as in APISIX).
		ss = "john-key\nGET /get\ndate: " + gmt + "\n"
		auth = authorization("john-key", "hmac-sha256", "@request-target date x-a", signature("hmac-sha256", "john-secret-key", ss))
		accept(t, h, newReq("GET", "/get", "Date", gmt, "Authorization", auth), "john")
	})
}

func TestHideCredentials(t *testing.T) {
	t.Parallel()
	r := newReq("GET", "/get", "Date", gmt, "Authorization", john("hmac-sha256"))
	accept(t, build(t, `{"hide_credentials":true}`), r, "john")
	if got := r.Header("Authorization"); got != "" {
		t.Errorf("upstream Authorization = %q, want none", got)
	}
	if r.Header("Date") != gmt {
		t.Error("Date was removed")
	}
	r = newReq("GET", "/get", "Date", gmt, "Authorization", john("hmac-sha256"))
	accept(t, build(t, `{}`), r, "john")
	if r.Header("Authorization") == "" {
		t.Error("Authorization removed without hide_credentials")
	}
	r = newReq("GET", "/get", "Authorization", "Signature bad")
	accept(t, build(t, `{"hide_credentials":true,"anonymous_consumer":"anon"}`), r, "anon")
	if got := r.Header("Authorization"); got != "" {
		t.Errorf("upstream Authorization on the anonymous path = %q, want none", got)
	}
}

func TestAnonymous(t *testing.T) {
	t.Parallel()
	h := build(t, `{"anonymous_consumer":"anon"}`)
	accept(t, h, newReq("GET", "/get"), "anon")
	accept(t, h, newReq("GET", "/get", "Date", gmt, "Authorization", strings.Replace(john("hmac-sha256"), "john-key", "x", 1)), "anon")
	accept(t, h, newReq("GET", "/get", "Date", gmt, "Authorization", john("hmac-sha256")), "john")
	res := plugintest.Run(build(t, `{"anonymous_consumer":"ghost"}`), newReq("GET", "/get"), nil)
	if res.Exit == nil || res.Exit.Status != 401 || string(res.Exit.Body) != body(msgAnonMissing) {
		t.Errorf("unknown anonymous consumer: exit = %+v", res.Exit)
	}
}

func TestParseParams(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want params
	}{
		{` keyId="k",algorithm="a",headers="h1 h2",signature="s"`, params{keyID: "k", algorithm: "a", headers: "h1 h2", signature: "s", hasKeyID: true, hasAlgorithm: true, hasHeaders: true, hasSignature: true}},
		// Spaces around fields, unknown fields, empty parts.
		{`,, keyId="k" ,  foo="bar",signature=""`, params{keyID: "k", hasKeyID: true, hasSignature: true}},
		// The name is the last alphanumeric run before =": "x-keyId" gives keyId.
		{` x-keyId="k",signature="s"`, params{keyID: "k", hasKeyID: true, signature: "s", hasSignature: true}},
		// The first match in a part wins; a later field replaces an earlier one.
		{` keyId="a" keyId="b",keyId="c"`, params{keyID: "c", hasKeyID: true}},
		// No closing quote, no '=', spaces around '=' or single quotes: no match.
		{` keyId="k`, params{}},
		{` keyId k`, params{}},
		{` keyId = "k"`, params{}},
		{` keyId='k'`, params{}},
		// Names are case-sensitive.
		{` keyid="k",KeyId="k"`, params{}},
		// A value ends at the first quote; text after it is ignored.
		{` keyId="k"x"`, params{keyID: "k", hasKeyID: true}},
	}
	for _, tt := range tests {
		if got := parseParams(tt.in); got != tt.want {
			t.Errorf("parseParams(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

// BenchmarkAccept measures the accept path of a hmac-sha256 request.
func BenchmarkAccept(b *testing.B) {
	h := build(b, `{}`)
	r := newReq("GET", "/get", "Date", gmt, "Authorization", john("hmac-sha256"))
	c := &plugin.Ctx{}
	b.ReportAllocs()
	for b.Loop() {
		c.Reset(r)
		if e := h.Rewrite(c); e != nil {
			b.Fatalf("exit %s", e.Body)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func header(hs []plugin.Header, name string) string {
	for _, h := range hs {
		if strings.EqualFold(h.Name, name) {
			return h.Value
		}
	}
	return ""
}
