package encryptedprotocol

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"

	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/plugintest"
)

var (
	routeKey    = bytes.Repeat([]byte{0x11}, 32)
	consumerKey = bytes.Repeat([]byte{0x22}, 32)
	otherKey    = bytes.Repeat([]byte{0x33}, 32)
)

func b64(k []byte) string { return base64.StdEncoding.EncodeToString(k) }

func routeCfg(extra string) string {
	return `{"key":"` + b64(routeKey) + `"` + extra + `}`
}

func seal(t testing.TB, key, pt []byte) []byte {
	t.Helper()
	a := aead(t, key)
	nonce := make([]byte, nonceSize)
	_, _ = rand.Read(nonce)
	return a.Seal(nonce, nonce, pt, nil)
}

func open(t testing.TB, key, msg []byte) []byte {
	t.Helper()
	if len(msg) < overhead {
		t.Fatalf("encrypted body too short: %d bytes", len(msg))
	}
	pt, err := aead(t, key).Open(nil, msg[:nonceSize], msg[nonceSize:], nil)
	if err != nil {
		t.Fatalf("decrypting the response: %v", err)
	}
	return pt
}

func aead(t testing.TB, key []byte) cipher.AEAD {
	t.Helper()
	b, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestRegistered(t *testing.T) {
	t.Parallel()
	d, ok := plugin.Lookup(Name)
	if !ok {
		t.Fatal("not registered")
	}
	// Below the auth plugins (2500-2530) and consumer-restriction (2400).
	if d.Priority != 2390 || d.Priority >= 2400 {
		t.Errorf("priority = %d, want 2390", d.Priority)
	}
	if d.NewConsumerConfig == nil {
		t.Error("consumers must be able to carry a key")
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c := NewConfig()
	if c.Key != "" || c.MaxBodyBytes != 1<<20 || c.ContentType != "application/octet-stream" || !c.EncryptResponse {
		t.Errorf("defaults = %+v", *c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct{ desc, cfg, err string }{
		{"empty object", `{}`, ""},
		{"all fields", routeCfg(`,"max_body_bytes":10,"content_type":"application/x-enc","encrypt_response":false`), ""},
		{"key not base64", `{"key":"@@@"}`, "plugins.encrypted-protocol: key: must be standard base64"},
		{"short key", `{"key":"` + b64(routeKey[:16]) + `"}`, "plugins.encrypted-protocol: key: must decode to 32 bytes, got 16"},
		{"key type", `{"key":5}`, "plugins.encrypted-protocol: key: must be a string, got number"},
		{"max zero", `{"max_body_bytes":0}`, "plugins.encrypted-protocol: max_body_bytes: must be between 1 and 1073741824"},
		{"max huge", `{"max_body_bytes":2000000000}`, "plugins.encrypted-protocol: max_body_bytes: must be between 1 and 1073741824"},
		{"bad content type", `{"content_type":""}`, "plugins.encrypted-protocol: content_type: must be a media type, e.g. application/octet-stream"},
		{"unknown field", `{"secret":"x"}`, "plugins.encrypted-protocol: secret: unknown field"},
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
	tests := []struct{ desc, cred, err string }{
		{"ok", `{"key":"` + b64(consumerKey) + `"}`, ""},
		{"missing", `{}`, "key: must not be empty"},
		{"short", `{"key":"` + b64(consumerKey[:31]) + `"}`, "key: must decode to 32 bytes, got 31"},
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

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	inst := plugintest.New(t, Name, routeCfg(""))
	plain := `{"user":"jack","amount":42}`
	req := plugintest.NewRequest("POST", "/pay").WithHeader("Accept-Encoding", "gzip")
	req.Body = seal(t, routeKey, []byte(plain))
	resp := &plugintest.Response{Code: 200, Headers: []plugin.Header{
		{Name: "Content-Type", Value: "application/json"}, {Name: "Content-Length", Value: "11"},
	}, Body: []byte(`{"ok":true}`)}
	res := plugintest.Run(inst, req, resp)
	if res.Exit != nil {
		t.Fatalf("exit %d %s", res.Exit.Status, res.Exit.Body)
	}
	if !req.BodySet || string(req.Body) != plain {
		t.Errorf("upstream body = %q (set %v), want %q", req.Body, req.BodySet, plain)
	}
	if req.Header("Accept-Encoding") != "" {
		t.Error("Accept-Encoding must not reach the upstream")
	}
	if got := resp.Header("Content-Type"); got != "application/octet-stream" {
		t.Errorf("Content-Type = %q", got)
	}
	if resp.Header("Content-Length") != "" {
		t.Error("Content-Length kept")
	}
	if got := open(t, routeKey, resp.Body); string(got) != `{"ok":true}` {
		t.Errorf("decrypted response = %q", got)
	}
}

func TestFreshNoncePerResponse(t *testing.T) {
	t.Parallel()
	inst := plugintest.New(t, Name, routeCfg(""))
	var seen [][]byte
	for range 2 {
		resp := &plugintest.Response{Code: 200, Body: []byte("same")}
		plugintest.Run(inst, plugintest.NewRequest("GET", "/"), resp)
		seen = append(seen, resp.Body)
	}
	if bytes.Equal(seen[0][:nonceSize], seen[1][:nonceSize]) || bytes.Equal(seen[0], seen[1]) {
		t.Error("two responses share a nonce")
	}
}

func TestRejections(t *testing.T) {
	t.Parallel()
	secret := "top secret plaintext"
	good := seal(t, routeKey, []byte(secret))
	tampered := append([]byte(nil), good...)
	tampered[len(tampered)-1] ^= 1
	flippedCT := append([]byte(nil), good...)
	flippedCT[nonceSize] ^= 0x80
	tests := []struct {
		desc   string
		body   []byte
		status int
		msg    string
	}{
		{"tampered tag", tampered, 400, msgBadBody},
		{"tampered ciphertext", flippedCT, 400, msgBadBody},
		{"wrong key", seal(t, otherKey, []byte(secret)), 400, msgBadBody},
		{"too short", good[:overhead-1], 400, msgBadBody},
		{"nonce and tag only", good[:overhead], 400, msgBadBody},
		{"plaintext sent", []byte(secret + " and some more bytes"), 400, msgBadBody},
		{"over max", bytes.Repeat([]byte{1}, 65), 413, msgTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			inst := plugintest.New(t, Name, routeCfg(`,"max_body_bytes":64`))
			req := plugintest.NewRequest("POST", "/")
			req.Body = tt.body
			res := plugintest.Run(inst, req, &plugintest.Response{Code: 200})
			if res.Exit == nil {
				t.Fatal("request passed")
			}
			want := `{"message":"` + tt.msg + `"}` + "\n"
			if res.Exit.Status != tt.status || string(res.Exit.Body) != want {
				t.Errorf("exit = %d %q, want %d %q", res.Exit.Status, res.Exit.Body, tt.status, want)
			}
			if strings.Contains(string(res.Exit.Body), "secret") || bytes.Contains(res.Exit.Body, []byte(b64(routeKey))) {
				t.Error("rejection leaks plaintext or key")
			}
			if req.BodySet {
				t.Error("body replaced on rejection")
			}
		})
	}
}

func TestEmptyBodyPasses(t *testing.T) {
	t.Parallel()
	inst := plugintest.New(t, Name, routeCfg(""))
	req := plugintest.NewRequest("GET", "/")
	resp := &plugintest.Response{Code: 200}
	res := plugintest.Run(inst, req, resp)
	if res.Exit != nil || req.BodySet {
		t.Fatalf("exit %v, body set %v", res.Exit, req.BodySet)
	}
	if len(resp.Body) != 0 {
		t.Errorf("empty response became %d bytes", len(resp.Body))
	}
}

func TestConsumerKey(t *testing.T) {
	t.Parallel()
	cons := plugintest.Consumer{Username: "jack", Credential: `{"key":"` + b64(consumerKey) + `"}`}
	tests := []struct {
		desc     string
		cfg      string
		user     string // "" = no consumer
		key      []byte
		status   int
		respWith []byte
	}{
		{"consumer key wins over route key", routeCfg(""), "jack", consumerKey, 0, consumerKey},
		{"route key is not accepted for a keyed consumer", routeCfg(""), "jack", routeKey, 400, nil},
		{"consumer without key uses route key", routeCfg(""), "rose", routeKey, 0, routeKey},
		{"anonymous uses route key", routeCfg(""), "", routeKey, 0, routeKey},
		{"consumer key without route key", `{}`, "jack", consumerKey, 0, consumerKey},
		{"no key at all", `{}`, "rose", routeKey, 403, nil},
		{"no consumer, no route key", `{}`, "", routeKey, 403, nil},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			inst := plugintest.NewWithConsumers(t, Name, tt.cfg, cons)
			req := plugintest.NewRequest("POST", "/")
			req.Body = seal(t, tt.key, []byte("hello"))
			c := &plugin.Ctx{}
			c.Reset(req)
			if tt.user != "" {
				c.Consumer = &plugin.Consumer{Username: tt.user}
			}
			p := inst.(*protocol)
			e := p.Access(c)
			if tt.status != 0 {
				if e == nil || e.Status != tt.status {
					t.Fatalf("exit = %v, want %d", e, tt.status)
				}
				return
			}
			if e != nil {
				t.Fatalf("exit %d %s", e.Status, e.Body)
			}
			if string(req.Body) != "hello" {
				t.Errorf("upstream body = %q", req.Body)
			}
			c.Response = &plugintest.Response{Code: 200}
			p.HeaderFilter(c)
			out := p.BodyFilter(c, []byte("world"), true)
			if got := open(t, tt.respWith, out); string(got) != "world" {
				t.Errorf("response = %q", got)
			}
		})
	}
}

// run drives the response phases by hand, chunk by chunk.
func run(t *testing.T, cfg string, resp *plugintest.Response, chunks ...string) (*plugin.Ctx, []byte, []int) {
	t.Helper()
	p := plugintest.New(t, Name, cfg).(*protocol)
	c := &plugin.Ctx{}
	c.Reset(plugintest.NewRequest("GET", "/"))
	if e := p.Access(c); e != nil {
		t.Fatalf("exit %d", e.Status)
	}
	c.Response = resp
	p.HeaderFilter(c)
	var out []byte
	var sizes []int
	for i, ch := range chunks {
		o := p.BodyFilter(c, []byte(ch), i == len(chunks)-1)
		sizes = append(sizes, len(o))
		out = append(out, o...)
	}
	return c, out, sizes
}

func TestResponseStreaming(t *testing.T) {
	t.Parallel()
	_, out, sizes := run(t, routeCfg(""), &plugintest.Response{Code: 200}, "ab", "cd", "", "ef", "")
	for _, n := range sizes[:len(sizes)-1] {
		if n != 0 {
			t.Fatalf("sent %v before eof", sizes)
		}
	}
	if got := open(t, routeKey, out); string(got) != "abcdef" {
		t.Errorf("response = %q", got)
	}
}

func TestResponseTooLarge(t *testing.T) {
	t.Parallel()
	t.Run("announced length", func(t *testing.T) {
		t.Parallel()
		resp := &plugintest.Response{Code: 200, Headers: []plugin.Header{{Name: "Content-Length", Value: "65"}}}
		_, out, _ := run(t, routeCfg(`,"max_body_bytes":64`), resp, strings.Repeat("x", 65))
		if resp.Code != 502 || resp.Header("Content-Type") != "application/json" {
			t.Errorf("status %d, type %q", resp.Code, resp.Header("Content-Type"))
		}
		if string(out) != `{"message":"`+msgRespTooLarge+`"}`+"\n" || bytes.Contains(out, []byte("x")) {
			t.Errorf("body = %q", out)
		}
	})
	t.Run("streamed", func(t *testing.T) {
		t.Parallel()
		resp := &plugintest.Response{Code: 200}
		c, out, _ := run(t, routeCfg(`,"max_body_bytes":64`), resp, strings.Repeat("x", 40), strings.Repeat("y", 40), "")
		if len(out) != 0 {
			t.Errorf("cut response sent %d bytes", len(out))
		}
		if !Truncated(c) {
			t.Error("Truncated = false")
		}
	})
	t.Run("exactly max", func(t *testing.T) {
		t.Parallel()
		_, out, _ := run(t, routeCfg(`,"max_body_bytes":64`), &plugintest.Response{Code: 200}, strings.Repeat("x", 32), strings.Repeat("y", 32), "")
		if got := open(t, routeKey, out); len(got) != 64 {
			t.Errorf("response = %d bytes", len(got))
		}
	})
}

func TestNoResponseEncryption(t *testing.T) {
	t.Parallel()
	inst := plugintest.New(t, Name, routeCfg(`,"encrypt_response":false`))
	req := plugintest.NewRequest("POST", "/").WithHeader("Accept-Encoding", "gzip")
	req.Body = seal(t, routeKey, []byte("in"))
	resp := &plugintest.Response{Code: 200, Headers: []plugin.Header{{Name: "Content-Type", Value: "text/plain"}}, Body: []byte("out")}
	res := plugintest.Run(inst, req, resp)
	if res.Exit != nil || string(req.Body) != "in" {
		t.Fatalf("exit %v, body %q", res.Exit, req.Body)
	}
	if string(resp.Body) != "out" || resp.Header("Content-Type") != "text/plain" || req.Header("Accept-Encoding") != "gzip" {
		t.Errorf("response changed: %q %q", resp.Body, resp.Header("Content-Type"))
	}
}

func TestBodilessStatus(t *testing.T) {
	t.Parallel()
	for _, code := range []int{204, 304} {
		resp := &plugintest.Response{Code: code}
		_, out, _ := run(t, routeCfg(""), resp, "")
		if len(out) != 0 || resp.Header("Content-Type") != "" {
			t.Errorf("%d: body %q, type %q", code, out, resp.Header("Content-Type"))
		}
	}
}

func TestCustomContentType(t *testing.T) {
	t.Parallel()
	resp := &plugintest.Response{Code: 200}
	run(t, routeCfg(`,"content_type":"application/x-sluice-enc"`), resp, "x")
	if got := resp.Header("Content-Type"); got != "application/x-sluice-enc" {
		t.Errorf("Content-Type = %q", got)
	}
}

func BenchmarkRoundTrip(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10} {
		b.Run(strconv.Itoa(size>>10)+"KiB", func(b *testing.B) {
			p := plugintest.New(b, Name, routeCfg("")).(*protocol)
			plain := bytes.Repeat([]byte("a"), size)
			msg := seal(b, routeKey, plain)
			req := plugintest.NewRequest("POST", "/")
			c := &plugin.Ctx{}
			resp := &plugintest.Response{Code: 200}
			b.SetBytes(int64(2 * size))
			b.ReportAllocs()
			for b.Loop() {
				req.Body, req.BodySet = msg, false
				c.Reset(req)
				if e := p.Access(c); e != nil {
					b.Fatal(e.Status)
				}
				c.Response = resp
				p.HeaderFilter(c)
				if out := p.BodyFilter(c, plain, true); len(out) != size+overhead {
					b.Fatal(len(out))
				}
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
