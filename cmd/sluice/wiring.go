package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sluicegw/sluice/internal/admin"
	"github.com/sluicegw/sluice/internal/config"
	"github.com/sluicegw/sluice/internal/control"
	"github.com/sluicegw/sluice/internal/lua"
	"github.com/sluicegw/sluice/internal/metrics"
	"github.com/sluicegw/sluice/internal/proxy"
	"github.com/sluicegw/sluice/internal/runtime"
	"github.com/sluicegw/sluice/internal/server"
	"github.com/sluicegw/sluice/internal/store"
	"github.com/sluicegw/sluice/plugin"
)

// openStore opens the configured store.
func openStore(conf *config.Gateway, log *slog.Logger) (store.Store, error) {
	switch conf.StoreType() {
	case config.StoreFile:
		return store.NewFile(conf.Resources.File, log.With("store", "file")), nil
	case config.StoreEtcd:
		e := conf.Store.Etcd
		tlsConf, err := etcdTLS(e)
		if err != nil {
			return nil, err
		}
		return store.OpenEtcd(store.EtcdConfig{
			Endpoints: e.Endpoints, Prefix: e.Prefix, Timeout: e.Timeout.Std(),
			User: e.User, Password: e.Password, TLS: tlsConf,
		}, log)
	default:
		return store.OpenEmbedded(conf.DataDir, log)
	}
}

func etcdTLS(e config.EtcdConfig) (*tls.Config, error) {
	t := e.TLS
	useTLS := t.CertFile != "" || t.CAFile != ""
	for _, ep := range e.Endpoints {
		if len(ep) > 8 && ep[:8] == "https://" {
			useTLS = true
		}
	}
	if !useTLS {
		return nil, nil
	}
	conf := &tls.Config{ServerName: t.ServerName, MinVersion: tls.VersionTLS12}
	conf.InsecureSkipVerify = t.Verify != nil && !*t.Verify //nolint:gosec // the operator turned verification off.
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("store.etcd.tls: %w", err)
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("store.etcd.tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("store.etcd.tls.ca_file: no certificate found")
		}
		conf.RootCAs = pool
	}
	return conf, nil
}

// sideListeners are the Admin API, control API and Prometheus exporter servers.
type sideListeners struct {
	admin, control, metrics    *http.Server
	adminL, controlL, metricsL net.Listener
}

func newSideListeners(conf *config.Gateway, st store.Store, rt *runtime.Runtime, plugins admin.PluginControl,
	log *slog.Logger) (*sideListeners, error) {
	s := &sideListeners{}
	if conf.Admin.Listen != config.ListenOff {
		keys, configured, err := adminKeys(conf, log)
		if err != nil {
			return nil, err
		}
		if !configured && !config.IsLoopback(conf.Admin.Listen) {
			return nil, fmt.Errorf("admin.listen %s is not a loopback address and no Admin API key is configured: "+
				"set admin.keys or SLUICE_ADMIN_KEY, or listen on 127.0.0.1", conf.Admin.Listen)
		}
		ak := make([]admin.Key, 0, len(keys))
		for _, k := range keys {
			role := admin.RoleAdmin
			if k.Role == "viewer" {
				role = admin.RoleViewer
			}
			ak = append(ak, admin.Key{Key: k.Key, Role: role})
		}
		api := admin.New(admin.Options{Store: st, Keys: ak, Validate: rt.ValidateListing, Log: log.With("component", "admin"),
			Plugins: plugins})
		l, err := net.Listen("tcp", conf.Admin.Listen)
		if err != nil {
			return nil, fmt.Errorf("admin.listen %s: %w", conf.Admin.Listen, err)
		}
		s.adminL, s.admin = l, sideServer(api, log)
	}
	if conf.Control.Listen != config.ListenOff {
		var status control.StoreStatus
		if e, ok := st.(*store.Etcd); ok {
			status = func() (bool, error) { return e.Reachable(), e.LastError() }
		}
		l, err := net.Listen("tcp", conf.Control.Listen)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("control.listen %s: %w", conf.Control.Listen, err)
		}
		s.controlL, s.control = l, sideServer(control.New(rt, conf.StoreType(), status), log)
	}
	return s, nil
}

func sideServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}

func (s *sideListeners) serve() {
	if s.admin != nil {
		go func() { _ = s.admin.Serve(s.adminL) }()
	}
	if s.control != nil {
		go func() { _ = s.control.Serve(s.controlL) }()
	}
	if s.metrics != nil {
		go func() { _ = s.metrics.Serve(s.metricsL) }()
	}
}

func (s *sideListeners) adminAddr() string   { return addrOf(s.adminL) }
func (s *sideListeners) controlAddr() string { return addrOf(s.controlL) }

func addrOf(l net.Listener) string {
	if l == nil {
		return config.ListenOff
	}
	return l.Addr().String()
}

func (s *sideListeners) shutdown(ctx context.Context) {
	for _, hs := range []*http.Server{s.admin, s.control, s.metrics} {
		if hs != nil {
			_ = hs.Shutdown(ctx)
		}
	}
}

func (s *sideListeners) close() {
	for _, l := range []net.Listener{s.adminL, s.controlL, s.metricsL} {
		if l != nil {
			l.Close()
		}
	}
}

// enabledPlugins returns the plugin names conf enables (all registered and
// all custom ones when it lists none), highest priority first, or an error
// naming unknown ones. A listed custom plugin whose file failed to load
// (broken) is left out without an error: its load error is logged.
func enabledPlugins(conf *config.Gateway, custom []plugin.Descriptor, broken map[string]bool) ([]string, error) {
	all := plugin.All()
	known := make(map[string]bool, len(all)+len(custom))
	for _, d := range all {
		known[d.Name] = true
	}
	for _, d := range custom {
		known[d.Name] = true
	}
	var unknown []string
	want := map[string]bool{}
	for _, n := range conf.Plugins {
		want[n] = true
		if !known[n] && !broken[n] {
			unknown = append(unknown, n)
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("plugins: unknown plugin(s) %s", strings.Join(unknown, ", "))
	}
	all = append(all, custom...)
	sort.SliceStable(all, func(i, j int) bool {
		if all[i].Priority != all[j].Priority {
			return all[i].Priority > all[j].Priority
		}
		return all[i].Name < all[j].Name
	})
	var names []string
	for _, d := range all {
		if conf.Plugins == nil || want[d.Name] {
			names = append(names, d.Name)
		}
	}
	return names, nil
}

// pluginControl reloads the enabled plugin list from the gateway config file,
// and the custom Lua plugins from lua.plugin_dirs.
type pluginControl struct {
	confPath string
	rt       *runtime.Runtime
	log      *slog.Logger
	// lua runs custom plugins' modules at load time and their
	// check_schema.
	lua *lua.Runtime
	// reloading serialises reloads (SIGHUP and the Admin API).
	reloading sync.Mutex
	mu        sync.Mutex
	names     []string
	luaSet    *lua.PluginSet
}

func (p *pluginControl) enabled() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.names)
}

func (p *pluginControl) set(names []string) {
	p.mu.Lock()
	p.names = names
	p.mu.Unlock()
	p.rt.SetEnabledPlugins(names)
}

// apply loads conf's custom Lua plugins (a file that fails keeps the
// previous version of its plugin; errors are logged with file and line)
// and applies them with conf's plugin list.
func (p *pluginControl) apply(conf *config.Gateway) error {
	p.reloading.Lock()
	defer p.reloading.Unlock()
	p.mu.Lock()
	prev := p.luaSet
	p.mu.Unlock()
	set, changed, errs := lua.LoadPlugins(conf.Lua.PluginDirs, prev, lua.PluginOptions{Runtime: p.lua})
	lua.LogPluginErrors(p.log, errs)
	broken := map[string]bool{}
	for _, err := range errs {
		var pe *lua.PluginError
		if errors.As(err, &pe) {
			broken[pe.Name] = true
		}
	}
	custom := set.Descriptors()
	names, err := enabledPlugins(conf, custom, broken)
	if err != nil {
		return err
	}
	if changed || prev == nil {
		p.rt.SetCustomPlugins(custom)
		if len(conf.Lua.PluginDirs) > 0 {
			p.log.Info("custom Lua plugins loaded", "plugins", strings.Join(set.Names(), ","))
		}
	}
	p.mu.Lock()
	p.luaSet = set
	p.mu.Unlock()
	p.set(names)
	return nil
}

