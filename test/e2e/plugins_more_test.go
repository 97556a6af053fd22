package e2e

import (
	"bytes"
	"compress/gzip"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// pmClient neither follows redirects nor handles compression itself, so a
// test sees exactly what the gateway sent.
var pmClient = &http.Client{
	Timeout:       5 * time.Second,
	Transport:     &http.Transport{DisableCompression: true},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// pmDo sends a request with an optional body; "Host" in hdr sets the
// request's host. A header given as "" is sent empty, except User-Agent,
// which is then not sent at all.
func pmDo(t *testing.T, method, url string, body []byte, hdr ...string) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if strings.EqualFold(hdr[i], "Host") {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := pmClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return resp.StatusCode, resp.Header, b
}

// pmWait is waitServed for answers not to follow (redirects).
func pmWait(t *testing.T, url string, want int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		resp, err := pmClient.Get(url)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == want {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never answered %d", url, want)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// pmGateway is pluginGateway with a custom upstream handler.
func pmGateway(t *testing.T, engine string, h func(w http.ResponseWriter, r *http.Request, seen *protoSeen)) (*Gateway, *protoUpstream) {
	t.Helper()
	up := protoNewUpstream(t, h)
	g := StartGateway(t, GatewayOptions{Store: "embedded", Engine: engine})
	mustAdmin(t, g, "PUT", "/apisix/admin/upstreams/u1", fmt.Sprintf(`{"nodes":{%q:1}}`, up.Addr))
	return g, up
}

// pmEngines runs f as a parallel subtest on each engine.
func pmEngines(t *testing.T, engines []string, f func(t *testing.T, engine string)) {
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			f(t, engine)
		})
	}
}

// pmRejected checks a rejection: status, exact body, and that the upstream
// did not see the request.
func pmRejected(t *testing.T, up *protoUpstream, what string, wantCode int, wantBody string,
	method, url string, body []byte, hdr ...string) http.Header {
	t.Helper()
	before := up.Requests()
	code, h, got := pmDo(t, method, url, body, hdr...)
	if code != wantCode || string(got) != wantBody {
		t.Errorf("%s: got %d %q, want %d %q", what, code, got, wantCode, wantBody)
	}
	if up.Requests() != before {
		t.Errorf("%s: the upstream received a rejected request", what)
	}
	return h
}

// pmPassed checks that a request got the upstream's 200 "ok" and returns what
// the upstream saw.
func pmPassed(t *testing.T, up *protoUpstream, what, method, url string, body []byte, hdr ...string) (http.Header, protoSeen) {
	t.Helper()
	before := up.Requests()
	code, h, got := pmDo(t, method, url, body, hdr...)
	if code != 200 || string(got) != "ok" || up.Requests() != before+1 {
		t.Fatalf("%s: got %d %q, upstream requests %d->%d", what, code, got, before, up.Requests())
	}
	return h, up.Last(t)
}

func TestPluginMoreBasicAuth(t *testing.T) {
	pmEngines(t, []string{"fast", "std"}, func(t *testing.T, engine string) {
		g, up := pluginGateway(t, engine)
		mustAdmin(t, g, "PUT", "/apisix/admin/consumers", `{"username":"jack","labels":{"custom_id":"c-7"},
			"plugins":{"basic-auth":{"username":"jack-user","password":"jack-pw"}}}`)
		mustAdmin(t, g, "PUT", "/apisix/admin/routes/r1",
			`{"uri":"/b","upstream_id":"u1","plugins":{"basic-auth":{"hide_credentials":true}}}`)
		mustAdmin(t, g, "PUT", "/apisix/admin/routes/r2",
			`{"uri":"/b2","upstream_id":"u1","plugins":{"basic-auth":{"realm":"inner"}}}`)
		waitServed(t, g.URL+"/b2", 401, 2*time.Second)
		waitServed(t, g.URL+"/b", 401, 2*time.Second)

		h := pmRejected(t, up, "no header", 401, `{"message":"Missing authorization in request"}`+"\n", "GET", g.URL+"/b", nil)
		if got := h.Get("WWW-Authenticate"); got != `Basic realm="basic"` {
			t.Errorf("WWW-Authenticate %q", got)
		}
		pmRejected(t, up, "not basic", 401, `{"message":"Invalid authorization in request"}`+"\n", "GET", g.URL+"/b", nil,
			"Authorization", "Bearer abc")
		pmRejected(t, up, "wrong password", 401, `{"message":"Invalid user authorization"}`+"\n", "GET", g.URL+"/b", nil,
			"Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("jack-user:nope")))
		pmRejected(t, up, "consumer name as user", 401, `{"message":"Invalid user authorization"}`+"\n", "GET", g.URL+"/b", nil,
			"Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("jack:jack-pw")))

		cred := "Basic " + base64.StdEncoding.EncodeToString([]byte("jack-user:jack-pw"))
		_, seen := pmPassed(t, up, "good credentials", "GET", g.URL+"/b?x=1", nil,
			"Authorization", cred, "X-Consumer-Username", "spoofed")
		if seen.URI != "/b?x=1" || seen.Header.Get("X-Consumer-Username") != "jack" ||
			seen.Header.Get("X-Consumer-Custom-ID") != "c-7" || seen.Header.Get("Authorization") != "" {
			t.Errorf("upstream saw %s %v", seen.URI, seen.Header)
		}
		// No hide_credentials on /b2: the header goes on; the realm is the route's.
		h = pmRejected(t, up, "b2 no header", 401, `{"message":"Missing authorization in request"}`+"\n", "GET", g.URL+"/b2", nil)
		if got := h.Get("WWW-Authenticate"); got != `Basic realm="inner"` {
			t.Errorf("b2 WWW-Authenticate %q", got)
		}
		// Lower-case scheme and unpadded base64 are accepted, as in APISIX.
		raw := "basic " + base64.RawStdEncoding.EncodeToString([]byte("jack-user:jack-pw"))
		_, seen = pmPassed(t, up, "b2 good credentials", "GET", g.URL+"/b2", nil, "Authorization", raw)
		if seen.Header.Get("Authorization") != raw || seen.Header.Get("X-Consumer-Username") != "jack" {
			t.Errorf("b2: upstream saw %v", seen.Header)
		}
	})
}

func pmJWT(t *testing.T, method jwt.SigningMethod, secret string, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPluginMoreJWTAuth(t *testing.T) {
	pmEngines(t, []string{"fast", "std"}, func(t *testing.T, engine string) {
		const secret = "jack-hs256-secret-that-is-very-long"
		g, up := pluginGateway(t, engine)
		mustAdmin(t, g, "PUT", "/apisix/admin/consumers",
			`{"username":"jack","plugins":{"jwt-auth":{"key":"jack-key","secret":"`+secret+`"}}}`)
		mustAdmin(t, g, "PUT", "/apisix/admin/routes/r1",
			`{"uri":"/j","upstream_id":"u1","plugins":{"jwt-auth":{}}}`)
		mustAdmin(t, g, "PUT", "/apisix/admin/routes/r2",
			`{"uri":"/jh","upstream_id":"u1","plugins":{"jwt-auth":{"hide_credentials":true}}}`)
		waitServed(t, g.URL+"/j", 401, 2*time.Second)
		waitServed(t, g.URL+"/jh", 401, 2*time.Second)

		exp := time.Now().Add(time.Hour).Unix()
		good := pmJWT(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"key": "jack-key", "exp": exp})
		h := pmRejected(t, up, "no token", 401, `{"message":"Missing JWT token in request"}`+"\n", "GET", g.URL+"/j", nil)
		if got := h.Get("WWW-Authenticate"); got != `Bearer realm="jwt"` {
			t.Errorf("WWW-Authenticate %q", got)
		}
		pmRejected(t, up, "garbage", 401, `{"message":"JWT token invalid"}`+"\n", "GET", g.URL+"/j", nil,
			"Authorization", "Bearer not-a-jwt")
		pmRejected(t, up, "wrong secret", 401, `{"message":"failed to verify jwt"}`+"\n", "GET", g.URL+"/j", nil,
			"Authorization", "Bearer "+pmJWT(t, jwt.SigningMethodHS256, secret+"x", jwt.MapClaims{"key": "jack-key", "exp": exp}))
		pmRejected(t, up, "other alg", 401, `{"message":"failed to verify jwt"}`+"\n", "GET", g.URL+"/j", nil,
			"Authorization", "Bearer "+pmJWT(t, jwt.SigningMethodHS384, secret, jwt.MapClaims{"key": "jack-key", "exp": exp}))
		pmRejected(t, up, "expired", 401, `{"message":"failed to verify jwt"}`+"\n", "GET", g.URL+"/j", nil,
			"Authorization", "Bearer "+pmJWT(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"key": "jack-key", "exp": time.Now().Add(-time.Minute).Unix()}))
		pmRejected(t, up, "unknown key", 401, `{"message":"Invalid user key in JWT token"}`+"\n", "GET", g.URL+"/j", nil,
			"Authorization", "Bearer "+pmJWT(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"key": "rose-key", "exp": exp}))
		pmRejected(t, up, "no key claim", 401, `{"message":"missing user key in JWT token"}`+"\n", "GET", g.URL+"/j", nil,
			"Authorization", "Bearer "+pmJWT(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"exp": exp}))

		_, seen := pmPassed(t, up, "bearer header", "GET", g.URL+"/j", nil, "Authorization", "Bearer "+good)
		if seen.Header.Get("X-Consumer-Username") != "jack" || seen.Header.Get("Authorization") != "Bearer "+good {
			t.Errorf("header: upstream saw %v", seen.Header)
		}
		_, seen = pmPassed(t, up, "cookie", "GET", g.URL+"/j", nil, "Cookie", "a=1; jwt="+good)
		if seen.Header.Get("X-Consumer-Username") != "jack" {
			t.Errorf("cookie: upstream saw %v", seen.Header)
		}
		// hide_credentials on a query argument removes only that argument.
		_, seen = pmPassed(t, up, "query, hidden", "GET", g.URL+"/jh?a=1&jwt="+good+"&b=2", nil)
		if seen.URI != "/jh?a=1&b=2" || seen.Header.Get("X-Consumer-Username") != "jack" {
			t.Errorf("query: upstream saw %s %v", seen.URI, seen.Header)
		}
		_, seen = pmPassed(t, up, "header, hidden", "GET", g.URL+"/jh", nil, "Authorization", good)
		if seen.Header.Get("Authorization") != "" {
			t.Errorf("hide_credentials: upstream saw Authorization %q", seen.Header.Get("Authorization"))
		}
	})
}

