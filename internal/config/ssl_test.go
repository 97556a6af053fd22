package config

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

// testCert is a freshly generated self-signed certificate and its key, PEM-encoded.
type testCert struct {
	cert, key string
}

func newTestCert(t *testing.T, host string, ed bool) testCert {
	t.Helper()
	var (
		pub  crypto.PublicKey
		priv crypto.Signer
	)
	if ed {
		p, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		pub, priv = p, k
	} else {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		pub, priv = &k.PublicKey, k
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: host},
		DNSNames:              []string{host},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return testCert{
		cert: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		key:  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})),
	}
}

// ecKeySEC1 returns an EC key in the "EC PRIVATE KEY" form, preceded by an
// "EC PARAMETERS" block as `openssl ecparam -genkey` writes it.
func ecKeySEC1(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	params := pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{6, 8, 42, 134, 72, 206, 61, 3, 1, 7}})
	return string(params) + string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
}

func TestSSLValidate(t *testing.T) {
	t.Parallel()
	a := newTestCert(t, "a.example.com", false)
	b := newTestCert(t, "b.example.com", false)
	ed := newTestCert(t, "ed.example.com", true)
	garbageCert := strings.Repeat("not a certificate ", 10)
	garbageKey := strings.Repeat("not a key ", 10)
	badDER := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte(strings.Repeat("junk", 40))}))
	sec1 := ecKeySEC1(t)

	tests := []struct {
		desc string
		body map[string]any
		want []string
	}{
		{desc: "server with sni", body: map[string]any{"cert": a.cert, "key": a.key, "sni": "a.example.com"}},
		{desc: "server with wildcard snis", body: map[string]any{"cert": a.cert, "key": a.key, "snis": []string{"*.example.com", "example.com", "example.com"}}},
		{desc: "ed25519 pair", body: map[string]any{"cert": ed.cert, "key": ed.key, "sni": "ed.example.com"}},
		{desc: "client type needs no sni", body: map[string]any{"type": "client", "cert": a.cert, "key": a.key}},
		{
			desc: "everything set",
			body: map[string]any{
				"cert": a.cert, "key": a.key, "snis": []string{"a.example.com"},
				"certs": []string{b.cert, ed.cert}, "keys": []string{b.key, ed.key},
				"client": map[string]any{"ca": a.cert + b.cert, "depth": 0, "skip_mtls_uri_regex": []string{"^/health$", "^/metrics"}},
				"status": 0, "ssl_protocols": []string{"TLSv1.2", "TLSv1.3"}, "desc": "d", "labels": map[string]string{"env": "prod"},
				"create_time": 1700000000, "update_time": 1700000001,
			},
		},
		{
			desc: "secret references are not parsed",
			body: map[string]any{
				"sni": "a.com", "cert": "$secret://vault/1/cert", "key": "$env://TLS_KEY",
				"certs": []string{"$ENV://C2"}, "keys": []string{"$secret://vault/1/k2"},
				"client": map[string]any{"ca": "$secret://vault/1/ca"},
			},
		},
		{desc: "SEC 1 key after EC PARAMETERS", body: map[string]any{"cert": a.cert, "key": sec1, "sni": "a.com"}, want: []string{"key: does not match the certificate in cert"}},
		{
			desc: "server needs sni or snis", body: map[string]any{"cert": a.cert, "key": a.key},
			want: []string{"snis: is required for type server (or set sni)"},
		},
		{
			desc: "sni and snis together", body: map[string]any{"cert": a.cert, "key": a.key, "sni": "a.com", "snis": []string{"b.com"}},
			want: []string{"snis: must not be set together with sni"},
		},
		{
			desc: "bad names", body: map[string]any{"type": "client", "cert": a.cert, "key": a.key, "sni": "a b", "snis": []string{}},
			want: []string{
				`sni: must be a host name or address, optionally starting with "*" (e.g. "*.example.com")`,
				"snis: must have at least 1 item",
			},
		},
		{
			desc: "bad snis item", body: map[string]any{"cert": a.cert, "key": a.key, "snis": []string{"ok.com", "a/b"}},
			want: []string{`snis[1]: must be a host name or address, optionally starting with "*" (e.g. "*.example.com")`},
		},
		{desc: "cert and key required", body: map[string]any{"sni": "a.com"}, want: []string{"cert: is required", "key: is required"}},
		{
			desc: "garbage PEM", body: map[string]any{"sni": "a.com", "cert": garbageCert, "key": garbageKey},
			want: []string{
				"cert: must be a PEM certificate (-----BEGIN CERTIFICATE-----)",
				"key: must be an unencrypted PEM private key (PKCS #1, PKCS #8 or SEC 1)",
			},
		},
		{
			desc: "certificate block that does not parse", body: map[string]any{"sni": "a.com", "cert": badDER, "key": a.key},
			want: []string{"cert: certificate 1: x509: malformed certificate"},
		},
		{
			desc: "key in the cert field", body: map[string]any{"sni": "a.com", "cert": a.cert + a.key, "key": a.key},
			want: []string{`cert: must hold only CERTIFICATE PEM blocks, found a "PRIVATE KEY" block`},
		},
		{
			desc: "certificate in the key field", body: map[string]any{"sni": "a.com", "cert": a.cert, "key": a.cert},
			want: []string{"key: must be an unencrypted PEM private key (PKCS #1, PKCS #8 or SEC 1)"},
		},
		{desc: "mismatched key", body: map[string]any{"sni": "a.com", "cert": a.cert, "key": b.key}, want: []string{"key: does not match the certificate in cert"}},
		{desc: "key of another type", body: map[string]any{"sni": "a.com", "cert": ed.cert, "key": a.key}, want: []string{"key: does not match the certificate in cert"}},
		{
			desc: "too short", body: map[string]any{"sni": "a.com", "cert": "abc", "key": "k"},
			want: []string{"cert: must be between 128 and 65536 characters", "key: must be between 64 and 65536 characters"},
		},
		{
			desc: "extra pairs", body: map[string]any{"sni": "a.com", "cert": a.cert, "key": a.key, "certs": []string{b.cert, garbageCert}, "keys": []string{a.key}},
			want: []string{
				"keys[0]: does not match the certificate in certs[0]",
				"certs[1]: must be a PEM certificate (-----BEGIN CERTIFICATE-----)",
				"keys: must have as many items as certs (2), got 1",
			},
		},
		{
			desc: "client problems",
			body: map[string]any{"sni": "a.com", "cert": a.cert, "key": a.key, "client": map[string]any{"depth": -1, "skip_mtls_uri_regex": []string{"(", "^/a", "^/a"}}},
			want: []string{
				"client.ca: is required",
				"client.depth: must be >= 0",
				"client.skip_mtls_uri_regex[0]: must be a valid regular expression: error parsing regexp: missing closing ): `(`",
				`client.skip_mtls_uri_regex[2]: duplicate value "^/a"`,
			},
		},
		{
			desc: "client ca is not a certificate", body: map[string]any{"sni": "a.com", "cert": a.cert, "key": a.key, "client": map[string]any{"ca": garbageCert, "skip_mtls_uri_regex": []string{}}},
			want: []string{"client.ca: must be a PEM certificate (-----BEGIN CERTIFICATE-----)", "client.skip_mtls_uri_regex: must have at least 1 item"},
		},
		{
			desc: "enums", body: map[string]any{"sni": "a.com", "cert": a.cert, "key": a.key, "type": "peer", "status": 2, "ssl_protocols": []string{"TLSv1.2", "TLSv1.2", "SSLv3"}},
			want: []string{
				"type: must be one of server, client",
				"status: must be one of 0, 1",
				`ssl_protocols[1]: duplicate value "TLSv1.2"`,
				"ssl_protocols[2]: must be one of TLSv1.1, TLSv1.2, TLSv1.3",
			},
		},
		{
			desc: "fields APISIX dropped or never had", body: map[string]any{"sni": "a.com", "cert": a.cert, "key": a.key, "exptime": 1700000000, "client": map[string]any{"ca": a.cert, "x": 1}},
			want: []string{"client.x: unknown field", "exptime: unknown field"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			body, err := json.Marshal(tt.body)
			if err != nil {
				t.Fatal(err)
			}
			v, err := DecodeKind("ssls", "1", body)
			assertErrs(t, err, tt.want)
			if err != nil {
				// Keys are secrets: no message may quote one.
				for _, k := range []string{a.key, b.key, ed.key, sec1} {
					for _, line := range strings.Split(strings.TrimSpace(k), "\n")[1:3] {
						if strings.Contains(err.Error(), line) {
							t.Errorf("error quotes key material: %v", err)
						}
					}
				}
				return
			}
			s := v.(*SSL)
			if s.ID != "1" || s.Status == nil || (s.Type != "server" && s.Type != "client") {
				t.Errorf("defaults not applied: %+v", s)
			}
		})
	}
}

