package redistest

import (
	"strings"
	"testing"
)

func TestServerOutageAndRestart(t *testing.T) {
	s := Start(t)
	if r, err := s.Do("SET", "k", "1"); err != nil || r != "+OK" {
		t.Fatalf("SET = %q, %v", r, err)
	}
	s.Stop()
	if _, err := s.Do("PING"); err == nil {
		t.Fatal("PING answered after Stop")
	}
	s.Restart()
	if r, err := s.Do("EXISTS", "k"); err != nil || r != ":0" {
		t.Fatalf("EXISTS after restart = %q, %v; want :0 (nothing persisted)", r, err)
	}
}

func TestCluster(t *testing.T) {
	c := StartCluster(t, 3)
	if len(c.Addrs()) != 3 {
		t.Fatalf("addrs = %v", c.Addrs())
	}
	info, err := bulk(c.Servers[0].Addr(), "CLUSTER", "INFO")
	if err != nil || !strings.Contains(info, "cluster_known_nodes:3") || !strings.Contains(info, "cluster_slots_assigned:16384") {
		t.Fatalf("CLUSTER INFO = %q, %v", info, err)
	}
}
