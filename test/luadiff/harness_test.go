// Package luadiff runs the same Lua snippets in the real nginx with
// lua-nginx-module and in sluice (as serverless functions), both in front of
// the same upstream, and compares what a client gets back: status, the
// headers that matter and the body. docs/lua.md describes the suite.
package luadiff

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// Paths of Debian's nginx and lua-nginx-module. scripts/test.sh installs
// them; the suite fails rather than skips without them, so CI cannot pass
// while silently comparing nothing.
const (
	nginxBin    = "/usr/sbin/nginx"
	nginxLuaMod = "/usr/lib/nginx/modules/ngx_http_lua_module.so"
	nginxNDKMod = "/usr/lib/nginx/modules/ndk_http_module.so"
	startMax    = 15 * time.Second
)

// binary is the sluice binary, built once for the package.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sluice-luadiff-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "sluice")
	cmd := exec.Command("go", "build", "-o", binary, "../../cmd/sluice")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building sluice:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// syncBuffer collects a process's output for concurrent readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// freeAddr returns a loopback address nothing listens on (nginx needs its
// port in the config file).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// startUpstream starts the echo upstream both proxies forward to. It answers
// with what it received, so changes a snippet makes to the request show in
// the body: the method, the request URI, the request headers (lower case,
// sorted; proxy-specific ones left out) and the body. X-Up-Status chooses
// its status, X-Up-Chunks sends the body in that many flushed writes (for
// body_filter cases).
func startUpstream(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(echo), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// notEchoed are request headers that differ between two proxies by design
// (forwarding headers, framing) and say nothing about Lua.
var notEchoed = map[string]bool{
	"connection": true, "x-forwarded-for": true, "x-forwarded-proto": true, "x-forwarded-host": true,
	"x-forwarded-port": true, "x-real-ip": true, "content-length": true, "transfer-encoding": true,
	"x-up-status": true, "x-up-chunks": true,
}

func echo(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var b strings.Builder
	fmt.Fprintf(&b, "method=%s\nuri=%s\n", r.Method, r.RequestURI)
	fmt.Fprintf(&b, "h:host=%s\n", r.Host)
	names := make([]string, 0, len(r.Header))
	for k := range r.Header {
		if !notEchoed[strings.ToLower(k)] {
			names = append(names, k)
		}
	}
	sort.Slice(names, func(i, j int) bool { return strings.ToLower(names[i]) < strings.ToLower(names[j]) })
	for _, k := range names {
		for _, v := range r.Header[k] {
			fmt.Fprintf(&b, "h:%s=%s\n", strings.ToLower(k), v)
		}
	}
	fmt.Fprintf(&b, "body=%s\n", body)
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("X-Up", "upstream")
	w.Header().Add("X-Up-Multi", "one")
	w.Header().Add("X-Up-Multi", "two")
	status := http.StatusOK
	if s := r.Header.Get("X-Up-Status"); s != "" {
		fmt.Sscanf(s, "%d", &status)
	}
	chunks := 1
	if s := r.Header.Get("X-Up-Chunks"); s != "" {
		fmt.Sscanf(s, "%d", &chunks)
	}
	out := b.String()
	if chunks <= 1 {
		w.Header().Set("Content-Length", fmt.Sprint(len(out)))
		w.WriteHeader(status)
		io.WriteString(w, out)
		return
	}
	w.WriteHeader(status)
	f, _ := w.(http.Flusher)
	step := (len(out) + chunks - 1) / chunks
	for len(out) > 0 {
		n := min(step, len(out))
		io.WriteString(w, out[:n])
		out = out[n:]
		if f != nil {
			f.Flush()
		}
		time.Sleep(2 * time.Millisecond) // separate reads on the proxy side
	}
}

// proxy is one of the two servers under comparison.
type proxy struct {
	name   string
	engine string // sluice's engine
	base   string // http://127.0.0.1:port
	port   string
	logs   func() string
}

// nginxPhase maps a case's phase to the nginx directive running it.
var nginxPhase = map[string]string{
	"rewrite": "rewrite_by_lua_file", "access": "access_by_lua_file", "header_filter": "header_filter_by_lua_file",
	"body_filter": "body_filter_by_lua_file", "log": "log_by_lua_file", "content": "content_by_lua_file",
}

// startNginx writes one location per case (/c/N/, the snippets as files so
// nginx's config parser never sees Lua, proxying to the upstream unless the
// case is a content handler) and starts nginx in the foreground.
func startNginx(t *testing.T, cases []luaCase, upstream string) *proxy {
	t.Helper()
	for _, p := range []string{nginxBin, nginxLuaMod, nginxNDKMod} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("reference nginx missing (%v): install nginx and libnginx-mod-http-lua (scripts/test.sh does)", err)
		}
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	var locs strings.Builder
	for i, c := range cases {
		fmt.Fprintf(&locs, "    location ^~ /c/%d/ {\n", i)
		content := false
		for j, s := range c.phases {
			f := filepath.Join(dir, fmt.Sprintf("case%d_%d.lua", i, j))
			if err := os.WriteFile(f, []byte(s.code), 0o644); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&locs, "      %s %s;\n", nginxPhase[s.phase], f)
			content = content || s.phase == "content"
		}
		if !content {
			fmt.Fprintf(&locs, "      proxy_pass http://%s;\n", upstream)
		}
		locs.WriteString("    }\n")
	}
	dictFile := filepath.Join(dir, "dict.lua")
	if err := os.WriteFile(dictFile, []byte(dictReader), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`load_module %s;
load_module %s;
daemon off;
master_process off;
error_log logs/error.log info;
pid logs/nginx.pid;
events { worker_connections 256; }
http {
  access_log off;
  server_tokens off;
  lua_shared_dict diff 1m;
  lua_shared_dict flush 1m;
  proxy_http_version 1.1;
  proxy_set_header Connection "";
  proxy_set_header Host $http_host;
  server {
    listen %s;
    location = /ping { return 200 "pong"; }
    location = /dict { content_by_lua_file %s; }
%s  }
}
`, nginxNDKMod, nginxLuaMod, addr, dictFile, locs.String())
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nginxBin, "-p", dir, "-c", confPath)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nginx: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	logPath := filepath.Join(dir, "logs", "error.log")
	p := &proxy{name: "nginx", base: "http://" + addr, port: addr[strings.LastIndexByte(addr, ':')+1:],
		logs: func() string { b, _ := os.ReadFile(logPath); return string(b) }}
	deadline := time.Now().Add(startMax)
	for {
		select {
		case err := <-exited:
			t.Fatalf("nginx exited: %v\n%s", err, p.logs())
		default:
		}
		if resp, err := http.Get(p.base + "/ping"); err == nil {
			resp.Body.Close()
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not answer on %s:\n%s", addr, p.logs())
		}
		time.Sleep(30 * time.Millisecond)
	}
}