func TestSSLDefaults(t *testing.T) {
	t.Parallel()
	a := newTestCert(t, "a.com", false)
	body, _ := json.Marshal(map[string]any{"sni": "a.com", "cert": a.cert, "key": a.key, "client": map[string]any{"ca": a.cert}})
	v, err := DecodeKind("ssls", "s1", body)
	if err != nil {
		t.Fatal(err)
	}
	s := v.(*SSL)
	if s.Type != "server" || *s.Status != 1 || *s.Client.Depth != 1 {
		t.Errorf("defaults: type %q status %d depth %d", s.Type, *s.Status, *s.Client.Depth)
	}
	// An explicit depth 0 is kept.
	body, _ = json.Marshal(map[string]any{"sni": "a.com", "cert": a.cert, "key": a.key, "client": map[string]any{"ca": a.cert, "depth": 0}})
	v, err = DecodeKind("ssls", "s1", body)
	if err != nil {
		t.Fatal(err)
	}
	if d := *v.(*SSL).Client.Depth; d != 0 {
		t.Errorf("explicit depth 0 became %d", d)
	}
	// Validate gives the same answer before defaults.
	if err := (&SSL{Cert: a.cert, Key: a.key, SNI: "a.com"}).Validate(); err != nil {
		t.Errorf("SSL without defaults: %v", err)
	}
	if err := (&SSL{Cert: a.cert, Key: b64Corrupt(a.key), SNI: "a.com"}).Validate(); err == nil {
		t.Error("corrupted key accepted")
	}
}

// b64Corrupt flips a character in the middle of a PEM body.
func b64Corrupt(s string) string {
	lines := strings.Split(s, "\n")
	l := []byte(lines[1])
	if l[10] == 'A' {
		l[10] = 'B'
	} else {
		l[10] = 'A'
	}
	lines[1] = string(l)
	return strings.Join(lines, "\n")
}