func TestPluginMoreConsumerRestriction(t *testing.T) {
	pmEngines(t, []string{"fast", "std"}, func(t *testing.T, engine string) {
		g, up := pluginGateway(t, engine)
		mustAdmin(t, g, "PUT", "/apisix/admin/consumers", `{"username":"jack","plugins":{"key-auth":{"key":"jack-key"}}}`)
		mustAdmin(t, g, "PUT", "/apisix/admin/consumers", `{"username":"rose","plugins":{"key-auth":{"key":"rose-key"}}}`)
		mustAdmin(t, g, "PUT", "/apisix/admin/routes/r1", `{"uri":"/w","upstream_id":"u1","plugins":{
			"key-auth":{},"consumer-restriction":{"whitelist":["jack"]}}}`)
		mustAdmin(t, g, "PUT", "/apisix/admin/routes/r2", `{"uri":"/m","upstream_id":"u1","plugins":{
			"key-auth":{},"consumer-restriction":{"allowed_by_methods":[{"user":"rose","methods":["GET","HEAD"]}],
			"rejected_code":405,"rejected_msg":"read only"}}}`)
		mustAdmin(t, g, "PUT", "/apisix/admin/routes/r3", `{"uri":"/bl","upstream_id":"u1","plugins":{
			"key-auth":{},"consumer-restriction":{"blacklist":["jack"]}}}`)
		waitServed(t, g.URL+"/w", 401, 2*time.Second)
		waitServed(t, g.URL+"/m", 401, 2*time.Second)
		waitServed(t, g.URL+"/bl", 401, 2*time.Second)

		_, seen := pmPassed(t, up, "jack on whitelist", "GET", g.URL+"/w", nil, "apikey", "jack-key")
		if seen.Header.Get("X-Consumer-Username") != "jack" {
			t.Errorf("upstream saw %v", seen.Header)
		}
		pmRejected(t, up, "rose not on whitelist", 403, `{"message":"The consumer_name is forbidden."}`+"\n",
			"GET", g.URL+"/w", nil, "apikey", "rose-key")
		pmRejected(t, up, "no key", 401, `{"message":"Missing API key in request"}`+"\n", "GET", g.URL+"/w", nil)

		pmRejected(t, up, "rose POST", 405, `{"message":"read only"}`+"\n", "POST", g.URL+"/m", []byte("x"), "apikey", "rose-key")
		pmPassed(t, up, "rose GET", "GET", g.URL+"/m", nil, "apikey", "rose-key")
		_, seen = pmPassed(t, up, "jack POST", "POST", g.URL+"/m", []byte("payload"), "apikey", "jack-key")
		if seen.Method != "POST" || string(seen.Body) != "payload" || seen.Header.Get("X-Consumer-Username") != "jack" {
			t.Errorf("jack POST: upstream saw %s %q %v", seen.Method, seen.Body, seen.Header)
		}

		pmRejected(t, up, "jack blacklisted", 403, `{"message":"The consumer_name is forbidden."}`+"\n",
			"GET", g.URL+"/bl", nil, "apikey", "jack-key")
		pmPassed(t, up, "rose not blacklisted", "GET", g.URL+"/bl", nil, "apikey", "rose-key")
	})
}

