package jwtauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/plugintest"
)

// now is the fixed clock of every test.
var now = time.Unix(1_700_000_000, 0)

// testKeys are generated once per test binary.
type testKeys struct {
	rsa         *rsa.PrivateKey
	p256, p384  *ecdsa.PrivateKey
	p521        *ecdsa.PrivateKey
	ed          ed25519.PrivateKey
	rsaPEM      string
	rsaPKCS1PEM string
	p256PEM     string
	p384PEM     string
	p521PEM     string
	edPEM       string
}

var keys = sync.OnceValue(func() *testKeys {
	k := &testKeys{}
	var err error
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		panic(err)
	}
	if k.p256, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		panic(err)
	}
	if k.p384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader); err != nil {
		panic(err)
	}
	if k.p521, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader); err != nil {
		panic(err)
	}
	if _, k.ed, err = ed25519.GenerateKey(rand.Reader); err != nil {
		panic(err)
	}
	k.rsaPEM = pkixPEM(k.rsa.Public())
	k.rsaPKCS1PEM = string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey)}))
	k.p256PEM = pkixPEM(k.p256.Public())
	k.p384PEM = pkixPEM(k.p384.Public())
	k.p521PEM = pkixPEM(k.p521.Public())
	k.edPEM = pkixPEM(k.ed.Public())
	return k
})

