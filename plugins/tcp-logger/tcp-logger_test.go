package tcplogger

import (
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/pipeline"
	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/plugintest"
)

func TestPriorityAndValidation(t *testing.T) {
	t.Parallel()
	if d, ok := plugin.Lookup(Name); !ok || d.Priority != 405 {
		t.Fatalf("registered=%v priority=%d, want 405", ok, d.Priority)
	}
	for cfg, want := range map[string]string{
		`{"port":1}`:                             "host: is required",
		`{"host":"h"}`:                           "port: is required",
		`{"host":"h","port":70000}`:              "port: must be between 0 and 65535",
		`{"host":"h","port":1,"timeout":0}`:      "timeout: must be >= 1",
		`{"host":"h","port":1,"tls":"yes"}`:      "tls: must be a boolean",
		`{"host":"h","port":1,"retry_delay":-1}`: "retry_delay: must be >= 0",
	} {
		if _, err := plugintest.Build(Name, cfg); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want %q", cfg, err, want)
		}
	}
}

// TestSendsToTCPServer: a batch of two entries arrives on a real listener as
// one JSON array on its own connection.
func TestSendsToTCPServer(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b, _ := io.ReadAll(c)
			c.Close()
			got <- string(b)
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	l := plugin.NewLasting(slog.New(slog.DiscardHandler))
	defer l.Close()
	var raw any
	json.Unmarshal([]byte(`{"host":"127.0.0.1","port":`+itoa(port)+`,"batch_max_size":2,"log_format":{"u":"$uri"}}`), &raw)
	ps, err := pipeline.Build(map[string]any{Name: raw}, nil, func(string) plugin.Deps { return plugin.Deps{Lasting: l} })
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/a", "/b"} {
		c := &plugin.Ctx{}
		c.Reset(plugintest.NewRequest("GET", p))
		ps[0].Instance.(plugin.Logger).Log(c)
	}
	select {
	case s := <-got:
		if s != `[{"u":"/a"},{"u":"/b"}]` {
			t.Fatalf("received %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("nothing received")
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }
