package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/config"
)

const testInterval = 10 * time.Millisecond

// v1 and v2 are valid; invalid has two problems and bad references.
const (
	v1 = `upstreams:
  - id: u1
    nodes: {"127.0.0.1:1980": 1}
routes:
  - id: r1
    uri: /hello
    upstream_id: u1
#END
`
	v2 = `upstreams:
  - id: u1
    nodes: {"127.0.0.1:1980": 1}
routes:
  - id: r1
    uri: /hello
    upstream_id: u1
  - id: r2
    uri: /world
    plugins: {}
#END
`
	invalid = `upstreams:
  - id: u1
    nodes: {"127.0.0.1:1980": 1}
    type: random
routes:
  - id: r1
    uri: /hello
    upstream_id: u9
#END
`
)

// syncBuffer is a concurrency-safe log sink.
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

func newTestFile(t *testing.T, content string) (*File, string, *syncBuffer) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "apisix.yaml")
	if content != "" {
		write(t, path, content)
	}
	logs := &syncBuffer{}
	f := newFile(path, slog.New(slog.NewJSONHandler(logs, nil)), testInterval)
	t.Cleanup(func() { _ = f.Close() })
	return f, path, logs
}

// write replaces the file the way editors do: write a temp file, then rename.
func write(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func ids(l Listing) string {
	var s []string
	for _, it := range l.Items {
		s = append(s, string(it.Kind)+"/"+it.ID)
	}
	return strings.Join(s, ",")
}

func recv(t *testing.T, ch <-chan Batch) Batch {
	t.Helper()
	select {
	case b, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed")
		}
		return b
	case <-time.After(5 * time.Second):
		t.Fatal("no batch within 5s")
	}
	return Batch{}
}

func expectNothing(t *testing.T, ch <-chan Batch, d time.Duration) {
	t.Helper()
	select {
	case b := <-ch:
		t.Fatalf("unexpected batch at revision %d: %s", b.Revision, ids(b.Listing))
	case <-time.After(d):
	}
}

func TestFileValidInvalidValid(t *testing.T) {
	t.Parallel()
	f, path, logs := newTestFile(t, v1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	l, err := f.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if l.Revision != 1 || ids(l) != "upstreams/u1,routes/r1" {
		t.Fatalf("List = rev %d %s", l.Revision, ids(l))
	}
	var r config.Route
	if err := json.Unmarshal(l.Items[1].Value, &r); err != nil || r.URI != "/hello" || r.Status == nil || *r.Status != 1 {
		t.Fatalf("route value %s (defaults expected): %v", l.Items[1].Value, err)
	}

	ch := f.Watch(ctx, 0)
	b := recv(t, ch)
	if !b.Reset || b.Revision != 1 || ids(b.Listing) != "upstreams/u1,routes/r1" {
		t.Fatalf("first batch = %+v", b)
	}

	write(t, path, invalid)
	expectNothing(t, ch, 20*testInterval)
	out := logs.String()
	for _, want := range []string{
		`"path":"routes[0].upstream_id","error":"upstream \"u9\" not found"`,
		`"path":"upstreams[0].type","error":"must be one of roundrobin, chash, least_conn, ewma"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
	if n := strings.Count(out, `"msg":"invalid resource"`); n != 2 {
		t.Errorf("got %d invalid-resource records, want 2 (one per error, logged once)", n)
	}
	if l, err := f.List(ctx); err != nil || l.Revision != 1 {
		t.Errorf("List after invalid = rev %d, %v; want the last good revision 1", l.Revision, err)
	}
	if err := f.Reload(); err == nil {
		t.Error("Reload of an invalid file returned nil")
	}

	write(t, path, v2)
	b = recv(t, ch)
	if b.Revision != 2 || ids(b.Listing) != "upstreams/u1,routes/r1,routes/r2" {
		t.Fatalf("batch after fix = rev %d %s", b.Revision, ids(b.Listing))
	}
	for _, it := range b.Listing.Items {
		wantCreate, wantMod := int64(1), int64(1)
		if it.ID == "r2" {
			wantCreate, wantMod = 2, 2
		}
		if it.CreateRev != wantCreate || it.ModRev != wantMod {
			t.Errorf("%s/%s revs = %d/%d, want %d/%d", it.Kind, it.ID, it.CreateRev, it.ModRev, wantCreate, wantMod)
		}
	}

	// A reload of an unchanged file is not a change.
	if err := f.Reload(); err != nil {
		t.Fatal(err)
	}
	expectNothing(t, ch, 10*testInterval)
}

func TestFileMissingEndFlag(t *testing.T) {
	t.Parallel()
	f, path, logs := newTestFile(t, v1)
	ch := f.Watch(context.Background(), 1)
	write(t, path, strings.TrimSuffix(v2, "#END\n"))
	expectNothing(t, ch, 20*testInterval)
	if !strings.Contains(logs.String(), "missing #END flag") {
		t.Errorf("log lacks the #END error:\n%s", logs.String())
	}
	write(t, path, v2)
	if b := recv(t, ch); b.Revision != 2 {
		t.Errorf("revision = %d, want 2", b.Revision)
	}
}

func TestFileListBeforeGoodLoad(t *testing.T) {
	t.Parallel()
	f, path, _ := newTestFile(t, invalid)
	_, err := f.List(context.Background())
	var fes config.FieldErrors
	if !errors.As(err, &fes) || len(fes) != 2 {
		t.Fatalf("List error = %v; want FieldErrors with 2 entries", err)
	}
	ch := f.Watch(context.Background(), 0)
	expectNothing(t, ch, 10*testInterval)
	write(t, path, v1)
	if b := recv(t, ch); b.Revision != 1 || !b.Reset {
		t.Errorf("batch = %+v", b)
	}
	if _, err := f.List(context.Background()); err != nil {
		t.Error(err)
	}
}

func TestFileMissingThenCreated(t *testing.T) {
	t.Parallel()
	f, path, _ := newTestFile(t, "")
	if _, err := f.List(context.Background()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("List error = %v; want ErrNotExist", err)
	}
	ch := f.Watch(context.Background(), 0)
	write(t, path, v1)
	if b := recv(t, ch); b.Revision != 1 {
		t.Errorf("revision = %d", b.Revision)
	}
}

func TestFileJSON(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "apisix.json")
	write(t, path, `{"upstreams":[{"id":"u","nodes":[{"host":"::1","port":80,"weight":1}]}]}`)
	f := newFile(path, nil, testInterval)
	defer f.Close()
	l, err := f.List(context.Background())
	if err != nil || len(l.Items) != 1 {
		t.Fatalf("List = %+v, %v", l, err)
	}
}

func TestFileCloseEndsWatch(t *testing.T) {
	t.Parallel()
	f, _, _ := newTestFile(t, v1)
	ctx, cancel := context.WithCancel(context.Background())
	ch1 := f.Watch(ctx, 1)
	ch2 := f.Watch(context.Background(), 1)
	cancel()
	if _, ok := <-ch1; ok {
		t.Error("watch delivered after ctx cancel")
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-ch2; ok {
		t.Error("watch delivered after Close")
	}
	if _, ok := <-f.Watch(context.Background(), 0); ok {
		t.Error("Watch after Close delivered")
	}
}