func pkixPEM(pub crypto.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// consumers returns one consumer per algorithm, plus a few variants.
func consumers() []plugintest.Consumer {
	k := keys()
	pub := func(alg, p string) string {
		return `{"algorithm":"` + alg + `","public_key":` + jsonString(p) + `}`
	}
	withKey := func(key, cred string) string { return `{"key":"` + key + `",` + cred[1:] }
	return []plugintest.Consumer{
		{Username: "jack", Credential: `{"key":"jack-key","secret":"jack-secret"}`},
		{Username: "hs384", Credential: `{"key":"hs384-key","secret":"s384","algorithm":"HS384"}`},
		{Username: "hs512", Credential: `{"key":"hs512-key","secret":"s512","algorithm":"HS512"}`},
		{Username: "b64", Credential: `{"key":"b64-key","secret":"` + base64.StdEncoding.EncodeToString([]byte("\x00binary\xff")) + `","base64_secret":true}`},
		{Username: "grace", Credential: `{"key":"grace-key","secret":"g","lifetime_grace_period":10}`},
		{Username: "rs256", Credential: withKey("rs256-key", pub("RS256", k.rsaPEM))},
		{Username: "rs384", Credential: withKey("rs384-key", pub("RS384", k.rsaPKCS1PEM))},
		{Username: "rs512", Credential: withKey("rs512-key", pub("RS512", k.rsaPEM))},
		{Username: "ps256", Credential: withKey("ps256-key", pub("PS256", k.rsaPEM))},
		{Username: "ps384", Credential: withKey("ps384-key", pub("PS384", k.rsaPEM))},
		{Username: "ps512", Credential: withKey("ps512-key", pub("PS512", k.rsaPEM))},
		{Username: "es256", Credential: withKey("es256-key", pub("ES256", k.p256PEM))},
		{Username: "es384", Credential: withKey("es384-key", pub("ES384", k.p384PEM))},
		{Username: "es512", Credential: withKey("es512-key", pub("ES512", k.p521PEM))},
		{Username: "eddsa", Credential: withKey("eddsa-key", pub("EdDSA", k.edPEM))},
		{Username: "vault", Credential: `{"key":"vault-key","secret":"$secret://vault/1/jwt"}`},
		{Username: "env", Credential: `{"key":"$ENV://JWT_KEY","secret":"x"}`},
	}
}

// build builds jwt-auth over consumers() with the fixed clock.
func build(t testing.TB, cfg string) *jwtAuth {
	t.Helper()
	j := plugintest.NewWithConsumers(t, Name, cfg, consumers()...).(*jwtAuth)
	j.now = func() time.Time { return now }
	return j
}

// sign signs claims with the key that suits alg.
func sign(t testing.TB, alg string, claims jwt.MapClaims, secret string) string {
	t.Helper()
	var key any = []byte(secret)
	switch k := keys(); alg[:2] {
	case "RS", "PS":
		key = k.rsa
	case "ES":
		key = map[string]*ecdsa.PrivateKey{"ES256": k.p256, "ES384": k.p384, "ES512": k.p521}[alg]
	case "Ed":
		key = k.ed
	}
	s, err := jwt.NewWithClaims(jwt.GetSigningMethod(alg), claims).SignedString(key)
	if err != nil {
		t.Fatalf("signing %s: %v", alg, err)
	}
	return s
}

// jack signs a token for consumer jack with extra claims.
func jack(t testing.TB, extra jwt.MapClaims) string {
	t.Helper()
	c := jwt.MapClaims{"key": "jack-key"}
	for k, v := range extra {
		c[k] = v
	}
	return sign(t, "HS256", c, "jack-secret")
}

// rawToken builds a token from literal JSON header and payload, signed with
// HS256 over secret (or with the given signature when sig is not "").
func rawToken(header, payload, secret string) string {
	enc := base64.RawURLEncoding
	in := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	sig, _ := jwt.SigningMethodHS256.Sign(in, []byte(secret))
	return in + "." + enc.EncodeToString(sig)
}

func TestRegistered(t *testing.T) {
	t.Parallel()
	// APISIX's priorities: apisix/plugins/jwt-auth.lua.
	d, ok := plugin.Lookup(Name)
	if !ok {
		t.Fatal("jwt-auth is not registered")
	}
	if d.Priority != 2510 {
		t.Errorf("priority = %d, want APISIX's 2510", d.Priority)
	}
	if d.NewConsumerConfig == nil {
		t.Error("jwt-auth must declare a consumer config (auth plugin)")
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c := NewConfig()
	want := Config{Header: "authorization", Query: "jwt", Cookie: "jwt", KeyClaimName: "key", Realm: "jwt"}
	if c.Header != want.Header || c.Query != want.Query || c.Cookie != want.Cookie || c.KeyClaimName != want.KeyClaimName ||
		c.Realm != want.Realm || c.HideCredentials || c.StoreInCtx || c.AnonymousConsumer != nil || c.ClaimsToVerify != nil {
		t.Errorf("defaults = %+v", *c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
	cc := NewConsumerConfig()
	if cc.Algorithm != "HS256" || cc.Exp != 86400 || cc.LifetimeGracePeriod != 0 || cc.Base64Secret {
		t.Errorf("consumer defaults = %+v", *cc)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc, cfg, err string
	}{
		{"empty object", `{}`, ""},
		{"all fields", `{"header":"X-Token","query":"t","cookie":"c","hide_credentials":true,"key_claim_name":"iss","store_in_ctx":true,"realm":"r","anonymous_consumer":"anon","claims_to_verify":["exp","nbf"]}`, ""},
		{"empty sources disable them", `{"header":"","query":"","cookie":""}`, ""},
		{"empty claims list", `{"claims_to_verify":[]}`, ""},
		{"empty key claim", `{"key_claim_name":""}`, "plugins.jwt-auth: key_claim_name: must not be empty"},
		{"bad claim", `{"claims_to_verify":["iat"]}`, "plugins.jwt-auth: claims_to_verify[0]: must be one of exp, nbf"},
		{"duplicate claim", `{"claims_to_verify":["exp","exp"]}`, `plugins.jwt-auth: claims_to_verify[1]: duplicate "exp"`},
		{"empty realm", `{"realm":""}`, "plugins.jwt-auth: realm: must be between 1 and 128 characters"},
		{"quote in realm", `{"realm":"a\"b"}`, `plugins.jwt-auth: realm: must be printable ASCII without '"' or '\'`},
		{"empty anonymous", `{"anonymous_consumer":""}`, "plugins.jwt-auth: anonymous_consumer: must not be empty"},
		{"header type", `{"header":1}`, "plugins.jwt-auth: header: must be a string, got number"},
		{"unknown field", `{"secret":"x"}`, "plugins.jwt-auth: secret: unknown field"},
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
	k := keys()
	pub := func(alg, p string) string {
		return `{"key":"k","algorithm":"` + alg + `","public_key":` + jsonString(p) + `}`
	}
	tests := []struct {
		desc, cred, err string
	}{
		{"hs256", `{"key":"k","secret":"s"}`, ""},
		{"all fields", `{"key":"k","secret":"czE=","algorithm":"HS512","exp":60,"base64_secret":true,"lifetime_grace_period":5}`, ""},
		{"old private_key is accepted", `{"key":"k","secret":"s","private_key":"pem"}`, ""},
		{"secret reference", `{"key":"k","secret":"$secret://vault/1/s","base64_secret":true}`, ""},
		{"public key reference", `{"key":"k","algorithm":"RS256","public_key":"$env://PUB"}`, ""},
		{"rsa pkcs1", pub("RS256", k.rsaPKCS1PEM), ""},
		{"eddsa", pub("EdDSA", k.edPEM), ""},
		{"es512", pub("ES512", k.p521PEM), ""},
		{"missing key", `{"secret":"s"}`, "key: must not be empty"},
		{"none", `{"key":"k","secret":"s","algorithm":"none"}`, "algorithm: must be one of " + strings.Join(Algorithms, ", ")},
		{"lower case alg", `{"key":"k","secret":"s","algorithm":"hs256"}`, "algorithm: must be one of " + strings.Join(Algorithms, ", ")},
		{"hs without secret", `{"key":"k"}`, "secret: required when using HS based algorithms"},
		{"bad base64", `{"key":"k","secret":"not base64!","base64_secret":true}`, "secret: base64_secret required but the secret is not in base64 format"},
		{"empty base64", `{"key":"k","secret":"==","base64_secret":true}`, "secret: decodes to an empty key"},
		{"rs without key", `{"key":"k","algorithm":"RS256","secret":"s"}`, "public_key: required when using RS256"},
		{"not pem", `{"key":"k","algorithm":"RS256","public_key":"abc"}`, "public_key: not a PEM RSA public key: invalid key: Key must be a PEM encoded PKCS1 or PKCS8 key"},
		{"ec key for rsa", pub("PS256", k.p256PEM), "public_key: not a PEM RSA public key: key is not a valid RSA public key"},
		{"rsa key for ec", pub("ES256", k.rsaPEM), "public_key: not a PEM EC public key: key is not a valid ECDSA public key"},
		{"wrong curve", pub("ES256", k.p384PEM), "public_key: ES256 needs a key on curve P-256, got P-384"},
		{"rsa key for eddsa", pub("EdDSA", k.rsaPEM), "public_key: not a PEM Ed25519 public key: key is not a valid Ed25519 public key"},
		{"exp zero", `{"key":"k","secret":"s","exp":0}`, "exp: must be >= 1"},
		{"negative grace", `{"key":"k","secret":"s","lifetime_grace_period":-1}`, "lifetime_grace_period: must be >= 0"},
		{"unknown field", `{"key":"k","secret":"s","x":1}`, "x: unknown field"},
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

func TestDuplicateKey(t *testing.T) {
	t.Parallel()
	_, err := plugintest.BuildWithConsumers(Name, `{}`,
		plugintest.Consumer{Username: "jack", Credential: `{"key":"same","secret":"a"}`},
		plugintest.Consumer{Username: "rose", Credential: `{"key":"same","secret":"b"}`},
	)
	want := `plugins.jwt-auth: key: duplicate key in consumer "jack" and consumer "rose"`
	if got := errString(err); got != want {
		t.Errorf("error = %q, want %q", got, want)
	}
}

func body(msg string) string { return `{"message":"` + msg + `"}` + "\n" }

// req is a request in a table test.
type req struct {
	target  string
	headers []plugin.Header
}

func hdr(kv ...string) []plugin.Header {
	var hs []plugin.Header
	for i := 0; i < len(kv); i += 2 {
		hs = append(hs, plugin.Header{Name: kv[i], Value: kv[i+1]})
	}
	return hs
}

// run sends r through j and checks the outcome: a consumer, or a 401 with msg.
func run(t *testing.T, j *jwtAuth, r req, wantUser, wantMsg string, realm ...string) (*plugintest.Request, plugintest.Result) {
	t.Helper()
	pr := plugintest.NewRequest("GET", r.target)
	for _, h := range r.headers {
		pr.WithHeader(h.Name, h.Value)
	}
	res := plugintest.Run(j, pr, nil)
	if wantMsg != "" {
		if res.Exit == nil {
			t.Fatalf("request passed as %v, want 401 %q", res.Ctx.Consumer, wantMsg)
		}
		if res.Exit.Status != 401 || string(res.Exit.Body) != body(wantMsg) {
			t.Errorf("exit = %d %q, want 401 %q", res.Exit.Status, res.Exit.Body, body(wantMsg))
		}
		wantRealm := `Bearer realm="jwt"`
		if len(realm) > 0 {
			wantRealm = realm[0]
		}
		if got := header(res.Exit.Headers, "WWW-Authenticate"); got != wantRealm {
			t.Errorf("WWW-Authenticate = %q, want %q", got, wantRealm)
		}
		if res.Ctx.Consumer != nil {
			t.Errorf("consumer = %v, want none", res.Ctx.Consumer)
		}
		return pr, res
	}
	if res.Exit != nil {
		t.Fatalf("exit = %d %s, want consumer %s", res.Exit.Status, res.Exit.Body, wantUser)
	}
	if res.Ctx.Consumer == nil || res.Ctx.Consumer.Username != wantUser {
		t.Fatalf("consumer = %v, want %s", res.Ctx.Consumer, wantUser)
	}
	if got := pr.Header("X-Consumer-Username"); got != wantUser {
		t.Errorf("X-Consumer-Username = %q, want %q", got, wantUser)
	}
	return pr, res
}

func TestSources(t *testing.T) {
	t.Parallel()
	tok := jack(t, nil)
	bad := jack(t, jwt.MapClaims{"key": "nobody"})
	tests := []struct {
		desc, cfg string
		req       req
		user, msg string
	}{
		{desc: "bearer header", req: req{"/", hdr("Authorization", "Bearer "+tok)}, user: "jack"},
		{desc: "lower-case bearer", req: req{"/", hdr("authorization", "bearer "+tok)}, user: "jack"},
		{desc: "bare header", req: req{"/", hdr("Authorization", tok)}, user: "jack"},
		{desc: "other scheme is part of the token", req: req{"/", hdr("Authorization", "BEARER "+tok)}, msg: msgInvalid},
		{desc: "query", req: req{"/?a=1&jwt=" + tok, nil}, user: "jack"},
		{desc: "cookie", req: req{"/", hdr("Cookie", "a=1; jwt="+tok+"; b=2")}, user: "jack"},
		{desc: "header wins over query", req: req{"/?jwt=" + tok, hdr("Authorization", bad)}, msg: msgUnknownKey},
		{desc: "query wins over cookie", req: req{"/?jwt=" + bad, hdr("Cookie", "jwt="+tok)}, msg: msgUnknownKey},
		{desc: "empty header is an invalid token", req: req{"/?jwt=" + tok, hdr("Authorization", "")}, msg: msgInvalid},
		{desc: "repeated query arg", req: req{"/?jwt=" + tok + "&jwt=" + tok, nil}, msg: msgInvalid},
		{desc: "valueless query arg", req: req{"/?jwt", nil}, msg: msgInvalid},
		{desc: "missing", req: req{"/?jwtx=" + tok, hdr("Cookie", "xjwt="+tok)}, msg: msgMissing},
		{desc: "custom header", cfg: `{"header":"X-Token"}`, req: req{"/", hdr("x-token", "Bearer "+tok)}, user: "jack"},
		{desc: "custom header ignores authorization", cfg: `{"header":"X-Token","query":"t","cookie":"c"}`, req: req{"/?jwt=" + tok, hdr("Authorization", tok)}, msg: msgMissing},
		{desc: "custom query", cfg: `{"query":"t"}`, req: req{"/?t=" + tok, nil}, user: "jack"},
		{desc: "custom cookie", cfg: `{"cookie":"session"}`, req: req{"/", hdr("Cookie", "session="+tok)}, user: "jack"},
		{desc: "disabled header", cfg: `{"header":""}`, req: req{"/", hdr("Authorization", tok)}, msg: msgMissing},
		{desc: "custom realm", cfg: `{"realm":"api"}`, req: req{"/", nil}, msg: msgMissing},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			realm := `Bearer realm="jwt"`
			if strings.Contains(tt.cfg, "realm") {
				realm = `Bearer realm="api"`
			}
			run(t, build(t, tt.cfg), tt.req, tt.user, tt.msg, realm)
		})
	}
}

func TestAlgorithms(t *testing.T) {
	t.Parallel()
	j := build(t, `{}`)
	for _, alg := range Algorithms {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			user := strings.ToLower(alg)
			secret := map[string]string{"HS384": "s384", "HS512": "s512"}[alg]
			if alg == "HS256" {
				user, secret = "jack", "jack-secret"
			}
			key := user + "-key"
			if alg == "HS256" {
				key = "jack-key"
			}
			tok := sign(t, alg, jwt.MapClaims{"key": key, "exp": now.Unix() + 60}, secret)
			run(t, j, req{"/", hdr("Authorization", "Bearer "+tok)}, user, "")

			// Tampering with the payload breaks the signature.
			parts := strings.Split(tok, ".")
			parts[1] = base64.RawURLEncoding.EncodeToString([]byte(`{"key":"` + key + `","admin":true}`))
			run(t, j, req{"/", hdr("Authorization", strings.Join(parts, "."))}, "", msgVerify)

			// So does tampering with the signature.
			sig, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[2])
			sig[len(sig)/2] ^= 1
			parts = strings.Split(tok, ".")
			parts[2] = base64.RawURLEncoding.EncodeToString(sig)
			run(t, j, req{"/", hdr("Authorization", strings.Join(parts, "."))}, "", msgVerify)
		})
	}
}

func TestBase64Secret(t *testing.T) {
	t.Parallel()
	j := build(t, `{}`)
	tok := sign(t, "HS256", jwt.MapClaims{"key": "b64-key"}, "\x00binary\xff")
	run(t, j, req{"/", hdr("Authorization", tok)}, "b64", "")
	// The base64 text itself is not the key.
	enc := base64.StdEncoding.EncodeToString([]byte("\x00binary\xff"))
	tok = sign(t, "HS256", jwt.MapClaims{"key": "b64-key"}, enc)
	run(t, j, req{"/", hdr("Authorization", tok)}, "", msgVerify)
}

func TestAlgorithmConfusion(t *testing.T) {
	t.Parallel()
	j := build(t, `{}`)
	k := keys()
	tests := []struct {
		desc, token, msg string
	}{
		// The classic attack: HS256 "signed" with the consumer's public key.
		{"hs256 with the rsa public key", sign(t, "HS256", jwt.MapClaims{"key": "rs256-key"}, k.rsaPEM), msgVerify},
		{"hs256 with the ec public key", sign(t, "HS256", jwt.MapClaims{"key": "es256-key"}, k.p256PEM), msgVerify},
		{"rs384 for an rs256 consumer", sign(t, "RS384", jwt.MapClaims{"key": "rs256-key"}, ""), msgVerify},
		{"ps256 for an rs256 consumer", sign(t, "PS256", jwt.MapClaims{"key": "rs256-key"}, ""), msgVerify},
		{"hs512 for an hs256 consumer", sign(t, "HS512", jwt.MapClaims{"key": "jack-key"}, "jack-secret"), msgVerify},
		{"alg none", noneToken(t, jwt.MapClaims{"key": "jack-key"}), msgVerify},
		{"alg none without signature part", strings.TrimSuffix(noneToken(t, jwt.MapClaims{"key": "jack-key"}), "."), msgInvalid},
		{"alg missing", rawToken(`{"typ":"JWT"}`, `{"key":"jack-key"}`, "jack-secret"), msgVerify},
		{"alg not a string", rawToken(`{"alg":["HS256"]}`, `{"key":"jack-key"}`, "jack-secret"), msgVerify},
		{"alg differs in case", rawToken(`{"alg":"hs256"}`, `{"key":"jack-key"}`, "jack-secret"), msgVerify},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			run(t, j, req{"/", hdr("Authorization", tt.token)}, "", tt.msg)
		})
	}
}

func noneToken(t *testing.T, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodNone, c).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTokenErrors(t *testing.T) {
	t.Parallel()
	j := build(t, `{}`)
	ok := jack(t, nil)
	tests := []struct {
		desc, token, msg string
	}{
		{"garbage", "abc", msgInvalid},
		{"two segments", "a.b", msgInvalid},
		{"four segments", ok + ".x", msgInvalid},
		{"header not base64", "!!." + strings.SplitN(ok, ".", 2)[1], msgInvalid},
		{"header not json", rawToken(`{`, `{"key":"jack-key"}`, "jack-secret"), msgInvalid},
		{"header not an object", rawToken(`"HS256"`, `{"key":"jack-key"}`, "jack-secret"), msgInvalid},
		{"payload not an object", rawToken(`{"alg":"HS256"}`, `[1]`, "jack-secret"), msgInvalid},
		{"payload null", rawToken(`{"alg":"HS256"}`, `null`, "jack-secret"), msgInvalid},
		{"signature not base64", strings.Join(strings.Split(ok, ".")[:2], ".") + ".a*b", msgInvalid},
		{"padded segments", padded(ok), ""},
		{"no key claim", jack(t, jwt.MapClaims{"key": nil, "sub": "jack"}), msgMissingKey},
		{"key claim false", rawToken(`{"alg":"HS256"}`, `{"key":false}`, "jack-secret"), msgMissingKey},
		{"key claim number", rawToken(`{"alg":"HS256"}`, `{"key":1}`, "jack-secret"), msgUnknownKey},
		{"key claim empty", rawToken(`{"alg":"HS256"}`, `{"key":""}`, "jack-secret"), msgUnknownKey},
		{"unknown key", jack(t, jwt.MapClaims{"key": "nobody"}), msgUnknownKey},
		{"wrong secret", sign(t, "HS256", jwt.MapClaims{"key": "jack-key"}, "other"), msgVerify},
		{"unresolved secret reference is not a secret", sign(t, "HS256", jwt.MapClaims{"key": "vault-key"}, "$secret://vault/1/jwt"), msgUnknownKey},
		{"unresolved key reference is not a key", sign(t, "HS256", jwt.MapClaims{"key": "$ENV://JWT_KEY"}, "x"), msgUnknownKey},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			user := ""
			if tt.msg == "" {
				user = "jack"
			}
			run(t, j, req{"/", hdr("Authorization", tt.token)}, user, tt.msg)
		})
	}
}

