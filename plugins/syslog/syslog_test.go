package syslog

import (
	"bufio"
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/pipeline"
	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/plugintest"
)

func TestPriorityAndValidation(t *testing.T) {
	t.Parallel()
	if d, ok := plugin.Lookup(Name); !ok || d.Priority != 401 {
		t.Fatalf("registered=%v priority=%d, want 401", ok, d.Priority)
	}
	for cfg, want := range map[string]string{
		`{"port":1}`: "host: is required",
		`{"host":"h","port":1,"sock_type":"sctp"}`: "sock_type: must be one of tcp, udp",
		`{"host":"h","port":1,"pool_size":4}`:      "pool_size: must be >= 5",
		`{"host":"h","port":1,"flush_limit":0}`:    "flush_limit: must be >= 1",
	} {
		if _, err := plugintest.Build(Name, cfg); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want %q", cfg, err, want)
		}
	}
}

// TestRFC5424OverTCP: each entry is one RFC 5424 line (PRI 46: facility
// syslog, severity info; app "apisix"; the JSON entry as the message), sent
// over one kept connection.
func TestRFC5424OverTCP(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	lines := make(chan string, 10)
	conns := make(chan struct{}, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns <- struct{}{}
			go func() {
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					lines <- sc.Text()
				}
			}()
		}
	}()
	l := plugin.NewLasting(slog.New(slog.DiscardHandler))
	defer l.Close()
	var raw any
	json.Unmarshal([]byte(`{"host":"127.0.0.1","port":`+strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)+
		`,"batch_max_size":1,"log_format":{"u":"$uri"}}`), &raw)
	ps, err := pipeline.Build(map[string]any{Name: raw}, nil, func(string) plugin.Deps { return plugin.Deps{Lasting: l} })
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^<46>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z example\.com apisix ` +
		strconv.Itoa(os.Getpid()) + ` - - \{"u":"/s\d"\}$`)
	for i := range 3 {
		c := &plugin.Ctx{}
		c.Reset(plugintest.NewRequest("GET", "/s"+strconv.Itoa(i)))
		c.Served.Start = time.Now()
		ps[0].Instance.(plugin.Logger).Log(c)
		select {
		case line := <-lines:
			if !re.MatchString(line) {
				t.Fatalf("line %q does not match %s", line, re)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no message")
		}
	}
	if len(conns) != 1 {
		t.Fatalf("%d connections for 3 batches, want one kept connection", len(conns))
	}
}