// dictReader answers /dict?k=KEY with the value of KEY in ngx.shared.diff:
// how log-phase cases report what they saw.
const dictReader = `local v = ngx.shared.diff:get(ngx.var.arg_k)
ngx.print(tostring(v))
`

// wrap turns a snippet into a serverless function: APISIX runs
// "return function(conf, ctx) ... end" where nginx runs the chunk.
func wrap(code string) string { return "return function(conf, ctx)\n" + code + "\nend" }

// sluicePhase maps a case's phase to a serverless phase; a content handler
// is an access-phase function whose output ends the request.
func sluicePhase(p string) string {
	if p == "content" {
		return "access"
	}
	return p
}

var startedRe = regexp.MustCompile(`msg="sluice started".* listen=(\S+)`)

// startSluice starts sluice with the given engine (fast or std). It writes the same cases as routes (/c/N/*, the first snippet as
// serverless-pre-function, a second one as serverless-post-function) in a
// standalone resources file and starts sluice.
func startSluice(t *testing.T, cases []luaCase, upstream, engine string) *proxy {
	t.Helper()
	dir := t.TempDir()
	var routes []map[string]any
	for i, c := range cases {
		plugins := map[string]any{}
		for j, s := range c.phases {
			name := "serverless-pre-function"
			if j == 1 {
				name = "serverless-post-function"
			}
			plugins[name] = map[string]any{"phase": sluicePhase(s.phase), "functions": []string{wrap(s.code)}}
		}
		routes = append(routes, map[string]any{"id": fmt.Sprintf("c%d", i), "uri": fmt.Sprintf("/c/%d/*", i),
			"upstream_id": "up", "plugins": plugins})
	}
	routes = append(routes, map[string]any{"id": "dict", "uri": "/dict", "upstream_id": "up",
		"plugins": map[string]any{"serverless-pre-function": map[string]any{"phase": "access", "functions": []string{wrap(dictReader)}}}})
	res := map[string]any{
		"upstreams": []map[string]any{{"id": "up", "type": "roundrobin", "nodes": map[string]int{upstream: 1}}},
		"routes":    routes,
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	// YAML is a superset of JSON.
	if err := os.WriteFile(filepath.Join(dir, "apisix.yaml"), append(b, "\n#END\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := `listen:
  http: ["127.0.0.1:0"]
engine: ` + engine + `
data_dir: data
admin:
  listen: "off"
control:
  listen: "off"
resources:
  file: apisix.yaml
shared_dicts:
  diff: 1m
  flush: 1m
log:
  level: debug
  error_log: stderr
  access_log: "off"
`
	confPath := filepath.Join(dir, "sluice.yaml")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	stderr := &syncBuffer{}
	cmd := exec.Command(binary, "-c", confPath)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sluice: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	deadline := time.Now().Add(startMax)
	for {
		if m := startedRe.FindStringSubmatch(stderr.String()); m != nil && strings.Contains(stderr.String(), "configuration applied") {
			addr := strings.Split(m[1], ",")[0]
			return &proxy{name: "sluice", engine: engine, base: "http://" + addr, port: addr[strings.LastIndexByte(addr, ':')+1:], logs: stderr.String}
		}
		select {
		case <-done:
			t.Fatalf("sluice exited at start:\n%s", stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sluice did not start:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