// padded adds base64 padding to each segment of a token, which nginx's
// decoder (and so APISIX) accepts.
func padded(tok string) string {
	parts := strings.Split(tok, ".")
	for i, p := range parts {
		parts[i] = p + strings.Repeat("=", (4-len(p)%4)%4)
	}
	return strings.Join(parts, ".")
}

func TestClaims(t *testing.T) {
	t.Parallel()
	n := now.Unix()
	tests := []struct {
		desc, cfg, user string
		claims          jwt.MapClaims
		ok              bool
	}{
		{desc: "no exp nor nbf", claims: jwt.MapClaims{}, ok: true},
		{desc: "exp in the future", claims: jwt.MapClaims{"exp": n + 1}, ok: true},
		{desc: "exp now is expired", claims: jwt.MapClaims{"exp": n}},
		{desc: "exp in the past", claims: jwt.MapClaims{"exp": n - 100}},
		{desc: "fractional exp", claims: jwt.MapClaims{"exp": float64(n) + 0.5}, ok: true},
		{desc: "exp as a string", claims: jwt.MapClaims{"exp": "99999999999"}},
		{desc: "exp null is absent", claims: jwt.MapClaims{"exp": nil}, ok: true},
		{desc: "nbf in the past", claims: jwt.MapClaims{"nbf": n - 1}, ok: true},
		{desc: "nbf now is not yet valid", claims: jwt.MapClaims{"nbf": n}},
		{desc: "nbf in the future", claims: jwt.MapClaims{"nbf": n + 100}},
		{desc: "nbf as a bool", claims: jwt.MapClaims{"nbf": true}},
		{desc: "grace covers expired", user: "grace", claims: jwt.MapClaims{"exp": n - 9}, ok: true},
		{desc: "grace ends", user: "grace", claims: jwt.MapClaims{"exp": n - 10}},
		{desc: "grace covers nbf", user: "grace", claims: jwt.MapClaims{"nbf": n + 9}, ok: true},
		{desc: "grace ends for nbf", user: "grace", claims: jwt.MapClaims{"nbf": n + 10}},
		{desc: "required exp missing", cfg: `{"claims_to_verify":["exp"]}`, claims: jwt.MapClaims{"nbf": n - 1}},
		{desc: "required exp present", cfg: `{"claims_to_verify":["exp"]}`, claims: jwt.MapClaims{"exp": n + 1}, ok: true},
		{desc: "only listed claims are checked", cfg: `{"claims_to_verify":["exp"]}`, claims: jwt.MapClaims{"exp": n + 1, "nbf": n + 100}, ok: true},
		{desc: "required nbf missing", cfg: `{"claims_to_verify":["nbf"]}`, claims: jwt.MapClaims{"exp": n + 1}},
		{desc: "empty list checks present claims", cfg: `{"claims_to_verify":[]}`, claims: jwt.MapClaims{"exp": n - 1}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			user, secret := "jack", "jack-secret"
			if tt.user == "grace" {
				user, secret = "grace", "g"
			}
			c := jwt.MapClaims{"key": user + "-key"}
			for k, v := range tt.claims {
				c[k] = v
			}
			tok := sign(t, "HS256", c, secret)
			msg := msgVerify
			if tt.ok {
				msg = ""
			}
			run(t, build(t, tt.cfg), req{"/", hdr("Authorization", tok)}, user, msg)
		})
	}
}

