// Command sluice is the sluice API gateway: `sluice [-c FILE]` runs it,
// `sluice validate FILE` checks a config or resources file, `sluice version`
// prints the build.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/sluicegw/sluice/internal/accesslog"
	"github.com/sluicegw/sluice/internal/admin"
	"github.com/sluicegw/sluice/internal/config"
	"github.com/sluicegw/sluice/internal/lua"
	"github.com/sluicegw/sluice/internal/proxy"
	"github.com/sluicegw/sluice/internal/runtime"
	"github.com/sluicegw/sluice/internal/server"
	"github.com/sluicegw/sluice/internal/store"
	"github.com/sluicegw/sluice/plugin/shdict"
	_ "github.com/sluicegw/sluice/plugins/all" // every built-in plugin
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `sluice — an API gateway

Usage:
  sluice [-c FILE]        run the gateway (FILE: gateway config; defaults when omitted)
  sluice validate FILE    check a gateway config or an APISIX-style resources file;
                          prints every error with its field path, exit code 1 on error
  sluice version          print the version
  sluice help             show this help

Run 'sluice COMMAND --help' for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "validate":
			return cmdValidate(args[1:], stdout, stderr)
		case "version":
			fmt.Fprintln(stdout, "sluice", versionString())
			return 0
		case "help":
			fmt.Fprint(stdout, usage)
			return 0
		}
	}
	return cmdRun(args, stderr)
}

func versionString() string {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " (" + s.Value[:12] + ")"
			}
		}
		v += " " + bi.GoVersion
	}
	return v
}

func cmdRun(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("sluice", flag.ContinueOnError)
	fs.SetOutput(stderr)
	confPath := fs.String("c", "", "gateway config file (YAML or JSON)")
	fs.Usage = func() {
		fmt.Fprint(stderr, usage+"\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sluice: unknown command %q\n\n%s", fs.Arg(0), usage)
		return 2
	}
	conf, err := config.LoadGateway(*confPath)
	if err != nil {
		printErrors(stderr, err)
		return 1
	}
	log, closeLog, err := newErrorLog(conf.Log)
	if err != nil {
		fmt.Fprintln(stderr, "sluice:", err)
		return 1
	}
	defer closeLog()
	if err := serve(conf, *confPath, log); err != nil {
		log.Error("sluice stopped", "err", err)
		return 1
	}
	return 0
}

func serve(conf *config.Gateway, confPath string, log *slog.Logger) error {
	st, err := openStore(conf, log)
	if err != nil {
		return err
	}
	defer st.Close()
	access, err := newAccessLog(conf.Log.AccessLog)
	if err != nil {
		return err
	}
	defer access.Close()
	rt := runtime.New(st, runtime.Defaults{Timeouts: upstreamDefaults(conf), PluginAttr: conf.PluginAttr}, log)
	for name, size := range conf.SharedDicts {
		n, err := shdict.ParseSize(size)
		if err != nil {
			return fmt.Errorf("shared_dicts.%s: %w", name, err)
		}
		if _, err := rt.SharedDicts().Define(name, n); err != nil {
			return fmt.Errorf("shared_dicts.%s: %w", name, err)
		}
	}
	// Custom Lua plugins load after the shared dicts exist: module-level
	// code may reach ngx.shared.
	plugins := &pluginControl{confPath: confPath, rt: rt, log: log,
		lua: lua.NewRuntime(rt.SharedDicts(), log.With("component", "lua-plugins"))}
	if err := plugins.apply(conf); err != nil {
		return err
	}
	names := plugins.enabled()
	gw := proxy.New(rt, log, access)
	srv, err := server.New(gw, conf, log)
	if err != nil {
		return err
	}
	side, err := newSideListeners(conf, st, rt, admin.PluginControl{Enabled: plugins.enabled, Reload: plugins.reload,
		Lookup: plugins.lookup}, log)
	if err != nil {
		return err
	}
	if err := side.listenMetrics(conf, names, st, rt, gw, srv, log); err != nil {
		side.close()
		return err
	}
	if err := srv.Listen(); err != nil {
		side.close()
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rtDone := make(chan struct{})
	go func() { defer close(rtDone); _ = rt.Run(ctx) }()
	srv.Serve()
	side.serve()
	addrs := make([]string, 0, 2)
	for _, a := range srv.Addrs() {
		addrs = append(addrs, a.String())
	}
	log.Info("sluice started", "version", version, "listen", strings.Join(addrs, ","), "engine", conf.Engine,
		"store", conf.StoreType(), "admin", side.adminAddr(), "control", side.controlAddr(),
		"prometheus", side.metricsAddr())

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	for sig := range sigs {
		if sig == syscall.SIGHUP {
			if err := plugins.reload(); err != nil {
				log.Error("plugin list not reloaded", "err", err)
			}
			if f, ok := st.(*store.File); ok {
				log.Info("SIGHUP: reloading resources")
				if err := f.Reload(); err != nil {
					log.Error("reload rejected; still serving the previous configuration", "err", err)
				}
			}
			continue
		}
		log.Info("shutting down: draining in-flight requests", "signal", sig.String(),
			"timeout", time.Duration(conf.Timeouts.Shutdown).String())
		sctx, scancel := context.WithTimeout(context.Background(), time.Duration(conf.Timeouts.Shutdown))
		side.shutdown(sctx)
		err := srv.Shutdown(sctx)
		scancel()
		cancel()
		<-rtDone
		if err != nil {
			log.Warn("drain incomplete", "err", err)
		}
		log.Info("sluice stopped")
		return nil
	}
	return nil
}

func upstreamDefaults(conf *config.Gateway) upstreamTimeouts {
	return upstreamTimeouts{
		Connect: time.Duration(conf.Timeouts.UpstreamConnect),
		Send:    time.Duration(conf.Timeouts.UpstreamSend),
		Read:    time.Duration(conf.Timeouts.UpstreamRead),
	}
}

func newErrorLog(c config.Log) (*slog.Logger, func(), error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		return nil, nil, fmt.Errorf("log.level: %w", err)
	}
	w, closeFn, err := openDest(c.ErrorLog)
	if err != nil {
		return nil, nil, fmt.Errorf("log.error_log: %w", err)
	}
	if w == nil {
		return slog.New(slog.DiscardHandler), func() {}, nil
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})), closeFn, nil
}

func newAccessLog(dest string) (*accesslog.Logger, error) {
	w, _, err := openDest(dest)
	if err != nil {
		return nil, fmt.Errorf("log.access_log: %w", err)
	}
	if w == nil {
		return nil, nil
	}
	return accesslog.New(w), nil
}

// openDest opens a log destination: stdout, stderr, off (nil writer) or a file.
func openDest(dest string) (io.Writer, func(), error) {
	switch dest {
	case config.LogOff:
		return nil, func() {}, nil
	case config.LogStdout, "":
		return nopCloser{os.Stdout}, func() {}, nil
	case config.LogStderr:
		return nopCloser{os.Stderr}, func() {}, nil
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return nil, nil, err
	}
	f, err := os.OpenFile(dest, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, err
	}
	return f, func() { f.Close() }, nil
}

// nopCloser keeps the access logger from closing stdout or stderr.
type nopCloser struct{ io.Writer }

// printErrors prints each error of a joined or field-error list on its own line.
func printErrors(w io.Writer, err error) {
	var fe config.FieldErrors
	if errors.As(err, &fe) {
		for _, e := range fe {
			fmt.Fprintf(w, "%s: %s\n", e.Path, e.Msg)
		}
		return
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			printErrors(w, e)
		}
		return
	}
	fmt.Fprintln(w, err)
}
