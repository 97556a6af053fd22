package config

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func TestLoadGatewayDefaults(t *testing.T) {
	t.Parallel()
	g, err := LoadGateway("")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*g, DefaultGateway()) {
		t.Errorf("LoadGateway(\"\") = %+v", *g)
	}
	if err := g.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
}

func TestLoadGateway(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "sluice.yaml")
	doc := `
listen:
  https: ["127.0.0.1:9443"]
tls:
  certificates:
    - {cert_file: certs/a.pem, key_file: /etc/a.key}
resources:
  file: conf/apisix.yaml
engine: std
timeouts:
  idle: 1.5s
  upstream_read: 2.5   # seconds
limits:
  max_body_bytes: 1048576
log:
  level: debug
  access_log: logs/access.log
  error_log: off
`
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	g, err := LoadGateway(path)
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultGateway()
	want.Listen.HTTPS = []string{"127.0.0.1:9443"}
	want.TLS.Certificates = []Certificate{{CertFile: filepath.Join(dir, "certs/a.pem"), KeyFile: "/etc/a.key"}}
	want.Resources.File = filepath.Join(dir, "conf/apisix.yaml")
	want.Engine = EngineStd
	want.Timeouts.Idle = Duration(1500 * time.Millisecond)
	want.Timeouts.UpstreamRead = Duration(2500 * time.Millisecond)
	want.Limits.MaxBodyBytes = 1 << 20
	want.Log = Log{Level: "debug", AccessLog: filepath.Join(dir, "logs/access.log"), ErrorLog: LogOff}
	want.DataDir = filepath.Join(dir, "data") // relative to the config file, like every path
	if !reflect.DeepEqual(*g, want) {
		t.Errorf("got  %+v\nwant %+v", *g, want)
	}
}

func TestGatewayErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		doc  string
		want []string
	}{
		{
			desc: "unknown and mistyped keys",
			doc:  "listen: {htp: []}\ntimeouts: {idle: soon, shutdown: [1]}\nlimits: {max_header_count: many}\n",
			want: []string{
				"limits.max_header_count: must be an integer",
				"listen.htp: unknown field",
				`timeouts.idle: must be a duration like "60s" or a number of seconds`,
				`timeouts.shutdown: must be a duration like "60s" or a number of seconds`,
			},
		},
		{
			desc: "validation",
			doc: "listen: {http: [\"0.0.0.0:9080\", \"nohost\", \"a:99999\"], https: [\"0.0.0.0:9080\"]}\n" +
				"tls: {certificates: [{cert_file: a}]}\nengine: turbo\n" +
				"timeouts: {read_header: 0s, shutdown: -1s}\nlimits: {max_request_line: 0, max_body_bytes: -1}\n" +
				"log: {level: trace, access_log: \"\"}\n",
			want: []string{
				`listen.http[1]: must be "host:port"`,
				"listen.http[2]: port must be between 0 and 65535",
				`listen.https[0]: duplicate address "0.0.0.0:9080" (also listen.http[0])`,
				"tls.certificates[0].key_file: is required",
				"engine: must be one of fast, std",
				"timeouts.read_header: must be greater than 0",
				"timeouts.shutdown: must be >= 0",
				"limits.max_request_line: must be >= 1",
				"limits.max_body_bytes: must be >= 0 (0 means unlimited)",
				"log.level: must be one of debug, info, warn, error",
				`log.access_log: must be "stdout", "stderr", "off" or a file path`,
			},
		},
		{
			desc: "https needs certificates, some listener needed",
			doc:  "listen: {http: [], https: [\":443\"]}\n",
			want: []string{"tls.certificates: is required when listen.https is set"},
		},
		{
			desc: "no listeners",
			doc:  "listen: {http: []}\n",
			want: []string{"listen: must have at least one http or https address"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			g, err := ParseGateway([]byte(tt.doc), "sluice.yaml")
			if err == nil {
				err = g.Validate()
			}
			assertErrs(t, err, tt.want)
		})
	}
}

func TestDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{`"60s"`, time.Minute, true},
		{`"1.5s"`, 1500 * time.Millisecond, true},
		{`2`, 2 * time.Second, true},
		{`0.25`, 250 * time.Millisecond, true},
		{`"soon"`, 0, false},
		{`1e300`, 0, false},
		{`true`, 0, false},
	}
	for _, tt := range tests {
		var d Duration
		err := d.UnmarshalJSON([]byte(tt.in))
		if (err == nil) != tt.ok || (tt.ok && d.Std() != tt.want) {
			t.Errorf("UnmarshalJSON(%s) = %v, %v; want %v ok=%v", tt.in, d, err, tt.want, tt.ok)
		}
	}
	if b, _ := Duration(time.Minute).MarshalJSON(); string(b) != `"1m0s"` {
		t.Errorf("MarshalJSON = %s", b)
	}
}
