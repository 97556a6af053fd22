// Package serverlesspost implements APISIX's serverless-post-function: Lua
// functions run at the end of a phase (priority -2000). The Lua runtime is
// internal/lua; docs/plugins/serverless-post-function.md is the user page.
package serverlesspost

import (
	"github.com/sluicegw/sluice/internal/lua"
	"github.com/sluicegw/sluice/plugin"
)

// Name and Priority are APISIX's.
const (
	Name     = "serverless-post-function"
	Priority = -2000
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
