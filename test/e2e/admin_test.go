package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/store/etcdtest"
)

// TestAdminEmbeddedSurvivesRestart: with nothing but the binary, routes written
// through the Admin API are served at once and still served after a restart.
func TestAdminEmbeddedSurvivesRestart(t *testing.T) {
	t.Parallel()
	up := echoUpstream(t, "embedded")
	dir := t.TempDir()
	g := StartGateway(t, GatewayOptions{Store: "embedded", Dir: dir})
	mustAdmin(t, g, "PUT", "/apisix/admin/upstreams/u1", fmt.Sprintf(`{"nodes":{%q:1}}`, up))
	mustAdmin(t, g, "PUT", "/apisix/admin/routes/r1", `{"uri":"/e","upstream_id":"u1"}`)
	waitServed(t, g.URL+"/e", 200, 2*time.Second)
	g.Stop()

	g2 := StartGateway(t, GatewayOptions{Store: "embedded", Dir: dir})
	if code := getStatus(t, g2.URL+"/e"); code != 200 {
		t.Fatalf("after a restart the route answers %d", code)
	}
	out := mustAdmin(t, g2, "GET", "/apisix/admin/routes/r1", "")
	if !strings.Contains(out, `"key":"/apisix/routes/r1"`) || !strings.Contains(out, `"uri":"/e"`) {
		t.Fatalf("GET after restart: %s", out)
	}
}

var generatedKeyRe = regexp.MustCompile(`msg="generated an Admin API key[^"]*" key=(\S+)`)

// TestAdminGeneratedKey: with no key configured, sluice generates one, prints
// it once, keeps it in data_dir, and refuses requests without it.
func TestAdminGeneratedKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	g := StartGateway(t, GatewayOptions{Store: "embedded", Dir: dir, NoAdminKey: true})
	m := generatedKeyRe.FindStringSubmatch(g.Stderr.String())
	if m == nil {
		t.Fatalf("no generated key printed:\n%s", g.Stderr.String())
	}
	key := m[1]
	try := func(g *Gateway, key string) int {
		req, _ := http.NewRequest("GET", g.AdminURL+"/apisix/admin/routes", nil)
		if key != "" {
			req.Header.Set("X-API-KEY", key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := try(g, key); code != 200 {
		t.Fatalf("generated key refused: %d", code)
	}
	if code := try(g, ""); code != 401 {
		t.Fatalf("no key: %d, want 401", code)
	}
	if code := try(g, AdminKey); code != 401 {
		t.Fatalf("wrong key: %d, want 401", code)
	}
	stored, err := os.ReadFile(filepath.Join(dir, "data", "admin.key"))
	if err != nil || strings.TrimSpace(string(stored)) != key {
		t.Fatalf("stored key %q, %v", stored, err)
	}
	if info, _ := os.Stat(filepath.Join(dir, "data", "admin.key")); info.Mode().Perm() != 0o600 {
		t.Fatalf("admin.key mode %v, want 0600", info.Mode().Perm())
	}
	g.Stop()
	g2 := StartGateway(t, GatewayOptions{Store: "embedded", Dir: dir, NoAdminKey: true})
	if generatedKeyRe.MatchString(g2.Stderr.String()) {
		t.Fatal("the key was printed again on the second start")
	}
	if code := try(g2, key); code != 200 {
		t.Fatalf("stored key refused after restart: %d", code)
	}
}

// TestAdminRemoteWithoutKeyRefused: binding the Admin API beyond loopback with
// no configured key stops the start with a clear message.
func TestAdminRemoteWithoutKeyRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	conf := "listen:\n  http: [\"127.0.0.1:0\"]\ndata_dir: data\nadmin:\n  listen: \"0.0.0.0:0\"\ncontrol:\n  listen: \"off\"\n"
	writeFile(t, filepath.Join(dir, "sluice.yaml"), conf)
	cmd := exec.Command(binary, "-c", filepath.Join(dir, "sluice.yaml"))
	cmd.Env = slices.DeleteFunc(os.Environ(), func(e string) bool { return strings.HasPrefix(e, "SLUICE_ADMIN_KEY=") })
	out, err := cmd.CombinedOutput()
	if err == nil || cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(out), "no Admin API key is configured") {
		t.Fatalf("exit %v, output:\n%s", err, out)
	}
}

