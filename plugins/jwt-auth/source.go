package jwtauth

import (
	"strings"

	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/authutil"
)

// fetchToken looks for the token in the header, then the query argument, then
// the cookie, as APISIX's fetch_jwt_token. The first source present wins even
// if its token turns out invalid. With hide_credentials, that source is
// removed from the request right away, so it does not reach the upstream on
// the anonymous-consumer path either. The state is the query argument's, or
// ArgOne for a header or cookie (possibly empty), or ArgAbsent when no source
// is present.
func (j *jwtAuth) fetchToken(r plugin.Request) (string, authutil.ArgState) {
	if j.header != "" {
		v := r.Header(j.header)
		present := v != ""
		if !present {
			// An empty header is present (and an invalid token) in APISIX.
			_, present = r.Var(j.headerVar)
		}
		if present {
			if j.hide {
				r.DelHeader(j.header)
			}
			if strings.HasPrefix(v, "Bearer ") || strings.HasPrefix(v, "bearer ") {
				v = v[len("Bearer "):]
			}
			return v, authutil.ArgOne
		}
	}
	if j.query != "" {
		q := r.RawQuery()
		if v, state := authutil.QueryArg(q, j.query); state != authutil.ArgAbsent {
			if j.hide {
				r.SetRawQuery(authutil.RemoveArg(q, j.query))
			}
			return v, state
		}
	}
	if j.cookie != "" {
		h := r.Header("Cookie")
		if v, ok := authutil.CookieValue(h, j.cookie); ok {
			if j.hide {
				if rest := authutil.RemoveCookie(h, j.cookie); rest != "" {
					r.SetHeader("Cookie", rest)
				} else {
					r.DelHeader("Cookie")
				}
			}
			return v, authutil.ArgOne
		}
	}
	return "", authutil.ArgAbsent
}
