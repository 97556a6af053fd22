// Package plugin is sluice's public plugin SDK. A plugin declares a
// Descriptor (name, priority, typed config) and implements any of the phase
// interfaces; the gateway resolves chains per route and phase when it compiles
// a configuration, so a request only walks slices.
//
// Phases run in this order: Rewrite, Access, BeforeProxy, (proxy),
// HeaderFilter, BodyFilter, Log. A phase that ends the request returns an
// *Exit; it never writes the response itself.
package plugin

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"sync"

	"github.com/sluicegw/sluice/plugin/shdict"
)

// Config is a plugin's typed configuration. NewConfig returns one with its
// defaults set; the gateway decodes the user's JSON over it strictly (unknown
// fields are errors) and then calls Validate, which must be pure and fast: the
// Admin API runs it on every write.
type Config interface {
	Validate() error
}

// Descriptor declares a plugin. Register it from an init function.
type Descriptor struct {
	// Name is the plugin's name in `plugins` objects, as in APISIX.
	Name string
	// Priority orders plugins within a phase: higher runs first. APISIX's
	// priorities are kept for the plugins it has.
	Priority int
	// NewConfig returns a zero config with defaults applied.
	NewConfig func() Config
	// New builds an instance from a validated config. It runs when a
	// configuration is compiled, never per request. The instance implements
	// any of Rewriter, Accessor, BeforeProxier, HeaderFilterer, BodyFilterer
	// and Logger.
	New func(cfg Config, deps Deps) (any, error)
	// Schema is the JSON Schema served by GET /apisix/admin/plugins/<name>.
	// When nil, one is derived from the Config struct's JSON fields.
	Schema map[string]any
	// NewConsumerConfig, when set, marks an auth plugin: consumers carry its
	// credentials (key-auth's key, basic-auth's username and password...),
	// decoded and validated with this config instead of NewConfig.
	NewConsumerConfig func() Config
}

// Deps is what the gateway gives a plugin instance when it is built: state
// that comes from the whole configuration, not from the plugin's own config.
type Deps struct {
	// Consumers are the consumers holding a credential for this plugin (for
	// an auth plugin), with the credential decoded by NewConsumerConfig. The
	// slice belongs to the snapshot being compiled: index it in New.
	Consumers []ConsumerCredential
	// AllConsumers are every consumer by username, credentials or not
	// (anonymous_consumer names one that usually has none).
	AllConsumers map[string]*Consumer
	// SharedDicts are the gateway's shared dicts (config `shared_dicts`),
	// the counterpart of ngx.shared.DICT; they outlive configurations.
	SharedDicts *shdict.Registry
	// Attr is the plugin's section of the gateway config's plugin_attr
	// (APISIX's config.yaml plugin_attr: exporter addresses, collector
	// settings...); nil when absent.
	Attr map[string]any
	// Lasting keeps objects that outlive configurations (queues,
	// connections, exporters); nil in validation-only compiles.
	Lasting *Lasting
	// Log is the gateway's error log (its level and destination). Use
	// Logger, which also copes with a Deps built by hand in tests.
	Log *slog.Logger
	// Upstreams resolves and compiles upstreams a plugin sends requests to
	// (traffic-split); use Deps.Upstream and Deps.InlineUpstream. Nil in
	// Deps built by hand.
	Upstreams UpstreamSource
	// Metadata is the plugin's plugin_metadata object
	// (/apisix/admin/plugin_metadata/<name>: a logger's log_format...),
	// without its id; nil when none is stored. Plugins validate it
	// themselves.
	Metadata map[string]any
}

// Logger returns the gateway's log for the plugin named name (records carry
// plugin=name); a discarding logger when Deps has none.
func (d Deps) Logger(name string) *slog.Logger {
	if d.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Log.With("plugin", name)
}

// ConsumerCredential is one consumer's credential for one auth plugin.
type ConsumerCredential struct {
	Consumer *Consumer
	Config   Config
}

// Rewriter runs in the rewrite phase, before authentication.
type Rewriter interface{ Rewrite(c *Ctx) *Exit }

// Accessor runs in the access phase: authentication and authorization.
type Accessor interface{ Access(c *Ctx) *Exit }

// BeforeProxier runs after the upstream node is chosen, just before proxying.
type BeforeProxier interface{ BeforeProxy(c *Ctx) *Exit }

// HeaderFilterer sees the response status and headers (c.Response) before
// they are sent, and may change them.
type HeaderFilterer interface{ HeaderFilter(c *Ctx) }

// BodyFilterer sees the response body as a stream of chunks; eof marks the
// last call (possibly with an empty chunk). It returns what to send instead of
// chunk (chunk itself to pass it on, nil to send nothing now). A plugin that
// needs the whole body buffers it itself, up to a bound it documents.
type BodyFilterer interface {
	BodyFilter(c *Ctx, chunk []byte, eof bool) []byte
}

// BodyWanter is optional for a BodyFilterer: asked after header_filter, it
// says whether the plugin will change this response's body. When no body
// filter of a route wants the body, it streams untouched with its
// Content-Length; otherwise it goes out chunked, since its length may change.
type BodyWanter interface {
	WantsBody(c *Ctx) bool
}

// Logger runs after the response is sent; it must not block.
type Logger interface{ Log(c *Ctx) }

// Exit ends a request from a phase: the gateway answers with Status, Headers
// and Body (and applies the plugin's _meta.error_response if any). Plugins
// should build their common exits once, not per request.
type Exit struct {
	Status  int
	Headers []Header
	Body    []byte
}

// Header is one header field.
type Header struct{ Name, Value string }

// JSONExit builds an Exit with a JSON body and content type, e.g.
// JSONExit(401, `{"message":"Missing API key in request"}`).
func JSONExit(status int, body string) *Exit {
	return &Exit{Status: status, Headers: []Header{{"Content-Type", "application/json"}}, Body: []byte(body + "\n")}
}

// MessageExit builds APISIX's usual rejection, {"message": msg}.
func MessageExit(status int, msg string) *Exit {
	b, _ := json.Marshal(struct {
		Message string `json:"message"`
	}{msg})
	return JSONExit(status, string(b))
}

var registry = struct {
	sync.RWMutex
	byName map[string]Descriptor
}{byName: map[string]Descriptor{}}

// Register adds a plugin. It panics on a duplicate name or a missing field:
// both are programming errors found at start.
func Register(d Descriptor) {
	if d.Name == "" || d.NewConfig == nil || d.New == nil {
		panic(fmt.Sprintf("plugin.Register: incomplete descriptor %q", d.Name))
	}
	registry.Lock()
	defer registry.Unlock()
	if _, dup := registry.byName[d.Name]; dup {
		panic(fmt.Sprintf("plugin.Register: %q registered twice", d.Name))
	}
	registry.byName[d.Name] = d
}

// Lookup returns the registered plugin named name.
func Lookup(name string) (Descriptor, bool) {
	registry.RLock()
	defer registry.RUnlock()
	d, ok := registry.byName[name]
	return d, ok
}

// All returns every registered plugin, highest priority first.
func All() []Descriptor {
	registry.RLock()
	out := make([]Descriptor, 0, len(registry.byName))
	for _, d := range registry.byName {
		out = append(out, d)
	}
	registry.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Priority != out[j].Priority {
			return out[i].Priority > out[j].Priority
		}
		return out[i].Name < out[j].Name
	})
	return out
}
