package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// abClient sends every request over one keep-alive connection, so a
// request is served only after the previous one's log phase (where
// api-breaker counts the upstream's status) has run.
func abClient() *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxConnsPerHost: 1, DisableCompression: true}}
}

// abRoute is the api-breaker route under test: 3 failures (500) trip a
// break of 2 s, then 4 s (max_breaker_sec 5); 3 successes (200) in a row
// forget the failures.
const abRoute = `{"uri":"/ab","upstream_id":"u1","plugins":{"api-breaker":{
	"break_response_code":502,"break_response_body":"breaker open",
	"break_response_headers":[{"key":"X-Breaker","value":"open"},{"key":"X-Client","value":"$remote_addr"}],
	"max_breaker_sec":5,
	"unhealthy":{"http_statuses":[500],"failures":3},
	"healthy":{"http_statuses":[200],"successes":3}}}}`

// TestAPIBreaker drives api-breaker against a real upstream whose status
// the test sets: the breaker opens after 3 × 500 and answers itself
// without touching the upstream, reopens traffic after its 2 s break, is
// reset by 3 healthy answers, and keeps its counts across configuration
// changes made through the Admin API.
func TestAPIBreaker(t *testing.T) {
	for _, engine := range featEngines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			var status atomic.Int64
			status.Store(200)
			up := featNewUpstream(t, "u1", func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(int(status.Load()))
				fmt.Fprintf(w, "upstream %d", status.Load())
			})
			other := featNewUpstream(t, "other", nil)
			g := StartGateway(t, GatewayOptions{Store: "embedded", Engine: engine})
			mustAdmin(t, g, "PUT", "/apisix/admin/upstreams/u1", fmt.Sprintf(`{"nodes":{%q:1}}`, up.Addr))
			mustAdmin(t, g, "PUT", "/apisix/admin/routes/r1", abRoute)
			waitServed(t, g.URL+"/ab", 200, 5*time.Second)

			c := abClient()
			url := g.URL + "/ab"
			// get sends one request and checks what came back and whether the
			// upstream saw it.
			get := func(step string, want int, wantUpstream bool) featResp {
				t.Helper()
				before := up.Hits.Load()
				r := featDo(t, c, "GET", url, "")
				if r.Status != want {
					t.Fatalf("%s: status %d (%q), want %d", step, r.Status, r.Body, want)
				}
				if got := up.Hits.Load() - before; got != map[bool]int64{true: 1, false: 0}[wantUpstream] {
					t.Fatalf("%s: the upstream received %d requests, want reached=%v", step, got, wantUpstream)
				}
				return r
			}
			// reload changes the configuration without touching r1 and waits
			// until the gateway serves the new one.
			reload := func(id string) {
				t.Helper()
				mustAdmin(t, g, "PUT", "/apisix/admin/routes/"+id,
					fmt.Sprintf(`{"uri":"/%s","upstream":{"nodes":{%q:1}}}`, id, other.Addr))
				waitServed(t, g.URL+"/"+id, 200, 5*time.Second)
			}

			// Two failures pass through; a configuration change keeps them.
			status.Store(500)
			get("failure 1", 500, true)
			get("failure 2", 500, true)
			reload("unrelated1")
			tripSent := time.Now()
			get("failure 3 (trips)", 500, true)

			// Open: the gateway answers, the upstream sees nothing.
			status.Store(200)
			for i := range 3 {
				r := get(fmt.Sprintf("break %d", i), 502, false)
				if r.Body != "breaker open" || r.Header.Get("X-Breaker") != "open" || r.Header.Get("X-Client") != "127.0.0.1" {
					t.Fatalf("break answer: %q %v", r.Body, r.Header)
				}
			}
			reload("unrelated2")
			if time.Since(tripSent) < 1500*time.Millisecond { // the break lasts 2 s
				get("break after reload", 502, false)
			} else {
				t.Logf("reload took %v: the break may be over, not checked", time.Since(tripSent))
			}

			// The break ends after 2 s; healthy answers flow again.
			var r featResp
			for r = featDo(t, c, "GET", url, ""); r.Status == 502; r = featDo(t, c, "GET", url, "") {
				if time.Since(tripSent) > 5*time.Second {
					t.Fatal("the break did not end within 5 s")
				}
				time.Sleep(50 * time.Millisecond)
			}
			if took := time.Since(tripSent); r.Status != 200 || took < 2*time.Second {
				t.Fatalf("after the break: %d after %v, want 200 after at least 2 s", r.Status, took)
			}
			t.Logf("break lasted %v (2 s configured)", time.Since(tripSent).Round(10*time.Millisecond))

			// One more failure (4 in all) interrupts the successes; then 3
			// successes in a row forget every failure.
			status.Store(500)
			get("failure 4", 500, true)
			status.Store(200)
			for i := range 3 {
				get(fmt.Sprintf("success %d", i+1), 200, true)
			}
			// Forgotten: 2 failures (would be the 6th, a trip, had the count
			// survived) leave the route open, and the 3rd trips again.
			status.Store(500)
			get("failure 1 after reset", 500, true)
			get("failure 2 after reset", 500, true)
			status.Store(200)
			get("still open after 2 failures", 200, true)
			status.Store(500)
			get("failure 3 after reset (trips)", 500, true)
			if r := get("broken again", 502, false); !strings.Contains(r.Body, "breaker open") {
				t.Fatalf("break answer: %q", r.Body)
			}
		})
	}
}

// TestAPIBreakerAdminValidation: the Admin API rejects an invalid
// api-breaker config with the field's path and the reason.
func TestAPIBreakerAdminValidation(t *testing.T) {
	t.Parallel()
	g := StartGateway(t, GatewayOptions{Store: "embedded"})
	for _, tc := range []struct{ cfg, want string }{
		{`{}`, "break_response_code: is required"},
		{`{"break_response_code":502,"unhealthy":{"http_statuses":[404]}}`, "unhealthy.http_statuses[0]: must be between 500 and 599, got 404"},
		{`{"break_response_code":502,"break_response_headers":[{"key":"X"}]}`, "break_response_headers[0].value: is required and must not be empty"},
	} {
		code, body := adminDo(t, g, "PUT", "/apisix/admin/routes/bad",
			`{"uri":"/bad","upstream":{"nodes":{"127.0.0.1:1":1}},"plugins":{"api-breaker":`+tc.cfg+`}}`)
		if code != 400 || !strings.Contains(body, "plugins.api-breaker: "+tc.want) {
			t.Errorf("%s: %d %s, want 400 with %q", tc.cfg, code, body, tc.want)
		}
	}
}
