package luangx

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Paths of Debian's nginx and lua-nginx-module (packages nginx and
// libnginx-mod-http-lua; cjson comes from lua-cjson). scripts/test.sh
// installs them; this test fails rather than skips without them, so CI
// cannot pass while silently not comparing.
const (
	nginxBin      = "/usr/sbin/nginx"
	nginxLuaMod   = "/usr/lib/nginx/modules/ngx_http_lua_module.so"
	nginxNDKMod   = "/usr/lib/nginx/modules/ndk_http_module.so"
	nginxStartMax = 10 * time.Second
)

// TestNginxReference runs every case that is not sluice-only in the real
// nginx + lua-nginx-module and checks that nginx prints the recorded
// output, which TestLuaCases holds sluice to. With -update it rewrites the
// recorded outputs from nginx.
func TestNginxReference(t *testing.T) {
	for _, p := range []string{nginxBin, nginxLuaMod, nginxNDKMod} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("reference nginx missing (%v): install nginx and libnginx-mod-http-lua (scripts/test.sh does)", err)
		}
	}
	cases := loadCases(t)
	dir := t.TempDir()
	base := startNginx(t, dir, cases)
	got := map[string]string{}
	client := &http.Client{Timeout: 10 * time.Second}
	for i, c := range cases {
		if c.sluiceOnly {
			continue
		}
		resp, err := client.Get(fmt.Sprintf("%s/case/%d", base, i))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		out := strings.TrimSuffix(string(body), "\n")
		if resp.StatusCode != http.StatusOK {
			out = fmt.Sprintf("<%d>", resp.StatusCode)
		}
		got[c.name] = out
		if !*update && out != c.want {
			t.Errorf("%s: %s: nginx prints %q, recorded %q", c.file, c.name, out, c.want)
		}
	}
	if *update {
		rewriteCases(t, cases, got)
	}
	if t.Failed() {
		logs, _ := os.ReadFile(filepath.Join(dir, "logs", "error.log"))
		t.Logf("nginx error.log:\n%s", logs)
	}
}

// startNginx writes one location per case (/case/N, the snippet as a file
// for content_by_lua_file, so nginx's config parser never sees Lua) and
// starts nginx in the foreground on a free loopback port. It returns the
// base URL once nginx answers.
func startNginx(t *testing.T, dir string, cases []luaCase) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var locs strings.Builder
	for i, c := range cases {
		if c.sluiceOnly {
			continue
		}
		f := filepath.Join(dir, fmt.Sprintf("case%d.lua", i))
		if err := os.WriteFile(f, []byte(c.code), 0o644); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&locs, "    location = /case/%d { content_by_lua_file %s; }\n", i, f)
	}
	conf := fmt.Sprintf(`load_module %s;
load_module %s;
daemon off;
master_process off;
error_log logs/error.log warn;
pid logs/nginx.pid;
events { worker_connections 64; }
http {
  access_log off;
  lua_shared_dict dogs 1m;
  server {
    listen %s;
    location = /ping { return 200 "pong"; }
%s  }
}
`, nginxNDKMod, nginxLuaMod, addr, locs.String())
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
	base := "http://" + addr
	deadline := time.Now().Add(nginxStartMax)
	for {
		select {
		case err := <-exited:
			logs, _ := os.ReadFile(filepath.Join(dir, "logs", "error.log"))
			t.Fatalf("nginx exited: %v\n%s", err, logs)
		default:
		}
		resp, err := http.Get(base + "/ping")
		if err == nil {
			resp.Body.Close()
			return base
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not answer on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// rewriteCases replaces the recorded output of every case nginx ran.
func rewriteCases(t *testing.T, cases []luaCase, got map[string]string) {
	t.Helper()
	byFile := map[string][]luaCase{}
	var order []string
	for _, c := range cases {
		if _, ok := byFile[c.file]; !ok {
			order = append(order, c.file)
		}
		byFile[c.file] = append(byFile[c.file], c)
	}
	for _, f := range order {
		var b strings.Builder
		for _, c := range byFile[f] {
			want := c.want
			if out, ok := got[c.name]; ok {
				want = out
			}
			fmt.Fprintf(&b, "### %s\n%s--- out\n%s\n\n", c.name, c.code, want)
		}
		if err := os.WriteFile(f, []byte(strings.TrimSuffix(b.String(), "\n")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
