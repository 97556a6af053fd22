package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestTrafficSplit drives traffic-split on both engines against three real
// upstreams that answer with their names: a header sends a request to the
// canary (blue-green), weights 3:1 split 400 requests exactly 300/100, no
// match keeps the route's upstream; a change through the Admin API swaps in
// an inline upstream with health checks without a restart, and its dead
// node gets nothing; upstreams the plugin references cannot be deleted, and
// bad references are refused with their field paths.
func TestTrafficSplit(t *testing.T) {
	for _, engine := range featEngines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			testTrafficSplit(t, engine)
		})
	}
}

// tsRoute is route r1: the route's upstream is "stable"; a release: canary
// header goes to upstream "canary"; ?split=1 splits by rule2's weighted
// upstreams.
func tsRoute(rule2 string) string {
	return `{"uri":"/ts","upstream_id":"stable","plugins":{"traffic-split":{"rules":[
		{"match":[{"vars":[["http_release","==","canary"]]}],"weighted_upstreams":[{"upstream_id":"canary"}]},
		{"match":[{"vars":[["arg_split","==","1"]]}],"weighted_upstreams":` + rule2 + `}]}}}`
}

func testTrafficSplit(t *testing.T, engine string) {
	stable, canary, inline := echoUpstream(t, "stable"), echoUpstream(t, "canary"), echoUpstream(t, "inline")
	g := StartGateway(t, GatewayOptions{Store: "embedded", Engine: engine})
	mustAdmin(t, g, "PUT", "/apisix/admin/upstreams/stable", fmt.Sprintf(`{"nodes":{%q:1}}`, stable))
	mustAdmin(t, g, "PUT", "/apisix/admin/upstreams/canary", fmt.Sprintf(`{"nodes":{%q:1}}`, canary))
	mustAdmin(t, g, "PUT", "/apisix/admin/routes/r1", tsRoute(`[{"upstream_id":"canary","weight":3},{"weight":1}]`))
	url := g.URL + "/ts"
	waitServed(t, url, 200, 5*time.Second)

	c := &http.Client{Timeout: 5 * time.Second}
	// tally sends n requests and counts the answers by upstream name; any
	// other status fails the test.
	tally := func(url string, n int, hdr ...string) map[string]int {
		t.Helper()
		got := make(map[string]int)
		for range n {
			r := featDo(t, c, "GET", url, "", hdr...)
			if r.Status != 200 {
				t.Fatalf("GET %s: %d %q", url, r.Status, r.Body)
			}
			got[r.Body]++
		}
		return got
	}
	expect := func(step string, got, want map[string]int) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s: got %v, want %v", step, got, want)
		}
		t.Logf("%s: %v", step, got)
	}

	expect("release: canary", tally(url, 20, "Release", "canary"), map[string]int{"canary": 20})
	expect("no match", tally(url, 20), map[string]int{"stable": 20})
	expect("release: beta", tally(url, 20, "Release", "beta"), map[string]int{"stable": 20})
	expect("weights 3:1", tally(url+"?split=1", 400), map[string]int{"canary": 300, "stable": 100})

	// An inline upstream with a live and a dead node, checked actively;
	// retries 0, so a request sent to the dead node would fail to the client.
	dead := featClosedAddr(t)
	hostPort := func(addr string) (string, string) {
		h, p, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		return h, p
	}
	lh, lp := hostPort(inline)
	dh, dp := hostPort(dead)
	inlineUp := fmt.Sprintf(`{"retries":0,"nodes":[{"host":%q,"port":%s,"weight":1},{"host":%q,"port":%s,"weight":1}],
		"checks":{"active":{"http_path":"/hc","timeout":1,
			"healthy":{"interval":1,"successes":1},"unhealthy":{"interval":1,"tcp_failures":1,"http_failures":1}}}}`, lh, lp, dh, dp)
	mustAdmin(t, g, "PUT", "/apisix/admin/routes/r1", tsRoute(`[{"upstream":`+inlineUp+`,"weight":1},{"upstream_id":"canary","weight":1}]`))
	// The checker runs once the configuration is live, from the plugin's
	// inline upstream: wait until it has found the dead node.
	checker := tsWaitChecker(t, g, dead)
	t.Logf("checker %s marked %s unhealthy", checker, dead)
	expect("inline 1:1 canary, dead node excluded", tally(url+"?split=1", 200), map[string]int{"inline": 100, "canary": 100})
	expect("release: canary after the change", tally(url, 10, "Release", "canary"), map[string]int{"canary": 10})
	expect("no match after the change", tally(url, 10), map[string]int{"stable": 10})

	// APISIX's referential integrity: an upstream traffic-split sends to
	// cannot be deleted.
	code, body := adminDo(t, g, "DELETE", "/apisix/admin/upstreams/canary", "")
	if code != 400 || !strings.Contains(body, "can not delete this upstream, plugin in route [r1] is still using it now") {
		t.Fatalf("deleting a referenced upstream: %d %s", code, body)
	}
	// Writes with a dangling id or a bad inline upstream are refused with
	// the field's path.
	for _, c := range []struct{ rule2, want string }{
		{`[{"upstream_id":"missing"}]`, `rules[1].weighted_upstreams[0].upstream_id: upstream \"missing\" not found`},
		{`[{"weight":1},{"upstream":{"nodes":[{"host":"127.0.0.1","port":70000,"weight":1}]}}]`, `rules[1].weighted_upstreams[1].upstream: nodes[0].port: must be between 1 and 65535`},
	} {
		code, body := adminDo(t, g, "PUT", "/apisix/admin/routes/r2", strings.Replace(tsRoute(c.rule2), "/ts", "/r2", 1))
		if code != 400 || !strings.Contains(body, c.want) {
			t.Fatalf("route with %s: %d %s, want 400 with %q", c.rule2, code, body, c.want)
		}
	}
	// Without the plugin, every request goes to the route's upstream again.
	mustAdmin(t, g, "PUT", "/apisix/admin/routes/r1", `{"uri":"/ts","upstream_id":"stable"}`)
	tsWait(t, "the plugin removed", func() bool { return featDo(t, c, "GET", url, "", "Release", "canary").Body == "stable" })
	expect("plugin removed", tally(url+"?split=1", 20, "Release", "canary"), map[string]int{"stable": 20})
	mustAdmin(t, g, "DELETE", "/apisix/admin/upstreams/canary", "")
}

// tsWaitChecker waits until /v1/healthcheck lists a traffic-split inline
// upstream's checker that holds dead as unhealthy, and returns its name.
func tsWaitChecker(t *testing.T, g *Gateway, dead string) string {
	t.Helper()
	var name string
	tsWait(t, "the inline upstream's checker to mark "+dead+" unhealthy", func() bool {
		resp, err := http.Get(g.ControlURL + "/v1/healthcheck")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var all []hcUpstreamStatus
		if err := json.Unmarshal(body, &all); err != nil {
			t.Fatalf("/v1/healthcheck: %v: %s", err, body)
		}
		for _, us := range all {
			if !strings.HasPrefix(us.Name, "/apisix/plugins/traffic-split/") {
				continue
			}
			for _, n := range us.Nodes {
				if fmt.Sprintf("%s:%d", n.IP, n.Port) == dead && n.Status == "unhealthy" {
					name = us.Name
					return true
				}
			}
		}
		return false
	})
	return name
}

func tsWait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
