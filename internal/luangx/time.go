package luangx

import (
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// OpenTime installs ngx's clock functions in the ngx table: time, now,
// today, localtime, utctime, http_time, cookie_time, parse_http_time and
// update_time. nginx caches the clock once per event-loop turn; sluice reads
// it on every call, so update_time has nothing to do.
func OpenTime(L *lua.LState, ngx *lua.LTable) {
	L.SetFuncs(ngx, map[string]lua.LGFunction{
		"time": func(L *lua.LState) int {
			L.Push(lua.LNumber(time.Now().Unix()))
			return 1
		},
		"now": func(L *lua.LState) int {
			// Millisecond precision, like nginx's cached time.
			L.Push(lua.LNumber(float64(time.Now().UnixMilli()) / 1000))
			return 1
		},
		"today": func(L *lua.LState) int {
			L.Push(lua.LString(time.Now().Format("2006-01-02")))
			return 1
		},
		"localtime": func(L *lua.LState) int {
			L.Push(lua.LString(time.Now().Format(time.DateTime)))
			return 1
		},
		"utctime": func(L *lua.LState) int {
			L.Push(lua.LString(time.Now().UTC().Format(time.DateTime)))
			return 1
		},
		"http_time": func(L *lua.LState) int {
			L.Push(lua.LString(httpTime(secondsArg(L))))
			return 1
		},
		"cookie_time": func(L *lua.LState) int {
			L.Push(lua.LString(cookieTime(secondsArg(L))))
			return 1
		},
		"parse_http_time": func(L *lua.LState) int {
			if t, ok := parseHTTPTime(L.CheckString(1)); ok {
				L.Push(lua.LNumber(t))
			} else {
				L.Push(lua.LNil)
			}
			return 1
		},
		"update_time": func(*lua.LState) int { return 0 },
	})
}

// secondsArg reads a time argument, truncated to whole seconds.
func secondsArg(L *lua.LState) int64 {
	n, ok := L.Get(1).(lua.LNumber)
	if !ok {
		L.RaiseError("number argument only")
	}
	return int64(n)
}

// httpTime formats like nginx's ngx_http_time: "Thu, 18 Nov 2010 11:27:35 GMT".
func httpTime(sec int64) string {
	return time.Unix(sec, 0).UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT")
}

// cookieTime formats like nginx's ngx_http_cookie_time: a two-digit year up
// to 2037 (old Netscape browsers read no more), four digits after.
func cookieTime(sec int64) string {
	t := time.Unix(sec, 0).UTC()
	if t.Year() > 2037 {
		return t.Format("Mon, 02-Jan-2006 15:04:05 GMT")
	}
	return t.Format("Mon, 02-Jan-06 15:04:05 GMT")
}

// parseHTTPTime parses the three date forms HTTP allows (RFC 1123, RFC 850
// and asctime) like nginx's ngx_parse_http_time, returning Unix seconds.
// Two-digit RFC 850 years below 70 are 20xx.
func parseHTTPTime(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	layouts := []string{
		"Mon, _2 Jan 2006 15:04:05 GMT",
		"Monday, _2-Jan-06 15:04:05 GMT",
		"Mon, _2-Jan-06 15:04:05 GMT",
		"Mon Jan _2 15:04:05 2006",
	}
	for _, layout := range layouts {
		t, err := time.Parse(layout, s)
		if err != nil {
			continue
		}
		if t.Year() == 1969 && strings.Contains(layout, "-06") {
			// Go reads "69" as 1969, nginx as 2069.
			t = t.AddDate(100, 0, 0)
		}
		return t.Unix(), true
	}
	return 0, false
}