func TestKeyClaimName(t *testing.T) {
	t.Parallel()
	j := build(t, `{"key_claim_name":"iss"}`)
	tok := sign(t, "HS256", jwt.MapClaims{"iss": "jack-key", "key": "nobody"}, "jack-secret")
	run(t, j, req{"/", hdr("Authorization", tok)}, "jack", "")
	tok = jack(t, nil)
	run(t, j, req{"/", hdr("Authorization", tok)}, "", msgMissingKey)
}

func TestHideCredentials(t *testing.T) {
	t.Parallel()
	tok := jack(t, nil)
	tests := []struct {
		desc, cfg           string
		req                 req
		user, msg           string
		wantAuth, wantQuery string
		wantCookie          string
	}{
		{desc: "header", cfg: `{"hide_credentials":true}`, req: req{"/?jwt=x", hdr("Authorization", "Bearer "+tok, "Cookie", "jwt=y")}, user: "jack", wantQuery: "jwt=x", wantCookie: "jwt=y"},
		{desc: "query", cfg: `{"hide_credentials":true}`, req: req{"/?a=1&jwt=" + tok + "&b=%20", hdr("Cookie", "jwt=y")}, user: "jack", wantQuery: "a=1&b=%20", wantCookie: "jwt=y"},
		{desc: "cookie", cfg: `{"hide_credentials":true}`, req: req{"/?a=1", hdr("Cookie", "a=b/c; jwt="+tok+";c=%7B")}, user: "jack", wantQuery: "a=1", wantCookie: "a=b/c; c=%7B"},
		{desc: "only cookie", cfg: `{"hide_credentials":true}`, req: req{"/", hdr("Cookie", "jwt="+tok)}, user: "jack"},
		{desc: "kept by default", req: req{"/", hdr("Authorization", "Bearer "+tok)}, user: "jack", wantAuth: "Bearer " + tok},
		{desc: "hidden on the anonymous path", cfg: `{"hide_credentials":true,"anonymous_consumer":"hs384"}`, req: req{"/?jwt=bad", hdr("Cookie", "jwt=y")}, user: "hs384", wantCookie: "jwt=y"},
		{desc: "hidden when rejected", cfg: `{"hide_credentials":true}`, req: req{"/", hdr("Authorization", "bad")}, msg: msgInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			pr, _ := run(t, build(t, tt.cfg), tt.req, tt.user, tt.msg)
			if got := pr.Header("Authorization"); got != tt.wantAuth {
				t.Errorf("upstream Authorization = %q, want %q", got, tt.wantAuth)
			}
			if pr.Q != tt.wantQuery {
				t.Errorf("upstream query = %q, want %q", pr.Q, tt.wantQuery)
			}
			if got := pr.Header("Cookie"); got != tt.wantCookie {
				t.Errorf("upstream Cookie = %q, want %q", got, tt.wantCookie)
			}
		})
	}
}

