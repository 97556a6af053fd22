package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/sluicegw/sluice/internal/config"
	"github.com/sluicegw/sluice/internal/metrics"
	"github.com/sluicegw/sluice/internal/runtime"
	"github.com/sluicegw/sluice/internal/upstream"
	"github.com/sluicegw/sluice/plugins/opentelemetry"
	proxymirror "github.com/sluicegw/sluice/plugins/proxy-mirror"
)

type upstreamTimeouts = upstream.Timeouts

// cmdValidate checks a gateway config or a resources file with the same code
// the gateway loads them with, so a file that passes here loads there.
func cmdValidate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: sluice validate FILE\n\nChecks FILE, a gateway config or an APISIX-style resources file\n"+
			"(YAML ending in #END, or JSON). Prints every error with its field path; exit code 1 on error.\n")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	path := fs.Arg(0)
	data, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if isResourcesFile(data) {
		if err := validateResources(data, path); err != nil {
			printErrors(stdout, err)
			return 1
		}
		fmt.Fprintf(stdout, "%s: resources file is valid\n", path)
		return 0
	}
	conf, err := config.LoadGateway(path)
	if err != nil {
		printErrors(stdout, err)
		return 1
	}
	if err := validatePluginAttr(conf.PluginAttr); err != nil {
		printErrors(stdout, err)
		return 1
	}
	if conf.Resources.File != "" {
		if rdata, err := os.ReadFile(conf.Resources.File); err == nil {
			if err := validateResources(rdata, conf.Resources.File); err != nil {
				printErrors(stdout, err)
				return 1
			}
		} else {
			fmt.Fprintf(stdout, "resources.file: %v\n", err)
			return 1
		}
	}
	fmt.Fprintf(stdout, "%s: gateway config is valid\n", path)
	return 0
}

// validatePluginAttr checks the plugin_attr sections the gateway parses
// itself, as starting it would.
func validatePluginAttr(attr map[string]map[string]any) error {
	var errs []error
	if _, err := metrics.ParseAttr(attr["prometheus"]); err != nil {
		errs = append(errs, err)
	}
	if raw, ok := attr["opentelemetry"]; ok {
		if _, err := opentelemetry.ParseAttr(raw); err != nil {
			errs = append(errs, err)
		}
	}
	if raw, ok := attr["proxy-mirror"]; ok {
		if _, err := proxymirror.ParseAttr(raw); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// isResourcesFile tells a resources file from a gateway config: resources
// files have top-level routes, services or upstreams, or the #END marker.
func isResourcesFile(data []byte) bool {
	if config.HasEndFlag(data) {
		return true
	}
	for _, key := range []string{"routes", "services", "upstreams"} {
		if bytes.Contains(data, []byte("\n"+key+":")) || bytes.HasPrefix(data, []byte(key+":")) ||
			bytes.Contains(data, []byte(`"`+key+`"`)) {
			return true
		}
	}
	return false
}

func validateResources(data []byte, name string) error {
	res, err := config.ParseResourcesFile(data, name)
	if err != nil {
		return err
	}
	_, err = runtime.Compile(res, 0, runtime.Deps{})
	return err
}
