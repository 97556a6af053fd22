// Package serverlesspre implements APISIX's serverless-pre-function: Lua
// functions run at the start of a phase (priority 10000). The Lua runtime is
// internal/lua; docs/plugins/serverless-pre-function.md is the user page.
package serverlesspre

import (
	"github.com/sluicegw/sluice/internal/lua"
	"github.com/sluicegw/sluice/plugin"
)

// Name and Priority are APISIX's.
const (
	Name     = "serverless-pre-function"
	Priority = 10000
)

func init() {
	plugin.Register(plugin.Descriptor{
		Name:      Name,
		Priority:  Priority,
		NewConfig: func() plugin.Config { return lua.NewServerlessConfig() },
		Schema:    lua.ServerlessSchema(),
		New: func(cfg plugin.Config, deps plugin.Deps) (any, error) {
			return lua.NewServerless(Name, cfg, deps)
		},
	})
}
