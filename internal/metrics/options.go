package metrics

// Options are a route's metrics settings, from its prometheus plugin config.
type Options struct {
	// PreferName labels route and service by name instead of id (falling
	// back to the id when the name is empty), as APISIX's prefer_name.
	PreferName bool
}

// Requester is implemented by a plugin's config (and instance) that asks
// the gateway to count a route's requests: the runtime gives every route
// whose chain has one a RouteMetrics handle, and the engines call Observe
// after the log phase. It keeps the runtime free of plugin names.
type Requester interface {
	MetricsOptions() Options
}
