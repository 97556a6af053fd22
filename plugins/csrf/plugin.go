// Package csrf implements APISIX's csrf plugin: every response carries a
// signed token in a cookie, and a request with an unsafe method must send
// the same token in a header (the double-submit cookie pattern).
package csrf

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/sluicegw/sluice/plugin"
)

// Name and Priority are APISIX's (apisix/plugins/csrf.lua).
const (
	Name     = "csrf"
	Priority = 2980
)

func init() {
	plugin.Register(plugin.Descriptor{
		Name:      Name,
		Priority:  Priority,
		NewConfig: func() plugin.Config { return NewConfig() },
		New:       newCSRF,
	})
}

// APISIX's rejections: 401 {"error_msg": ...}.
var (
	exitNoHeader  = plugin.JSONExit(401, `{"error_msg":"no csrf token in headers"}`)
	exitNoCookie  = plugin.JSONExit(401, `{"error_msg":"no csrf cookie"}`)
	exitMismatch  = plugin.JSONExit(401, `{"error_msg":"csrf token mismatch"}`)
	exitSignature = plugin.JSONExit(401, `{"error_msg":"Failed to verify the csrf token signature"}`)
)

// csrf is one compiled csrf config; immutable.
type csrf struct {
	key     string
	expires int64
	name    string
	// cookieVar is "cookie_<name>", built once.
	cookieVar string
	// now is the clock; time.Now outside tests (plugin.Deps has no clock).
	now func() time.Time
}

func newCSRF(cfg plugin.Config, _ plugin.Deps) (any, error) {
	c := cfg.(*Config)
	return &csrf{key: c.Key, expires: c.Expires, name: c.Name, cookieVar: "cookie_" + c.Name, now: time.Now}, nil
}

// Access lets safe methods (GET, HEAD, OPTIONS) through and checks the token
// of the others.
func (p *csrf) Access(c *plugin.Ctx) *plugin.Exit {
	r := c.Request
	switch r.Method() {
	case "GET", "HEAD", "OPTIONS":
		return nil
	}
	h := r.Header(p.name)
	if h == "" {
		return exitNoHeader
	}
	ck, ok := p.cookie(r)
	if !ok {
		return exitNoCookie
	}
	if h != ck {
		return exitMismatch
	}
	if !p.verify(ck) {
		return exitSignature
	}
	return nil
}

// HeaderFilter gives every response a fresh token, as APISIX does.
func (p *csrf) HeaderFilter(c *plugin.Ctx) {
	now := p.now()
	c.Response.AddHeader("Set-Cookie", p.name+"="+p.token(now.Unix())+";path=/;SameSite=Lax;Expires="+
		cookieTime(now.Add(time.Duration(p.expires)*time.Second)))
}

// cookie returns the token cookie: from the engine's cookie_<name> variable,
// or by reading the Cookie header where the engine has no such variable.
func (p *csrf) cookie(r plugin.Request) (string, bool) {
	if v, ok := r.Var(p.cookieVar); ok {
		return v, true
	}
	return cookieValue(r.Header("Cookie"), p.name)
}

// cookieValue finds name in a Cookie header, like nginx's $cookie_name: the
// first pair with that name, separated by ';' or ','.
func cookieValue(h, name string) (string, bool) {
	for h != "" {
		var pair string
		i := strings.IndexAny(h, ";,")
		if i < 0 {
			pair, h = h, ""
		} else {
			pair, h = h[:i], h[i+1:]
		}
		k, v, _ := strings.Cut(strings.TrimLeft(pair, " \t"), "=")
		if k == name {
			return strings.TrimRight(v, " \t"), true
		}
	}
	return "", false
}

// The token, as APISIX writes it: base64(JSON{random, expires, sign}) where
// random is a number in [0, 1), expires the issue time in Unix seconds, and
// sign the hex SHA-256 of "{expires:<expires>,random:<random>,key:<key>}",
// numbers written as Lua's tostring does (%.14g). It is a keyed hash, not an
// HMAC: kept as is so tokens work across APISIX and sluice.

func (p *csrf) token(issued int64) string {
	random := luaNumber(rand.Float64())
	expires := strconv.FormatInt(issued, 10)
	var b bytes.Buffer
	b.Grow(128)
	b.WriteString(`{"random":`)
	b.WriteString(random)
	b.WriteString(`,"expires":`)
	b.WriteString(expires)
	b.WriteString(`,"sign":"`)
	b.WriteString(p.sign(random, expires))
	b.WriteString(`"}`)
	return base64.StdEncoding.EncodeToString(b.Bytes())
}

func (p *csrf) sign(random, expires string) string {
	sum := sha256.Sum256([]byte("{expires:" + expires + ",random:" + random + ",key:" + p.key + "}"))
	return hex.EncodeToString(sum[:])
}

// verify checks a token's signature and age.
func (p *csrf) verify(tok string) bool {
	raw, ok := decodeBase64(tok)
	if !ok {
		return false
	}
	var t map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if dec.Decode(&t) != nil {
		return false
	}
	random, ok := luaString(t["random"])
	if !ok {
		return false
	}
	expires, ok := luaString(t["expires"])
	if !ok {
		return false
	}
	issued, err := strconv.ParseFloat(expires, 64)
	if err != nil {
		return false // Lua would fail on the arithmetic: a 500 in APISIX
	}
	if p.expires > 0 && float64(p.now().Unix())-issued > float64(p.expires) {
		return false
	}
	sign, _ := t["sign"].(string)
	want := p.sign(random, expires)
	return subtle.ConstantTimeCompare([]byte(sign), []byte(want)) == 1
}

// luaString converts a decoded JSON value as Lua's `..` would: strings as
// they are, numbers with %.14g. Other types (and null) are not usable.
func luaString(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case json.Number:
		f, err := v.Float64()
		if err != nil {
			return "", false
		}
		return luaNumber(f), true
	}
	return "", false
}

// luaNumber formats f like LuaJIT's tostring and lua-cjson: "%.14g".
func luaNumber(f float64) string {
	return strconv.FormatFloat(f, 'g', 14, 64)
}

// decodeBase64 decodes like nginx's ngx.decode_base64: the standard
// alphabet, padding optional, anything from the first '=' on ignored.
func decodeBase64(s string) ([]byte, bool) {
	if i := strings.IndexByte(s, '='); i >= 0 {
		s = s[:i]
	}
	b, err := base64.RawStdEncoding.DecodeString(s)
	return b, err == nil
}

// cookieTime formats t like nginx's ngx.cookie_time: "Thu, 18-Nov-10
// 11:27:35 GMT", with a two-digit year up to 2037 (Netscape's limit).
func cookieTime(t time.Time) string {
	t = t.UTC()
	if t.Year() > 2037 {
		return t.Format("Mon, 02-Jan-2006 15:04:05 GMT")
	}
	return t.Format("Mon, 02-Jan-06 15:04:05 GMT")
}

// Interface guards.
var (
	_ plugin.Accessor       = (*csrf)(nil)
	_ plugin.HeaderFilterer = (*csrf)(nil)
	_ plugin.Config         = (*Config)(nil)
)
