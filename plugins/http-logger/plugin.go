// Package httplogger implements APISIX's http-logger plugin: log entries,
// gathered in batches, POSTed to an HTTP(S) endpoint.
package httplogger

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/batch"
	"github.com/sluicegw/sluice/plugin/logentry"
)

// Name and Priority are APISIX's.
const (
	Name     = "http-logger"
	Priority = 410
)

func init() {
	plugin.Register(plugin.Descriptor{
		Name:      Name,
		Priority:  Priority,
		NewConfig: func() plugin.Config { return NewConfig() },
		New:       newHTTPLogger,
		Schema:    logentry.Schema(NewConfig(), "uri"),
	})
}

func newHTTPLogger(cfg plugin.Config, deps plugin.Deps) (any, error) {
	c := cfg.(*Config)
	b, err := logentry.New(logentry.Options{Plugin: Name, Settings: c.Settings, Metadata: deps.Metadata, RouteIDFallback: "no-matched"})
	if err != nil {
		return nil, err
	}
	maxPending := batch.MaxPendingFrom(deps.Metadata)
	key := fmt.Sprintf("%s uri=%q auth=%q timeout=%d concat=%s verify=%t pending=%d %s",
		Name, c.URI, c.AuthHeader, c.Timeout, c.ConcatMethod, c.SSLVerify, maxPending, c.Config.Key())
	p, err := batch.Get(deps.Lasting, key, func() (batch.Options, error) {
		s := newSink(c)
		return batch.Options{Config: c.Config, Send: s.send, MaxPending: maxPending,
			Log: deps.Logger(Name), OnClose: s.tr.CloseIdleConnections}, nil
	})
	if err != nil {
		return nil, err
	}
	return b.Instance(func(ctx *plugin.Ctx) {
		if p != nil {
			p.Push(b.Append(make([]byte, 0, 1024), ctx))
		}
	}), nil
}

// sink POSTs batches to the endpoint, over one keepalive connection pool.
type sink struct {
	uri, auth, contentType string
	newLine, single        bool
	client                 *http.Client
	tr                     *http.Transport
}

func newSink(c *Config) *sink {
	tr := &http.Transport{
		Proxy:               nil,
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: !c.SSLVerify}, //nolint:gosec // ssl_verify false is APISIX's default
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     60 * time.Second,
	}
	s := &sink{uri: c.URI, auth: c.AuthHeader, newLine: c.ConcatMethod == "new_line", single: c.BatchMaxSize == 1,
		tr: tr, client: &http.Client{Transport: tr, Timeout: time.Duration(c.Timeout) * time.Second}}
	s.contentType = "application/json"
	if s.newLine {
		s.contentType = "text/plain"
	}
	return s
}

// encode joins entries as APISIX does: a JSON array (json; the lone entry
// when batch_max_size is 1) or lines (new_line).
func (s *sink) encode(entries [][]byte) []byte {
	if !s.newLine || s.single && len(entries) == 1 {
		return batch.JSONArray(entries, s.single)
	}
	return bytes.Join(entries, []byte{'\n'})
}

func (s *sink) send(ctx context.Context, entries [][]byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.uri, bytes.NewReader(s.encode(entries)))
	if err != nil {
		return fmt.Errorf("http-logger: building the request: %w", err)
	}
	req.Header.Set("Content-Type", s.contentType)
	if s.auth != "" {
		req.Header.Set("Authorization", s.auth)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("http-logger: sending to %s: %w", s.uri, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // keep the connection reusable
	if resp.StatusCode >= 400 {
		return fmt.Errorf("http-logger: %s answered %d: %s", s.uri, resp.StatusCode, body)
	}
	return nil
}

var _ plugin.Config = (*Config)(nil)
