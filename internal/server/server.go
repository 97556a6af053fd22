// Package server owns the gateway's listeners and their lifecycle: it accepts
// connections, sends each to the right engine (fast HTTP/1.1, or net/http for
// HTTP/2, h2c and the std engine), and drains them on shutdown.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicegw/sluice/internal/config"
	"github.com/sluicegw/sluice/internal/h1"
	"github.com/sluicegw/sluice/internal/proxy"
)

// Server is the set of data-plane listeners of one gateway process.
type Server struct {
	gw     *proxy.Gateway
	conf   *config.Gateway
	log    *slog.Logger
	fast   proxy.FastOptions
	tlsCfg *tls.Config

	// plainH2 serves h2c connections the fast engine hands over, or every
	// plain connection with engine "std"; tlsH2 serves TLS connections that
	// negotiated h2 (and every TLS connection with engine "std").
	plainH2, tlsH2 *http.Server
	plainL, tlsL   *chanListener

	mu        sync.Mutex
	listeners []net.Listener
	conns     map[net.Conn]*atomic.Bool // fast-engine connections → idle flag, for drain
	draining  atomic.Bool
	closing   bool
	wg        sync.WaitGroup
	stats     connStats
}

// New prepares listeners' settings from conf; call Listen then Serve.
func New(gw *proxy.Gateway, conf *config.Gateway, log *slog.Logger) (*Server, error) {
	s := &Server{gw: gw, conf: conf, log: log, conns: make(map[net.Conn]*atomic.Bool)}
	s.fast = proxy.FastOptions{
		Limits: h1.Limits{
			MaxRequestLine: conf.Limits.MaxRequestLine,
			MaxHeaderBytes: conf.Limits.MaxHeaderBytes,
			MaxHeaderCount: conf.Limits.MaxHeaderCount,
		},
		ReadHeaderTimeout: time.Duration(conf.Timeouts.ReadHeader),
		IdleTimeout:       time.Duration(conf.Timeouts.Idle),
		BodyTimeout:       60 * time.Second,
		SendTimeout:       60 * time.Second,
		MaxBodyBytes:      conf.Limits.MaxBodyBytes,
	}
	s.fast.Draining = &s.draining
	gw.SetMaxBodyBytes(conf.Limits.MaxBodyBytes)
	if len(conf.TLS.Certificates) > 0 {
		certs := make([]tls.Certificate, 0, len(conf.TLS.Certificates))
		for i, c := range conf.TLS.Certificates {
			cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("tls.certificates[%d]: %w", i, err)
			}
			certs = append(certs, cert)
		}
		// With several certificates, crypto/tls picks by SNI from each
		// certificate's names (first one as the fallback).
		s.tlsCfg = &tls.Config{Certificates: certs, NextProtos: []string{"h2", "http/1.1"}, MinVersion: tls.VersionTLS12}
	}
	s.plainL = newChanListener()
	s.tlsL = newChanListener()
	s.plainH2 = s.newHTTPServer(false)
	s.tlsH2 = s.newHTTPServer(true)
	return s, nil
}

func (s *Server) newHTTPServer(tlsConn bool) *http.Server {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	if tlsConn {
		p.SetHTTP2(true)
	} else {
		p.SetUnencryptedHTTP2(true)
	}
	hs := &http.Server{
		Handler:           s.gw,
		Protocols:         p,
		ReadHeaderTimeout: time.Duration(s.conf.Timeouts.ReadHeader),
		IdleTimeout:       time.Duration(s.conf.Timeouts.Idle),
		MaxHeaderBytes:    s.conf.Limits.MaxHeaderBytes + s.conf.Limits.MaxRequestLine,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		ConnState:         s.connState,
	}
	if tlsConn {
		hs.TLSConfig = s.tlsCfg
	}
	return hs
}

