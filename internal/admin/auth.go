package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
)

// hashedKey keeps a key as its SHA-256 digest so every comparison is of equal
// length and constant time, whatever the lengths of the keys involved.
type hashedKey struct {
	sum  [sha256.Size]byte
	role Role
}

func hashKey(k Key) hashedKey {
	return hashedKey{sum: sha256.Sum256([]byte(k.Key)), role: k.Role}
}

// tokenOf returns the request's key in APISIX's order of precedence: the
// api_key query argument, then the X-API-KEY header, then the X-API-KEY cookie.
func tokenOf(r *http.Request) (string, bool) {
	if v := r.URL.Query()["api_key"]; len(v) > 0 {
		return v[0], true
	}
	if v := r.Header.Values("X-API-KEY"); len(v) > 0 {
		return v[0], true
	}
	if c, err := r.Cookie("X-API-KEY"); err == nil {
		return c.Value, true
	}
	return "", false
}

// authorize checks the request's key and role, and answers 401 with APISIX's
// body when they do not allow the request. A viewer may only GET (and HEAD,
// which is a GET without a body).
func (a *API) authorize(w http.ResponseWriter, r *http.Request) bool {
	tok, ok := tokenOf(r)
	if !ok {
		a.refuse(w, r, "missing apikey")
		return false
	}
	sum := sha256.Sum256([]byte(tok))
	found, role := false, RoleViewer
	// Compare against every key without stopping early, so the time taken
	// does not say which key (if any) matched.
	for _, k := range a.keys {
		if subtle.ConstantTimeCompare(sum[:], k.sum[:]) == 1 && !found {
			found, role = true, k.role
		}
	}
	if !found {
		a.refuse(w, r, "wrong apikey")
		return false
	}
	if role == RoleViewer && r.Method != http.MethodGet && r.Method != http.MethodHead {
		a.refuse(w, r, "invalid method for role viewer")
		return false
	}
	return true
}

func (a *API) refuse(w http.ResponseWriter, r *http.Request, why string) {
	a.log.Warn("admin api: refused request", "method", r.Method, "path", r.URL.Path,
		"remote", r.RemoteAddr, "reason", why)
	writeJSON(w, http.StatusUnauthorized, tokenError{Msg: "failed to check token", Description: why})
}

// tokenError is APISIX's 401 body.
type tokenError struct {
	Msg         string `json:"error_msg"`
	Description string `json:"description"`
}