// pmHMAC signs method+uri with the listed headers (values from hdr), per
// docs/plugins/hmac-auth.md, and returns the Authorization value.
func pmHMAC(keyID, secret, method, uri string, names []string, hdr map[string]string) string {
	var b strings.Builder
	b.WriteString(keyID + "\n")
	for _, n := range names {
		if n == "@request-target" {
			b.WriteString(method + " " + uri + "\n")
			continue
		}
		b.WriteString(n + ": " + hdr[n] + "\n")
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(b.String()))
	sig := base64.StdEncoding.EncodeToString(m.Sum(nil))
	return fmt.Sprintf(`Signature keyId=%q,algorithm="hmac-sha256",headers=%q,signature=%q`,
		keyID, strings.Join(names, " "), sig)
}

func TestPluginMoreHMACAuth(t *testing.T) {
	pmEngines(t, []string{"fast", "std"}, func(t *testing.T, engine string) {
		g, up := pluginGateway(t, engine)
		mustAdmin(t, g, "PUT", "/apisix/admin/consumers",
			`{"username":"john","plugins":{"hmac-auth":{"key_id":"john-key","secret_key":"john-secret-key"}}}`)
		mustAdmin(t, g, "PUT", "/apisix/admin/routes/r1",
			`{"uri":"/h","upstream_id":"u1","plugins":{"hmac-auth":{"hide_credentials":true}}}`)
		mustAdmin(t, g, "PUT", "/apisix/admin/routes/r2",
			`{"uri":"/hb","upstream_id":"u1","plugins":{"hmac-auth":{"validate_request_body":true}}}`)
		waitServed(t, g.URL+"/h", 401, 2*time.Second)
		waitServed(t, g.URL+"/hb", 401, 2*time.Second)

		const bad = `{"message":"client request can't be validated"}` + "\n"
		date := time.Now().UTC().Format(http.TimeFormat)
		names := []string{"@request-target", "date"}
		auth := pmHMAC("john-key", "john-secret-key", "GET", "/h?x=1&y=2", names, map[string]string{"date": date})

		h := pmRejected(t, up, "no header", 401,
			`{"message":"client request can't be validated: missing Authorization header"}`+"\n", "GET", g.URL+"/h", nil)
		if got := h.Get("WWW-Authenticate"); got != `hmac realm="hmac"` {
			t.Errorf("WWW-Authenticate %q", got)
		}
		pmRejected(t, up, "not Signature", 401,
			`{"message":"client request can't be validated: Authorization header does not start with 'Signature'"}`+"\n",
			"GET", g.URL+"/h", nil, "Authorization", "Basic abc")
		pmRejected(t, up, "other URI", 401, bad, "GET", g.URL+"/h?x=1&y=3", nil, "Date", date, "Authorization", auth)
		pmRejected(t, up, "wrong secret", 401, bad, "GET", g.URL+"/h?x=1&y=2", nil, "Date", date,
			"Authorization", pmHMAC("john-key", "other", "GET", "/h?x=1&y=2", names, map[string]string{"date": date}))
		stale := time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)
		pmRejected(t, up, "stale date", 401, bad, "GET", g.URL+"/h?x=1&y=2", nil, "Date", stale,
			"Authorization", pmHMAC("john-key", "john-secret-key", "GET", "/h?x=1&y=2", names, map[string]string{"date": stale}))
		pmRejected(t, up, "date not signed", 401, bad, "GET", g.URL+"/h?x=1&y=2", nil, "Date", date,
			"Authorization", pmHMAC("john-key", "john-secret-key", "GET", "/h?x=1&y=2", []string{"@request-target"}, nil))

		_, seen := pmPassed(t, up, "signed", "GET", g.URL+"/h?x=1&y=2", nil, "Date", date, "Authorization", auth,
			"X-Consumer-Username", "spoofed")
		if seen.URI != "/h?x=1&y=2" || seen.Header.Get("X-Consumer-Username") != "john" ||
			seen.Header.Get("Authorization") != "" || seen.Header.Get("Date") != date {
			t.Errorf("upstream saw %s %v", seen.URI, seen.Header)
		}

		// validate_request_body: the Digest must match the body.
		body := []byte(`{"name": "world"}`)
		sum := sha256.Sum256(body)
		digest := "SHA-256=" + base64.StdEncoding.EncodeToString(sum[:])
		if digest != "SHA-256=78qzJuLwSpZ8HacsTdFCQJWxzPMOf8bYctRk2ySLpS8=" {
			t.Fatalf("digest %s differs from the doc's", digest)
		}
		bauth := pmHMAC("john-key", "john-secret-key", "POST", "/hb", names, map[string]string{"date": date})
		pmRejected(t, up, "no digest", 401, bad, "POST", g.URL+"/hb", body, "Date", date, "Authorization", bauth)
		pmRejected(t, up, "wrong body", 401, bad, "POST", g.URL+"/hb", []byte(`{"name": "w0rld"}`),
			"Date", date, "Authorization", bauth, "Digest", digest)
		_, seen = pmPassed(t, up, "good digest", "POST", g.URL+"/hb", body, "Date", date, "Authorization", bauth, "Digest", digest)
		if !bytes.Equal(seen.Body, body) || seen.Header.Get("Authorization") != bauth || seen.Header.Get("X-Consumer-Username") != "john" {
			t.Errorf("upstream saw %q %v", seen.Body, seen.Header)
		}
	})
}

var pmUUIDv4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestPluginMoreRequestID(t *testing.T) {
	pmEngines(t, []string{"fast", "std"}, func(t *testing.T, engine string) {
		g, up := pluginGateway(t, engine)
		mustAdmin(t, g, "PUT", "/apisix/admin/routes/r1", `{"uri":"/id","upstream_id":"u1","plugins":{"request-id":{}}}`)
		mustAdmin(t, g, "PUT", "/apisix/admin/routes/r2", `{"uri":"/tr","upstream_id":"u1","plugins":{"request-id":{
			"header_name":"X-Trace-Id","algorithm":"range_id","range_id":{"length":24,"char_set":"abcdef"}}}}`)
		mustAdmin(t, g, "PUT", "/apisix/admin/routes/r3", `{"uri":"/noresp","upstream_id":"u1","plugins":{"request-id":{
			"include_in_response":false}}}`)
		waitServed(t, g.URL+"/id", 200, 2*time.Second)
		waitServed(t, g.URL+"/tr", 200, 2*time.Second)
		waitServed(t, g.URL+"/noresp", 200, 2*time.Second)

		h, seen := pmPassed(t, up, "generated", "GET", g.URL+"/id", nil)
		id := h.Get("X-Request-Id")
		if !pmUUIDv4.MatchString(id) || seen.Header.Get("X-Request-Id") != id {
			t.Errorf("client got %q, upstream %q", id, seen.Header.Get("X-Request-Id"))
		}
		h2, _ := pmPassed(t, up, "second", "GET", g.URL+"/id", nil)
		if h2.Get("X-Request-Id") == id {
			t.Errorf("two requests got the same id %q", id)
		}
		h, seen = pmPassed(t, up, "client's own", "GET", g.URL+"/id", nil, "X-Request-Id", "client-id-1")
		if h.Get("X-Request-Id") != "client-id-1" || seen.Header.Get("X-Request-Id") != "client-id-1" {
			t.Errorf("own id: client got %q, upstream %q", h.Get("X-Request-Id"), seen.Header.Get("X-Request-Id"))
		}
		h, seen = pmPassed(t, up, "range_id", "GET", g.URL+"/tr", nil)
		tr := h.Get("X-Trace-Id")
		if !regexp.MustCompile(`^[a-f]{24}$`).MatchString(tr) || seen.Header.Get("X-Trace-Id") != tr ||
			h.Get("X-Request-Id") != "" || seen.Header.Get("X-Request-Id") != "" {
			t.Errorf("range_id: client got %q, upstream %q (%v)", tr, seen.Header.Get("X-Trace-Id"), h)
		}
		h, seen = pmPassed(t, up, "not in response", "GET", g.URL+"/noresp", nil)
		if h.Get("X-Request-Id") != "" || !pmUUIDv4.MatchString(seen.Header.Get("X-Request-Id")) {
			t.Errorf("include_in_response false: client got %q, upstream %q", h.Get("X-Request-Id"), seen.Header.Get("X-Request-Id"))
		}
	})
}

