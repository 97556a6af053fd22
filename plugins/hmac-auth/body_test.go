package hmacauth

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/plugintest"
)

// digestOf is the Digest header of body, computed here as hmac-auth.md's
// Python example does, not from the plugin.
func digestOf(body string) string {
	sum := sha256.Sum256([]byte(body))
	return "SHA-256=" + base64.StdEncoding.EncodeToString(sum[:])
}

// countingRequest records ReadBody calls and can make them fail.
type countingRequest struct {
	*plugintest.Request
	reads int
	err   error
}

func (r *countingRequest) ReadBody(max int64) ([]byte, error) {
	r.reads++
	if r.err != nil {
		return nil, r.err
	}
	return r.Request.ReadBody(max)
}

// TestDigestAPISIXExample replays the request of APISIX's documentation
// ("Validate Request Body"). Its digest is APISIX's; its printed signature
// does not match its own signing string, so the signature is computed.
func TestDigestAPISIXExample(t *testing.T) {
	t.Parallel()
	h := build(t, `{"validate_request_body":true}`)
	h.now = func() time.Time { return time.Date(2024, 9, 6, 9, 16, 16, 0, time.UTC) }
	const (
		date   = "Fri, 06 Sep 2024 09:16:16 GMT"
		digest = "SHA-256=78qzJuLwSpZ8HacsTdFCQJWxzPMOf8bYctRk2ySLpS8="
		body   = `{"name": "world"}`
	)
	if got := digestOf(body); got != digest {
		t.Fatalf("digestOf = %q, want APISIX's %q", got, digest)
	}
	auth := authorization("john-key", "hmac-sha256", "@request-target date",
		signature("hmac-sha256", "john-secret-key", "john-key\nPOST /post\ndate: "+date+"\n"))
	accept(t, h, newReq("POST", "/post", "Date", date, "Digest", digest, "Authorization", auth).WithBody(body), "john")
	reject(t, h, newReq("POST", "/post", "Date", date, "Digest", digest, "Authorization", auth).WithBody(`{"name": "admin"}`), msgInvalid, reasonDigest)
	reject(t, h, newReq("POST", "/post", "Date", date, "Authorization", auth).WithBody(body), msgInvalid, reasonDigest)
}

func TestDigest(t *testing.T) {
	t.Parallel()
	const body = `{"name": "world"}`
	h := build(t, `{"validate_request_body":true}`)
	signed := func(kv ...string) *plugintest.Request {
		return newReq("GET", "/get", append([]string{"Date", gmt, "Authorization", john("hmac-sha256")}, kv...)...)
	}
	sum := sha256.Sum256([]byte(body))
	tests := []struct {
		desc string
		r    *plugintest.Request
		ok   bool
	}{
		{"matching digest", signed("Digest", digestOf(body)).WithBody(body), true},
		{"no body hashes as empty", signed("Digest", digestOf("")), true},
		{"empty body", signed("Digest", digestOf("")).WithBody(""), true},
		{"missing digest", signed().WithBody(body), false},
		{"missing digest without body", signed(), false},
		{"empty digest", signed("Digest", "").WithBody(""), false},
		{"other body", signed("Digest", digestOf(body)).WithBody(body + " "), false},
		{"digest of nothing for a body", signed("Digest", digestOf("")).WithBody(body), false},
		{"algorithm name is case-sensitive", signed("Digest", "sha-256="+base64.StdEncoding.EncodeToString(sum[:])).WithBody(body), false},
		{"other algorithm", signed("Digest", "SHA-512="+base64.StdEncoding.EncodeToString(sum[:])).WithBody(body), false},
		{"unpadded base64", signed("Digest", strings.TrimRight(digestOf(body), "=")).WithBody(body), false},
		{"hex digest", signed("Digest", "SHA-256="+hex.EncodeToString(sum[:])).WithBody(body), false},
		{"space after '='", signed("Digest", "SHA-256= "+base64.StdEncoding.EncodeToString(sum[:])).WithBody(body), false},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			if tt.ok {
				accept(t, h, tt.r, "john")
			} else {
				reject(t, h, tt.r, msgInvalid, reasonDigest)
			}
		})
	}
}

