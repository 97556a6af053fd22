package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Gateway is sluice's own configuration file (`sluice -c sluice.yaml`). Every
// key is optional; DefaultGateway lists the defaults.
type Gateway struct {
	// Listen lists the addresses to serve on.
	Listen Listen `json:"listen"`
	// TLS holds the certificates for the HTTPS listeners.
	TLS TLS `json:"tls"`
	// Resources says where routes, services and upstreams come from.
	Resources ResourcesSource `json:"resources"`
	// Engine selects the HTTP/1.1 server implementation: "fast" (sluice's own
	// HTTP/1.1 path) or "std" (net/http only).
	Engine string `json:"engine"`
	// Timeouts bound client and upstream I/O.
	Timeouts Timeouts `json:"timeouts"`
	// Limits bound request sizes.
	Limits Limits `json:"limits"`
	// Log configures the error log and the access log.
	Log Log `json:"log"`
	// DataDir is where sluice keeps state of its own: the embedded store's
	// database and the generated Admin API key.
	DataDir string `json:"data_dir"`
	// Store says where resources live: embedded (default), etcd or file.
	Store StoreConfig `json:"store"`
	// Admin configures the Admin API listener and its keys.
	Admin Admin `json:"admin"`
	// Control configures the control API listener (status, revision served).
	Control Control `json:"control"`
	// Plugins lists the plugins configurations may use; omitted, every
	// plugin sluice has is enabled. Changes take effect on SIGHUP or
	// PUT /apisix/admin/plugins/reload.
	Plugins []string `json:"plugins"`
	// SharedDicts defines shared dicts by name and size ("10m", "512k"),
	// like nginx's lua_shared_dict.
	SharedDicts map[string]string `json:"shared_dicts"`
	// PluginAttr holds gateway-wide settings of plugins by plugin name, as
	// APISIX's config.yaml plugin_attr does (the prometheus exporter's
	// address, the opentelemetry collector...).
	PluginAttr map[string]map[string]any `json:"plugin_attr"`
	// Lua configures embedded Lua beyond the serverless plugins.
	Lua Lua `json:"lua"`
}

// Lua configures embedded Lua.
type Lua struct {
	// PluginDirs are directories of custom Lua plugins, APISIX's
	// extra_lua_path for plugins: each <name>.lua in them (not recursive)
	// returns a plugin module. Relative paths are resolved against the
	// config file's directory. They are re-read on SIGHUP and
	// PUT /apisix/admin/plugins/reload.
	PluginDirs []string `json:"plugin_dirs"`
}

// Listen lists listener addresses as "host:port"; an empty host means every
// interface and port 0 picks a free port (useful in tests).
type Listen struct {
	// HTTP listeners serve plain HTTP/1.1 and HTTP/2 with prior knowledge (h2c).
	HTTP []string `json:"http"`
	// HTTPS listeners serve TLS, with HTTP/2 and HTTP/1.1 chosen by ALPN.
	HTTPS []string `json:"https"`
}

// TLS holds server certificates.
type TLS struct {
	// Certificates are required when any HTTPS listener is configured.
	Certificates []Certificate `json:"certificates"`
}

// Certificate is one PEM certificate chain and its private key.
type Certificate struct {
	CertFile string `json:"cert_file"`
	KeyFile  string `json:"key_file"`
}

// ResourcesSource says where resources are read from.
type ResourcesSource struct {
	// File is an APISIX standalone resources file (YAML or JSON), watched and
	// reloaded on change. Empty means no file store.
	File string `json:"file"`
}

// Timeouts are Go durations ("60s", "1.5s") or numbers of seconds.
type Timeouts struct {
	// ReadHeader bounds reading a request's line and headers.
	ReadHeader Duration `json:"read_header"`
	// Idle bounds how long a client keep-alive connection may wait for its next request.
	Idle Duration `json:"idle"`
	// Shutdown bounds how long in-flight requests may drain after SIGTERM.
	Shutdown Duration `json:"shutdown"`
	// UpstreamConnect, UpstreamSend and UpstreamRead apply when neither the
	// route nor the upstream sets a timeout (APISIX's defaults are 60s each).
	UpstreamConnect Duration `json:"upstream_connect"`
	UpstreamSend    Duration `json:"upstream_send"`
	UpstreamRead    Duration `json:"upstream_read"`
}

