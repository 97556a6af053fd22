package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestFeatureCLI checks sluice's commands and their exit codes.
func TestFeatureCLI(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()

	code, out := featRun(t, dir, "version")
	if code != 0 || !regexp.MustCompile(`^sluice \S+`).MatchString(out) || strings.Count(out, "\n") != 1 {
		t.Errorf("sluice version: exit %d, output %q", code, out)
	}
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"validate", "--help"}} {
		code, out := featRun(t, dir, args...)
		if code != 0 || !strings.Contains(out, "Usage") {
			t.Errorf("sluice %v: exit %d, output %q", args, code, out)
		}
	}
	if code, out := featRun(t, dir, "-c"); code == 0 {
		t.Errorf("sluice -c without a file: exit 0, output %q", out)
	}
	if code, out := featRun(t, dir, "frobnicate"); code == 0 || !strings.Contains(out, "frobnicate") {
		t.Errorf("sluice frobnicate: exit %d, output %q", code, out)
	}

	// A valid resources file.
	featWrite(t, dir, "good.yaml", `upstreams:
  - id: u
    type: chash
    hash_on: header
    key: X-User
    nodes: {"127.0.0.1:8080": 1}
routes:
  - {id: r, uri: "/*", upstream_id: u, vars: [["arg_v", "==", "2"]]}
#END
`)
	if code, out := featRun(t, dir, "validate", "good.yaml"); code != 0 || !strings.Contains(out, "valid") {
		t.Errorf("validate good.yaml: exit %d, output %q", code, out)
	}
	// JSON resources need no #END.
	featWrite(t, dir, "good.json", `{"upstreams":[{"id":"u","nodes":{"127.0.0.1:8080":1}}],"routes":[{"id":"r","uri":"/*","upstream_id":"u"}]}`)
	if code, out := featRun(t, dir, "validate", "good.json"); code != 0 {
		t.Errorf("validate good.json: exit %d, output %q", code, out)
	}

	// Three distinct errors, all reported with their field paths.
	featWrite(t, dir, "bad.yaml", `upstreams:
  - id: u
    type: bogus
    nodes: {"127.0.0.1:8080": 1}
routes:
  - {id: r0, upstream_id: u}
  - {id: r1, uri: "/x", upstream_id: missing}
#END
`)
	code, out = featRun(t, dir, "validate", "bad.yaml")
	if code != 1 {
		t.Errorf("validate bad.yaml: exit %d, want 1; output %q", code, out)
	}
	for _, p := range []string{"routes[0].uri", "upstreams[0].type", "routes[1].upstream_id"} {
		if !strings.Contains(out, p+":") {
			t.Errorf("validate bad.yaml: %s not reported:\n%s", p, out)
		}
	}
	if n := strings.Count(strings.TrimSpace(out), "\n") + 1; n != 3 {
		t.Errorf("validate bad.yaml: %d lines, want one per error:\n%s", n, out)
	}

	// No #END.
	featWrite(t, dir, "noend.yaml", "routes:\n  - {id: r, uri: /x, upstream_id: u}\nupstreams:\n  - {id: u, nodes: {\"127.0.0.1:1\": 1}}\n")
	if code, out := featRun(t, dir, "validate", "noend.yaml"); code != 1 || !strings.Contains(out, "#END") {
		t.Errorf("validate noend.yaml: exit %d, output %q", code, out)
	}

	// A gateway config with an unknown key (nested and top level).
	featWrite(t, dir, "gw-bad.yaml", "listen:\n  http: [\"127.0.0.1:0\"]\n  htps: [\"127.0.0.1:0\"]\nengine: fast\n")
	if code, out := featRun(t, dir, "validate", "gw-bad.yaml"); code != 1 || !strings.Contains(out, "listen.htps") {
		t.Errorf("validate gw-bad.yaml: exit %d, output %q", code, out)
	}
	featWrite(t, dir, "gw-bad2.yaml", "listen:\n  http: [\"127.0.0.1:0\"]\nenigne: fast\n")
	if code, out := featRun(t, dir, "validate", "gw-bad2.yaml"); code != 1 || !strings.Contains(out, "enigne") {
		t.Errorf("validate gw-bad2.yaml: exit %d, output %q", code, out)
	}
	// plugin_attr sections are checked as starting the gateway would.
	featWrite(t, dir, "gw-badattr.yaml", "plugin_attr:\n  prometheus:\n    export_addr: {ip: 127.0.0.1, port: 99999}\n"+
		"  opentelemetry:\n    collector: {request_timeout: 0}\n  proxy-mirror:\n    timeout: {read: -1}\n")
	if code, out := featRun(t, dir, "validate", "gw-badattr.yaml"); code != 1 ||
		!strings.Contains(out, "plugin_attr.prometheus.export_addr.port") ||
		!strings.Contains(out, "plugin_attr.opentelemetry.collector.request_timeout") ||
		!strings.Contains(out, "plugin_attr.proxy-mirror.timeout.read") {
		t.Errorf("validate gw-badattr.yaml: exit %d, output %q", code, out)
	}
	// A valid gateway config also checks the resources file it points at.
	featWrite(t, dir, "gw.yaml", "listen:\n  http: [\"127.0.0.1:0\"]\nresources:\n  file: good.yaml\n")
	if code, out := featRun(t, dir, "validate", "gw.yaml"); code != 0 {
		t.Errorf("validate gw.yaml: exit %d, output %q", code, out)
	}
	featWrite(t, dir, "gw-badres.yaml", "listen:\n  http: [\"127.0.0.1:0\"]\nresources:\n  file: bad.yaml\n")
	if code, out := featRun(t, dir, "validate", "gw-badres.yaml"); code != 1 || !strings.Contains(out, "upstreams[0].type") {
		t.Errorf("validate gw-badres.yaml: exit %d, output %q", code, out)
	}
	// The repository's own sample configuration is valid.
	if code, out := featRun(t, "../..", "validate", "conf/sluice.yaml"); code != 0 {
		t.Errorf("validate conf/sluice.yaml: exit %d, output %q", code, out)
	}
	if code, out := featRun(t, dir, "validate", "does-not-exist.yaml"); code != 1 {
		t.Errorf("validate of a missing file: exit %d, output %q", code, out)
	}
	// Running with an invalid config fails at once, naming the path.
	if code, out := featRun(t, dir, "-c", "gw-bad.yaml"); code != 1 || !strings.Contains(out, "listen.htps") {
		t.Errorf("sluice -c gw-bad.yaml: exit %d, output %q", code, out)
	}
}

