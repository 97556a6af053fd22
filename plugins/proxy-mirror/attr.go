package proxymirror

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Attr is the gateway config's plugin_attr.proxy-mirror section: settings
// shared by every route that mirrors. timeout is APISIX's; the rest are
// sluice's bounds on the background sender.
type Attr struct {
	// Connect bounds dialing the mirror (and the TLS handshake).
	Connect time.Duration
	// Send bounds each write of the copy to the mirror.
	Send time.Duration
	// Read bounds the wait for each read of the mirror's answer.
	Read time.Duration
	// QueueSize is how many copies may wait for a worker; more are dropped.
	QueueSize int
	// Workers is how many copies are sent at once.
	Workers int
	// MaxBodyBytes is the largest request body mirrored; requests with a
	// larger one are not mirrored.
	MaxBodyBytes int64
}

// DefaultAttr returns APISIX's timeouts (config-default: 60s each) and
// sluice's sender bounds.
func DefaultAttr() Attr {
	return Attr{
		Connect: 60 * time.Second, Send: 60 * time.Second, Read: 60 * time.Second,
		QueueSize: 1024, Workers: 32, MaxBodyBytes: 1 << 20,
	}
}

// attrPath prefixes errors about the plugin_attr section.
const attrPath = "plugin_attr.proxy-mirror"

// ParseAttr reads plugin_attr.proxy-mirror over DefaultAttr (nil: the
// defaults). Errors carry the whole field path, e.g.
// "plugin_attr.proxy-mirror.timeout.read: must be a duration such as 60s or 2000ms, got "soon"".
func ParseAttr(raw map[string]any) (Attr, error) {
	a := DefaultAttr()
	for _, k := range sortedKeys(raw) {
		v := raw[k]
		var err error
		switch k {
		case "timeout":
			err = a.parseTimeout(v)
		case "queue_size":
			a.QueueSize, err = intIn(v, 1, 1<<20)
		case "workers":
			a.Workers, err = intIn(v, 1, 1024)
		case "max_body_bytes":
			var n int
			n, err = intIn(v, 0, 1<<30)
			a.MaxBodyBytes = int64(n)
		default:
			err = fmt.Errorf("%s: unknown field", k)
		}
		if err != nil {
			if k != "timeout" && !strings.HasPrefix(err.Error(), k+":") {
				err = fmt.Errorf("%s: %w", k, err)
			}
			return Attr{}, fmt.Errorf("%s.%w", attrPath, err)
		}
	}
	return a, nil
}

func (a *Attr) parseTimeout(v any) error {
	m, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("timeout: must be an object with connect, send and read, got %s", typeName(v))
	}
	for _, k := range sortedKeys(m) {
		var dst *time.Duration
		switch k {
		case "connect":
			dst = &a.Connect
		case "send":
			dst = &a.Send
		case "read":
			dst = &a.Read
		default:
			return fmt.Errorf("timeout.%s: unknown field", k)
		}
		d, err := parseNginxTime(m[k])
		if err != nil {
			return fmt.Errorf("timeout.%s: %w", k, err)
		}
		*dst = d
	}
	return nil
}

// parseNginxTime reads a time as nginx's config does: "60s", "2000ms",
// "1m30s" (units ms, s, m, h, d; a bare number is seconds). A YAML number is
// seconds too. It must be positive.
func parseNginxTime(v any) (time.Duration, error) {
	bad := func() (time.Duration, error) {
		return 0, fmt.Errorf("must be a positive duration such as 60s or 2000ms, got %s", describe(v))
	}
	var s string
	switch x := v.(type) {
	case string:
		s = strings.TrimSpace(x)
	case float64, int, int64, json.Number:
		f, err := toFloat(x)
		if err != nil || f <= 0 || f > 1e6 {
			return bad()
		}
		return time.Duration(f * float64(time.Second)), nil
	default:
		return bad()
	}
	if s == "" {
		return bad()
	}
	var total time.Duration
	for s != "" {
		i := 0
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		if i == 0 || i > 9 {
			return bad()
		}
		n, _ := strconv.Atoi(s[:i])
		s = s[i:]
		j := 0
		for j < len(s) && ('a' <= s[j] && s[j] <= 'z') {
			j++
		}
		unit := time.Second
		switch s[:j] {
		case "", "s":
			if j == 0 && s != "" {
				return bad() // a bare number must stand alone
			}
		case "ms":
			unit = time.Millisecond
		case "m":
			unit = time.Minute
		case "h":
			unit = time.Hour
		case "d":
			unit = 24 * time.Hour
		default:
			return bad()
		}
		s = s[j:]
		total += time.Duration(n) * unit
	}
	if total <= 0 {
		return bad()
	}
	return total, nil
}

func intIn(v any, lo, hi int) (int, error) {
	f, err := toFloat(v)
	if err != nil || f != math.Trunc(f) {
		return 0, fmt.Errorf("must be an integer, got %s", describe(v))
	}
	if f < float64(lo) || f > float64(hi) {
		return 0, fmt.Errorf("must be between %d and %d, got %v", lo, hi, f)
	}
	return int(f), nil
}

func toFloat(v any) (float64, error) {
	switch x := v.(type) {
	case float64:
		return x, nil
	case int:
		return float64(x), nil
	case int64:
		return float64(x), nil
	case uint64:
		return float64(x), nil
	case json.Number:
		return x.Float64()
	}
	return 0, fmt.Errorf("not a number: %T", v)
}

func describe(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprintf("%v (%s)", v, typeName(v))
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case float64, int, int64, uint64, json.Number:
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// key names the sender these settings and this mirror address need: routes
// mirroring to the same host with the same settings share one.
func (a Attr) key(host string) string {
	return fmt.Sprintf("%s host=%s connect=%s send=%s read=%s queue=%d workers=%d",
		Name, host, a.Connect, a.Send, a.Read, a.QueueSize, a.Workers)
}
