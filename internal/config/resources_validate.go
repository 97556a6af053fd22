package config

// Validate checks every resource and the references between them, returning all
// problems as FieldErrors with paths like "routes[0].upstream_id".
//
// Every resource except a consumer must have an id; a consumer is identified
// by its username, which must be unique. APISIX standalone mode would name an
// id-less entry "arr_<position>", but that name changes whenever entries are
// reordered, so references to it, revision tracking per item and log messages
// would silently point at a different resource after an edit. Duplicate ids
// within a kind are an error; APISIX lets the later entry win, which hides the
// mistake.
//
// References checked: a route's upstream_id, service_id and plugin_config_id,
// a service's upstream_id, a consumer's group_id, and every upstream's
// tls.client_cert_id (which must name an SSL of type client). As APISIX's
// Admin API does, two global rules may not configure the same plugin.
func (r *Resources) Validate() error {
	ix := r.index()
	// Report in file order (kind by kind, each by index) so the messages read
	// top to bottom like the file.
	var es FieldErrors
	r.validateRoutes(ix, &es)
	for i := range r.Services {
		s := &r.Services[i]
		p := index("services", i)
		checkID(p, s.ID, ix.services, i, &es)
		validateService(s, p, &es)
		checkRef(join(p, "upstream_id"), "upstream", s.UpstreamID, ix.upstreams, &es)
		r.checkClientCert(join(p, "upstream"), s.Upstream, ix, &es)
	}
	for i := range r.Upstreams {
		u := &r.Upstreams[i]
		p := index("upstreams", i)
		checkID(p, u.ID, ix.upstreams, i, &es)
		validateUpstream(u, p, &es)
		r.checkClientCert(p, u, ix, &es)
	}
	r.validateConsumers(ix, &es)
	for i := range r.ConsumerGroups {
		g := &r.ConsumerGroups[i]
		p := index("consumer_groups", i)
		checkID(p, g.ID, ix.consumerGroups, i, &es)
		validateConsumerGroup(g, p, &es)
	}
	for i := range r.PluginConfigs {
		pc := &r.PluginConfigs[i]
		p := index("plugin_configs", i)
		checkID(p, pc.ID, ix.pluginConfigs, i, &es)
		validatePluginConfig(pc, p, &es)
	}
	r.validateGlobalRules(ix, &es)
	for i := range r.SSLs {
		s := &r.SSLs[i]
		p := index("ssls", i)
		checkID(p, s.ID, ix.ssls, i, &es)
		validateSSL(s, p, &es)
	}
	for i := range r.PluginMetadata {
		m := &r.PluginMetadata[i]
		p := index("plugin_metadata", i)
		checkID(p, m.ID, ix.pluginMetadata, i, &es)
		validatePluginMetadata(m, p, &es)
	}
	return es.err()
}

// resourceIndex maps each kind's ids (usernames for consumers) to the index of
// their first use.
type resourceIndex struct {
	routes, services, upstreams, consumers, consumerGroups map[string]int
	pluginConfigs, globalRules, ssls, pluginMetadata       map[string]int
}

func (r *Resources) index() resourceIndex {
	return resourceIndex{
		routes:         firstIndex(len(r.Routes), func(i int) string { return r.Routes[i].ID }),
		services:       firstIndex(len(r.Services), func(i int) string { return r.Services[i].ID }),
		upstreams:      firstIndex(len(r.Upstreams), func(i int) string { return r.Upstreams[i].ID }),
		consumers:      firstIndex(len(r.Consumers), func(i int) string { return r.Consumers[i].Username }),
		consumerGroups: firstIndex(len(r.ConsumerGroups), func(i int) string { return r.ConsumerGroups[i].ID }),
		pluginConfigs:  firstIndex(len(r.PluginConfigs), func(i int) string { return r.PluginConfigs[i].ID }),
		globalRules:    firstIndex(len(r.GlobalRules), func(i int) string { return r.GlobalRules[i].ID }),
		ssls:           firstIndex(len(r.SSLs), func(i int) string { return r.SSLs[i].ID }),
		pluginMetadata: firstIndex(len(r.PluginMetadata), func(i int) string { return r.PluginMetadata[i].ID }),
	}
}

