package router

import (
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// refRoute is one (route, URI, host) combination for the reference matcher.
type refRoute struct {
	idx, seq      int
	hostClass     int // 0 exact host, 1 wildcard host, 2 no host
	hostLen       int // wildcard suffix length
	pathClass     int // 0 exact URI, 1 prefix or pattern
	keyLen        int
	priority, len int
	host          string
	key           string
	re            *regexp.Regexp // nil for exact URIs and plain prefixes
}

// better reports whether a takes precedence over b under the documented
// rules, written independently of the tree so that the two can be compared.
func (a *refRoute) better(b *refRoute) bool {
	ka := [...]int{a.hostClass, -a.hostLen, a.pathClass, -a.keyLen, -a.priority, -a.len, a.seq}
	kb := [...]int{b.hostClass, -b.hostLen, b.pathClass, -b.keyLen, -b.priority, -b.len, b.seq}
	for i := range ka {
		if ka[i] != kb[i] {
			return ka[i] < kb[i]
		}
	}
	return false
}

// refPattern builds the regular expression lua-resty-radixtree would use for
// a URI with parameters: ":name" segments become [^/]+, "*name" segments and
// a trailing "*" become .*, and the match must cover the whole path.
func refPattern(uri string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString(`^(?s)`)
	for i := 0; i < len(uri); i++ {
		atSeg := i == 0 || uri[i-1] == '/'
		switch {
		case uri[i] == ':' && atSeg, uri[i] == '*':
			end := i + 1
			for end < len(uri) && uri[end] != '/' {
				end++
			}
			if uri[i] == ':' {
				b.WriteString(`([^/]+)`)
			} else {
				b.WriteString(`(.*)`)
			}
			i = end - 1
		default:
			b.WriteString(regexp.QuoteMeta(uri[i : i+1]))
		}
	}
	b.WriteString(`$`)
	return regexp.MustCompile(b.String())
}

// refMatch is a brute-force matcher over all routes.
func refMatch(routes []Route[int], req *fakeReq) (int, bool) {
	var best *refRoute
	seq := 0
	for idx, rt := range routes {
		if len(rt.Methods) > 0 && !strings.Contains(strings.Join(rt.Methods, ","), req.method) {
			seq += len(rt.URIs) * max(1, len(rt.Hosts))
			continue
		}
		hosts := rt.Hosts
		if len(hosts) == 0 {
			hosts = []string{""}
		}
		for _, h := range hosts {
			h = strings.ToLower(h)
			for _, u := range rt.URIs {
				c := refRoute{idx: idx, seq: seq, priority: rt.Priority, len: len(u), host: h}
				seq++
				switch {
				case h == "":
					c.hostClass = 2
				case h[0] == '*':
					if !strings.HasSuffix(req.host, h[1:]) {
						continue
					}
					c.hostClass, c.hostLen = 1, len(h)-1
				case h != req.host:
					continue
				}
				star := strings.IndexByte(u, '*')
				colon := -1
				for i := range len(u) {
					if u[i] == ':' && (i == 0 || u[i-1] == '/') {
						colon = i
						break
					}
				}
				switch {
				case star < 0 && colon < 0:
					if u != req.path {
						continue
					}
				case colon < 0 && star == len(u)-1:
					c.pathClass, c.key = 1, u[:star]
					if !strings.HasPrefix(req.path, c.key) {
						continue
					}
				default:
					first := star
					if first < 0 || colon >= 0 && colon < first {
						first = colon
					}
					c.pathClass, c.key = 1, u[:first]
					if !strings.HasPrefix(req.path, c.key) || !refPattern(u).MatchString(req.path) {
						continue
					}
				}
				c.keyLen = len(c.key)
				if best == nil || c.better(best) {
					best = &c
				}
			}
		}
	}
	if best == nil {
		return 0, false
	}
	return best.idx, true
}

// parseSpec turns fuzz input into routes: one per line, "uri [host] [prio]
// [METHOD]".
func parseSpec(spec string) []Route[int] {
	var routes []Route[int]
	for i, line := range strings.Split(spec, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || len(routes) >= 32 {
			continue
		}
		rt := Route[int]{ID: strconv.Itoa(i), URIs: []string{f[0]}, Value: len(routes)}
		for _, x := range f[1:] {
			switch {
			case x == "GET" || x == "POST":
				rt.Methods = append(rt.Methods, x)
			case len(x) > 0 && (x[0] == '-' || x[0] >= '0' && x[0] <= '9'):
				rt.Priority, _ = strconv.Atoi(x)
			case strings.HasPrefix(x, "/") || strings.HasPrefix(x, "*/"):
				rt.URIs = append(rt.URIs, x)
			default:
				rt.Hosts = append(rt.Hosts, x)
			}
		}
		routes = append(routes, rt)
	}
	return routes
}

func FuzzRouter(f *testing.F) {
	f.Add("/a/b\n/a/*\n/a/:id 5\n/*", "x.com", "/a/b", true)
	f.Add("/users/:id\n/users/:id/*act\n/users/* 2", "", "/users/1/x", false)
	f.Add("/* *.example.com\n/x example.com\n/x", "a.example.com", "/x", true)
	f.Add("/repo/*p/blob/:sha\n/repo/:o/*", "", "/repo/a/b/blob/c", true)
	f.Add("/api* 1 GET\n/api/v1 POST\n/api/* -3", "h", "/api/v1", false)
	f.Add("/p/:a/x*\n/p/:a/:b", "", "/p/1/xyz", true)
	f.Fuzz(func(t *testing.T, spec, host, path string, post bool) {
		routes := parseSpec(spec)
		r, err := New(routes)
		if err != nil {
			return
		}
		req := &fakeReq{method: "GET", host: strings.ToLower(host), path: path, ip: netip.IPv4Unspecified()}
		if post {
			req.method = "POST"
		}
		got, ok := r.Match(req)
		// The reference uses Go regexps, which see invalid UTF-8 as U+FFFD,
		// so compare only ASCII inputs; others still must not panic.
		want, wantOK := got, ok
		if isASCII(spec) && isASCII(path) {
			want, wantOK = refMatch(routes, req)
		}
		if ok != wantOK || got != want {
			t.Fatalf("routes %q, request %s %q %q: router matched %d, %v; reference %d, %v",
				spec, req.method, req.host, req.path, got, ok, want, wantOK)
		}
		got2, params, ok2 := r.MatchParams(req, nil)
		if ok2 != ok || got2 != got {
			t.Fatalf("MatchParams disagrees with Match: %d, %v vs %d, %v", got2, ok2, got, ok)
		}
		for _, p := range params {
			if !strings.Contains(req.path, p.Value) {
				t.Fatalf("param %v is not part of the path %q", p, req.path)
			}
		}
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
