package authutil

import (
	"encoding/base64"
	"strings"
)

// DecodeBase64 decodes s like nginx's ngx_decode_base64 and
// ngx_decode_base64url, which APISIX decodes secrets, tokens and signatures
// with: padding is optional and decoding stops at the first '=', so padded
// and unpadded forms (and whatever follows the padding) decode alike. enc
// must be a raw (unpadded) encoding, e.g. base64.RawStdEncoding or
// base64.RawURLEncoding. It reports false for text nginx would refuse.
func DecodeBase64(s string, enc *base64.Encoding) ([]byte, bool) {
	if i := strings.IndexByte(s, '='); i >= 0 {
		s = s[:i]
	}
	// encoding/base64 skips CR and LF; nginx does not.
	if strings.ContainsAny(s, "\r\n") {
		return nil, false
	}
	b, err := enc.DecodeString(s)
	if err != nil {
		return nil, false
	}
	return b, true
}
