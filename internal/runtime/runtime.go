package runtime

import (
	"context"
	"log/slog"
	"sort"
	"sync/atomic"
	"time"

	"github.com/sluicegw/sluice/internal/balancer"
	"github.com/sluicegw/sluice/internal/health"
	"github.com/sluicegw/sluice/internal/metrics"
	"github.com/sluicegw/sluice/internal/store"
	"github.com/sluicegw/sluice/internal/upstream"
	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/shdict"
)

// Runtime owns the current Snapshot and the registries whose state outlives it.
// One goroutine (Run) applies store changes; requests only Load.
type Runtime struct {
	current   atomic.Pointer[Snapshot]
	store     store.Store
	log       *slog.Logger
	defaults  Defaults
	balancers *balancer.Registry
	upstreams *upstream.Registry
	// enabled is the set of plugins configurations may use; nil: all.
	enabled atomic.Pointer[map[string]bool]
	// custom holds the plugins loaded at run time (custom Lua plugins) by
	// name; swapped whole by SetCustomPlugins.
	custom    atomic.Pointer[map[string]plugin.Descriptor]
	recompile chan struct{}
	started   atomic.Bool
	dicts     *shdict.Registry
	lasting   *plugin.Lasting
	metrics   *metrics.Registry
	health    *health.Registry
}

// New returns a Runtime reading from st. Call Run to load and follow changes.
func New(st store.Store, defaults Defaults, log *slog.Logger) *Runtime {
	return &Runtime{
		store:     st,
		log:       log,
		defaults:  defaults,
		balancers: balancer.NewRegistry(),
		upstreams: upstream.NewRegistry(),
		recompile: make(chan struct{}, 1),
		dicts:     shdict.NewRegistry(),
		lasting:   plugin.NewLasting(log),
		metrics:   newMetricsRegistry(defaults.PluginAttr),
		health:    health.NewRegistry(log),
	}
}

// Metrics is the registry of routes' metrics handles (the prometheus
// exporter walks it).
func (r *Runtime) Metrics() *metrics.Registry { return r.metrics }

// SharedDicts is the gateway's registry of shared dicts.
func (r *Runtime) SharedDicts() *shdict.Registry { return r.dicts }

// SetEnabledPlugins changes which plugins configurations may use (nil: every
// registered plugin) and recompiles the configuration with it, without a
// restart. A configuration that uses a plugin no longer enabled is rejected
// like any invalid one: the previous Snapshot keeps serving.
func (r *Runtime) SetEnabledPlugins(names []string) {
	var set *map[string]bool
	if names != nil {
		m := make(map[string]bool, len(names))
		for _, n := range names {
			m[n] = true
		}
		set = &m
	}
	old := r.enabled.Swap(set)
	// Recompile only a running runtime, and only for a real change: a
	// reload that changes nothing must not re-apply the configuration.
	if !r.started.Load() || sameSet(old, set) {
		return
	}
	select {
	case r.recompile <- struct{}{}:
	default:
	}
}

func sameSet(a, b *map[string]bool) bool {
	if a == nil || b == nil {
		return a == b
	}
	if len(*a) != len(*b) {
		return false
	}
	for k := range *a {
		if !(*b)[k] {
			return false
		}
	}
	return true
}

// PluginEnabled reports whether configurations may use the plugin named
// name (the gateway's plugins list, as last reloaded).
func (r *Runtime) PluginEnabled(name string) bool { return r.pluginEnabled(name) }

// SetCustomPlugins replaces the plugins defined at run time (custom Lua
// plugins; their names never clash with built-in ones) and recompiles the
// configuration with them. A configuration using a plugin that is gone is
// rejected like any invalid one: the previous Snapshot keeps serving. The
// caller passes only real changes (a reload that changed no file does not
// call it).
func (r *Runtime) SetCustomPlugins(ds []plugin.Descriptor) {
	m := make(map[string]plugin.Descriptor, len(ds))
	for _, d := range ds {
		m[d.Name] = d
	}
	r.custom.Store(&m)
	if !r.started.Load() {
		return
	}
	select {
	case r.recompile <- struct{}{}:
	default:
	}
}

// LookupPlugin returns the descriptor of a plugin configurations may use:
// an enabled built-in or custom plugin.
func (r *Runtime) LookupPlugin(name string) (plugin.Descriptor, bool) {
	if !r.pluginEnabled(name) {
		return plugin.Descriptor{}, false
	}
	if m := r.custom.Load(); m != nil {
		if d, ok := (*m)[name]; ok {
			return d, true
		}
	}
	return plugin.Lookup(name)
}