// TestDigestOrder checks the body is the last thing checked, and only read
// for a correctly signed request that carries a Digest.
func TestDigestOrder(t *testing.T) {
	t.Parallel()
	h := build(t, `{"validate_request_body":true,"max_req_body_size":4}`)
	big := strings.Repeat("x", 100)
	wrongSecret := authorization("john-key", "hmac-sha256", "@request-target date",
		signature("hmac-sha256", "other", "john-key\nGET /get\ndate: "+gmt+"\n"))
	tests := []struct {
		desc   string
		r      *plugintest.Request
		reason string
		reads  int
	}{
		{"bad signature", newReq("GET", "/get", "Date", gmt, "Digest", digestOf(big), "Authorization", wrongSecret).WithBody(big), reasonSignature, 0},
		{"unknown key id", newReq("GET", "/get", "Date", gmt, "Digest", digestOf(big), "Authorization", strings.Replace(john("hmac-sha256"), "john-key", "x", 1)).WithBody(big), reasonKeyID, 0},
		{"stale date", newReq("GET", "/get", "Date", now.Add(-time.Hour).Format(http.TimeFormat), "Digest", digestOf(big), "Authorization", john("hmac-sha256")).WithBody(big), reasonSkew, 0},
		{"missing digest", newReq("GET", "/get", "Date", gmt, "Authorization", john("hmac-sha256")).WithBody(big), reasonDigest, 0},
		{"good request", newReq("GET", "/get", "Date", gmt, "Digest", digestOf("abcd"), "Authorization", john("hmac-sha256")).WithBody("abcd"), "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			r := &countingRequest{Request: tt.r}
			_, _, reason := h.authenticate(r)
			if reason != tt.reason || r.reads != tt.reads {
				t.Errorf("reason %q after %d reads, want %q after %d", reason, r.reads, tt.reason, tt.reads)
			}
		})
	}
	// Without validate_request_body, the body is never read.
	r := &countingRequest{Request: newReq("GET", "/get", "Date", gmt, "Authorization", john("hmac-sha256")).WithBody(big)}
	if cons, _, reason := build(t, `{}`).authenticate(r); cons == nil || r.reads != 0 {
		t.Errorf("without validate_request_body: consumer %v (%s), %d reads", cons, reason, r.reads)
	}
}

func TestDigestBodyTooLarge(t *testing.T) {
	t.Parallel()
	const body = `{"name": "this body is well over ten bytes"}` // 44 bytes
	signed := func(kv ...string) *plugintest.Request {
		return newReq("GET", "/get", append([]string{"Date", gmt, "Authorization", john("hmac-sha256"), "Digest", digestOf(body)}, kv...)...).WithBody(body)
	}
	tests := []struct {
		desc, cfg string
		r         *plugintest.Request
		msg       string
	}{
		{"with content-length", `{"validate_request_body":true,"max_req_body_size":10}`, signed("Content-Length", "44"), "request size 44 is greater than the maximum size 10 allowed"},
		{"chunked", `{"validate_request_body":true,"max_req_body_size":10}`, signed(), "request size is greater than the maximum size 10 allowed"},
		{"one byte over", `{"validate_request_body":true,"max_req_body_size":43}`, signed("Content-Length", "44"), "request size 44 is greater than the maximum size 43 allowed"},
		{"before the anonymous consumer", `{"validate_request_body":true,"max_req_body_size":10,"anonymous_consumer":"anon","hide_credentials":true}`, signed("Content-Length", "44"), "request size 44 is greater than the maximum size 10 allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			h := build(t, tt.cfg)
			res := plugintest.Run(h, tt.r, nil)
			want := `{"message":"` + tt.msg + `"}` + "\n"
			if res.Exit == nil || res.Exit.Status != 413 || string(res.Exit.Body) != want {
				t.Fatalf("exit = %+v, want 413 %s", res.Exit, want)
			}
			if got := header(res.Exit.Headers, "WWW-Authenticate"); got != "" {
				t.Errorf("WWW-Authenticate = %q on a 413", got)
			}
			if res.Ctx.Consumer != nil {
				t.Errorf("consumer = %v, want none", res.Ctx.Consumer)
			}
			if _, _, reason := h.authenticate(tt.r); reason != "failed to read request body: "+tt.msg {
				t.Errorf("reason = %q", reason)
			}
		})
	}
	// A body of exactly max_req_body_size is read and checked.
	accept(t, build(t, `{"validate_request_body":true,"max_req_body_size":44}`), signed("Content-Length", "44"), "john")
}

