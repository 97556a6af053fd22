package filelogger

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/pipeline"
	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/plugintest"
)

func build(t *testing.T, l *plugin.Lasting, cfg string, meta map[string]any) (any, error) {
	t.Helper()
	var raw any
	if err := json.Unmarshal([]byte(cfg), &raw); err != nil {
		t.Fatal(err)
	}
	ps, err := pipeline.Build(map[string]any{Name: raw}, nil, func(string) plugin.Deps { return plugin.Deps{Lasting: l, Metadata: meta} })
	if err != nil {
		return nil, err
	}
	return ps[0].Instance, nil
}

func TestPriorityAndValidation(t *testing.T) {
	t.Parallel()
	if d, ok := plugin.Lookup(Name); !ok || d.Priority != 399 {
		t.Fatalf("registered=%v priority=%d, want 399", ok, d.Priority)
	}
	if _, err := build(t, nil, `{}`, nil); err == nil || !strings.Contains(err.Error(), "path: is not set") {
		t.Fatalf("no path: %v", err)
	}
	if _, err := build(t, nil, `{}`, map[string]any{"path": "/tmp/x.log"}); err != nil {
		t.Fatalf("path from metadata rejected: %v", err)
	}
	if _, err := build(t, nil, `{"path":"/tmp/x","match":[[["uri","=~","x"]]]}`, nil); err == nil || !strings.Contains(err.Error(), "match[0]") {
		t.Fatalf("bad match: %v", err)
	}
}

// TestAppendsLinesAndFollowsRotation: lines are appended; once the file is
// moved away, new lines go to a new file at the path; match filters.
func TestAppendsLinesAndFollowsRotation(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "access.log")
	l := plugin.NewLasting(slog.New(slog.DiscardHandler))
	inst, err := build(t, l, `{"path":"`+path+`","log_format":{"u":"$uri"},"match":[[["uri","~~","^/keep"]]]}`, nil)
	if err != nil {
		t.Fatal(err)
	}
	logReq := func(p string) {
		c := &plugin.Ctx{}
		c.Reset(plugintest.NewRequest("GET", p))
		inst.(plugin.Logger).Log(c)
	}
	defer l.Close()
	logReq("/keep1")
	logReq("/skip")
	waitFor(t, path, "{\"u\":\"/keep1\"}\n")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	logReq("/keep2") // same writer: it must notice the rotation
	waitFor(t, path, "{\"u\":\"/keep2\"}\n")
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	if string(old) != "{\"u\":\"/keep1\"}\n" || string(cur) != "{\"u\":\"/keep2\"}\n" {
		t.Fatalf("rotated file %q, new file %q", old, cur)
	}
}

// waitFor polls path until it holds want (a correctness bound, not a speed
// assertion).
func waitFor(t *testing.T, path, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if string(b) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s holds %q, want %q", path, b, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