func TestStoreInCtx(t *testing.T) {
	t.Parallel()
	tok := jack(t, jwt.MapClaims{"role": "admin"})
	_, res := run(t, build(t, `{"store_in_ctx":true}`), req{"/", hdr("Authorization", tok)}, "jack", "")
	v, ok := res.Ctx.Get(CtxPayload)
	p, _ := v.(map[string]any)
	if !ok || p["role"] != "admin" || p["key"] != "jack-key" {
		t.Errorf("ctx payload = %#v", v)
	}
	_, res = run(t, build(t, `{}`), req{"/", hdr("Authorization", tok)}, "jack", "")
	if _, ok := res.Ctx.Get(CtxPayload); ok {
		t.Error("payload stored without store_in_ctx")
	}
}

func TestAnonymous(t *testing.T) {
	t.Parallel()
	tok := jack(t, nil)
	run(t, build(t, `{"anonymous_consumer":"hs384"}`), req{"/", nil}, "hs384", "")
	run(t, build(t, `{"anonymous_consumer":"hs384"}`), req{"/", hdr("Authorization", "x.y.z")}, "hs384", "")
	run(t, build(t, `{"anonymous_consumer":"hs384"}`), req{"/", hdr("Authorization", tok)}, "jack", "")
	run(t, build(t, `{"anonymous_consumer":"ghost"}`), req{"/", nil}, "", msgAnonMiss)
}

