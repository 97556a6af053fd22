package runtime

import (
	"testing"

	"github.com/sluicegw/sluice/internal/metrics"
	_ "github.com/sluicegw/sluice/plugins/prometheus"
)

func compileWithMetrics(t *testing.T, reg *metrics.Registry, yaml string) *Snapshot {
	t.Helper()
	reg.BeginCompile()
	snap, err := Compile(parse(t, yaml), 1, Deps{Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	reg.Sweep()
	return snap
}

func routeByID(s *Snapshot, id string) *Route {
	for _, r := range s.Routes {
		if r.ID == id {
			return r
		}
	}
	return nil
}

func TestMetricsHandles(t *testing.T) {
	reg := metrics.NewRegistry(nil)
	const base = `
services:
  - id: "s1"
    name: "svc-one"
    plugins: {prometheus: {prefer_name: true}}
routes:
  - id: "plain"
    uri: /plain
    upstream: {nodes: {"127.0.0.1:1": 1}}
  - id: "own"
    name: "own-name"
    uris: [/own, /own2/*]
    plugins: {prometheus: {}}
    upstream: {nodes: {"127.0.0.1:1": 1}}
  - id: "via-service"
    name: "via-name"
    uri: /svc
    service_id: "s1"
    upstream: {nodes: {"127.0.0.1:1": 1}}
  - id: "off"
    uri: /off
    plugins: {prometheus: {_meta: {disable: true}}}
    upstream: {nodes: {"127.0.0.1:1": 1}}
`
	snap := compileWithMetrics(t, reg, base)
	if routeByID(snap, "plain").Metrics != nil || routeByID(snap, "off").Metrics != nil {
		t.Error("a route without (or with a disabled) prometheus got a handle")
	}
	own := routeByID(snap, "own").Metrics
	if own == nil || own.Spec().Route != "own" || len(own.Spec().URIs) != 2 {
		t.Fatalf("own handle: %+v", own)
	}
	svc := routeByID(snap, "via-service").Metrics
	if svc == nil || svc.Spec().Route != "via-name" || svc.Spec().Service != "svc-one" {
		t.Fatalf("prefer_name from the service: %+v", svc)
	}
	if snap.NoRouteMetrics != nil {
		t.Error("unmatched requests counted without a global rule")
	}

	// A reload that changes another route keeps the handle (and its counts).
	snap2 := compileWithMetrics(t, reg, base+`
  - id: "new"
    uri: /new
    upstream: {nodes: {"127.0.0.1:1": 1}}
`)
	if routeByID(snap2, "own").Metrics != own {
		t.Error("reload replaced an unchanged route's handle")
	}

	// A global rule counts every route, and unmatched requests.
	snap3 := compileWithMetrics(t, reg, base+`
global_rules:
  - id: "g"
    plugins: {prometheus: {}}
`)
	if routeByID(snap3, "plain").Metrics == nil || snap3.NoRouteMetrics == nil {
		t.Error("global rule prometheus did not mark every route and unmatched requests")
	}
	if m := routeByID(snap3, "via-service").Metrics; m.Spec().Route != "via-name" {
		t.Errorf("the service's own prometheus config (prefer_name) should win over the global rule's: %+v", m.Spec())
	}

	// Validation-only compiles build no handles.
	vs, err := Compile(parse(t, base), 1, Deps{})
	if err != nil || routeByID(vs, "own").Metrics != nil {
		t.Errorf("validation compile: %v, handle %v", err, routeByID(vs, "own").Metrics)
	}
}