func TestPluginMoreRedirect(t *testing.T) {
	pmEngines(t, []string{"fast", "std"}, func(t *testing.T, engine string) {
		g, up := pluginGateway(t, engine)
		mustAdmin(t, g, "PUT", "/apisix/admin/routes/r1", `{"uri":"/hello","upstream_id":"u1","plugins":{
			"redirect":{"uri":"/test/default.html","ret_code":301,"append_query_string":true}}}`)
		mustAdmin(t, g, "PUT", "/apisix/admin/routes/r2", `{"uri":"/v/*","upstream_id":"u1","plugins":{
			"redirect":{"uri":"https://example.com$request_uri"}}}`)
		mustAdmin(t, g, "PUT", "/apisix/admin/routes/r3", `{"uri":"/s/*","upstream_id":"u1","plugins":{
			"redirect":{"http_to_https":true}}}`)
		pmWait(t, g.URL+"/hello", 301)
		pmWait(t, g.URL+"/v/x", 302)
		pmWait(t, g.URL+"/s/x", 301)

		check := func(what string, wantCode int, wantLoc, method, url string, hdr ...string) {
			t.Helper()
			before := up.Requests()
			code, h, body := pmDo(t, method, url, nil, hdr...)
			if code != wantCode || h.Get("Location") != wantLoc || len(body) != 0 {
				t.Errorf("%s: got %d Location %q body %q, want %d %q", what, code, h.Get("Location"), body, wantCode, wantLoc)
			}
			if up.Requests() != before {
				t.Errorf("%s: a redirected request reached the upstream", what)
			}
		}
		check("uri + query", 301, "/test/default.html?a=1", "GET", g.URL+"/hello?a=1")
		check("uri, no query", 301, "/test/default.html", "GET", g.URL+"/hello")
		check("variables", 302, "https://example.com/v/x?q=1&r=2", "GET", g.URL+"/v/x?q=1&r=2")
		// $host has no port; the redirect goes to the default https port.
		check("https GET", 301, "https://shop.example/s/a?b=1", "GET", g.URL+"/s/a?b=1", "Host", "shop.example:8080")
		check("https HEAD", 301, "https://shop.example/s/a", "HEAD", g.URL+"/s/a", "Host", "shop.example")
		check("https POST", 308, "https://shop.example/s/a", "POST", g.URL+"/s/a", "Host", "shop.example")
		// Already https at a proxy in front: proxied.
		_, seen := pmPassed(t, up, "X-Forwarded-Proto https", "GET", g.URL+"/s/a?b=1", nil, "X-Forwarded-Proto", "https")
		if seen.URI != "/s/a?b=1" {
			t.Errorf("upstream saw %s", seen.URI)
		}
	})
}

func TestPluginMoreFaultInjection(t *testing.T) {
	pmEngines(t, []string{"fast", "std"}, func(t *testing.T, engine string) {
		g, up := pluginGateway(t, engine)
		mustAdmin(t, g, "PUT", "/apisix/admin/routes/r1", `{"uri":"/f","upstream_id":"u1","plugins":{
			"fault-injection":{"abort":{"http_status":403,"body":"Fault Injection! client: $remote_addr arg: ${arg_name}\n",
			"headers":{"X-Fault":"abort","X-Num":7,"X-Who":"$arg_name"},"vars":[[["arg_name","==","jack"]]]}}}}`)
		mustAdmin(t, g, "PUT", "/apisix/admin/routes/r2", `{"uri":"/f0","upstream_id":"u1","plugins":{
			"fault-injection":{"abort":{"http_status":500,"percentage":0}}}}`)
		mustAdmin(t, g, "PUT", "/apisix/admin/routes/r3", `{"uri":"/fall","upstream_id":"u1","plugins":{
			"fault-injection":{"abort":{"http_status":503,"body":"down"}}}}`)
		waitServed(t, g.URL+"/f", 200, 2*time.Second)
		waitServed(t, g.URL+"/fall", 503, 2*time.Second)

		h := pmRejected(t, up, "abort on vars", 403, "Fault Injection! client: 127.0.0.1 arg: jack\n", "GET", g.URL+"/f?name=jack", nil)
		if h.Get("X-Fault") != "abort" || h.Get("X-Num") != "7" || h.Get("X-Who") != "jack" {
			t.Errorf("abort headers %v", h)
		}
		_, seen := pmPassed(t, up, "vars do not match", "GET", g.URL+"/f?name=rose", nil)
		if seen.URI != "/f?name=rose" {
			t.Errorf("upstream saw %s", seen.URI)
		}
		for i := 0; i < 5; i++ {
			pmPassed(t, up, "percentage 0", "GET", g.URL+"/f0", nil)
		}
		pmRejected(t, up, "abort always", 503, "down", "POST", g.URL+"/fall", []byte("body"))
	})
}

