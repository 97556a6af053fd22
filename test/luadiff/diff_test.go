package luadiff

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// luaCase is one snippet (or two, in different phases of one request) and
// the request that exercises it.
type luaCase struct {
	name   string
	phases []snip
	req    request
	// dict, when set, is a key of ngx.shared.diff read after the response
	// (log-phase cases report through it).
	dict string
	// logs are markers the case writes with ngx.log: each must appear in
	// both proxies' error logs, at matching levels.
	logs []string
	// known, when set, is why sluice knowingly differs (documented in
	// docs/lua.md or docs/lua-ngx-libraries.md): the difference is
	// reported, not failed. A known case that stops differing fails, so
	// the list stays honest.
	known string
	// knownOn limits known to one sluice engine ("fast" or "std").
	knownOn string
}

// snip is Lua code run in one phase: rewrite, access, header_filter,
// body_filter, log, or content (a handler making the whole response; in
// sluice an access-phase function).
type snip struct{ phase, code string }

type request struct {
	method  string
	path    string // appended to /c/N/, may carry a query
	headers [][2]string
	body    string
}

// ignoredHeaders differ between any two servers and say nothing about Lua:
// identity, date, framing and connection management. Bodies are compared
// whole, so framing is covered.
var ignoredHeaders = map[string]bool{
	"Date": true, "Server": true, "Connection": true, "Keep-Alive": true,
	"Transfer-Encoding": true, "Content-Length": true,
}

// host is the Host every request carries, so both proxies see the same one.
const host = "diff.test"

var client = &http.Client{
	Timeout:       10 * time.Second,
	Transport:     &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 4},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// fetch sends c's request to p and renders what came back as text:
// status, headers (sorted, values joined), body, and the dict value and
// log lines the case asks for. p's own port is replaced by {port}.
func fetch(t *testing.T, p *proxy, idx int, c luaCase) string {
	t.Helper()
	method := c.req.method
	if method == "" {
		method = "GET"
	}
	var body io.Reader
	if c.req.body != "" {
		body = strings.NewReader(c.req.body)
	}
	req, err := http.NewRequest(method, fmt.Sprintf("%s/c/%d/%s", p.base, idx, c.req.path), body)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	req.Header.Set("User-Agent", "luadiff")
	for _, h := range c.req.headers {
		if strings.EqualFold(h[0], "Host") {
			req.Host = h[1]
			continue
		}
		// As written: raw-case names reach the server unchanged.
		req.Header[h[0]] = append(req.Header[h[0]], h[1])
	}
	resp, err := client.Do(req)
	if err != nil {
		return "request failed: " + err.Error()
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return "reading body failed: " + err.Error()
	}
	var out strings.Builder
	fmt.Fprintf(&out, "status %d\n", resp.StatusCode)
	names := make([]string, 0, len(resp.Header))
	for k := range resp.Header {
		if !ignoredHeaders[k] {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(&out, "%s: %s\n", k, strings.Join(resp.Header[k], " | "))
	}
	fmt.Fprintf(&out, "\n%s", b)
	if c.dict != "" {
		fmt.Fprintf(&out, "\n-- dict %s = %s", c.dict, readDict(t, p, c.dict))
	}
	for _, m := range c.logs {
		fmt.Fprintf(&out, "\n-- log %s", findLog(p, m))
	}
	return normalize(out.String(), p)
}

// normalize removes what differs by design: each proxy's own port, and the
// server name at the bottom of error pages (docs/lua.md: sluice's pages end
// with "sluice").
func normalize(s string, p *proxy) string {
	s = strings.ReplaceAll(s, p.port, "{port}")
	return strings.ReplaceAll(s, "<hr><center>"+p.name+"</center>", "<hr><center>{server}</center>")
}

// readDict waits for a log-phase write to show up: the log phase runs after
// the response, so the next request may come first.
func readDict(t *testing.T, p *proxy, key string) string {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		req, _ := http.NewRequest("GET", p.base+"/dict?k="+key, nil)
		req.Host = host
		resp, err := client.Do(req)
		if err != nil {
			return "dict read failed: " + err.Error()
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "nil" || time.Now().After(deadline) {
			return string(b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var (
	nginxLevelRe  = regexp.MustCompile(` \[(emerg|alert|crit|error|warn|notice|info|debug)\] `)
	sluiceLevelRe = regexp.MustCompile(`level=(ERROR|WARN|INFO|DEBUG)`)
)

// nginxLevels maps nginx's log levels to the slog levels sluice logs them
// at (docs/lua.md, ngx.log).
var nginxLevels = map[string]string{"emerg": "ERROR", "alert": "ERROR", "crit": "ERROR", "error": "ERROR",
	"warn": "WARN", "notice": "INFO", "info": "INFO", "debug": "DEBUG"}

// findLog returns the marker with the level of the log line holding it.
func findLog(p *proxy, marker string) string {
	deadline := time.Now().Add(2 * time.Second)
	for {
		for _, line := range strings.Split(p.logs(), "\n") {
			if !strings.Contains(line, marker) {
				continue
			}
			if p.name == "nginx" {
				if m := nginxLevelRe.FindStringSubmatch(line); m != nil {
					return marker + " at " + nginxLevels[m[1]]
				}
			} else if m := sluiceLevelRe.FindStringSubmatch(line); m != nil {
				return marker + " at " + m[1]
			}
			return marker + " at an unknown level: " + line
		}
		if time.Now().After(deadline) {
			return marker + " not logged"
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLuaDiff runs every case in nginx + lua-nginx-module and in sluice and
// compares the responses.
func TestLuaDiff(t *testing.T) {
	cases := allCases()
	up := startUpstream(t)
	ng := startNginx(t, cases, up)
	// Both engines: they implement plugin.Request (headers, variables,
	// bodies) separately.
	sluices := []*proxy{startSluice(t, cases, up, "fast"), startSluice(t, cases, up, "std")}
	type diff struct{ name, reason, nginx, sluice string }
	var knownDiffs []diff
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := fetch(t, ng, i, c)
			for _, sl := range sluices {
				b := fetch(t, sl, i, c)
				known := c.known
				if c.knownOn != "" && c.knownOn != sl.engine {
					known = ""
				}
				switch {
				case known == "" && a != b:
					t.Errorf("sluice (engine %s) differs from nginx\n--- nginx\n%s\n--- sluice\n%s", sl.engine, a, b)
				case known != "" && a == b:
					t.Errorf("marked as a known difference (%s) but sluice (engine %s) now matches nginx: remove the mark\n%s", known, sl.engine, a)
				case known != "":
					knownDiffs = append(knownDiffs, diff{c.name + " (engine " + sl.engine + ")", known, a, b})
				}
			}
		})
	}
	if len(knownDiffs) > 0 {
		var sb strings.Builder
		fmt.Fprintf(&sb, "%d of %d case runs differ knowingly:\n", len(knownDiffs), len(cases)*len(sluices))
		for _, d := range knownDiffs {
			fmt.Fprintf(&sb, "  %s: %s\n", d.name, d.reason)
		}
		t.Log(sb.String())
		if testing.Verbose() {
			for _, d := range knownDiffs {
				t.Logf("%s\n--- nginx\n%s\n--- sluice\n%s", d.name, d.nginx, d.sluice)
			}
		}
	}
	if t.Failed() {
		t.Logf("nginx error.log (tail):\n%s", tail(ng.logs(), 4000))
		for _, sl := range sluices {
			t.Logf("sluice (engine %s) log (tail):\n%s", sl.engine, tail(sl.logs(), 4000))
		}
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// issueAPIs is the ngx API issue #7 lists; every entry must be used by some
// case, so the suite cannot silently stop comparing one.
var issueAPIs = []string{
	"ngx.var.uri", "ngx.var.request_uri", "ngx.var.args", "ngx.var.arg_", "ngx.var.http_", "ngx.var.cookie_",
	"ngx.var.host", "ngx.var.remote_addr", "ngx.var.request_method", "ngx.var.scheme", "ngx.var.server_port",
	"ngx.var.upstream_addr", "ngx.var.status",
	"ngx.req.get_method", "ngx.req.get_uri_args", "ngx.req.set_uri_args", "ngx.req.get_headers",
	"ngx.req.set_header", "ngx.req.clear_header", "ngx.req.read_body", "ngx.req.get_body_data",
	"ngx.req.set_body_data", "ngx.req.set_uri", "ngx.req.get_post_args",
	"ngx.header", "ngx.status", "ngx.say", "ngx.print", "ngx.exit", "ngx.redirect", "ngx.log", "ngx.ctx",
	":get(", ":set(", ":add(", ":replace(", ":incr(", ":delete(", ":ttl(", ":expire(", ":flush_all(", ":get_keys(",
	"ngx.time", "ngx.now", "ngx.today", "ngx.http_time", "ngx.parse_http_time",
	"ngx.md5", "ngx.sha1_bin", "ngx.hmac_sha1", "ngx.encode_base64", "ngx.decode_base64",
	"ngx.escape_uri", "ngx.unescape_uri", "ngx.encode_args", "ngx.decode_args",
	"ngx.re.match", "ngx.re.find", "ngx.re.gmatch", "ngx.re.sub", "ngx.re.gsub",
	"ngx.HTTP_", "ngx.null", `require "cjson"`, `require "cjson.safe"`,
}

func TestCasesCoverIssueList(t *testing.T) {
	var all strings.Builder
	for _, c := range allCases() {
		for _, s := range c.phases {
			all.WriteString(s.code)
		}
	}
	for _, api := range issueAPIs {
		if !strings.Contains(all.String(), api) {
			t.Errorf("no case uses %s", api)
		}
	}
}