func TestDigestAnonymous(t *testing.T) {
	t.Parallel()
	h := build(t, `{"validate_request_body":true,"anonymous_consumer":"anon"}`)
	r := newReq("GET", "/get", "Date", gmt, "Authorization", john("hmac-sha256"), "Digest", digestOf("other")).WithBody("body")
	accept(t, h, r, "anon")
	r = newReq("GET", "/get", "Date", gmt, "Authorization", john("hmac-sha256"), "Digest", digestOf("body")).WithBody("body")
	accept(t, h, r, "john")
}

func TestDigestReadError(t *testing.T) {
	t.Parallel()
	h := build(t, `{"validate_request_body":true,"anonymous_consumer":"anon"}`)
	r := &countingRequest{
		Request: newReq("GET", "/get", "Date", gmt, "Authorization", john("hmac-sha256"), "Digest", digestOf("body")),
		err:     errors.New("client went away"),
	}
	c := &plugin.Ctx{}
	c.Reset(r)
	e := h.Rewrite(c)
	if e == nil || e.Status != 400 || string(e.Body) != body(msgReadFailed) {
		t.Fatalf("exit = %+v, want 400 %q", e, msgReadFailed)
	}
	if c.Consumer != nil {
		t.Errorf("consumer = %v, want none", c.Consumer)
	}
	if _, _, reason := h.authenticate(r); reason != "failed to read request body: client went away" {
		t.Errorf("reason = %q", reason)
	}
}

// TestDigestSigned checks a client can bind the body into the signature by
// signing the Digest header, and a route can require it.
func TestDigestSigned(t *testing.T) {
	t.Parallel()
	h := build(t, `{"validate_request_body":true,"signed_headers":["date","digest"]}`)
	const body = "amount=10"
	signed := func(digest string) string {
		ss := "john-key\nPOST /pay\ndate: " + gmt + "\ndigest: " + digest + "\n"
		return authorization("john-key", "hmac-sha256", "@request-target date digest", signature("hmac-sha256", "john-secret-key", ss))
	}
	auth := signed(digestOf(body))
	accept(t, h, newReq("POST", "/pay", "Date", gmt, "Digest", digestOf(body), "Authorization", auth).WithBody(body), "john")
	// Another body with its own digest no longer matches the signature.
	reject(t, h, newReq("POST", "/pay", "Date", gmt, "Digest", digestOf("amount=1000"), "Authorization", auth).WithBody("amount=1000"), msgInvalid, reasonSignature)
	// Leaving the digest out of the signature is refused by signed_headers.
	unsigned := authorization("john-key", "hmac-sha256", "@request-target date",
		signature("hmac-sha256", "john-secret-key", "john-key\nPOST /pay\ndate: "+gmt+"\n"))
	reject(t, h, newReq("POST", "/pay", "Date", gmt, "Digest", digestOf(body), "Authorization", unsigned).WithBody(body), msgInvalid, `expected header "digest" missing in signing`)
}