func TestPluginMoreMocking(t *testing.T) {
	pmEngines(t, []string{"fast", "std"}, func(t *testing.T, engine string) {
		g, up := pluginGateway(t, engine)
		mustAdmin(t, g, "PUT", "/apisix/admin/routes/r1", `{"uri":"/mock","upstream_id":"u1","plugins":{
			"mocking":{"response_status":201,"response_example":"{\"client\":\"$remote_addr\",\"a\":\"${arg_a}\"}",
			"response_headers":{"X-Extra":"v-$arg_a","X-Num":3}}}}`)
		mustAdmin(t, g, "PUT", "/apisix/admin/routes/r2", `{"uri":"/schema","upstream_id":"u1","plugins":{
			"mocking":{"with_mock_header":false,"response_schema":{"type":"object","properties":{
			"id":{"type":"integer"},"name":{"type":"string","example":"jack"},
			"tags":{"type":"array","items":{"type":"string"}},"skip":{}}}}}}`)
		mustAdmin(t, g, "PUT", "/apisix/admin/routes/r3", `{"uri":"/xml","upstream_id":"u1","plugins":{
			"mocking":{"content_type":"text/plain","response_example":"plain mock"}}}`)
		waitServed(t, g.URL+"/mock", 201, 2*time.Second)
		waitServed(t, g.URL+"/schema", 200, 2*time.Second)
		waitServed(t, g.URL+"/xml", 200, 2*time.Second)

		h := pmRejected(t, up, "example", 201, `{"client":"127.0.0.1","a":"xy"}`, "POST", g.URL+"/mock?a=xy", []byte("ignored"))
		if h.Get("Content-Type") != "application/json;charset=utf8" || !strings.HasPrefix(h.Get("X-Mock-By"), "sluice") ||
			h.Get("X-Extra") != "v-xy" || h.Get("X-Num") != "3" {
			t.Errorf("example headers %v", h)
		}
		before := up.Requests()
		code, h, body := pmDo(t, "GET", g.URL+"/schema", nil)
		var v map[string]any
		if code != 200 || json.Unmarshal(body, &v) != nil || up.Requests() != before {
			t.Fatalf("schema: %d %q", code, body)
		}
		id, _ := v["id"].(float64)
		tags, _ := v["tags"].([]any)
		if _, has := v["skip"]; has || v["name"] != "jack" || id < 1 || id > 10000 || id != float64(int(id)) ||
			len(tags) < 1 || len(tags) > 3 || h.Get("X-Mock-By") != "" {
			t.Errorf("schema body %s, headers %v", body, h)
		}
		h = pmRejected(t, up, "text/plain", 200, "plain mock", "GET", g.URL+"/xml", nil)
		if h.Get("Content-Type") != "text/plain" {
			t.Errorf("text/plain: Content-Type %q", h.Get("Content-Type"))
		}
	})
}

func TestPluginMoreURIBlocker(t *testing.T) {
	pmEngines(t, []string{"fast", "std"}, func(t *testing.T, engine string) {
		g, up := pluginGateway(t, engine)
		mustAdmin(t, g, "PUT", "/apisix/admin/routes/r1", `{"uri":"/u/*","upstream_id":"u1","plugins":{
			"uri-blocker":{"block_rules":["\\.php$","root\\.exe","cmd=","\\.\\./"],"rejected_msg":"access is not allowed","case_insensitive":true}}}`)
		mustAdmin(t, g, "PUT", "/apisix/admin/routes/r2", `{"uri":"/q/*","upstream_id":"u1","plugins":{
			"uri-blocker":{"block_rules":["^/q/secret"],"rejected_code":404}}}`)
		waitServed(t, g.URL+"/u/index.PHP", 403, 2*time.Second)
		waitServed(t, g.URL+"/q/secret", 404, 2*time.Second)

		const msg = `{"error_msg":"access is not allowed"}` + "\n"
		pmRejected(t, up, "php, any case", 403, msg, "GET", g.URL+"/u/index.PHP", nil)
		pmRejected(t, up, "query string", 403, msg, "GET", g.URL+"/u/run?CMD=ls", nil)
		pmRejected(t, up, "root.exe", 403, msg, "POST", g.URL+"/u/a/root.exe/b", []byte("x"))
		_, seen := pmPassed(t, up, "allowed", "GET", g.URL+"/u/index.html?x=php", nil)
		if seen.URI != "/u/index.html?x=php" {
			t.Errorf("upstream saw %s", seen.URI)
		}
		pmPassed(t, up, "php not at the end", "GET", g.URL+"/u/index.php5", nil)
		pmRejected(t, up, "anchored rule, no msg", 404, "", "GET", g.URL+"/q/secret/x", nil)
		pmPassed(t, up, "anchored rule elsewhere", "GET", g.URL+"/q/pub/secret", nil)
	})
}

func TestPluginMoreUARestriction(t *testing.T) {
	pmEngines(t, []string{"fast", "std"}, func(t *testing.T, engine string) {
		g, up := pluginGateway(t, engine)
		mustAdmin(t, g, "PUT", "/apisix/admin/routes/r1", `{"uri":"/deny","upstream_id":"u1","plugins":{
			"ua-restriction":{"denylist":["(Baiduspider|Twitterbot)/\\d+\\.\\d+","(?i)scrapy"],"message":"go away"}}}`)
		mustAdmin(t, g, "PUT", "/apisix/admin/routes/r2", `{"uri":"/allow","upstream_id":"u1","plugins":{
			"ua-restriction":{"allowlist":["^curl/"],"bypass_missing":true}}}`)
		waitServed(t, g.URL+"/deny", 200, 2*time.Second)
		waitServed(t, g.URL+"/allow", 403, 2*time.Second)

		const away = `{"message":"go away"}` + "\n"
		pmRejected(t, up, "twitterbot", 403, away, "GET", g.URL+"/deny", nil, "User-Agent", "Mozilla/5.0 (compatible; Twitterbot/2.0)")
		pmRejected(t, up, "scrapy", 403, away, "GET", g.URL+"/deny", nil, "User-Agent", "Scrapy/2.11")
		pmRejected(t, up, "missing UA", 403, away, "GET", g.URL+"/deny", nil, "User-Agent", "")
		_, seen := pmPassed(t, up, "browser", "GET", g.URL+"/deny", nil, "User-Agent", "Mozilla/5.0 Twitterbot")
		if seen.Header.Get("User-Agent") != "Mozilla/5.0 Twitterbot" {
			t.Errorf("upstream saw UA %q", seen.Header.Get("User-Agent"))
		}

		const notAllowed = `{"message":"Not allowed"}` + "\n"
		pmPassed(t, up, "curl", "GET", g.URL+"/allow", nil, "User-Agent", "curl/8.5.0")
		pmRejected(t, up, "not curl", 403, notAllowed, "GET", g.URL+"/allow", nil, "User-Agent", "wget curl/8")
		pmPassed(t, up, "missing UA bypassed", "GET", g.URL+"/allow", nil, "User-Agent", "")
	})
}