// lookup returns an enabled plugin, built-in or custom.
func (p *pluginControl) lookup(name string) (plugin.Descriptor, bool) { return p.rt.LookupPlugin(name) }

// reload re-reads the gateway config's plugins list and custom Lua plugins
// and applies them.
func (p *pluginControl) reload() error {
	conf, err := config.LoadGateway(p.confPath)
	if err != nil {
		return err
	}
	if err := p.apply(conf); err != nil {
		return err
	}
	p.log.Info("plugin list reloaded", "plugins", len(p.enabled()))
	return nil
}

// listenMetrics opens the Prometheus exporter (plugin_attr.prometheus:
// export_addr, export_uri...) when the prometheus plugin is enabled and
// enable_export_server is on. A plugin list that enables prometheus later
// (SIGHUP) does not start it: that takes a restart.
func (s *sideListeners) listenMetrics(conf *config.Gateway, enabled []string, st store.Store, rt *runtime.Runtime,
	gw *proxy.Gateway, srv *server.Server, log *slog.Logger) error {
	attr, err := metrics.ParseAttr(conf.PluginAttr["prometheus"])
	if err != nil {
		return err
	}
	if !slices.Contains(enabled, "prometheus") || !attr.EnableExportServer {
		return nil
	}
	host, _ := os.Hostname()
	src := metrics.Sources{
		Routes: rt.Metrics(),
		Conns: func() metrics.ConnStats {
			c := srv.ConnStats()
			return metrics.ConnStats{Active: c.Active, Accepted: c.Accepted, Handled: c.Handled, Reading: c.Reading,
				Writing: c.Writing, Waiting: c.Waiting, Requests: gw.Requests()}
		},
		Revision: func() int64 {
			if snap := rt.Load(); snap != nil {
				return snap.Revision
			}
			return 0
		},
		Dicts: func() []metrics.DictStat {
			reg := rt.SharedDicts()
			var out []metrics.DictStat
			for _, name := range reg.Names() {
				if d, ok := reg.Get(name); ok {
					out = append(out, metrics.DictStat{Name: name, Capacity: d.Capacity(), Free: d.FreeSpace()})
				}
			}
			return out
		},
		Hostname: host,
		Version:  version,
	}
	switch e := st.(type) {
	case *store.Etcd:
		src.StoreReachable = func() (bool, bool) { return e.Reachable(), true }
	case *store.Embedded:
		// The embedded store is in-process: always reachable. It reports 1
		// so dashboards and alerts written for etcd keep working; a file
		// store has no server and, like APISIX standalone, no such metric.
		src.StoreReachable = func() (bool, bool) { return true, true }
	}
	src.Upstreams = func() []metrics.UpstreamHealth {
		var out []metrics.UpstreamHealth
		for _, us := range rt.HealthStatus() {
			for _, n := range us.Nodes {
				out = append(out, metrics.UpstreamHealth{Name: us.Name, IP: n.IP, Port: n.Port, Healthy: n.Healthy})
			}
		}
		return out
	}
	h, err := metrics.NewHandler(attr, src, log.With("component", "prometheus"))
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", attr.Addr())
	if err != nil {
		if _, set := conf.PluginAttr["prometheus"]["export_addr"]; set {
			return fmt.Errorf("plugin_attr.prometheus.export_addr %s: %w", attr.Addr(), err)
		}
		// The default address: prometheus is enabled unless the plugin list
		// says otherwise, and a second gateway on the same machine (tests,
		// development) must not fail to start over its metrics port.
		log.Error("prometheus exporter not started: the default export_addr is taken; set plugin_attr.prometheus.export_addr",
			"addr", attr.Addr(), "err", err)
		return nil
	}
	s.metricsL, s.metrics = l, sideServer(h, log)
	return nil
}

func (s *sideListeners) metricsAddr() string { return addrOf(s.metricsL) }
