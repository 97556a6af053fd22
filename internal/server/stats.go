package server

import (
	"net"
	"net/http"
	"sync"
	"sync/atomic"
)

// connStats counts client connections for nginx-style status
// (apisix_nginx_http_current_connections). Only per-connection events touch
// it: accepting, net/http's connection state changes, and the fast engine's
// own tracking, which it reads at scrape time. Nothing is counted per request
// on the fast engine.
type connStats struct {
	accepted atomic.Uint64
	handled  atomic.Uint64
	// std holds net/http connections (h2, h2c, TLS, engine "std") and
	// whether each is idle.
	std sync.Map // net.Conn → *atomic.Bool
}

// ConnStats are the client connection counts, as nginx's stub_status reports
// them. Reading is 0: sluice does not tell reading a request head apart from
// serving the request, so both count as Writing.
type ConnStats struct {
	Active, Accepted, Handled, Reading, Writing, Waiting uint64
}

// connState is net/http's ConnState hook.
func (s *Server) connState(nc net.Conn, st http.ConnState) {
	switch st {
	case http.StateNew:
		s.stats.std.Store(nc, new(atomic.Bool))
	case http.StateActive, http.StateIdle:
		if v, ok := s.stats.std.Load(nc); ok {
			v.(*atomic.Bool).Store(st == http.StateIdle)
		}
	case http.StateHijacked, http.StateClosed:
		s.stats.std.Delete(nc)
	}
}

// ConnStats returns the current connection counts. It walks the open
// connections, so it is meant for scrapes, not for request paths.
func (s *Server) ConnStats() ConnStats {
	out := ConnStats{Accepted: s.stats.accepted.Load(), Handled: s.stats.handled.Load()}
	s.mu.Lock()
	for _, idle := range s.conns {
		out.Active++
		if idle.Load() {
			out.Waiting++
		}
	}
	s.mu.Unlock()
	s.stats.std.Range(func(_, v any) bool {
		out.Active++
		if v.(*atomic.Bool).Load() {
			out.Waiting++
		}
		return true
	})
	out.Writing = out.Active - out.Waiting
	return out
}