func TestPluginMoreRefererRestriction(t *testing.T) {
	pmEngines(t, []string{"fast", "std"}, func(t *testing.T, engine string) {
		g, up := pluginGateway(t, engine)
		mustAdmin(t, g, "PUT", "/apisix/admin/routes/r1", `{"uri":"/img","upstream_id":"u1","plugins":{
			"referer-restriction":{"whitelist":["example.com","*.example.com"],"bypass_missing":true}}}`)
		mustAdmin(t, g, "PUT", "/apisix/admin/routes/r2", `{"uri":"/bl","upstream_id":"u1","plugins":{
			"referer-restriction":{"blacklist":["*evil.test"],"message":"no hotlinking"}}}`)
		waitServed(t, g.URL+"/img", 200, 2*time.Second)
		waitServed(t, g.URL+"/bl", 403, 2*time.Second)

		const deny = `{"message":"Your referer host is not allowed"}` + "\n"
		_, seen := pmPassed(t, up, "subdomain", "GET", g.URL+"/img", nil, "Referer", "https://www.example.com/page")
		if seen.Header.Get("Referer") != "https://www.example.com/page" {
			t.Errorf("upstream saw Referer %q", seen.Header.Get("Referer"))
		}
		pmPassed(t, up, "exact with port", "GET", g.URL+"/img", nil, "Referer", "http://example.com:8080/x")
		pmPassed(t, up, "missing bypassed", "GET", g.URL+"/img", nil)
		pmPassed(t, up, "malformed bypassed", "GET", g.URL+"/img", nil, "Referer", "/relative")
		pmRejected(t, up, "other site", 403, deny, "GET", g.URL+"/img", nil, "Referer", "https://other.site/")
		pmRejected(t, up, "suffix without dot", 403, deny, "GET", g.URL+"/img", nil, "Referer", "https://badexample.com/")

		const hot = `{"message":"no hotlinking"}` + "\n"
		pmRejected(t, up, "blacklisted", 403, hot, "GET", g.URL+"/bl", nil, "Referer", "http://www.evil.test/a")
		pmRejected(t, up, "missing, no bypass", 403, hot, "GET", g.URL+"/bl", nil)
		pmPassed(t, up, "not blacklisted", "GET", g.URL+"/bl", nil, "Referer", "http://good.test/")
	})
}

var pmCSRFCookie = regexp.MustCompile(`^apisix-csrf-token=([A-Za-z0-9+/=]+);path=/;SameSite=Lax;Expires=[A-Z][a-z]{2}, \d{2}-[A-Z][a-z]{2}-\d{2} \d{2}:\d{2}:\d{2} GMT$`)

func TestPluginMoreCSRF(t *testing.T) {
	pmEngines(t, []string{"fast", "std"}, func(t *testing.T, engine string) {
		const key = "edd1c9f034335f136f87ad84b625c8f1"
		g, up := pluginGateway(t, engine)
		mustAdmin(t, g, "PUT", "/apisix/admin/routes/r1", `{"uri":"/c","upstream_id":"u1","plugins":{"csrf":{"key":"`+key+`"}}}`)
		waitServed(t, g.URL+"/c", 200, 2*time.Second)

		h, _ := pmPassed(t, up, "GET", "GET", g.URL+"/c", nil)
		m := pmCSRFCookie.FindStringSubmatch(h.Get("Set-Cookie"))
		if m == nil {
			t.Fatalf("Set-Cookie %q", h.Get("Set-Cookie"))
		}
		token := m[1]
		// The token is APISIX's: base64 JSON whose sign is SHA-256 of
		// {expires:<t>,random:<r>,key:<key>}.
		raw, err := base64.StdEncoding.DecodeString(token)
		if err != nil {
			t.Fatalf("token %q: %v", token, err)
		}
		var tok struct {
			Random  float64 `json:"random"`
			Expires float64 `json:"expires"`
			Sign    string  `json:"sign"`
		}
		if err := json.Unmarshal(raw, &tok); err != nil {
			t.Fatalf("token %s: %v", raw, err)
		}
		sum := sha256.Sum256([]byte(fmt.Sprintf("{expires:%.14g,random:%.14g,key:%s}", tok.Expires, tok.Random, key)))
		if tok.Sign != hex.EncodeToString(sum[:]) || tok.Random < 0 || tok.Random >= 1 ||
			time.Since(time.Unix(int64(tok.Expires), 0)).Abs() > time.Minute {
			t.Errorf("token %s: bad signature or fields", raw)
		}

		pmRejected(t, up, "no header", 401, `{"error_msg":"no csrf token in headers"}`+"\n", "POST", g.URL+"/c", []byte("x"),
			"Cookie", "apisix-csrf-token="+token)
		pmRejected(t, up, "no cookie", 401, `{"error_msg":"no csrf cookie"}`+"\n", "POST", g.URL+"/c", []byte("x"),
			"apisix-csrf-token", token)
		pmRejected(t, up, "mismatch", 401, `{"error_msg":"csrf token mismatch"}`+"\n", "POST", g.URL+"/c", []byte("x"),
			"apisix-csrf-token", token, "Cookie", "apisix-csrf-token="+token+"x")
		forgedJSON := fmt.Sprintf(`{"random":0.5,"expires":%d,"sign":"%s"}`, int64(tok.Expires), strings.Repeat("0", 64))
		forged := base64.StdEncoding.EncodeToString([]byte(forgedJSON))
		pmRejected(t, up, "forged", 401, `{"error_msg":"Failed to verify the csrf token signature"}`+"\n", "POST", g.URL+"/c", []byte("x"),
			"apisix-csrf-token", forged, "Cookie", "apisix-csrf-token="+forged)

		h, seen := pmPassed(t, up, "POST with token", "POST", g.URL+"/c", []byte("form=1"),
			"apisix-csrf-token", token, "Cookie", "other=1; apisix-csrf-token="+token)
		if seen.Method != "POST" || string(seen.Body) != "form=1" {
			t.Errorf("upstream saw %s %q", seen.Method, seen.Body)
		}
		if m := pmCSRFCookie.FindStringSubmatch(h.Get("Set-Cookie")); m == nil || m[1] == token {
			t.Errorf("POST response Set-Cookie %q: want a fresh token", h.Get("Set-Cookie"))
		}
	})
}