func TestIdentityHeaders(t *testing.T) {
	t.Parallel()
	j := plugintest.NewWithConsumers(t, Name, `{}`, plugintest.Consumer{Username: "jack", Credential: `{"key":"jack-key","secret":"jack-secret"}`}).(*jwtAuth)
	j.byKey["jack-key"].consumer.CredentialID = "cred-1"
	j.byKey["jack-key"].consumer.Labels = map[string]string{"custom_id": "c-9"}
	pr := plugintest.NewRequest("GET", "/").
		WithHeader("Authorization", jack(t, nil)).
		WithHeader("X-Consumer-Username", "forged")
	if res := plugintest.Run(j, pr, nil); res.Exit != nil {
		t.Fatalf("exit = %s", res.Exit.Body)
	}
	for name, want := range map[string]string{"X-Consumer-Username": "jack", "X-Credential-Identifier": "cred-1", "X-Consumer-Custom-ID": "c-9"} {
		if got := pr.Header(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
}

// BenchmarkAccept measures the accept path of an HS256 token in a header.
func BenchmarkAccept(b *testing.B) {
	j := build(b, `{}`)
	tok := "Bearer " + jack(b, jwt.MapClaims{"exp": now.Unix() + 3600, "sub": "jack"})
	r := plugintest.NewRequest("GET", "/").WithHeader("Authorization", tok)
	c := &plugin.Ctx{}
	b.ReportAllocs()
	for b.Loop() {
		c.Reset(r)
		if e := j.Rewrite(c); e != nil {
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
