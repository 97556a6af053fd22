package runtime

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/sluicegw/sluice/internal/config"
	"github.com/sluicegw/sluice/internal/upstream"
	"github.com/sluicegw/sluice/plugin"
)

// pluginUpstreams resolves and compiles the upstreams plugins send requests
// to (plugin.Deps.Upstream, plugin.Deps.InlineUpstream) for one compile.
//
// An inline upstream is keyed by its plugin and a digest of its decoded,
// defaulted content: "plugins/traffic-split/<digest>/upstream". A plugin
// instance does not know which route it serves (one instance may come from
// a service, a plugin config or a global rule), so the content is the only
// identity that is stable across reloads. Identical objects therefore share
// one compiled upstream, and with it balancer position, keepalive pools and
// health-check state, which is what identical nodes and checks should do;
// an edited object gets a new key and starts afresh.
type pluginUpstreams struct {
	c *compiler
	// mu guards inline and done: consumers' chains are built lazily, by
	// requests, after the compile (runtime.ConsumerChains).
	mu     sync.Mutex
	inline map[string]*upstream.Upstream
	// done is set once the compile is over: registries have been swept and
	// health bindings committed, so nothing new may be compiled. Lazily
	// built chains then only find upstreams the compile already built
	// (consumer plugins are built once during the compile for that reason).
	done bool
}

func newPluginUpstreams(c *compiler) *pluginUpstreams {
	return &pluginUpstreams{c: c, inline: make(map[string]*upstream.Upstream)}
}

// forPlugin is the source handed to the plugin named name.
func (p *pluginUpstreams) forPlugin(name string) plugin.UpstreamSource {
	if p == nil {
		return nil
	}
	return pluginSource{p: p, plugin: name}
}

// finish ends the compile: later inline upstreams are looked up, not built.
func (p *pluginUpstreams) finish() {
	p.mu.Lock()
	p.done = true
	p.mu.Unlock()
}

type pluginSource struct {
	p      *pluginUpstreams
	plugin string
}

func (s pluginSource) Upstream(id string) (plugin.UpstreamRef, error) {
	u := s.p.c.upstreams[id]
	if u == nil {
		return plugin.UpstreamRef{}, fmt.Errorf("upstream %q not found", id)
	}
	return plugin.NewUpstreamRef(u.Key, u), nil
}

func (s pluginSource) InlineUpstream(raw json.RawMessage) (plugin.UpstreamRef, error) {
	v, err := config.DecodeKind("upstreams", "", raw)
	if err != nil {
		return plugin.UpstreamRef{}, err
	}
	u := v.(*config.Upstream)
	key, err := inlineKey(s.plugin, u)
	if err != nil {
		return plugin.UpstreamRef{}, err
	}
	p := s.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if cu := p.inline[key]; cu != nil {
		return plugin.NewUpstreamRef(key, cu), nil
	}
	if p.done {
		return plugin.UpstreamRef{}, errors.New("upstream: not compiled with the configuration")
	}
	cu, err := p.c.upstream(u, key)
	if err != nil {
		return plugin.UpstreamRef{}, err
	}
	p.inline[key] = cu
	return plugin.NewUpstreamRef(key, cu), nil
}

// inlineKey is the identity of a plugin's inline upstream: its content,
// without the fields that only describe it.
func inlineKey(pluginName string, u *config.Upstream) (string, error) {
	c := *u
	c.ID, c.Name, c.Desc, c.Labels, c.CreateTime, c.UpdateTime = "", "", "", nil, 0, 0
	b, err := json.Marshal(&c)
	if err != nil {
		return "", fmt.Errorf("upstream: %w", err)
	}
	sum := sha256.Sum256(b)
	return "plugins/" + pluginName + "/" + hex.EncodeToString(sum[:8]) + "/upstream", nil
}
