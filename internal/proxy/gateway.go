// Package proxy is the data plane: it matches a request against the current
// Snapshot, picks a node, forwards the request and streams the response back.
// Two engines share its rules: the net/http engine (HTTP/2, TLS, h2c, gRPC,
// and the reference for correctness) and the fast HTTP/1.1 engine.
package proxy

import (
	"log/slog"
	"sync/atomic"

	"github.com/sluicegw/sluice/internal/accesslog"
	"github.com/sluicegw/sluice/internal/runtime"
)

// Gateway holds what both engines need. It is safe for concurrent use.
type Gateway struct {
	rt     *runtime.Runtime
	log    *slog.Logger
	access *accesslog.Logger // nil: access log off
	// maxBody is limits.max_body_bytes for the net/http engine (the fast
	// engine has it in FastOptions); 0 means unlimited.
	maxBody int64
	// requests counts client requests on both engines (nginx's stub_status
	// "requests", apisix_http_requests_total).
	requests atomic.Uint64
}

// Requests returns how many client requests the gateway has received.
func (g *Gateway) Requests() uint64 { return g.requests.Load() }

// SetMaxBodyBytes bounds request bodies on the net/http engine; 0 means
// unlimited. Call it before serving.
func (g *Gateway) SetMaxBodyBytes(n int64) { g.maxBody = n }

// New returns a Gateway serving from rt. access may be nil.
func New(rt *runtime.Runtime, log *slog.Logger, access *accesslog.Logger) *Gateway {
	return &Gateway{rt: rt, log: log, access: access}
}

// Response bodies for the errors the gateway itself answers. The 404 body is
// APISIX's; the 5xx bodies follow nginx's default error pages, which is what
// APISIX clients see for them.
var (
	body404 = []byte(`{"error_msg":"404 Route Not Found"}` + "\n")
	body503 = []byte(`{"error_msg":"missing upstream configuration in Route or Service"}` + "\n")
)

func errorPage(status int) []byte {
	switch status {
	case 400:
		return page400
	case 502:
		return page502
	case 504:
		return page504
	case 500:
		return page500
	}
	return page500
}

var (
	page400 = nginxPage("400 Bad Request")
	page500 = nginxPage("500 Internal Server Error")
	page502 = nginxPage("502 Bad Gateway")
	page504 = nginxPage("504 Gateway Time-out")
)

func nginxPage(title string) []byte {
	return []byte("<html>\r\n<head><title>" + title + "</title></head>\r\n<body>\r\n<center><h1>" + title +
		"</h1></center>\r\n<hr><center>sluice</center>\r\n</body>\r\n</html>\r\n")
}
