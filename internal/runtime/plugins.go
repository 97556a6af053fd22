package runtime

import (
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"

	"github.com/sluicegw/sluice/internal/config"
	"github.com/sluicegw/sluice/internal/pipeline"
	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/shdict"
)

// pluginSet is what compiling plugins needs from the whole configuration:
// global-rule plugins, plugin configs by id, and each auth plugin's consumer
// credentials.
type pluginSet struct {
	global        []pipeline.Plugin
	pluginConfigs map[string]map[string]any
	deps          map[string]plugin.Deps
	enabled       pipeline.Enabled
	dicts         *shdict.Registry
	attr          map[string]map[string]any
	lasting       *plugin.Lasting
	log           *slog.Logger
	// metadata is each plugin's plugin_metadata object (Deps.Metadata).
	metadata map[string]map[string]any
	// consumers are every consumer by username (Deps.AllConsumers).
	consumers map[string]*plugin.Consumer
	// consumerPlugins holds, per consumer with plugins of its own (beyond
	// credentials), its plugins merged over its group's.
	consumerPlugins map[string]map[string]any
	// ups resolves the upstreams plugins send requests to (Deps.Upstreams).
	ups *pluginUpstreams
}

// newPluginSet decodes consumers' credentials and global rules once per
// compile. Errors name the resource and plugin.
func newPluginSet(res *config.Resources, cdeps Deps, ups *pluginUpstreams) (*pluginSet, error) {
	enabled := cdeps.EnabledPlugins
	ps := &pluginSet{
		ups:           ups,
		dicts:         cdeps.SharedDicts,
		attr:          cdeps.Defaults.PluginAttr,
		lasting:       cdeps.Lasting,
		log:           cdeps.Log,
		pluginConfigs: make(map[string]map[string]any, len(res.PluginConfigs)),
		deps:          make(map[string]plugin.Deps),
		enabled:       enabled,
	}
	var errs []error
	ps.metadata = make(map[string]map[string]any, len(res.PluginMetadata))
	for i := range res.PluginMetadata {
		ps.metadata[res.PluginMetadata[i].ID] = res.PluginMetadata[i].Config
	}
	for i := range res.PluginConfigs {
		pc := &res.PluginConfigs[i]
		ps.pluginConfigs[pc.ID] = pc.Plugins
	}
	groups := make(map[string]map[string]any, len(res.ConsumerGroups))
	for i := range res.ConsumerGroups {
		groups[res.ConsumerGroups[i].ID] = res.ConsumerGroups[i].Plugins
	}
	ps.consumerPlugins = make(map[string]map[string]any)
	ps.consumers = make(map[string]*plugin.Consumer, len(res.Consumers))
	for i := range res.Consumers {
		c := &res.Consumers[i]
		ps.consumers[c.Username] = &plugin.Consumer{Username: c.Username, GroupID: c.GroupID, Labels: c.Labels}
		own := make(map[string]any)
		for name, raw := range c.Plugins {
			if d, ok := enabled.Lookup(name); ok && d.NewConsumerConfig == nil {
				own[name] = raw
			}
		}
		// APISIX: a consumer's plugins win over its group's.
		if merged := pipeline.Merge(own, groups[c.GroupID]); len(merged) > 0 {
			// Built with the upstream source only: the inline upstreams of
			// a consumer's plugins are compiled now, with the
			// configuration, for the chains built on its first request.
			if _, err := pipeline.Build(merged, enabled, ps.upstreamsOnly); err != nil {
				errs = append(errs, prefixed("consumers[username="+c.Username+"]", err)...)
			} else {
				ps.consumerPlugins[c.Username] = merged
			}
		}
	}
	for i := range res.Consumers {
		c := &res.Consumers[i]
		pc := ps.consumers[c.Username]
		names := make([]string, 0, len(c.Plugins))
		for name := range c.Plugins {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			d, ok := enabled.Lookup(name)
			if !ok {
				errs = append(errs, fmt.Errorf("consumers[username=%s]: plugins.%s: unknown plugin [%s]", c.Username, name, name))
				continue
			}
			if d.NewConsumerConfig == nil {
				continue // not a credential: merged into route chains (consumerPlugins)
			}
			cfg, err := pipeline.DecodeConsumer(name, c.Plugins[name])
			if err != nil {
				errs = append(errs, fmt.Errorf("consumers[username=%s]: plugins.%s: %w", c.Username, name, err))
				continue
			}
			deps := ps.deps[name]
			deps.Consumers = append(deps.Consumers, plugin.ConsumerCredential{Consumer: pc, Config: cfg})
			ps.deps[name] = deps
		}
	}
	for i := range res.GlobalRules {
		g := &res.GlobalRules[i]
		built, err := pipeline.Build(g.Plugins, enabled, ps.depsFor)
		if err != nil {
			errs = append(errs, prefixed("global_rules[id="+g.ID+"]", err)...)
			continue
		}
		ps.global = append(ps.global, built...)
	}
	return ps, errors.Join(errs...)
}