// Limits bound what a client may send, in bytes unless stated.
type Limits struct {
	MaxRequestLine int `json:"max_request_line"`
	// MaxHeaderBytes bounds all header lines together.
	MaxHeaderBytes int `json:"max_header_bytes"`
	// MaxHeaderCount bounds the number of header fields.
	MaxHeaderCount int `json:"max_header_count"`
	// MaxBodyBytes bounds a request body; 0 means unlimited.
	MaxBodyBytes int64 `json:"max_body_bytes"`
}

// Log configures logging destinations: "stdout", "stderr", "off" or a file path.
type Log struct {
	// Level is debug, info, warn or error.
	Level string `json:"level"`
	// ErrorLog receives sluice's own log records.
	ErrorLog string `json:"error_log"`
	// AccessLog receives one JSON line per request.
	AccessLog string `json:"access_log"`
}

// Engine values.
const (
	EngineFast = "fast"
	EngineStd  = "std"
)

// Special log destinations.
const (
	LogStdout = "stdout"
	LogStderr = "stderr"
	LogOff    = "off"
)

// DefaultGateway returns the configuration used for every key the file omits.
func DefaultGateway() Gateway {
	return Gateway{
		Listen:  Listen{HTTP: []string{"0.0.0.0:9080"}},
		DataDir: "data",
		Admin:   Admin{Listen: "127.0.0.1:9180"},
		Control: Control{Listen: "127.0.0.1:9090"},
		Store: StoreConfig{Etcd: EtcdConfig{
			Endpoints: []string{"http://127.0.0.1:2379"},
			Prefix:    "/apisix",
			Timeout:   Duration(5 * time.Second),
		}},
		Engine: EngineFast,
		Timeouts: Timeouts{
			ReadHeader:      Duration(10 * time.Second),
			Idle:            Duration(60 * time.Second),
			Shutdown:        Duration(30 * time.Second),
			UpstreamConnect: Duration(60 * time.Second),
			UpstreamSend:    Duration(60 * time.Second),
			UpstreamRead:    Duration(60 * time.Second),
		},
		Limits: Limits{
			MaxRequestLine: 8192,
			MaxHeaderBytes: 32768,
			MaxHeaderCount: 100,
		},
		Log: Log{Level: "info", ErrorLog: LogStderr, AccessLog: LogStdout},
	}
}

// LoadGateway reads, decodes and validates the gateway configuration file at
// path; an empty path yields DefaultGateway. Relative file paths inside the
// file (resources.file, certificates, log files, data_dir) are resolved against
// the directory of path, so the config works from any working directory.
func LoadGateway(path string) (*Gateway, error) {
	if path == "" {
		g := DefaultGateway()
		return &g, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read gateway config: %w", err)
	}
	g, err := ParseGateway(data, path)
	if err != nil {
		return nil, err
	}
	g.resolvePaths(filepath.Dir(path))
	if err := g.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return g, nil
}