func TestPluginMoreRealIP(t *testing.T) {
	pmEngines(t, []string{"fast", "std"}, func(t *testing.T, engine string) {
		g, up := pluginGateway(t, engine)
		mustAdmin(t, g, "PUT", "/apisix/admin/routes/r1", `{"uri":"/rip","upstream_id":"u1","plugins":{
			"real-ip":{"source":"http_x_forwarded_for","trusted_addresses":["127.0.0.1"]}}}`)
		mustAdmin(t, g, "PUT", "/apisix/admin/routes/r2", `{"uri":"/untrusted","upstream_id":"u1","plugins":{
			"real-ip":{"source":"http_x_forwarded_for","trusted_addresses":["10.0.0.1"]}}}`)
		mustAdmin(t, g, "PUT", "/apisix/admin/routes/r3", `{"uri":"/acl","upstream_id":"u1","plugins":{
			"real-ip":{"source":"http_x_forwarded_for","trusted_addresses":["127.0.0.0/8","10.0.0.0/8"],"recursive":true},
			"ip-restriction":{"whitelist":["192.0.2.0/24"]}}}`)
		waitServed(t, g.URL+"/rip", 200, 2*time.Second)
		waitServed(t, g.URL+"/untrusted", 200, 2*time.Second)
		waitServed(t, g.URL+"/acl", 403, 2*time.Second)

		_, seen := pmPassed(t, up, "trusted", "GET", g.URL+"/rip", nil, "X-Forwarded-For", "198.51.100.9, 192.0.2.7")
		if got := seen.Header.Get("X-Real-IP"); got != "192.0.2.7" {
			t.Errorf("trusted: upstream X-Real-IP %q (X-Forwarded-For %q)", got, seen.Header.Get("X-Forwarded-For"))
		}
		_, seen = pmPassed(t, up, "trusted, port", "GET", g.URL+"/rip", nil, "X-Forwarded-For", "192.0.2.8:4321")
		if got := seen.Header.Get("X-Real-IP"); got != "192.0.2.8" {
			t.Errorf("with port: upstream X-Real-IP %q", got)
		}
		_, seen = pmPassed(t, up, "invalid", "GET", g.URL+"/rip", nil, "X-Forwarded-For", "not-an-ip")
		if got := seen.Header.Get("X-Real-IP"); got != "127.0.0.1" {
			t.Errorf("invalid: upstream X-Real-IP %q", got)
		}
		_, seen = pmPassed(t, up, "untrusted peer", "GET", g.URL+"/untrusted", nil, "X-Forwarded-For", "192.0.2.7")
		if got := seen.Header.Get("X-Real-IP"); got != "127.0.0.1" {
			t.Errorf("untrusted: upstream X-Real-IP %q", got)
		}
		// recursive: the last untrusted address, and later plugins see it.
		_, seen = pmPassed(t, up, "recursive", "GET", g.URL+"/acl", nil, "X-Forwarded-For", "203.0.113.1, 192.0.2.7, 10.1.1.1")
		if got := seen.Header.Get("X-Real-IP"); got != "192.0.2.7" {
			t.Errorf("recursive: upstream X-Real-IP %q", got)
		}
		before := up.Requests()
		code, _, body := pmDo(t, "GET", g.URL+"/acl", nil, "X-Forwarded-For", "192.0.2.7, 198.51.100.1")
		if code != 403 || !strings.Contains(string(body), "not allowed") || up.Requests() != before {
			t.Errorf("ip-restriction after real-ip: %d %q", code, body)
		}
	})
}

func TestPluginMoreRequestValidation(t *testing.T) {
	pmEngines(t, []string{"fast", "std"}, func(t *testing.T, engine string) {
		g, up := pluginGateway(t, engine)
		mustAdmin(t, g, "PUT", "/apisix/admin/routes/r1", `{"uri":"/v","upstream_id":"u1","plugins":{
			"request-validation":{"body_schema":{"type":"object","required":["required_payload"],"properties":{
			"required_payload":{"type":"string"},"timeouts":{"type":"integer","minimum":1,"maximum":254}}}}}}`)
		mustAdmin(t, g, "PUT", "/apisix/admin/routes/r2", `{"uri":"/vh","upstream_id":"u1","plugins":{
			"request-validation":{"header_schema":{"type":"object","required":["X-Ver"],"properties":{
			"X-Ver":{"type":"string","enum":["1","2"]}}},"rejected_code":422,"rejected_msg":"bad version"}}}`)
		waitServed(t, g.URL+"/v", 400, 2*time.Second)
		waitServed(t, g.URL+"/vh", 422, 2*time.Second)

		before := up.Requests()
		code, _, body := pmDo(t, "POST", g.URL+"/v", []byte(`{"required_payload":`), "Content-Type", "application/json")
		if code != 400 || !strings.Contains(string(body), "Expected") || up.Requests() != before {
			t.Errorf("bad JSON: %d %q", code, body)
		}
		pmRejected(t, up, "missing field", 400, `property "required_payload" is required`, "POST", g.URL+"/v",
			[]byte(`{"timeouts":5}`), "Content-Type", "application/json")
		pmRejected(t, up, "out of range", 400, `property "timeouts" validation failed: expected 255 to be at most 254`,
			"POST", g.URL+"/v", []byte(`{"required_payload":"x","timeouts":255}`), "Content-Type", "application/json")
		pmRejected(t, up, "empty body", 400, "", "POST", g.URL+"/v", []byte{})

		_, seen := pmPassed(t, up, "valid", "POST", g.URL+"/v?q=1",
			[]byte(`{ "timeouts": 5, "required_payload": "x", "timeouts": 7 }`), "Content-Type", "application/json")
		if seen.Method != "POST" || seen.URI != "/v?q=1" || string(seen.Body) != `{"required_payload":"x","timeouts":7}` ||
			seen.Header.Get("Content-Length") != fmt.Sprint(len(seen.Body)) {
			t.Errorf("upstream saw %s %s %q (Content-Length %q)", seen.Method, seen.URI, seen.Body, seen.Header.Get("Content-Length"))
		}

		pmRejected(t, up, "header missing", 422, "bad version", "GET", g.URL+"/vh", nil)
		pmRejected(t, up, "header wrong", 422, "bad version", "GET", g.URL+"/vh", nil, "X-Ver", "3")
		_, seen = pmPassed(t, up, "header ok", "GET", g.URL+"/vh", nil, "x-ver", "2")
		if seen.Header.Get("X-Ver") != "2" {
			t.Errorf("upstream saw X-Ver %q", seen.Header.Get("X-Ver"))
		}
	})
}

func TestPluginMoreGzip(t *testing.T) {
	page := strings.Repeat("<p>hello gzip world</p>\n", 400)
	pmEngines(t, []string{"fast", "std"}, func(t *testing.T, engine string) {
		// The upstream always sends a Content-Length.
		g, up := pmGateway(t, engine, func(w http.ResponseWriter, r *http.Request, _ *protoSeen) {
			body := page
			switch r.URL.Path {
			case "/gz/json":
				w.Header().Set("Content-Type", "application/json")
				body = `{"x":"` + strings.Repeat("a", 200) + `"}`
			case "/gz/small":
				w.Header().Set("Content-Type", "text/html")
				body = "tiny"
			default:
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				w.Header().Set("ETag", `"v1"`)
			}
			w.Header().Set("Content-Length", fmt.Sprint(len(body)))
			io.WriteString(w, body)
		})
		mustAdmin(t, g, "PUT", "/apisix/admin/routes/r1", `{"uri":"/gz/*","upstream_id":"u1","plugins":{
			"gzip":{"min_length":20,"vary":true,"comp_level":6}}}`)
		waitServed(t, g.URL+"/gz/small", 200, 2*time.Second)

		code, h, body := pmDo(t, "GET", g.URL+"/gz/page", nil, "Accept-Encoding", "gzip, br")
		if code != 200 || h.Get("Content-Encoding") != "gzip" || h.Get("Content-Length") != "" && h.Get("Content-Length") != fmt.Sprint(len(body)) ||
			h.Get("Vary") != "Accept-Encoding" || h.Get("ETag") != `W/"v1"` {
			t.Fatalf("gzip: %d %v", code, h)
		}
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("not gzip: %v (%q)", err, body[:min(len(body), 40)])
		}
		plain, err := io.ReadAll(zr)
		if err != nil || string(plain) != page {
			t.Fatalf("decompressed %d bytes (err %v), want the upstream's %d", len(plain), err, len(page))
		}
		if len(body) >= len(page)/4 {
			t.Errorf("compressed %d -> %d bytes only", len(page), len(body))
		}
		if seen := up.Last(t); seen.Header.Get("Accept-Encoding") != "gzip, br" || seen.URI != "/gz/page" {
			t.Errorf("upstream saw %s Accept-Encoding %q", seen.URI, seen.Header.Get("Accept-Encoding"))
		}

		// A response gzip leaves alone is the upstream's, Content-Length
		// included (nginx's gzip filter only drops it when it compresses).
		check := func(what, path string, want string, hdr ...string) {
			t.Helper()
			code, h, body := pmDo(t, "GET", g.URL+path, nil, hdr...)
			if code != 200 || h.Get("Content-Encoding") != "" || string(body) != want {
				t.Errorf("%s: %d %v %d bytes", what, code, h, len(body))
			}
			if h.Get("Content-Length") != fmt.Sprint(len(want)) {
				t.Errorf("%s: not compressed, but the upstream's Content-Length %d was dropped (headers %v)", what, len(want), h)
			}
		}
		check("no Accept-Encoding", "/gz/page", page)
		check("gzip;q=0", "/gz/page", page, "Accept-Encoding", "gzip;q=0, br")
		check("below min_length", "/gz/small", "tiny", "Accept-Encoding", "gzip")
		check("type not listed", "/gz/json", `{"x":"`+strings.Repeat("a", 200)+`"}`, "Accept-Encoding", "gzip")
	})
}

