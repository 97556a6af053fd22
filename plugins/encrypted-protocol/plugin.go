// Package encryptedprotocol implements sluice's encrypted-protocol plugin:
// clients send request bodies encrypted with AES-256-GCM and receive response
// bodies encrypted the same way, so the service behind the gateway speaks
// plain HTTP. It is the classic OpenResty "encrypted protocol" gateway
// example; APISIX has no such plugin.
//
// Wire format, both directions: a 12-byte random nonce followed by the GCM
// ciphertext and its 16-byte tag, with no additional authenticated data. An
// empty body stays empty.
package encryptedprotocol

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"

	"github.com/sluicegw/sluice/plugin"
)

// Name and Priority of the plugin. The priority is below the auth plugins
// (key-auth 2500 ... 2530) and consumer-restriction (2400), so the consumer
// is known, and rejected clients are turned away, before any body is read or
// decrypted; and above the plugins that look at the body (request-validation
// runs at 2800 and so sees ciphertext: put validation behind this plugin in
// the upstream, or not on the same route).
const (
	Name     = "encrypted-protocol"
	Priority = 2390
)

func init() {
	plugin.Register(plugin.Descriptor{
		Name:              Name,
		Priority:          Priority,
		NewConfig:         func() plugin.Config { return NewConfig() },
		NewConsumerConfig: func() plugin.Config { return NewConsumerConfig() },
		New:               newProtocol,
	})
}

// Sizes of the wire format.
const (
	nonceSize = 12
	tagSize   = 16
	overhead  = nonceSize + tagSize
)

// Fixed rejection messages. They never carry anything from the request or
// the key: a client learns only that decryption failed, not why.
const (
	msgBadBody      = "invalid encrypted request body"
	msgReadFailed   = "failed to read request body"
	msgTooLarge     = "request body too large"
	msgNoKey        = "no encryption key for this client"
	msgRespTooLarge = "response body too large to encrypt"
)

// stateKey holds a request's *respState in the Ctx.
const stateKey = "encrypted-protocol"

// protocol is one compiled encrypted-protocol config. It is immutable and
// shared by every request of the route; cipher.AEAD values from crypto/cipher
// are safe for concurrent use.
type protocol struct {
	route      cipher.AEAD            // nil when the route has no key
	byConsumer map[string]cipher.AEAD // consumer username -> its key
	max        int64
	ctype      string
	encrypt    bool

	badBody, readFailed, tooLarge, noKey *plugin.Exit
	respTooLarge                         []byte
}

func newProtocol(cfg plugin.Config, deps plugin.Deps) (any, error) {
	c := cfg.(*Config)
	p := &protocol{
		byConsumer: make(map[string]cipher.AEAD, len(deps.Consumers)),
		max:        c.MaxBodyBytes,
		ctype:      c.ContentType,
		encrypt:    c.EncryptResponse,
		badBody:    plugin.MessageExit(400, msgBadBody),
		readFailed: plugin.MessageExit(400, msgReadFailed),
		tooLarge:   plugin.MessageExit(413, msgTooLarge),
		noKey:      plugin.MessageExit(403, msgNoKey),
	}
	p.respTooLarge = plugin.MessageExit(502, msgRespTooLarge).Body
	if c.Key != "" {
		a, err := newAEAD(c.Key)
		if err != nil {
			return nil, fmt.Errorf("key: %w", err)
		}
		p.route = a
	}
	for _, cc := range deps.Consumers {
		a, err := newAEAD(cc.Config.(*ConsumerConfig).Key)
		if err != nil {
			return nil, fmt.Errorf("consumer %q: key: %w", cc.Consumer.Username, err)
		}
		p.byConsumer[cc.Consumer.Username] = a
	}
	return p, nil
}

func newAEAD(b64 string) (cipher.AEAD, error) {
	key, err := decodeKey(b64)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("aes: %w", err)
	}
	a, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("gcm: %w", err)
	}
	return a, nil
}

// keyFor picks the authenticated consumer's key when it has one, else the
// route's; nil when there is neither.
func (p *protocol) keyFor(c *plugin.Ctx) cipher.AEAD {
	if c.Consumer != nil {
		if a, ok := p.byConsumer[c.Consumer.Username]; ok {
			return a
		}
	}
	return p.route
}

