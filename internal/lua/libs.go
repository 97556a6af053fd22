package lua

import (
	glua "github.com/yuin/gopher-lua"

	"github.com/sluicegw/sluice/internal/luangx"
	"github.com/sluicegw/sluice/plugin/shdict"
)

// openLibraries installs the request-independent ngx libraries and cjson
// (package internal/luangx) into ngx. It runs once per VM.
func openLibraries(L *glua.LState, ngx *glua.LTable, dicts *shdict.Registry) {
	luangx.OpenConstants(L, ngx)
	luangx.OpenRe(L, ngx)
	luangx.OpenCodec(L, ngx)
	luangx.OpenTime(L, ngx)
	luangx.OpenShared(L, ngx, dicts)
	luangx.OpenCJSON(L)
}