// TestFeatureQuickstartCurl follows the README's quickstart with the real curl
// binary: an upstream, conf/apisix.yaml, `sluice -c conf/sluice.yaml`, then
// `curl -i`.
func TestFeatureQuickstartCurl(t *testing.T) {
	t.Parallel()
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not installed; the quickstart test needs the real curl binary")
	}
	up := featNewUpstream(t, "web", nil)
	dir := t.TempDir()
	// The shipped conf/sluice.yaml, on a free loopback port.
	conf, err := os.ReadFile("../../conf/sluice.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(conf), `"0.0.0.0:9080"`) {
		t.Fatalf("conf/sluice.yaml no longer listens on 0.0.0.0:9080:\n%s", conf)
	}
	// Every listener on a free port: tests run in parallel.
	free := strings.NewReplacer(`"0.0.0.0:9080"`, `"127.0.0.1:0"`, `"127.0.0.1:9180"`, `"127.0.0.1:0"`,
		`"127.0.0.1:9090"`, `"127.0.0.1:0"`)
	featWrite(t, dir, "conf/sluice.yaml", free.Replace(string(conf)))
	featWrite(t, dir, "conf/apisix.yaml", fmt.Sprintf(`upstreams:
  - id: "web"
    nodes:
      %q: 1
routes:
  - id: "web"
    uri: /*
    upstream_id: "web"
#END
`, up.Addr))
	p := featStartProc(t, dir, "-c", "conf/sluice.yaml")
	addr := featWaitListen(t, p, p.Stderr.String)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(p.Stderr.String(), "configuration applied") {
		if time.Now().After(deadline) {
			t.Fatalf("configuration never applied:\n%s", p.Stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	cmd := exec.Command(curl, "-sS", "-i", "--max-time", "5", "http://"+addr+"/hello?from=curl")
	outb, err := cmd.CombinedOutput()
	out := strings.ReplaceAll(string(outb), "\r\n", "\n")
	if err != nil {
		t.Fatalf("curl: %v\n%s", err, out)
	}
	head, body, _ := strings.Cut(out, "\n\n")
	if !strings.HasPrefix(head, "HTTP/1.1 200 OK\n") || !strings.Contains(head, "\nX-Upstream: web\n") || body != "web" {
		t.Fatalf("curl -i output:\n%s", out)
	}
	last := up.Last(t)
	if last.URI != "/hello?from=curl" || !strings.HasPrefix(last.Header.Get("User-Agent"), "curl/") || last.Host != addr {
		t.Errorf("upstream saw %s Host %s UA %q", last.URI, last.Host, last.Header.Get("User-Agent"))
	}
	// A path no route matches (the README's route is a catch-all, so edit it).
	featWrite(t, dir, "conf/apisix.yaml.tmp", fmt.Sprintf(
		"upstreams:\n  - id: \"web\"\n    nodes:\n      %q: 1\nroutes:\n  - id: \"web\"\n    uri: /api/*\n    upstream_id: \"web\"\n#END\n", up.Addr))
	if err := os.Rename(filepath.Join(dir, "conf/apisix.yaml.tmp"), filepath.Join(dir, "conf/apisix.yaml")); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(5 * time.Second)
	for strings.Count(p.Stderr.String(), "configuration applied") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("edited apisix.yaml never applied:\n%s", p.Stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	outb, err = exec.Command(curl, "-sS", "-i", "--max-time", "5", "http://"+addr+"/hello").CombinedOutput()
	out = strings.ReplaceAll(string(outb), "\r\n", "\n")
	if err != nil || !strings.HasPrefix(out, "HTTP/1.1 404 Not Found\n") || !strings.HasSuffix(out, "\n\n{\"error_msg\":\"404 Route Not Found\"}\n") {
		t.Fatalf("curl after edit: %v\n%s", err, out)
	}
	// The shipped config logs access lines to stdout.
	deadline = time.Now().Add(3 * time.Second)
	for strings.Count(p.Stdout.String(), "\n") < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(p.Stdout.String(), `"uri":"/hello?from=curl"`) {
		t.Errorf("access log on stdout: %q", p.Stdout.String())
	}
}