func (r *Resources) validateRoutes(ix resourceIndex, es *FieldErrors) {
	for i := range r.Routes {
		rt := &r.Routes[i]
		p := index("routes", i)
		checkID(p, rt.ID, ix.routes, i, es)
		validateRoute(rt, p, es)
		checkRef(join(p, "upstream_id"), "upstream", rt.UpstreamID, ix.upstreams, es)
		checkRef(join(p, "service_id"), "service", rt.ServiceID, ix.services, es)
		checkRef(join(p, "plugin_config_id"), "plugin config", rt.PluginConfigID, ix.pluginConfigs, es)
		r.checkClientCert(join(p, "upstream"), rt.Upstream, ix, es)
	}
}

func (r *Resources) validateConsumers(ix resourceIndex, es *FieldErrors) {
	for i := range r.Consumers {
		c := &r.Consumers[i]
		p := index("consumers", i)
		validateConsumer(c, p, es)
		if f, ok := ix.consumers[c.Username]; ok && f != i {
			es.add(join(p, "username"), "duplicate username %q (first used at index %d)", c.Username, f)
		}
		checkRef(join(p, "group_id"), "consumer group", c.GroupID, ix.consumerGroups, es)
	}
}

func (r *Resources) validateGlobalRules(ix resourceIndex, es *FieldErrors) {
	owner := make(map[string]int) // plugin name -> index of the first global rule using it
	for i := range r.GlobalRules {
		g := &r.GlobalRules[i]
		p := index("global_rules", i)
		checkID(p, g.ID, ix.globalRules, i, es)
		validateGlobalRule(g, p, es)
		for _, name := range sortedKeys(g.Plugins) {
			if first, ok := owner[name]; ok {
				es.add(join(join(p, "plugins"), name), "already configured by global rule %q (global_rules[%d])",
					r.GlobalRules[first].ID, first)
				continue
			}
			owner[name] = i
		}
	}
}

// checkClientCert checks that an upstream's tls.client_cert_id names an SSL of
// type client, as APISIX's upstream check does.
func (r *Resources) checkClientCert(p string, u *Upstream, ix resourceIndex, es *FieldErrors) {
	if u == nil || u.TLS == nil || u.TLS.ClientCertID == "" || !validID(u.TLS.ClientCertID) {
		return
	}
	id := u.TLS.ClientCertID
	p = join(join(p, "tls"), "client_cert_id")
	i, ok := ix.ssls[id]
	if !ok {
		es.add(p, "ssl %q not found", id)
		return
	}
	if t := orDefault(r.SSLs[i].Type, DefaultSSLType); t != "client" {
		es.add(p, "ssl %q must be of type client, not %s", id, t)
	}
}

// firstIndex maps each non-empty id to the index of its first use.
func firstIndex(n int, id func(int) string) map[string]int {
	m := make(map[string]int, n)
	for i := range n {
		if k := id(i); k != "" {
			if _, ok := m[k]; !ok {
				m[k] = i
			}
		}
	}
	return m
}

func checkID(p, id string, first map[string]int, i int, es *FieldErrors) {
	if id == "" {
		es.add(join(p, "id"), "is required in a resources file")
		return
	}
	if f := first[id]; f != i {
		es.add(join(p, "id"), "duplicate id %q (first used at index %d)", id, f)
	}
}

func checkRef(p, kind, id string, ids map[string]int, es *FieldErrors) {
	if id == "" || !validID(id) {
		return // absent, or already reported as malformed
	}
	if _, ok := ids[id]; !ok {
		es.add(p, "%s %q not found", kind, id)
	}
}