// Plugins returns every plugin configurations may use, built-in and
// custom, highest priority first.
func (r *Runtime) Plugins() []plugin.Descriptor {
	all := plugin.All()
	if m := r.custom.Load(); m != nil {
		for _, d := range *m {
			all = append(all, d)
		}
	}
	out := all[:0]
	for _, d := range all {
		if r.pluginEnabled(d.Name) {
			out = append(out, d)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Priority != out[j].Priority {
			return out[i].Priority > out[j].Priority
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// pluginEnabled reports whether a plugin is enabled.
func (r *Runtime) pluginEnabled(name string) bool {
	set := r.enabled.Load()
	return set == nil || (*set)[name]
}

// ValidateListing checks a listing as loading it now would, with the
// current plugin list: the Admin API's validation.
func (r *Runtime) ValidateListing(l store.Listing) error {
	return validateListing(l, r.Deps())
}

// Load returns the Snapshot to serve a request from; nil before the first load.
func (r *Runtime) Load() *Snapshot { return r.current.Load() }

// Swap serves snap from now on. Run does this for every good listing; tests
// and benchmarks that compile by hand use it directly.
func (r *Runtime) Swap(snap *Snapshot) { r.current.Store(snap) }

// Deps exposes the registries for compiles that should share state.
func (r *Runtime) Deps() Deps {
	return Deps{Balancers: r.balancers, Upstreams: r.upstreams, Defaults: r.defaults, EnabledPlugins: r.LookupPlugin,
		SharedDicts: r.dicts, Lasting: r.lasting, Log: r.log, Metrics: r.metrics, Health: r.health}
}

// Run loads the store and follows its changes until ctx ends. A listing that
// fails to compile is logged, error by error, and the previous Snapshot keeps
// serving. Incremental batches are applied to a copy of the items last seen,
// and batches already waiting are folded into one compile.
func (r *Runtime) Run(ctx context.Context) error {
	r.started.Store(true)
	items := make(map[itemKey]store.Item)
	var rev int64
	l, err := r.store.List(ctx)
	if err != nil {
		r.log.Error("initial load failed; serving no routes until the store answers", "err", err)
	} else {
		rev = l.Revision
		resetItems(items, l)
		r.apply(store.Listing{Revision: rev, Items: listItems(items)})
	}
	reap := time.NewTicker(5 * time.Second)
	defer reap.Stop()
	watch := r.store.Watch(ctx, rev)
	for {
		select {
		case <-ctx.Done():
			r.upstreams.Close()
			r.lasting.Close()
			r.health.Close()
			return nil
		case now := <-reap.C:
			r.upstreams.ReapIdle(now)
		case <-r.recompile:
			r.apply(store.Listing{Revision: rev, Items: listItems(items)})
		case b, ok := <-watch:
			if !ok {
				return ctx.Err()
			}
			rev = applyBatch(items, b, rev)
			// Fold batches that are already queued into this compile.
			for more := true; more; {
				select {
				case b, ok = <-watch:
					if !ok {
						return ctx.Err()
					}
					rev = applyBatch(items, b, rev)
				default:
					more = false
				}
			}
			r.apply(store.Listing{Revision: rev, Items: listItems(items)})
		}
	}
}

type itemKey struct {
	kind store.Kind
	id   string
}

func resetItems(items map[itemKey]store.Item, l store.Listing) {
	clear(items)
	for _, it := range l.Items {
		items[itemKey{it.Kind, it.ID}] = it
	}
}

// applyBatch applies one watch batch and returns the revision it brings.
func applyBatch(items map[itemKey]store.Item, b store.Batch, rev int64) int64 {
	if b.Reset {
		resetItems(items, b.Listing)
		return max(b.Listing.Revision, b.Revision)
	}
	for _, ev := range b.Events {
		k := itemKey{ev.Item.Kind, ev.Item.ID}
		if ev.Type == store.Delete {
			delete(items, k)
		} else {
			items[k] = ev.Item
		}
	}
	return max(rev, b.Revision)
}

func listItems(items map[itemKey]store.Item) []store.Item {
	out := make([]store.Item, 0, len(items))
	for _, it := range items {
		out = append(out, it)
	}
	return out
}

func (r *Runtime) apply(l store.Listing) {
	res, err := ResourcesFromListing(l)
	if err == nil {
		r.upstreams.BeginCompile()
		r.lasting.BeginCompile()
		r.metrics.BeginCompile()
		r.health.BeginCompile()
		var snap *Snapshot
		snap, err = Compile(res, l.Revision, r.Deps())
		if err == nil {
			r.current.Store(snap)
			r.upstreams.Sweep()
			r.lasting.Sweep()
			r.metrics.Sweep()
			r.health.Commit()
			r.balancers.Retain(snap.upstreamKeys)
			r.log.Info("configuration applied", "revision", l.Revision, "routes", len(snap.Routes))
			return
		}
	}
	logErrors(r.log, "configuration rejected; still serving the previous one", l.Revision, err)
}

// logErrors logs each joined error as its own record, so every field path shows.
func logErrors(log *slog.Logger, msg string, rev int64, err error) {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			logErrors(log, msg, rev, e)
		}
		return
	}
	log.Error(msg, "revision", rev, "err", err)
}