// respState is one request's response encryption state.
type respState struct {
	aead cipher.AEAD
	// buf is nonce space followed by the plaintext received so far.
	buf []byte
	// skip: the response has no body to encrypt (1xx, 204, 304).
	skip bool
	// tooLarge: the upstream announced a body over the cap; it is replaced
	// by a fixed 502 answer. cut: the body grew over the cap while
	// streaming, after the status was sent; it is dropped.
	tooLarge, cut bool
}

// Access decrypts the request body and hands the plaintext to the upstream.
func (p *protocol) Access(c *plugin.Ctx) *plugin.Exit {
	aead := p.keyFor(c)
	if aead == nil {
		return p.noKey
	}
	r := c.Request
	body, err := r.ReadBody(p.max)
	switch {
	case errors.Is(err, plugin.ErrBodyTooLarge):
		return p.tooLarge
	case err != nil:
		return p.readFailed
	}
	if len(body) > 0 {
		if len(body) < overhead {
			return p.badBody
		}
		pt, err := aead.Open(nil, body[:nonceSize], body[nonceSize:], nil)
		if err != nil {
			// Wrong key and tampered data look the same to GCM, and to
			// the client.
			return p.badBody
		}
		r.SetBody(pt)
	}
	if p.encrypt {
		// The upstream must answer in identity encoding: the client
		// decrypts the exact bytes the upstream sent.
		r.DelHeader("Accept-Encoding")
		c.Set(stateKey, &respState{aead: aead})
	}
	return nil
}

func state(c *plugin.Ctx) *respState {
	v, ok := c.Get(stateKey)
	if !ok {
		return nil
	}
	st, _ := v.(*respState)
	return st
}

// HeaderFilter marks the response as encrypted. A response announced over
// the cap becomes a 502 while the status can still change.
func (p *protocol) HeaderFilter(c *plugin.Ctx) {
	st := state(c)
	if st == nil {
		return
	}
	rs := c.Response
	if s := rs.Status(); s < 200 || s == 204 || s == 304 {
		st.skip = true
		return
	}
	n := int64(-1)
	if v := rs.Header("Content-Length"); v != "" {
		if cl, err := strconv.ParseInt(v, 10, 64); err == nil && cl >= 0 {
			n = cl
		}
	}
	rs.DelHeader("Content-Length")
	if n > p.max {
		st.tooLarge = true
		rs.SetStatus(502)
		rs.DelHeader("Content-Encoding")
		rs.SetHeader("Content-Type", "application/json")
		return
	}
	if n >= 0 {
		st.buf = make([]byte, nonceSize, nonceSize+int(n)+tagSize)
	}
	rs.SetHeader("Content-Type", p.ctype)
}

// BodyFilter buffers the plaintext response, up to max_body_bytes, and sends
// it encrypted at the end. Nothing is sent before the end.
func (p *protocol) BodyFilter(c *plugin.Ctx, chunk []byte, eof bool) []byte {
	st := state(c)
	if st == nil || st.skip {
		return chunk
	}
	if st.tooLarge {
		if eof {
			return p.respTooLarge
		}
		return nil
	}
	if !st.cut && len(chunk) > 0 {
		if st.buf == nil {
			st.buf = make([]byte, nonceSize, nonceSize+len(chunk)+tagSize)
		}
		if int64(len(st.buf)-nonceSize+len(chunk)) > p.max {
			// The status is already on its way: the body is dropped, and
			// the client gets an empty body it must treat as a failure
			// (see the docs); nothing partial is ever sent.
			st.cut, st.buf = true, nil
		} else {
			st.buf = append(st.buf, chunk...)
		}
	}
	if !eof || st.cut || len(st.buf) <= nonceSize {
		return nil
	}
	buf := st.buf
	st.buf = nil
	_, _ = rand.Read(buf[:nonceSize]) // never fails (crypto/rand docs)
	// Seal in place: the ciphertext exactly overwrites the plaintext.
	return st.aead.Seal(buf[:nonceSize], buf[:nonceSize], buf[nonceSize:], nil)
}

// Truncated reports whether the response of the request in c was dropped
// because it grew over max_body_bytes while streaming; for log plugins.
func Truncated(c *plugin.Ctx) bool {
	st := state(c)
	return st != nil && st.cut
}

// Interface guards.
var (
	_ plugin.Accessor       = (*protocol)(nil)
	_ plugin.HeaderFilterer = (*protocol)(nil)
	_ plugin.BodyFilterer   = (*protocol)(nil)
	_ plugin.Config         = (*Config)(nil)
	_ plugin.Config         = (*ConsumerConfig)(nil)
)
