package admin

import (
	"github.com/sluicegw/sluice/internal/store"
)

// stillUsed reports, in APISIX's words, the first resource that references
// the item about to be deleted, or "" when nothing does. Resources are
// scanned kind by kind in APISIX's order and by id within a kind.
func stillUsed(res *resource, id string, l store.Listing) string {
	switch res.kind {
	case store.Upstreams:
		return upstreamUsers(id, l)
	case store.Services:
		if u := firstUser(l, store.Routes, "service_id", id); u != "" {
			return "can not delete this service directly, route [" + u + "] is still using it now"
		}
	case store.PluginConfigs:
		if u := firstUser(l, store.Routes, "plugin_config_id", id); u != "" {
			return "can not delete this plugin config, route [" + u + "] is still using it now"
		}
	case store.ConsumerGroups:
		if u := firstUser(l, store.Consumers, "group_id", id); u != "" {
			return "can not delete this consumer group, consumer [" + u + "] is still using it now"
		}
	}
	return ""
}

// upstreamUsers checks what APISIX's upstreams.lua delete_checker checks:
// upstream_id of routes and services, and traffic-split's weighted upstreams
// in the plugins of every kind that has plugins.
func upstreamUsers(id string, l store.Listing) string {
	scans := []struct {
		kind       store.Kind
		name       string
		pluginOnly bool
	}{
		{store.Routes, "route", false},
		{store.Services, "service", false},
		{store.PluginConfigs, "plugin_config", true},
		{store.Consumers, "consumer", true},
		{store.ConsumerGroups, "consumer_group", true},
		{store.GlobalRules, "global_rules", true},
	}
	for _, s := range scans {
		for _, it := range sortedItems(l, s.kind) {
			v, err := decodeObject(it.Value)
			if err != nil {
				continue
			}
			if trafficSplitUses(v, id) {
				return "can not delete this upstream, plugin in " + s.name + " [" + it.ID + "] is still using it now"
			}
			if ref, ok := idString(v["upstream_id"]); !s.pluginOnly && ok && ref == id {
				return "can not delete this upstream, " + s.name + " [" + it.ID + "] is still using it now"
			}
		}
	}
	return ""
}

// firstUser returns the id of the first item of kind whose field equals id.
func firstUser(l store.Listing, kind store.Kind, field, id string) string {
	for _, it := range sortedItems(l, kind) {
		v, err := decodeObject(it.Value)
		if err != nil {
			continue
		}
		if ref, ok := idString(v[field]); ok && ref == id {
			return it.ID
		}
	}
	return ""
}

// trafficSplitUses reports whether the traffic-split plugin in v sends to
// upstream id (plugins["traffic-split"].rules[].weighted_upstreams[].upstream_id).
func trafficSplitUses(v object, id string) bool {
	plugins, _ := v["plugins"].(object)
	ts, _ := plugins["traffic-split"].(object)
	rules, _ := ts["rules"].([]any)
	for _, r := range rules {
		rule, _ := r.(object)
		ups, _ := rule["weighted_upstreams"].([]any)
		for _, u := range ups {
			wu, _ := u.(object)
			if ref, ok := idString(wu["upstream_id"]); ok && ref == id {
				return true
			}
		}
	}
	return false
}