func (ps *pluginSet) depsFor(name string) plugin.Deps {
	d := ps.deps[name]
	d.SharedDicts = ps.dicts
	d.AllConsumers = ps.consumers
	d.Attr = ps.attr[name]
	d.Lasting = ps.lasting
	d.Log = ps.log
	d.Metadata = ps.metadata[name]
	d.Upstreams = ps.ups.forPlugin(name)
	return d
}

// upstreamsOnly gives a plugin nothing but the upstream source, for builds
// that only validate.
func (ps *pluginSet) upstreamsOnly(name string) plugin.Deps {
	return plugin.Deps{Upstreams: ps.ups.forPlugin(name)}
}

// chain compiles a route's plugins: the route's own over its plugin config's
// over its service's (APISIX's precedence), with the global rules first.
func (ps *pluginSet) chain(r *config.Route, svc *config.Service) (*pipeline.Chain, error) {
	var svcPlugins map[string]any
	if svc != nil {
		svcPlugins = svc.Plugins
	}
	merged := pipeline.Merge(r.Plugins, ps.pluginConfigs[r.PluginConfigID], svcPlugins)
	built, err := pipeline.Build(merged, ps.enabled, ps.depsFor)
	if err != nil {
		return nil, err
	}
	return pipeline.NewChain(ps.global, built), nil
}

// consumerChains returns, for a route whose plugins are routePlugins, the
// chains to switch to once an auth plugin identified a consumer with plugins
// of its own; nil when no consumer has any.
func (ps *pluginSet) consumerChains(routePlugins map[string]any) *ConsumerChains {
	if len(ps.consumerPlugins) == 0 {
		return nil
	}
	cc := &ConsumerChains{build: func(username string) *ConsumerChain {
		own, ok := ps.consumerPlugins[username]
		if !ok {
			return nil
		}
		// Consumer (and group) over route, plugin config and service.
		built, err := pipeline.Build(pipeline.Merge(own, routePlugins), ps.enabled, ps.depsFor)
		if err != nil {
			return nil // validated when compiled; New failing now keeps the route chain
		}
		var fromConsumer []pipeline.Plugin
		for _, p := range built {
			if _, mine := own[p.Name]; mine {
				fromConsumer = append(fromConsumer, p)
			}
		}
		return &ConsumerChain{Chain: pipeline.NewChain(ps.global, built), Rewrite: pipeline.NewChain(nil, fromConsumer)}
	}}
	return cc
}

// ConsumerChain is a route's chain for one consumer.
type ConsumerChain struct {
	// Chain runs from the phase after the one that identified the consumer.
	Chain *pipeline.Chain
	// Rewrite holds only the consumer's (and its group's) own plugins: the
	// rewrite phase already ran with the route's plugins when auth happened,
	// so these run their rewrite phase right after (APISIX's
	// "rewrite_in_consumer").
	Rewrite *pipeline.Chain
}

// ConsumerChains are a route's chains for consumers that carry plugins of
// their own (APISIX's precedence: consumer > consumer group > route > plugin
// config > service). They are built on a consumer's first request on the
// route and then reused: precomputing every route × consumer pair could be
// millions of chains for configurations that never see most pairs. The
// cache belongs to the snapshot, so a new configuration starts afresh.
type ConsumerChains struct {
	m     sync.Map // username → *ConsumerChain (nil: keep the route chain)
	build func(username string) *ConsumerChain
}

// For returns the chain for username, or nil to keep the route's chain.
func (cc *ConsumerChains) For(username string) *ConsumerChain {
	if cc == nil {
		return nil
	}
	if v, ok := cc.m.Load(username); ok {
		return v.(*ConsumerChain)
	}
	ch := cc.build(username)
	v, _ := cc.m.LoadOrStore(username, ch)
	return v.(*ConsumerChain)
}
