package config

// maxUsernameLen is APISIX's consumer username limit (rule_name_def.maxLength).
const maxUsernameLen = 256

// Validate checks a single consumer against APISIX's rules and returns every
// problem as FieldErrors with paths starting at "consumer". The group_id
// reference is checked by Resources.Validate.
func (c *Consumer) Validate() error {
	var es FieldErrors
	validateConsumer(c, "consumer", &es)
	return es.err()
}

// Validate checks a single consumer group, with paths starting at
// "consumer_group". The id is required, as in APISIX's schema: the Admin API
// fills it from the URL before validating.
func (g *ConsumerGroup) Validate() error {
	var es FieldErrors
	requireID("consumer_group", g.ID, &es)
	validateConsumerGroup(g, "consumer_group", &es)
	return es.err()
}

// Validate checks a single plugin config like ConsumerGroup.Validate, with
// paths starting at "plugin_config".
func (pc *PluginConfig) Validate() error {
	var es FieldErrors
	requireID("plugin_config", pc.ID, &es)
	validatePluginConfig(pc, "plugin_config", &es)
	return es.err()
}

// Validate checks a single global rule like ConsumerGroup.Validate, with paths
// starting at "global_rule". Plugins shared between global rules are reported
// by Resources.Validate.
func (g *GlobalRule) Validate() error {
	var es FieldErrors
	requireID("global_rule", g.ID, &es)
	validateGlobalRule(g, "global_rule", &es)
	return es.err()
}

// Validate checks that the metadata names a plugin, with paths starting at
// "plugin_metadata". Config is left to the plugin's own validation.
func (m *PluginMetadata) Validate() error {
	var es FieldErrors
	requireID("plugin_metadata", m.ID, &es)
	validatePluginMetadata(m, "plugin_metadata", &es)
	return es.err()
}

// requireID reports a missing id for the kinds whose APISIX schema requires one.
func requireID(p, id string, es *FieldErrors) {
	if id == "" {
		es.add(join(p, "id"), "is required")
	}
}

func requirePlugins(p string, plugins map[string]any, es *FieldErrors) {
	if plugins == nil {
		es.add(join(p, "plugins"), "is required")
	}
}

func validateConsumer(c *Consumer, p string, es *FieldErrors) {
	validateMeta(p, c.ID, "", c.Desc, c.Labels, es)
	up := join(p, "username")
	switch {
	case c.Username == "":
		es.add(up, "is required")
	case len(c.Username) > maxUsernameLen:
		es.add(up, "must be at most %d characters", maxUsernameLen)
	case !validHeaderName(c.Username):
		// APISIX's pattern ^[a-zA-Z0-9_\-]+$ is the header-name character set.
		es.add(up, "must contain only a-z, A-Z, 0-9, '_' and '-'")
	}
	// A consumer is stored and referenced under its username; an id naming
	// something else would make the two disagree about which consumer this is.
	if c.ID != "" && c.Username != "" && validID(c.ID) && c.ID != c.Username {
		es.add(join(p, "id"), "must equal username %q (a consumer's id is its username)", c.Username)
	}
	validateOptionalID(join(p, "group_id"), c.GroupID, es)
}

func validateConsumerGroup(g *ConsumerGroup, p string, es *FieldErrors) {
	validateMeta(p, g.ID, g.Name, g.Desc, g.Labels, es)
	requirePlugins(p, g.Plugins, es)
}

func validatePluginConfig(pc *PluginConfig, p string, es *FieldErrors) {
	// The name is passed as "" because APISIX puts no limit on a plugin
	// config's name, unlike the 256 characters of other kinds.
	validateMeta(p, pc.ID, "", pc.Desc, pc.Labels, es)
	requirePlugins(p, pc.Plugins, es)
}

func validateGlobalRule(g *GlobalRule, p string, es *FieldErrors) {
	validateOptionalID(join(p, "id"), g.ID, es)
	requirePlugins(p, g.Plugins, es)
}

func validatePluginMetadata(m *PluginMetadata, p string, es *FieldErrors) {
	validateOptionalID(join(p, "id"), m.ID, es)
}
