package runtime

import (
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/sluicegw/sluice/internal/balancer"
	"github.com/sluicegw/sluice/internal/config"
	"github.com/sluicegw/sluice/internal/expr"
	"github.com/sluicegw/sluice/internal/health"
	"github.com/sluicegw/sluice/internal/lua"
	"github.com/sluicegw/sluice/internal/metrics"
	"github.com/sluicegw/sluice/internal/pipeline"
	"github.com/sluicegw/sluice/internal/router"
	"github.com/sluicegw/sluice/internal/store"
	"github.com/sluicegw/sluice/internal/upstream"
	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/shdict"
)

// Deps are the long-lived registries a compile draws state from. With a zero
// Deps, Compile only validates: it builds pickers and routers but no pools or
// transports, so `sluice validate` and the Admin API can run it freely.
type Deps struct {
	Balancers *balancer.Registry
	Upstreams *upstream.Registry
	Defaults  Defaults
	// EnabledPlugins limits which plugins may be configured; nil allows
	// every registered plugin.
	EnabledPlugins pipeline.Enabled
	// SharedDicts are handed to plugins; nil in validation-only compiles
	// gives plugins an empty registry.
	SharedDicts *shdict.Registry
	// Lasting keeps plugin objects across configurations; nil in
	// validation-only compiles.
	Lasting *plugin.Lasting
	// Log is handed to plugins (plugin.Deps.Log); nil discards.
	Log *slog.Logger
	// Metrics keeps routes' metrics handles across configurations; nil in
	// validation-only compiles.
	Metrics *metrics.Registry
	// Health runs upstream health checks; nil in validation-only compiles,
	// which therefore start no checker.
	Health *health.Registry
}

// ResourcesFromListing decodes a store listing into typed resources.
func ResourcesFromListing(l store.Listing) (*config.Resources, error) {
	res := &config.Resources{}
	var errs []error
	// Key order, as etcd lists them: among routes of equal priority the
	// router prefers the earlier one, so the order must not depend on how
	// the listing was assembled.
	items := slices.Clone(l.Items)
	slices.SortFunc(items, func(a, b store.Item) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.ID, b.ID))
	})
	for _, it := range items {
		// The load-time decode: strict, integer ids to strings, defaults
		// applied (APISIX 3.14+ stores bodies as sent), validation later.
		err := res.AppendKind(string(it.Kind), it.ID, it.Value)
		if errors.Is(err, config.ErrUnknownKind) {
			continue // kinds sluice does not serve yet
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s/%s: %w", it.Kind, it.ID, err))
		}
	}
	return res, errors.Join(errs...)
}

// Compile validates res as a whole and compiles it into a Snapshot. Any error
// rejects the whole set: the caller keeps serving its previous Snapshot.
func Compile(res *config.Resources, rev int64, deps Deps) (*Snapshot, error) {
	if err := res.Validate(); err != nil {
		return nil, err
	}
	if deps.Defaults.Timeouts == (upstream.Timeouts{}) {
		deps.Defaults.Timeouts = DefaultTimeouts()
	}
	c := &compiler{deps: deps, upstreams: make(map[string]*upstream.Upstream)}
	// Upstream objects first: plugins (traffic-split) resolve them by id
	// when they are built, global rules included.
	for i := range res.Upstreams {
		u := &res.Upstreams[i]
		cu, err := c.upstream(u, "upstreams/"+u.ID)
		if err != nil {
			c.errs = append(c.errs, prefixed("upstreams[id="+u.ID+"]", err)...)
			continue
		}
		c.upstreams[u.ID] = cu
	}
	c.pluginUps = newPluginUpstreams(c)
	plugins, err := newPluginSet(res, deps, c.pluginUps)
	if err != nil {
		return nil, errors.Join(append(c.errs, err)...)
	}
	c.plugins = plugins
	c.metrics = newMetricsBuilder(deps.Metrics, plugins)
	services := make(map[string]*config.Service, len(res.Services))
	for i := range res.Services {
		services[res.Services[i].ID] = &res.Services[i]
	}
	serviceUps := make(map[string]*upstream.Upstream)
	for id, s := range services {
		if s.Upstream != nil {
			cu, err := c.upstream(s.Upstream, "services/"+id+"/upstream")
			if err != nil {
				c.errs = append(c.errs, prefixed("services[id="+id+"].upstream", err)...)
				continue
			}
			serviceUps[id] = cu
		} else if s.UpstreamID != "" {
			serviceUps[id] = c.upstreams[s.UpstreamID]
		}
	}

	snap := &Snapshot{Revision: rev}
	var entries []router.Route[*Route]
	for i := range res.Routes {
		r := &res.Routes[i]
		cr, entry, err := c.route(r, services, serviceUps)
		if err != nil {
			c.errs = append(c.errs, prefixed("routes[id="+r.ID+"]", err)...)
			continue
		}
		snap.Routes = append(snap.Routes, cr)
		if r.Status == nil || *r.Status == 1 {
			entries = append(entries, entry)
		}
	}
	// Consumers' chains built later, by requests, find the inline upstreams
	// compiled above but compile no new ones.
	c.pluginUps.finish()
	if len(c.errs) > 0 {
		return nil, errors.Join(c.errs...)
	}
	rt, err := router.New(entries)
	if err != nil {
		return nil, fmt.Errorf("building router: %w", err)
	}
	snap.Router = rt
	snap.NoRouteMetrics = c.metrics.noRoute()
	snap.upstreamKeys = c.keys
	sort.Slice(snap.Routes, func(i, j int) bool { return snap.Routes[i].ID < snap.Routes[j].ID })
	return snap, nil
}

