package admin

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/runtime"
	"github.com/sluicegw/sluice/internal/store"
)

const (
	testAdminKey  = "admin-key-0123456789abcdef"
	testViewerKey = "viewer-key-0123456789abcdef"
	// t0 is the test clock's start, in unix seconds.
	t0 = 1700000000
)

// env is an Admin API served over real HTTP on 127.0.0.1, backed by the
// embedded store and validated by runtime.ValidateListing.
type env struct {
	t     *testing.T
	url   string
	st    *store.Embedded
	clock atomic.Int64
}

type envOption func(*Options, *store.Embedded)

// withStore replaces the store the API sees (a wrapper around the embedded one).
func withStore(f func(*store.Embedded) store.Store) envOption {
	return func(o *Options, e *store.Embedded) { o.Store = f(e) }
}

func withKeys(keys ...Key) envOption {
	return func(o *Options, _ *store.Embedded) { o.Keys = keys }
}

func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	st, err := store.OpenEmbedded(t.TempDir(), nil)
	if err != nil {
		t.Fatalf("OpenEmbedded: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	e := &env{t: t, st: st}
	e.clock.Store(t0)
	o := Options{
		Store:    st,
		Keys:     []Key{{Key: testAdminKey, Role: RoleAdmin}, {Key: testViewerKey, Role: RoleViewer}},
		Validate: runtime.ValidateListing,
		Now:      func() time.Time { return time.Unix(e.clock.Load(), 0) },
	}
	for _, opt := range opts {
		opt(&o, st)
	}
	srv := httptest.NewServer(New(o))
	t.Cleanup(srv.Close)
	e.url = srv.URL
	return e
}

// reply is one HTTP answer.
type reply struct {
	status int
	header http.Header
	body   string
}

// call sends a request with the admin key unless a header option says otherwise.
func (e *env) call(method, path, body string, hdr ...string) reply {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("X-API-KEY", testAdminKey)
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return reply{resp.StatusCode, resp.Header, string(b)}
}

// expect sends a request and checks the status and, when want is not "", the
// JSON body (compared as values, not text).
func (e *env) expect(method, path, body string, status int, want string) reply {
	e.t.Helper()
	r := e.call(method, path, body)
	if r.status != status {
		e.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, r.status, status, r.body)
	}
	if want != "" {
		jsonEqual(e.t, r.body, want)
	}
	return r
}

// item reads one stored item directly from the store.
func (e *env) item(kind store.Kind, id string) store.Item {
	e.t.Helper()
	it, err := e.st.Get(e.t.Context(), kind, id)
	if err != nil {
		e.t.Fatalf("store Get %s/%s: %v", kind, id, err)
	}
	return it
}

func jsonEqual(t *testing.T, got, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want is not JSON: %v: %s", err, want)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("body mismatch\n got: %s\nwant: %s", strings.TrimSpace(got), want)
	}
}

// field decodes a JSON body and returns the value at a dotted path.
func field(t *testing.T, body, path string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, body)
	}
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%s: %q is not an object in %s", path, k, body)
		}
		v = m[k]
	}
	return v
}

// selfSigned returns a PEM certificate and key for name.
func selfSigned(t *testing.T, name string) (certPEM, keyPEM string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