// TestAdminReadOnlyWithFileStore: with the file store the Admin API serves
// reads and says why it refuses writes.
func TestAdminReadOnlyWithFileStore(t *testing.T) {
	t.Parallel()
	g := StartGateway(t, GatewayOptions{Resources: upstreamYAML("127.0.0.1:1")})
	out := mustAdmin(t, g, "GET", "/apisix/admin/routes/r1", "")
	if !strings.Contains(out, `"uri":"/*"`) {
		t.Fatalf("GET from the file store: %s", out)
	}
	code, body := adminDo(t, g, "PUT", "/apisix/admin/routes/r2", `{"uri":"/x","upstream_id":"u1"}`)
	if code != 400 || !strings.Contains(strings.ToLower(body), "read-only") {
		t.Fatalf("write to the file store: %d %s", code, body)
	}
}

// TestAdminDyups: the nginx dyups API replaces an upstream's nodes while
// traffic flows.
func TestAdminDyups(t *testing.T) {
	t.Parallel()
	a, b := echoUpstream(t, "a"), echoUpstream(t, "b")
	g := StartGateway(t, GatewayOptions{Store: "embedded"})
	dyups := func(method, body string) (int, string) {
		return adminDo(t, g, method, "/upstream/web", body)
	}
	if code, out := dyups("POST", "server "+a+";\n"); code != 200 {
		t.Fatalf("dyups create: %d %s", code, out)
	}
	mustAdmin(t, g, "PUT", "/apisix/admin/routes/r1", `{"uri":"/d","upstream_id":"web"}`)
	if body := waitBody(t, g.URL+"/d", "a", 2*time.Second); body != "a" {
		t.Fatal(body)
	}
	if code, out := dyups("POST", "server "+b+" weight=2;\n"); code != 200 {
		t.Fatalf("dyups replace: %d %s", code, out)
	}
	waitBody(t, g.URL+"/d", "b", 2*time.Second)
	code, out := dyups("GET", "")
	if code != 200 || !strings.Contains(out, b) || strings.Contains(out, a) {
		t.Fatalf("dyups get: %d %q", code, out)
	}
	code, out = dyups("POST", "server "+a+";\nserver nonsense weight=x;\n")
	if code != 400 || !strings.Contains(out, "line 2") {
		t.Fatalf("malformed line: %d %q", code, out)
	}
	waitBody(t, g.URL+"/d", "b", time.Second) // nothing half-applied
}

func waitBody(t testing.TB, url, want string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) == want {
				return want
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never answered %q", url, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// BenchmarkPropagation measures how long a route written through the Admin API
// takes to be served by the data plane, as p50/p99: on one node with the
// embedded store, and across a cluster (written through node A's Admin API,
// polled on node B, both on one etcd).
func BenchmarkPropagation(b *testing.B) {
	quiet := "log:\n  level: info\n  error_log: stderr\n  access_log: \"off\"\n"
	b.Run("embedded", func(b *testing.B) {
		g := StartGateway(b, GatewayOptions{Store: "embedded", Extra: quiet})
		benchPropagation(b, g, g)
	})
	b.Run("etcd-cluster", func(b *testing.B) {
		endpoint, _, _ := etcdtest.Start(b)
		writer := StartGateway(b, GatewayOptions{Store: etcdStore(endpoint), Extra: quiet})
		reader := StartGateway(b, GatewayOptions{Store: etcdStore(endpoint), Extra: quiet})
		benchPropagation(b, writer, reader)
	})
}

func benchPropagation(b *testing.B, writer, reader *Gateway) {
	up := echoUpstream(b, "prop")
	mustAdmin(b, writer, "PUT", "/apisix/admin/upstreams/u1", fmt.Sprintf(`{"nodes":{%q:1}}`, up))
	lat := make([]time.Duration, 0, b.N)
	c := &http.Client{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		mustAdmin(b, writer, "PUT", fmt.Sprintf("/apisix/admin/routes/p%d", i), fmt.Sprintf(`{"uri":"/p/%d","upstream_id":"u1"}`, i))
		for {
			resp, err := c.Get(fmt.Sprintf("%s/p/%d", reader.URL, i))
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 {
					break
				}
			}
			if time.Since(start) > 10*time.Second {
				b.Fatalf("route %d never served", i)
			}
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