type compiler struct {
	deps      Deps
	upstreams map[string]*upstream.Upstream
	keys      []string // balancer state keys of every compiled upstream
	plugins   *pluginSet
	metrics   *metricsBuilder
	errs      []error
	// pluginUps compiles the upstreams plugins ask for (traffic-split).
	pluginUps *pluginUpstreams
}

func (c *compiler) route(r *config.Route, services map[string]*config.Service,
	serviceUps map[string]*upstream.Upstream) (*Route, router.Route[*Route], error) {
	cr := &Route{ID: r.ID, Name: r.Name, ServiceID: r.ServiceID}
	var svc *config.Service
	if r.ServiceID != "" {
		svc = services[r.ServiceID]
	}
	switch {
	case r.Upstream != nil:
		u, err := c.upstream(r.Upstream, "routes/"+r.ID+"/upstream")
		if err != nil {
			return nil, router.Route[*Route]{}, fmt.Errorf("upstream: %w", err)
		}
		cr.Upstream = u
	case r.UpstreamID != "":
		cr.Upstream = c.upstreams[r.UpstreamID]
	case svc != nil:
		cr.Upstream = serviceUps[r.ServiceID]
	}
	switch {
	case r.EnableWebsocket != nil:
		cr.EnableWebsocket = *r.EnableWebsocket
	case svc != nil && svc.EnableWebsocket != nil:
		cr.EnableWebsocket = *svc.EnableWebsocket
	}
	chain, err := c.plugins.chain(r, svc)
	if err != nil {
		return nil, router.Route[*Route]{}, err
	}
	cr.Chain = chain
	var svcPlugins map[string]any
	if svc != nil {
		svcPlugins = svc.Plugins
	}
	cr.ConsumerChains = c.plugins.consumerChains(pipeline.Merge(r.Plugins, c.plugins.pluginConfigs[r.PluginConfigID], svcPlugins))
	cr.Timeouts = c.deps.Defaults.Timeouts
	if cr.Upstream != nil {
		cr.Timeouts = cr.Upstream.Timeouts
	}
	if r.Timeout != nil {
		cr.timeout = r.Timeout
		cr.Timeouts = timeouts(r.Timeout, cr.Timeouts)
	}

	entry := router.Route[*Route]{
		ID:          r.ID,
		URIs:        r.URIs,
		Hosts:       r.Hosts,
		Methods:     r.Methods,
		RemoteAddrs: r.RemoteAddrs,
		Priority:    r.Priority,
		Value:       cr,
	}
	if r.URI != "" {
		entry.URIs = []string{r.URI}
	}
	if r.Host != "" {
		entry.Hosts = []string{r.Host}
	}
	if len(entry.Hosts) == 0 && svc != nil {
		// APISIX: a route without hosts inherits its service's hosts.
		entry.Hosts = svc.Hosts
	}
	if r.RemoteAddr != "" {
		entry.RemoteAddrs = []string{r.RemoteAddr}
	}
	if len(r.Vars) > 0 {
		e, err := expr.Compile(r.Vars)
		if err != nil {
			return nil, entry, fmt.Errorf("vars: %w", err)
		}
		entry.Vars = e
	}
	if r.FilterFunc != "" {
		// APISIX's filter_func: Lua, compiled once here; routes without one
		// keep a nil Filter and never reach Lua.
		rt := lua.Shared(c.deps.Lasting, c.deps.SharedDicts, c.deps.Log)
		f, err := lua.CompileFilter(rt, r.FilterFunc, c.deps.Log)
		if err != nil {
			return nil, entry, fmt.Errorf("filter_func: %w", err)
		}
		entry.Filter = func(req router.Request) bool { return f.Match(req) }
	}
	cr.Metrics = c.metrics.route(r, svc, entry.URIs, entry.Hosts)
	return cr, entry, nil
}

