package udplogger

import (
	"encoding/json"
	"log/slog"
	"net"
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
	if d, ok := plugin.Lookup(Name); !ok || d.Priority != 400 {
		t.Fatalf("registered=%v priority=%d, want 400", ok, d.Priority)
	}
	for cfg, want := range map[string]string{
		`{"port":1}`:                        "host: is required",
		`{"host":"h"}`:                      "port: is required",
		`{"host":"h","port":1,"timeout":0}`: "timeout: must be >= 1",
		`{"host":"h","port":1,"tls":true}`:  "tls: unknown field",
	} {
		if _, err := plugintest.Build(Name, cfg); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want %q", cfg, err, want)
		}
	}
}

// TestSendsDatagrams: with batch_max_size 1 each entry is one datagram
// holding the entry alone.
func TestSendsDatagrams(t *testing.T) {
	t.Parallel()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	l := plugin.NewLasting(slog.New(slog.DiscardHandler))
	defer l.Close()
	var raw any
	json.Unmarshal([]byte(`{"host":"127.0.0.1","port":`+strconv.Itoa(pc.LocalAddr().(*net.UDPAddr).Port)+
		`,"batch_max_size":1,"log_format":{"u":"$uri"}}`), &raw)
	ps, err := pipeline.Build(map[string]any{Name: raw}, nil, func(string) plugin.Deps { return plugin.Deps{Lasting: l} })
	if err != nil {
		t.Fatal(err)
	}
	c := &plugin.Ctx{}
	c.Reset(plugintest.NewRequest("GET", "/dgram"))
	ps[0].Instance.(plugin.Logger).Log(c)
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 65536)
	n, _, err := pc.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(buf[:n]); got != `{"u":"/dgram"}` {
		t.Fatalf("datagram %q", got)
	}
}
