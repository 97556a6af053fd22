package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicegw/sluice/internal/config"
)

func TestAdminKeys(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	t.Run("configured keys win and count as configured", func(t *testing.T) {
		t.Setenv("SLUICE_ADMIN_KEY", "")
		conf := &config.Gateway{DataDir: t.TempDir(), Admin: config.Admin{Keys: []config.AdminKey{{Key: "k-0123456789abcdef", Role: "viewer"}}}}
		keys, configured, err := adminKeys(conf, log)
		if err != nil || !configured || len(keys) != 1 || keys[0].Role != "viewer" {
			t.Fatalf("%v %v %v", keys, configured, err)
		}
		if _, err := os.Stat(filepath.Join(conf.DataDir, adminKeyFile)); err == nil {
			t.Fatal("a key was generated although one is configured")
		}
	})
	t.Run("environment key", func(t *testing.T) {
		t.Setenv("SLUICE_ADMIN_KEY", "env-key-0123456789")
		keys, configured, err := adminKeys(&config.Gateway{DataDir: t.TempDir()}, log)
		if err != nil || !configured || len(keys) != 1 || keys[0].Key != "env-key-0123456789" || keys[0].Role != "admin" {
			t.Fatalf("%v %v %v", keys, configured, err)
		}
		t.Setenv("SLUICE_ADMIN_KEY", "short")
		if _, _, err := adminKeys(&config.Gateway{DataDir: t.TempDir()}, log); err == nil {
			t.Fatal("a short SLUICE_ADMIN_KEY was accepted")
		}
	})
	t.Run("generated once, then reused", func(t *testing.T) {
		t.Setenv("SLUICE_ADMIN_KEY", "")
		conf := &config.Gateway{DataDir: filepath.Join(t.TempDir(), "data")}
		first, configured, err := adminKeys(conf, log)
		if err != nil || configured || len(first) != 1 || len(first[0].Key) < 32 {
			t.Fatalf("%v %v %v", first, configured, err)
		}
		again, _, err := adminKeys(conf, log)
		if err != nil || again[0].Key != first[0].Key {
			t.Fatalf("second start got %v, %v; want the stored key", again, err)
		}
		data, _ := os.ReadFile(filepath.Join(conf.DataDir, adminKeyFile))
		if strings.TrimSpace(string(data)) != first[0].Key {
			t.Fatalf("stored %q", data)
		}
	})
}
