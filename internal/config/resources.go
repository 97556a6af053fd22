package config

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
)

// ErrMissingEndFlag reports a YAML resources file whose end is not "#END".
var ErrMissingEndFlag = errors.New("missing #END flag")

// endFlagWindow is how many trailing bytes APISIX inspects for the end flag: it
// seeks 10 bytes before the end of apisix.yaml and matches `#END\s*$` there
// (apisix/core/config_yaml.lua). So "#END" may be followed by whitespace, but
// only as much as fits in those 10 bytes.
const endFlagWindow = 10

// HasEndFlag reports whether data ends the way APISIX requires of a YAML
// resources file: "#END" followed only by whitespace, within the last 10 bytes.
// Like APISIX it does not require "#END" to start a line.
func HasEndFlag(data []byte) bool {
	tail := data[max(0, len(data)-endFlagWindow):]
	i := bytes.LastIndex(tail, []byte("#END"))
	if i < 0 {
		return false
	}
	// PCRE's \s: space, \t, \n, \v, \f, \r.
	return len(bytes.Trim(tail[i+4:], " \t\n\v\f\r")) == 0
}

// DetectFormat picks JSON for a ".json" name and YAML for ".yaml"/".yml";
// otherwise a document starting with "{" is JSON and anything else YAML.
func DetectFormat(name string, data []byte) Format {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".json":
		return FormatJSON
	case ".yaml", ".yml":
		return FormatYAML
	}
	if b := bytes.TrimSpace(data); len(b) > 0 && b[0] == '{' {
		return FormatJSON
	}
	return FormatYAML
}

// ignoredTopLevel reports the APISIX standalone keys sluice accepts without using
// (yet), so an apisix.yaml written for APISIX loads; anything else is a typo.
// APISIX's API-driven standalone mode also writes "<kind>_conf_version" keys.
func ignoredTopLevel(key string) bool {
	kind := strings.TrimSuffix(key, "_conf_version")
	switch kind {
	case "routes", "services", "upstreams", "consumers", "consumer_groups",
		"plugin_configs", "global_rules", "ssls", "plugin_metadata":
		return kind != key // the kinds themselves are decoded, their versions ignored
	case "credentials", "plugins", "stream_routes", "protos", "secrets":
		return true
	}
	return false
}

// ParseResourcesFile decodes an APISIX standalone resources file (apisix.yaml or
// apisix.json). name selects the format (see DetectFormat) and prefixes errors.
// A YAML file must end with "#END" (see HasEndFlag) so a half-written file is
// never loaded; JSON needs no flag because a truncated document does not parse,
// which is also APISIX's rule. The kinds of Resources are decoded; the other
// APISIX top-level keys (credentials, plugins, stream_routes, protos, secrets and
// every <kind>_conf_version) are ignored and unknown ones rejected. Defaults are
// applied; call Resources.Validate on the result.
func ParseResourcesFile(data []byte, name string) (*Resources, error) {
	f := DetectFormat(name, data)
	if f == FormatYAML && !HasEndFlag(data) {
		return nil, fmt.Errorf("%s: %w: APISIX loads a YAML resources file only when it ends with #END", name, ErrMissingEndFlag)
	}
	tree, err := parseTree(data, f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	res := new(Resources)
	if tree == nil {
		return res, nil // an empty file (only "#END") holds no resources
	}
	top, ok := tree.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: %w", name, FieldErrors{{Msg: "the top level must be an object"}})
	}
	for k := range top {
		if ignoredTopLevel(k) {
			delete(top, k)
		}
	}
	var w walker
	w.check(top, reflect.TypeFor[Resources](), "")
	if len(w.errs) > 0 {
		return nil, fmt.Errorf("%s: %w", name, w.errs)
	}
	if err := decodeTree(top, res, ""); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	for i := range res.Routes {
		res.Routes[i].ApplyDefaults()
	}
	for i := range res.Services {
		res.Services[i].ApplyDefaults()
	}
	for i := range res.Upstreams {
		res.Upstreams[i].ApplyDefaults()
	}
	for i := range res.SSLs {
		res.SSLs[i].ApplyDefaults()
	}
	return res, nil
}