// ParseGateway strictly decodes a gateway configuration over DefaultGateway.
// name picks the format (".json" is JSON, anything else YAML) and prefixes
// errors. It does not validate or touch the file system.
func ParseGateway(data []byte, name string) (*Gateway, error) {
	f := FormatYAML
	if strings.EqualFold(filepath.Ext(name), ".json") {
		f = FormatJSON
	}
	tree, err := parseTree(data, f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	g := DefaultGateway()
	if tree == nil {
		return &g, nil // an empty file means all defaults
	}
	var w walker
	tree = w.check(tree, reflect.TypeFor[Gateway](), "")
	if len(w.errs) > 0 {
		return nil, fmt.Errorf("%s: %w", name, w.errs)
	}
	// Decoding over the defaults keeps every key the file does not mention.
	if err := decodeTree(tree, &g, ""); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &g, nil
}

func (g *Gateway) resolvePaths(dir string) {
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	g.Resources.File = abs(g.Resources.File)
	g.DataDir = abs(g.DataDir)
	for i, d := range g.Lua.PluginDirs {
		g.Lua.PluginDirs[i] = abs(d)
	}
	g.Store.resolvePaths(abs)
	for i := range g.TLS.Certificates {
		c := &g.TLS.Certificates[i]
		c.CertFile, c.KeyFile = abs(c.CertFile), abs(c.KeyFile)
	}
	for _, l := range []*string{&g.Log.ErrorLog, &g.Log.AccessLog} {
		switch *l {
		case LogStdout, LogStderr, LogOff:
		default:
			*l = abs(*l)
		}
	}
}

// Validate checks the gateway configuration and returns every problem as
// FieldErrors. It does not open files.
func (g *Gateway) Validate() error {
	var es FieldErrors
	seen := map[string]string{}
	for _, l := range []struct {
		name  string
		addrs []string
	}{{"listen.http", g.Listen.HTTP}, {"listen.https", g.Listen.HTTPS}} {
		for i, a := range l.addrs {
			p := index(l.name, i)
			if msg := checkListenAddr(a); msg != "" {
				es.add(p, "%s", msg)
				continue
			}
			if prev, dup := seen[a]; dup && !strings.HasSuffix(a, ":0") {
				es.add(p, "duplicate address %q (also %s)", a, prev)
			}
			seen[a] = p
		}
	}
	if len(g.Listen.HTTP)+len(g.Listen.HTTPS) == 0 {
		es.add("listen", "must have at least one http or https address")
	}
	if len(g.Listen.HTTPS) > 0 && len(g.TLS.Certificates) == 0 {
		es.add("tls.certificates", "is required when listen.https is set")
	}
	for i, c := range g.TLS.Certificates {
		p := index("tls.certificates", i)
		if c.CertFile == "" {
			es.add(p+".cert_file", "is required")
		}
		if c.KeyFile == "" {
			es.add(p+".key_file", "is required")
		}
	}
	if g.Engine != EngineFast && g.Engine != EngineStd {
		es.add("engine", "must be one of fast, std")
	}
	g.Timeouts.validate(&es)
	g.validateStore(&es)
	g.validateAdmin(&es)
	g.Limits.validate(&es)
	switch g.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		es.add("log.level", "must be one of debug, info, warn, error")
	}
	if g.Log.ErrorLog == "" {
		es.add("log.error_log", `must be "stdout", "stderr", "off" or a file path`)
	}
	if g.Log.AccessLog == "" {
		es.add("log.access_log", `must be "stdout", "stderr", "off" or a file path`)
	}
	for i, d := range g.Lua.PluginDirs {
		if d == "" {
			es.add(index("lua.plugin_dirs", i), "must be a directory path")
		}
	}
	return es.err()
}

func (t *Timeouts) validate(es *FieldErrors) {
	positive := []struct {
		name string
		d    Duration
	}{
		{"read_header", t.ReadHeader}, {"idle", t.Idle},
		{"upstream_connect", t.UpstreamConnect}, {"upstream_send", t.UpstreamSend}, {"upstream_read", t.UpstreamRead},
	}
	for _, f := range positive {
		if f.d <= 0 {
			es.add("timeouts."+f.name, "must be greater than 0")
		}
	}
	// A zero shutdown bound closes connections at once instead of draining.
	if t.Shutdown < 0 {
		es.add("timeouts.shutdown", "must be >= 0")
	}
}

func (l *Limits) validate(es *FieldErrors) {
	if l.MaxRequestLine < 1 {
		es.add("limits.max_request_line", "must be >= 1")
	}
	if l.MaxHeaderBytes < 1 {
		es.add("limits.max_header_bytes", "must be >= 1")
	}
	if l.MaxHeaderCount < 1 {
		es.add("limits.max_header_count", "must be >= 1")
	}
	if l.MaxBodyBytes < 0 {
		es.add("limits.max_body_bytes", "must be >= 0 (0 means unlimited)")
	}
}

// checkListenAddr returns a problem with a "host:port" listener address, or "".
func checkListenAddr(a string) string {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return `must be "host:port"`
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 || port[0] == '+' || port[0] == '-' {
		return "port must be between 0 and 65535"
	}
	if strings.ContainsAny(host, " /") {
		return "invalid host"
	}
	return ""
}

// Duration is a time.Duration that decodes from a Go duration string ("60s",
// "1.5s") or a number of seconds (60, 1.5), and encodes as a duration string.
type Duration time.Duration

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String formats d like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON encodes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON decodes a duration string or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("duration: %w", err)
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration: %w", err)
		}
		*d = Duration(v)
		return nil
	}
	var secs float64
	if err := json.Unmarshal(b, &secs); err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	ns := secs * float64(time.Second)
	if math.IsNaN(ns) || ns >= math.MaxInt64 || ns <= math.MinInt64 {
		return fmt.Errorf("duration: %v seconds is out of range", secs)
	}
	*d = Duration(ns)
	return nil
}