// Listen opens every configured listener; nothing is served until Serve.
func (s *Server) Listen() error {
	for _, addr := range s.conf.Listen.HTTP {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			s.closeListeners()
			return fmt.Errorf("listen.http %s: %w", addr, err)
		}
		s.listeners = append(s.listeners, &taggedListener{Listener: l, tls: false})
	}
	for _, addr := range s.conf.Listen.HTTPS {
		if s.tlsCfg == nil {
			s.closeListeners()
			return fmt.Errorf("listen.https %s: no tls.certificates configured", addr)
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			s.closeListeners()
			return fmt.Errorf("listen.https %s: %w", addr, err)
		}
		s.listeners = append(s.listeners, &taggedListener{Listener: l, tls: true})
	}
	return nil
}

// Addrs returns the bound addresses, HTTP listeners first.
func (s *Server) Addrs() []net.Addr {
	out := make([]net.Addr, 0, len(s.listeners))
	for _, l := range s.listeners {
		out = append(out, l.Addr())
	}
	return out
}

type taggedListener struct {
	net.Listener
	tls bool
}

func (s *Server) closeListeners() {
	for _, l := range s.listeners {
		l.Close()
	}
}

// Serve accepts on every listener until Shutdown.
func (s *Server) Serve() {
	go func() { _ = s.plainH2.Serve(s.plainL) }()
	go func() { _ = s.tlsH2.Serve(s.tlsL) }()
	for _, l := range s.listeners {
		tl := l.(*taggedListener)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.acceptLoop(tl)
		}()
	}
}

func (s *Server) acceptLoop(l *taggedListener) {
	var backoff time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.isClosing() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Temporary failures such as EMFILE: back off instead of spinning.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Error("accept failed", "addr", l.Addr().String(), "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		s.stats.accepted.Add(1)
		if tc, ok := nc.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		go s.handleConn(nc, l.tls)
	}
}

func (s *Server) handleConn(nc net.Conn, isTLS bool) {
	s.stats.handled.Add(1)
	std := s.conf.Engine == config.EngineStd
	if isTLS {
		tc := tls.Server(nc, s.tlsCfg)
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(s.conf.Timeouts.ReadHeader))
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			nc.Close()
			return
		}
		if std || tc.ConnectionState().NegotiatedProtocol == "h2" {
			s.tlsL.push(tc)
			return
		}
		nc = tc
	} else if std {
		s.plainL.push(nc)
		return
	}
	idle := new(atomic.Bool)
	if !s.track(nc, idle) {
		nc.Close()
		return
	}
	defer s.untrack(nc)
	scheme := "http"
	if isTLS {
		scheme = "https"
	}
	var h2c func(net.Conn)
	if !isTLS {
		h2c = s.plainL.push
	}
	s.gw.ServeFast(nc, scheme, &s.fast, h2c, idle)
}

// track registers a fast-engine connection; false means the server is closing.
// The mutex is taken per connection, never per request.
func (s *Server) track(nc net.Conn, idle *atomic.Bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.conns[nc] = idle
	s.wg.Add(1)
	return true
}

func (s *Server) untrack(nc net.Conn) {
	s.mu.Lock()
	delete(s.conns, nc)
	s.mu.Unlock()
	s.wg.Done()
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// Shutdown stops accepting, lets in-flight requests finish within ctx, then
// closes what is left. Idle keepalive connections are closed at once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.draining.Store(true)
	s.closeListeners()
	s.plainL.Close()
	s.tlsL.Close()
	// One error slot per server: the two shutdowns run concurrently.
	errs := make([]error, 2)
	var hwg sync.WaitGroup
	for i, hs := range []*http.Server{s.plainH2, s.tlsH2} {
		hwg.Add(1)
		go func() {
			defer hwg.Done()
			errs[i] = hs.Shutdown(ctx)
		}()
	}
	// Fast-engine connections: idle ones are woken and end at once; busy ones
	// finish their request and end when they next call Idle.
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		s.mu.Lock()
		for nc, idle := range s.conns {
			if idle.Load() {
				_ = nc.SetReadDeadline(time.Now())
			}
		}
		s.mu.Unlock()
		select {
		case <-done:
			hwg.Wait()
			return errors.Join(errs...)
		case <-ctx.Done():
			s.mu.Lock()
			for nc := range s.conns {
				nc.Close()
			}
			s.mu.Unlock()
			hwg.Wait()
			return errors.Join(append(errs, fmt.Errorf("drain: %w", ctx.Err()))...)
		case <-tick.C:
		}
	}
}
