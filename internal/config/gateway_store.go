package config

import (
	"net"
	"net/url"
	"strings"
)

// Store types.
const (
	StoreEmbedded = "embedded"
	StoreEtcd     = "etcd"
	StoreFile     = "file"
)

// StoreConfig says where resources live.
type StoreConfig struct {
	// Type is embedded (a database in data_dir; the default), etcd (shared by
	// a cluster) or file (resources.file, read-only). When empty, setting
	// resources.file selects file, else embedded.
	Type string `json:"type"`
	// Etcd configures the etcd store.
	Etcd EtcdConfig `json:"etcd"`
}

// EtcdConfig configures the etcd store, with APISIX's key layout under Prefix.
type EtcdConfig struct {
	Endpoints []string `json:"endpoints"`
	// Prefix is the key prefix; APISIX's default is /apisix.
	Prefix string `json:"prefix"`
	// Timeout bounds each etcd request.
	Timeout  Duration `json:"timeout"`
	User     string   `json:"user"`
	Password string   `json:"password"`
	TLS      EtcdTLS  `json:"tls"`
}

// EtcdTLS configures TLS to etcd; with no files set and plain http://
// endpoints, TLS is off.
type EtcdTLS struct {
	CertFile   string `json:"cert_file"`
	KeyFile    string `json:"key_file"`
	CAFile     string `json:"ca_file"`
	ServerName string `json:"server_name"`
	// Verify checks the server certificate (default true).
	Verify *bool `json:"verify"`
}

// Admin configures the Admin API.
type Admin struct {
	// Listen is the Admin API address; "off" disables it. Binding it to a
	// non-loopback address requires a configured key.
	Listen string `json:"listen"`
	// Keys are the accepted X-API-KEY values. With none configured (and no
	// SLUICE_ADMIN_KEY), sluice generates one on first start.
	Keys []AdminKey `json:"keys"`
}

// AdminKey is one Admin API key and its role.
type AdminKey struct {
	Key string `json:"key"`
	// Role is admin (read and write, the default) or viewer (read only).
	Role string `json:"role"`
}

// Control configures the control API.
type Control struct {
	// Listen is the control API address; "off" disables it.
	Listen string `json:"listen"`
}

// ListenOff disables a listener.
const ListenOff = "off"

// StoreType resolves the effective store type.
func (g *Gateway) StoreType() string {
	if g.Store.Type != "" {
		return g.Store.Type
	}
	if g.Resources.File != "" {
		return StoreFile
	}
	return StoreEmbedded
}

func (s *StoreConfig) resolvePaths(abs func(string) string) {
	t := &s.Etcd.TLS
	t.CertFile, t.KeyFile, t.CAFile = abs(t.CertFile), abs(t.KeyFile), abs(t.CAFile)
}

func (g *Gateway) validateStore(es *FieldErrors) {
	switch g.StoreType() {
	case StoreEmbedded:
		if g.DataDir == "" {
			es.add("data_dir", "is required by the embedded store")
		}
	case StoreFile:
		if g.Resources.File == "" {
			es.add("resources.file", "is required when store.type is file")
		}
	case StoreEtcd:
		e := &g.Store.Etcd
		if len(e.Endpoints) == 0 {
			es.add("store.etcd.endpoints", "must have at least one endpoint")
		}
		for i, ep := range e.Endpoints {
			u, err := url.Parse(ep)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				es.add(index("store.etcd.endpoints", i), `must be an http:// or https:// URL, e.g. "http://127.0.0.1:2379"`)
			}
		}
		if !strings.HasPrefix(e.Prefix, "/") {
			es.add("store.etcd.prefix", `must start with "/"`)
		}
		if e.Timeout <= 0 {
			es.add("store.etcd.timeout", "must be greater than 0")
		}
		if (e.TLS.CertFile == "") != (e.TLS.KeyFile == "") {
			es.add("store.etcd.tls", "cert_file and key_file go together")
		}
	default:
		es.add("store.type", "must be one of embedded, etcd, file")
	}
	if g.Store.Type != "" && g.Store.Type != StoreFile && g.Resources.File != "" {
		es.add("resources.file", "is only used with store.type file")
	}
}

func (g *Gateway) validateAdmin(es *FieldErrors) {
	for _, l := range []struct{ path, addr string }{{"admin.listen", g.Admin.Listen}, {"control.listen", g.Control.Listen}} {
		if l.addr == ListenOff {
			continue
		}
		if msg := checkListenAddr(l.addr); msg != "" {
			es.add(l.path, "%s (or \"off\")", msg)
		}
	}
	for i, k := range g.Admin.Keys {
		p := index("admin.keys", i)
		if len(k.Key) < 16 {
			es.add(p+".key", "must be at least 16 characters")
		}
		switch k.Role {
		case "", "admin", "viewer":
		default:
			es.add(p+".role", "must be admin or viewer")
		}
	}
}

// IsLoopback reports whether a listen address only accepts local clients.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