// pmSeal encrypts plain as encrypted-protocol expects: nonce || ciphertext || tag.
func pmSeal(t *testing.T, key, plain []byte) []byte {
	t.Helper()
	blk, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(blk)
	if err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	return aead.Seal(nonce, nonce, plain, nil)
}

// pmOpen decrypts a body sealed by the gateway.
func pmOpen(t *testing.T, key, msg []byte) []byte {
	t.Helper()
	blk, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(blk)
	if err != nil {
		t.Fatal(err)
	}
	if len(msg) < aead.NonceSize()+aead.Overhead() {
		t.Fatalf("encrypted response too short: %q", msg)
	}
	plain, err := aead.Open(nil, msg[:aead.NonceSize()], msg[aead.NonceSize():], nil)
	if err != nil {
		t.Fatalf("response does not decrypt: %v (%q)", err, msg)
	}
	return plain
}

func TestPluginMoreEncryptedProtocol(t *testing.T) {
	pmEngines(t, []string{"fast", "std"}, func(t *testing.T, engine string) {
		routeKey := bytes.Repeat([]byte{0x11}, 32)
		jackKey := bytes.Repeat([]byte{0x22}, 32)
		g, up := pmGateway(t, engine, func(w http.ResponseWriter, r *http.Request, seen *protoSeen) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("X-Up", "1")
			fmt.Fprintf(w, `{"echo":%q}`, seen.Body)
		})
		b64 := base64.StdEncoding.EncodeToString
		mustAdmin(t, g, "PUT", "/apisix/admin/consumers", `{"username":"jack","plugins":{"key-auth":{"key":"jack-key"},
			"encrypted-protocol":{"key":"`+b64(jackKey)+`"}}}`)
		mustAdmin(t, g, "PUT", "/apisix/admin/consumers", `{"username":"rose","plugins":{"key-auth":{"key":"rose-key"}}}`)
		mustAdmin(t, g, "PUT", "/apisix/admin/routes/r1", `{"uri":"/pay","upstream_id":"u1","plugins":{
			"encrypted-protocol":{"key":"`+b64(routeKey)+`"}}}`)
		mustAdmin(t, g, "PUT", "/apisix/admin/routes/r2", `{"uri":"/ck","upstream_id":"u1","plugins":{
			"key-auth":{},"encrypted-protocol":{}}}`)
		waitServed(t, g.URL+"/pay", 200, 2*time.Second)
		waitServed(t, g.URL+"/ck", 401, 2*time.Second)

		plain := []byte(`{"amount":42}`)
		before := up.Requests()
		code, h, body := pmDo(t, "POST", g.URL+"/pay", pmSeal(t, routeKey, plain),
			"Content-Type", "application/octet-stream", "Accept-Encoding", "gzip")
		if code != 200 || up.Requests() != before+1 {
			t.Fatalf("encrypted POST: %d %q", code, body)
		}
		seen := up.Last(t)
		if !bytes.Equal(seen.Body, plain) || seen.Header.Get("Accept-Encoding") != "" ||
			seen.Header.Get("Content-Length") != fmt.Sprint(len(plain)) {
			t.Errorf("upstream saw %q %v", seen.Body, seen.Header)
		}
		if got := pmOpen(t, routeKey, body); string(got) != `{"echo":"{\"amount\":42}"}` {
			t.Errorf("decrypted response %q", got)
		}
		if h.Get("Content-Type") != "application/octet-stream" || h.Get("X-Up") != "1" ||
			h.Get("Content-Length") != "" && h.Get("Content-Length") != fmt.Sprint(len(body)) {
			t.Errorf("response headers %v (%d bytes)", h, len(body))
		}
		if bytes.Contains(body, []byte("amount")) {
			t.Errorf("response body is not encrypted: %q", body)
		}

		const invalid = `{"message":"invalid encrypted request body"}` + "\n"
		sealed := pmSeal(t, routeKey, plain)
		sealed[15] ^= 1
		pmRejected(t, up, "tampered", 400, invalid, "POST", g.URL+"/pay", sealed)
		pmRejected(t, up, "wrong key", 400, invalid, "POST", g.URL+"/pay", pmSeal(t, jackKey, plain))
		pmRejected(t, up, "too short", 400, invalid, "POST", g.URL+"/pay", []byte("0123456789abcdef0123456"))
		pmRejected(t, up, "plaintext", 400, invalid, "POST", g.URL+"/pay", []byte(`{"amount":42,"padding":"xxxxxxxxxxxxxxxx"}`))

		// A consumer's own key is used for both directions.
		code, _, body = pmDo(t, "POST", g.URL+"/ck", pmSeal(t, jackKey, []byte("hi")), "apikey", "jack-key")
		if code != 200 || string(up.Last(t).Body) != "hi" {
			t.Fatalf("consumer key: %d %q, upstream got %q", code, body, up.Last(t).Body)
		}
		if got := pmOpen(t, jackKey, body); string(got) != `{"echo":"hi"}` {
			t.Errorf("consumer key: decrypted %q", got)
		}
		pmRejected(t, up, "consumer without key", 403, `{"message":"no encryption key for this client"}`+"\n",
			"POST", g.URL+"/ck", pmSeal(t, jackKey, []byte("hi")), "apikey", "rose-key")
	})
}
