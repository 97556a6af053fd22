package ratelimit

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sluicegw/sluice/plugin/plugintest"
)

// TestKeyOf: a variable, a combination, and the fallback to the client
// address when either resolves to nothing.
func TestKeyOf(t *testing.T) {
	t.Parallel()
	req := plugintest.NewRequest("GET", "/").WithIP("10.0.0.7").WithHeader("X-User", "alice")
	for _, tc := range []struct{ typ, key, want string }{
		{KeyVar, "http_x_user", "alice"},
		{KeyVar, "http_x_missing", "10.0.0.7"},
		{KeyVarCombination, "$http_x_user@$remote_addr", "alice@10.0.0.7"},
		{KeyVarCombination, "$http_x_missing-$http_x_other", "10.0.0.7"},
	} {
		k := NewKey(tc.typ, tc.key)
		if got := k.Of(req); got != tc.want {
			t.Errorf("%s %q: key %q, want %q", tc.typ, tc.key, got, tc.want)
		}
	}
}

// TestExits: rejections as APISIX answers them.
func TestExits(t *testing.T) {
	t.Parallel()
	msg := `say "no"`
	if e := RejectExit(429, &msg); e.Status != 429 || string(e.Body) != `{"error_msg":"say \"no\""}`+"\n" {
		t.Errorf("with rejected_msg: %d %q", e.Status, e.Body)
	}
	if e := RejectExit(503, nil); e.Status != 503 || !strings.Contains(string(e.Body), "<title>503 Service Temporarily Unavailable</title>") {
		t.Errorf("without rejected_msg: %d %q", e.Status, e.Body)
	}
}

// TestTableKeepsLiveSlots: without EvictLive a full table drops idle slots
// only, and grows past its bound rather than forget live state.
func TestTableKeepsLiveSlots(t *testing.T) {
	t.Parallel()
	tb := &Table[int]{Idle: func(v, _ int64) bool { return v == 0 }, MaxKeys: 10, X: 7}
	for i := range 15 {
		tb.Get(fmt.Sprint("live-", i), 0).V.Store(1)
	}
	if n := tb.Len(); n != 15 {
		t.Fatalf("len = %d, want 15: live slots must stay", n)
	}
	for i := range 15 {
		if s := tb.Get(fmt.Sprint("live-", i), 0); s.V.Load() != 1 || s.X != 7 {
			t.Fatalf("live slot %d lost: %d", i, s.V.Load())
		}
	}
	for i := range 15 {
		tb.Get(fmt.Sprint("live-", i), 0).V.Store(0) // all idle now
	}
	tb.Get("newcomer", 0)
	if n := tb.Len(); n != 1 {
		t.Errorf("len after a sweep of idle slots = %d, want 1", n)
	}
}

// TestCheckPolicy: the Redis fields APISIX requires, by policy.
func TestCheckPolicy(t *testing.T) {
	t.Parallel()
	ok := RedisConfig{Policy: PolicyRedis, Host: "127.0.0.1", Port: 6379, Timeout: 1000, KeepaliveTimeout: 10000, KeepalivePool: 100}
	if err := ok.CheckPolicy(); err != nil {
		t.Fatal(err)
	}
	bad := ok
	bad.Port = 70000
	if err := bad.CheckPolicy(); err == nil || !strings.HasPrefix(err.Error(), "redis_port: ") {
		t.Errorf("port 70000: %v", err)
	}
	local := RedisConfig{Policy: PolicyLocal}
	if err := local.CheckPolicy(); err != nil {
		t.Errorf("local needs no Redis fields: %v", err)
	}
}
