package ratelimit

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/plugintest"
)

// TestKeyConstant: limit-count's constant key is the key itself, whatever
// the request.
func TestKeyConstant(t *testing.T) {
	t.Parallel()
	k := NewKey(KeyConstant, "all")
	for _, ip := range []string{"10.0.0.1", "10.0.0.2"} {
		if got := k.Of(plugintest.NewRequest("GET", "/").WithIP(ip)); got != "all" {
			t.Errorf("from %s: key %q, want all", ip, got)
		}
	}
}

// TestSharedBackend: instances with the same settings get one pool, a
// plugin or a setting apart gets its own, and a validation-only compile
// gets none.
func TestSharedBackend(t *testing.T) {
	t.Parallel()
	l := plugin.NewLasting(nil)
	t.Cleanup(l.Close)
	deps := plugin.Deps{Lasting: l}
	c := RedisConfig{Policy: PolicyRedis, Host: "127.0.0.1", Port: 6379, Timeout: 1000, KeepaliveTimeout: 10000, KeepalivePool: 100}
	a, b := SharedBackend(deps, &c, "limit-a"), SharedBackend(deps, &c, "limit-a")
	if a == nil || a != b {
		t.Fatalf("same settings: %p and %p, want one backend", a, b)
	}
	if o := SharedBackend(deps, &c, "limit-b"); o == a {
		t.Error("another plugin shares limit-a's backend")
	}
	d := c
	d.Database = 1
	if o := SharedBackend(deps, &d, "limit-a"); o == a {
		t.Error("another database shares the backend")
	}
	if o := SharedBackend(plugin.Deps{}, &c, "limit-a"); o != nil {
		t.Errorf("validation-only compile: got a backend %p", o)
	}
}

// TestLocalRoutes: a configuration's scopes are kept in Lasting (a rebuild
// with the same fingerprint finds them), and a validation-only compile gets
// a private set that still works.
func TestLocalRoutes(t *testing.T) {
	t.Parallel()
	l := plugin.NewLasting(nil)
	t.Cleanup(l.Close)
	deps := plugin.Deps{Lasting: l}
	newScope := func(route string) *string { return &route }
	r1 := LocalRoutes(deps, "limit-a", "fp1", newScope)
	s := r1.Get("7")
	if *s != "7" {
		t.Fatalf("scope of route 7 = %q", *s)
	}
	if r2 := LocalRoutes(deps, "limit-a", "fp1", newScope); r2 != r1 || r2.Get("7") != s {
		t.Error("the same fingerprint did not find the kept scopes")
	}
	if r3 := LocalRoutes(deps, "limit-a", "fp2", newScope); r3 == r1 {
		t.Error("another fingerprint shares the scopes")
	}
	priv := LocalRoutes(plugin.Deps{}, "limit-a", "fp1", newScope)
	if priv == r1 || *priv.Get("8") != "8" {
		t.Error("validation-only compile: want a private, working set")
	}
}

// TestFailedRequest counts both outcomes and logs the first, saying what
// became of the request; the second falls in the same log interval.
func TestFailedRequest(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	c := RedisConfig{Policy: PolicyRedis, Host: "127.0.0.1", Port: 6379, Timeout: 1000, KeepaliveTimeout: 10000, KeepalivePool: 100}
	b := NewBackend(&c, "limit-a", slog.New(slog.NewTextHandler(&out, nil)))
	t.Cleanup(func() { _ = b.Close() })
	b.FailedRequest(errors.New("down"), true)
	b.FailedRequest(errors.New("down"), false)
	if n := b.Failures(); n != 2 {
		t.Errorf("failures = %d, want 2", n)
	}
	const want = `msg="limit-a: redis unavailable, requests pass unlimited (allow_degradation)" err=down`
	if got := out.String(); !strings.Contains(got, want) || strings.Count(got, "\n") != 1 {
		t.Errorf("log = %q, want one line with %q", got, want)
	}
}
