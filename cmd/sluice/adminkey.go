package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/sluicegw/sluice/internal/config"
)

// adminKeyFile is where a generated Admin API key is kept, inside data_dir.
const adminKeyFile = "admin.key"

// adminKeys returns the Admin API keys: those of the config file and
// SLUICE_ADMIN_KEY; with none, a key generated on first start and kept in
// data_dir (secure by default: there is no well-known key). configured
// reports whether any key came from the operator rather than generation.
func adminKeys(conf *config.Gateway, log *slog.Logger) (keys []config.AdminKey, configured bool, err error) {
	keys = append(keys, conf.Admin.Keys...)
	if k := strings.TrimSpace(os.Getenv("SLUICE_ADMIN_KEY")); k != "" {
		if len(k) < 16 {
			return nil, false, errors.New("SLUICE_ADMIN_KEY: must be at least 16 characters")
		}
		keys = append(keys, config.AdminKey{Key: k, Role: "admin"})
	}
	if len(keys) > 0 {
		return keys, true, nil
	}
	if conf.DataDir == "" {
		return nil, false, errors.New("admin: no key configured and no data_dir to keep a generated one in")
	}
	path := filepath.Join(conf.DataDir, adminKeyFile)
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		k := strings.TrimSpace(string(data))
		if len(k) < 16 {
			return nil, false, fmt.Errorf("%s: key too short; delete the file to generate a new one", path)
		}
		return []config.AdminKey{{Key: k, Role: "admin"}}, false, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, false, fmt.Errorf("reading admin key: %w", err)
	}
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, false, fmt.Errorf("generating admin key: %w", err)
	}
	k := hex.EncodeToString(b[:])
	if err := os.MkdirAll(conf.DataDir, 0o700); err != nil {
		return nil, false, fmt.Errorf("creating data_dir: %w", err)
	}
	// O_EXCL: two processes sharing a data_dir must not both generate.
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("storing admin key: %w", err)
	}
	if _, err := f.WriteString(k + "\n"); err != nil {
		f.Close()
		return nil, false, fmt.Errorf("storing admin key: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, false, fmt.Errorf("storing admin key: %w", err)
	}
	// Printed this once; afterwards it is only in the file (mode 0600).
	log.Warn("generated an Admin API key; it is printed only now (send it as X-API-KEY)", "key", k, "file", path)
	return []config.AdminKey{{Key: k, Role: "admin"}}, false, nil
}
