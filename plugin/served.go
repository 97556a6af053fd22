package plugin

import (
	"strconv"
	"strings"
	"time"
)

// Served is what the gateway knows about a request once it has been
// answered: the facts behind nginx's $status, $request_time,
// $upstream_addr... The gateway fills Ctx.Served before the log phase;
// earlier phases see only Start.
type Served struct {
	// Start is when the request head had been read ($msec at the start).
	Start time.Time
	// Status is the status sent to the client ($status); 0 when nothing was
	// sent (the client went away first).
	Status int
	// BodyBytesSent counts the response body bytes sent ($body_bytes_sent).
	BodyBytesSent int64
	// BytesSent adds the response head to BodyBytesSent ($bytes_sent).
	BytesSent int64
	// RequestLength is the request line, head and body received
	// ($request_length).
	RequestLength int64
	// Latency is the time from Start to the end of the response
	// ($request_time).
	Latency time.Duration
	// UpstreamAddr is the "host:port" of the node of the last attempt
	// ($upstream_addr); empty when no upstream was tried.
	UpstreamAddr string
	// UpstreamStatus is the status the node answered ($upstream_status); 0
	// when none came back (connect error, timeout).
	UpstreamStatus int
	// UpstreamStart is when the last attempt began connecting.
	UpstreamStart time.Time
	// UpstreamLatency runs from UpstreamStart to the end of the upstream
	// response ($upstream_response_time).
	UpstreamLatency time.Duration
}

// Var returns a variable as nginx (and APISIX's log_format) would in the log
// phase: the response facts of Served ($status, $request_time,
// $upstream_addr, $body_bytes_sent...), response headers as $sent_http_*,
// the route and consumer ($route_id, $service_id, $consumer_name), and
// otherwise the request's own variables (Request.Var). Unlike Request.Var it
// may allocate: it is meant for loggers, not for per-request hot paths.
func (c *Ctx) Var(name string) (string, bool) {
	s := &c.Served
	switch name {
	case "status":
		if s.Status == 0 {
			return "", false
		}
		return strconv.Itoa(s.Status), true
	case "body_bytes_sent":
		return strconv.FormatInt(s.BodyBytesSent, 10), true
	case "bytes_sent":
		return strconv.FormatInt(s.BytesSent, 10), true
	case "request_length":
		return strconv.FormatInt(s.RequestLength, 10), true
	case "request_time":
		return seconds(s.Latency), true
	case "upstream_addr":
		return s.UpstreamAddr, s.UpstreamAddr != ""
	case "upstream_status":
		if s.UpstreamStatus == 0 {
			return "", s.UpstreamAddr != ""
		}
		return strconv.Itoa(s.UpstreamStatus), true
	case "upstream_response_time":
		if s.UpstreamAddr == "" {
			return "", false
		}
		return seconds(s.UpstreamLatency), true
	case "msec":
		t := s.Start.Add(s.Latency)
		return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64), true
	case "time_iso8601":
		return s.Start.Format("2006-01-02T15:04:05-07:00"), true
	case "time_local":
		return s.Start.Format("02/Jan/2006:15:04:05 -0700"), true
	case "route_id":
		return c.RouteID, c.RouteID != ""
	case "route_name":
		return c.RouteName, c.RouteName != ""
	case "service_id":
		return c.ServiceID, c.ServiceID != ""
	case "consumer_name":
		if c.Consumer == nil {
			return "", false
		}
		return c.Consumer.Username, true
	}
	if h, ok := strings.CutPrefix(name, "sent_http_"); ok {
		if c.Response == nil {
			return "", false
		}
		v := c.Response.Header(strings.ReplaceAll(h, "_", "-"))
		return v, v != ""
	}
	if c.Request != nil {
		if v, ok := c.Request.Var(name); ok {
			return v, true
		}
	}
	// Variables plugins set for later phases (ngx.var.x = ... in nginx;
	// opentelemetry's set_ngx_var): string values stored with Set.
	if v, ok := c.Get(name); ok {
		if s, ok := v.(string); ok {
			return s, true
		}
	}
	return "", false
}

// seconds formats d as nginx formats times: seconds with millisecond
// precision ("0.003").
func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', 3, 64)
}
