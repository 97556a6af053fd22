package metrics

import (
	"errors"
	"fmt"
	"math"
	"net"
	"sort"
	"strings"
)

// Attr is the gateway config's plugin_attr.prometheus, as in APISIX's
// config.yaml.
type Attr struct {
	// ExportIP and ExportPort are export_addr: where the exporter listens.
	ExportIP   string
	ExportPort int
	// ExportURI is the path the metrics are served on.
	ExportURI string
	// MetricPrefix starts every metric name of the gateway's own.
	MetricPrefix string
	// Buckets are apisix_http_latency's bounds in milliseconds.
	Buckets []float64
	// EnableExportServer starts the exporter's own listener. When false,
	// APISIX serves the metrics through the public-api plugin on the data
	// plane; sluice does not do that yet, so nothing serves them.
	EnableExportServer bool
}

// Addr is export_addr as "ip:port".
func (a Attr) Addr() string { return net.JoinHostPort(a.ExportIP, fmt.Sprint(a.ExportPort)) }

// DefaultAttr is APISIX's default plugin_attr.prometheus.
func DefaultAttr() Attr {
	return Attr{ExportIP: "127.0.0.1", ExportPort: 9091, ExportURI: "/apisix/prometheus/metrics",
		MetricPrefix: "apisix_", Buckets: DefaultBuckets(), EnableExportServer: true}
}

const attrPath = "plugin_attr.prometheus"

// ParseAttr reads plugin_attr.prometheus over DefaultAttr. Every problem is
// reported with its field path ("plugin_attr.prometheus.export_addr.port:
// must be an integer between 1 and 65535"); unknown keys are errors.
func ParseAttr(raw map[string]any) (Attr, error) {
	a := DefaultAttr()
	var errs []error
	fail := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", attrPath, field, fmt.Sprintf(format, args...)))
	}
	for _, key := range sortedKeys(raw) {
		v := raw[key]
		switch key {
		case "export_addr":
			obj, ok := v.(map[string]any)
			if !ok {
				fail(key, "must be an object with ip and port")
				continue
			}
			for _, k := range sortedKeys(obj) {
				switch k {
				case "ip":
					s, ok := obj[k].(string)
					if !ok || net.ParseIP(s) == nil && s != "localhost" {
						fail("export_addr.ip", "must be an IP address")
						continue
					}
					a.ExportIP = s
				case "port":
					n, ok := integer(obj[k])
					// 0 picks a free port, as for sluice's other listeners (tests).
					if !ok || n < 0 || n > 65535 {
						fail("export_addr.port", "must be an integer between 0 and 65535")
						continue
					}
					a.ExportPort = n
				default:
					fail("export_addr."+k, "unknown field")
				}
			}
		case "export_uri":
			s, ok := v.(string)
			if !ok || !strings.HasPrefix(s, "/") {
				fail(key, `must be a path starting with "/"`)
				continue
			}
			a.ExportURI = s
		case "metric_prefix":
			s, ok := v.(string)
			if !ok || !validPrefix(s) {
				fail(key, "must be letters, digits, '_' or ':', not starting with a digit")
				continue
			}
			a.MetricPrefix = s
		case "default_buckets":
			list, ok := v.([]any)
			if !ok || len(list) == 0 {
				fail(key, "must be a non-empty array of numbers")
				continue
			}
			b := make([]float64, 0, len(list))
			for i, e := range list {
				f, ok := number(e)
				if !ok || f <= 0 || math.IsInf(f, 0) || math.IsNaN(f) {
					fail(fmt.Sprintf("%s[%d]", key, i), "must be a positive number")
					b = nil
					break
				}
				if len(b) > 0 && f <= b[len(b)-1] {
					fail(fmt.Sprintf("%s[%d]", key, i), "must be greater than the previous bucket")
					b = nil
					break
				}
				b = append(b, f)
			}
			if b != nil {
				a.Buckets = b
			}
		case "enable_export_server":
			bv, ok := v.(bool)
			if !ok {
				fail(key, "must be a boolean")
				continue
			}
			a.EnableExportServer = bv
		case "refresh_interval":
			// APISIX renders metrics on a timer; sluice renders them on
			// each scrape, so the interval is accepted and has no effect.
			if f, ok := number(v); !ok || f <= 0 {
				fail(key, "must be a positive number")
			}
		case "metrics":
			fail(key, "extra_labels and expire are not supported")
		default:
			fail(key, "unknown field")
		}
	}
	return a, errors.Join(errs...)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case uint64:
		return float64(n), true
	}
	return 0, false
}

func integer(v any) (int, bool) {
	f, ok := number(v)
	if !ok || f != math.Trunc(f) || math.Abs(f) > 1<<31 {
		return 0, false
	}
	return int(f), true
}

// validPrefix reports whether s can start a Prometheus metric name.
func validPrefix(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_' || c == ':' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