func timeouts(t *config.Timeout, base upstream.Timeouts) upstream.Timeouts {
	if t.Connect > 0 {
		base.Connect = seconds(t.Connect)
	}
	if t.Send > 0 {
		base.Send = seconds(t.Send)
	}
	if t.Read > 0 {
		base.Read = seconds(t.Read)
	}
	return base
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// defaultPort is the port a node without one gets, by scheme.
func defaultPort(scheme string) int {
	if scheme == "https" || scheme == "grpcs" {
		return 443
	}
	return 80
}

func (c *compiler) upstream(u *config.Upstream, key string) (*upstream.Upstream, error) {
	scheme := u.Scheme
	if scheme == "" {
		scheme = "http"
	}
	c.keys = append(c.keys, key)
	cu := &upstream.Upstream{
		Key:          key,
		Scheme:       scheme,
		PassHost:     u.PassHost,
		UpstreamHost: u.UpstreamHost,
		Timeouts:     c.deps.Defaults.Timeouts,
	}
	if cu.PassHost == "" {
		cu.PassHost = "pass"
	}
	if u.Timeout != nil {
		cu.Timeouts = timeouts(u.Timeout, cu.Timeouts)
	}
	nodes := make([]balancer.Node, 0, len(u.Nodes))
	for _, n := range u.Nodes {
		port := n.Port
		if port == 0 {
			port = defaultPort(scheme)
		}
		nodes = append(nodes, balancer.Node{
			Addr:     net.JoinHostPort(n.Host, strconv.Itoa(port)),
			Host:     n.Host,
			Port:     port,
			Weight:   n.Weight,
			Priority: n.Priority,
		})
	}
	// The picker orders nodes by descending priority (stable); Targets use
	// the same order so Node.Index finds a node's pool.
	slices.SortStableFunc(nodes, func(a, b balancer.Node) int { return b.Priority - a.Priority })
	cu.Retries = len(nodes) - 1
	if u.Retries != nil {
		cu.Retries = *u.Retries
	}
	if cu.Retries < 0 {
		cu.Retries = 0
	}
	if u.RetryTimeout != nil {
		cu.RetryTimeout = seconds(*u.RetryTimeout)
	}
	picker, err := balancer.New(balancer.Spec{
		UpstreamKey: key,
		Type:        u.Type,
		HashOn:      u.HashOn,
		Key:         u.Key,
		Nodes:       nodes,
		Health:      c.health(key, u, nodes),
	}, c.deps.Balancers)
	if err != nil {
		return nil, fmt.Errorf("balancer: %w", err)
	}
	cu.Picker = picker

	tlsConf, err := clientTLS(u)
	if err != nil {
		return nil, err
	}
	if cu.TLSEnabled() {
		cu.TLS = tlsConf
	}
	ka := config.KeepalivePool{Size: 320, IdleTimeout: 60, Requests: 1000}
	if u.KeepalivePool != nil {
		ka = *u.KeepalivePool
	}
	cu.MaxRequests = ka.Requests
	for _, n := range nodes {
		t := &upstream.Target{Node: n, HostHeader: n.Host}
		if n.Port != defaultPort(scheme) {
			t.HostHeader = n.Addr
		}
		if c.deps.Upstreams != nil {
			var poolTLS *tls.Config
			if cu.TLSEnabled() {
				poolTLS = tlsConf.Clone()
				if net.ParseIP(n.Host) == nil {
					poolTLS.ServerName = n.Host
				}
				if cu.PassHost == "rewrite" && cu.UpstreamHost != "" {
					poolTLS.ServerName = cu.UpstreamHost
				}
			}
			t.Pool = c.deps.Upstreams.Pool(upstream.PoolKey{
				UpstreamKey: key,
				Addr:        n.Addr,
				TLS:         cu.TLSEnabled(),
				ServerName:  serverName(poolTLS),
				Size:        ka.Size,
				IdleTimeout: seconds(ka.IdleTimeout),
				MaxRequests: ka.Requests,
			}, poolTLS)
		}
		cu.Targets = append(cu.Targets, t)
	}
	if c.deps.Upstreams != nil {
		tkey := fmt.Sprintf("%s|%s|%d|%g|%v|%s", key, scheme, ka.Size, ka.IdleTimeout, u.TLS != nil, tlsFingerprint(u))
		cu.HTTPTransport = c.deps.Upstreams.Transport(tkey, func() *http.Transport {
			return newTransport(scheme, ka, tlsConf)
		})
	}
	return cu, nil
}

func serverName(c *tls.Config) string {
	if c == nil {
		return ""
	}
	return c.ServerName
}

func tlsFingerprint(u *config.Upstream) string {
	if u.TLS == nil {
		return ""
	}
	v := u.TLS.Verify != nil && *u.TLS.Verify
	return fmt.Sprintf("%v|%d|%d", v, len(u.TLS.ClientCert), len(u.TLS.ClientKey))
}

// clientTLS builds the TLS client config for an upstream. Like APISIX, upstream
// certificates are not verified unless tls.verify is true.
func clientTLS(u *config.Upstream) (*tls.Config, error) {
	conf := &tls.Config{InsecureSkipVerify: true} //nolint:gosec // APISIX's default; tls.verify turns it on.
	if u.TLS != nil {
		if u.TLS.Verify != nil && *u.TLS.Verify {
			conf.InsecureSkipVerify = false
		}
		if u.TLS.ClientCert != "" {
			cert, err := tls.X509KeyPair([]byte(u.TLS.ClientCert), []byte(u.TLS.ClientKey))
			if err != nil {
				return nil, fmt.Errorf("tls.client_cert: %w", err)
			}
			conf.Certificates = []tls.Certificate{cert}
		}
	}
	return conf, nil
}

// newTransport builds the net/http transport for an upstream: HTTP/1.1 for
// http/https, HTTP/2 for grpc (h2c) and grpcs. Timeouts are applied per request
// by the proxy, since a route may override the upstream's.
func newTransport(scheme string, ka config.KeepalivePool, tlsConf *tls.Config) *http.Transport {
	t := &http.Transport{
		Proxy:                 nil,
		MaxIdleConnsPerHost:   ka.Size,
		IdleConnTimeout:       seconds(ka.IdleTimeout),
		TLSClientConfig:       tlsConf,
		DisableCompression:    true,
		ExpectContinueTimeout: 0,
		ForceAttemptHTTP2:     false,
		Protocols:             new(http.Protocols),
		DialContext:           upstream.DialContext,
	}
	switch scheme {
	case "grpc":
		t.Protocols.SetUnencryptedHTTP2(true)
	case "grpcs":
		t.Protocols.SetHTTP2(true)
	default:
		t.Protocols.SetHTTP1(true)
	}
	return t
}

// ValidateListing checks a whole listing exactly as loading it would, without
// touching any registry and with every registered plugin allowed. A running
// gateway validates through (*Runtime).ValidateListing, which applies its
// plugin list.
func ValidateListing(l store.Listing) error { return validateListing(l, Deps{}) }

// validateListing compiles l with deps' plugin list and shared dicts only:
// balancer and pool registries are left out, so nothing outlives the check.
func validateListing(l store.Listing, deps Deps) error {
	res, err := ResourcesFromListing(l)
	if err != nil {
		return err
	}
	_, err = Compile(res, l.Revision, Deps{EnabledPlugins: deps.EnabledPlugins, SharedDicts: deps.SharedDicts,
		Defaults: Defaults{PluginAttr: deps.Defaults.PluginAttr}})
	return err
}

// prefixed puts a resource's path before each of its errors, so a resource
// with several problems reports every one with the path (one line each).
func prefixed(prefix string, err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, prefixed(prefix, e)...)
		}
		return out
	}
	return []error{fmt.Errorf("%s: %w", prefix, err)}
}
