package runtime

import (
	"errors"
	"fmt"
	"sort"

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
}

// newPluginSet decodes consumers' credentials and global rules once per
// compile. Errors name the resource and plugin.
func newPluginSet(res *config.Resources, enabled pipeline.Enabled, dicts *shdict.Registry) (*pluginSet, error) {
	ps := &pluginSet{
		dicts:         dicts,
		pluginConfigs: make(map[string]map[string]any, len(res.PluginConfigs)),
		deps:          make(map[string]plugin.Deps),
		enabled:       enabled,
	}
	var errs []error
	for i := range res.PluginConfigs {
		pc := &res.PluginConfigs[i]
		ps.pluginConfigs[pc.ID] = pc.Plugins
	}
	for i := range res.Consumers {
		c := &res.Consumers[i]
		pc := &plugin.Consumer{Username: c.Username, GroupID: c.GroupID, Labels: c.Labels}
		names := make([]string, 0, len(c.Plugins))
		for name := range c.Plugins {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			d, ok := plugin.Lookup(name)
			if !ok || (enabled != nil && !enabled(name)) {
				errs = append(errs, fmt.Errorf("consumers[username=%s]: plugins.%s: unknown plugin [%s]", c.Username, name, name))
				continue
			}
			if d.NewConsumerConfig == nil {
				continue // not a credential; merged into the chain by a later change
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
			errs = append(errs, fmt.Errorf("global_rules[id=%s]: %w", g.ID, err))
			continue
		}
		ps.global = append(ps.global, built...)
	}
	return ps, errors.Join(errs...)
}

func (ps *pluginSet) depsFor(name string) plugin.Deps {
	d := ps.deps[name]
	d.SharedDicts = ps.dicts
	return d
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
