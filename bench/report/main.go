// Command report turns the raw.tsv written by bench/run.sh into Markdown
// tables: per scenario and proxy, the median over rounds of each metric and
// the median over rounds of the per-round ratio to plain nginx.
//
// Usage: go run ./bench/report bench/results/<run>/raw.tsv
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
)

const baseline = "nginx"

var scenarioTitle = map[string]string{
	"small-c50":      "Small response, 50 connections",
	"small-c100":     "Small response, 100 connections",
	"16k-c50":        "16 KiB response, 50 connections",
	"routes1000-c50": "1,000 routes configured, small response, 50 connections",
}

var proxyTitle = map[string]string{
	"nginx":     "nginx",
	"nginx-lua": "nginx + Lua access phase",
	"haproxy":   "HAProxy",
	"caddy":     "Caddy",
	"sluice":    "sluice",
}

// metric indexes
const (
	mRPS = iota
	mP99
	mCPU
	mRSS
	mPct
	mLoad
	mOtherProxyCore
	mOtherLoadCore
	nMetrics
)

type run struct {
	ok bool
	v  [nMetrics]float64
}

type key struct{ scenario, proxy, round string }

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: report raw.tsv")
		os.Exit(2)
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer f.Close()
	if err := report(f, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

func report(r io.Reader, w io.Writer) error {
	var scenarios, proxies, rounds []string
	seen := map[string]bool{}
	add := func(list *[]string, kind, s string) {
		if !seen[kind+s] {
			seen[kind+s] = true
			*list = append(*list, s)
		}
	}
	runs := map[key]run{}
	var failures []string

	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	col := map[string]int{}
	for line := 0; sc.Scan(); line++ {
		fields := strings.Split(sc.Text(), "\t")
		if line == 0 {
			for i, name := range fields {
				col[name] = i
			}
			for _, need := range []string{"scenario", "round", "proxy", "status", "rps", "p99_us", "cpu_us_per_req", "rss_kb", "proxy_cpu_pct", "load_core_busy_pct", "reason"} {
				if _, ok := col[need]; !ok {
					return fmt.Errorf("missing column %q", need)
				}
			}
			continue
		}
		get := func(name string) string {
			if i := col[name]; i < len(fields) {
				return fields[i]
			}
			return ""
		}
		num := func(name string) float64 {
			v, _ := strconv.ParseFloat(get(name), 64)
			return v
		}
		k := key{get("scenario"), get("proxy"), get("round")}
		add(&scenarios, "s", k.scenario)
		add(&proxies, "p", k.proxy)
		add(&rounds, "r", k.round)
		rn := run{ok: get("status") == "OK"}
		rn.v[mRPS] = num("rps")
		rn.v[mP99] = num("p99_us") / 1000
		rn.v[mCPU] = num("cpu_us_per_req")
		rn.v[mRSS] = num("rss_kb") / 1024
		rn.v[mPct] = num("proxy_cpu_pct")
		rn.v[mLoad] = num("load_core_busy_pct")
		rn.v[mOtherProxyCore] = num("proxy_core_other_pct")
		rn.v[mOtherLoadCore] = num("load_core_other_pct")
		runs[k] = rn
		if !rn.ok {
			failures = append(failures, fmt.Sprintf("%s round %s %s: %s", k.scenario, k.round, k.proxy, get("reason")))
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}

	for _, s := range scenarios {
		title := scenarioTitle[s]
		if title == "" {
			title = s
		}
		fmt.Fprintf(w, "### %s (`%s`)\n\n", title, s)
		fmt.Fprintln(w, "| Proxy | req/s | p99 latency | CPU µs/req | RSS | proxy CPU | req/s vs nginx | p99 vs nginx | CPU/req vs nginx | RSS vs nginx |")
		fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
		var loads, otherP, otherL []float64
		for _, p := range proxies {
			var abs [nMetrics][]float64
			var ratio [nMetrics][]float64
			okRuns, allRuns := 0, 0
			for _, rd := range rounds {
				rn, found := runs[key{s, p, rd}]
				if !found {
					continue
				}
				allRuns++
				if !rn.ok {
					continue
				}
				okRuns++
				for m := 0; m < nMetrics; m++ {
					abs[m] = append(abs[m], rn.v[m])
				}
				loads = append(loads, rn.v[mLoad])
				otherP = append(otherP, rn.v[mOtherProxyCore])
				otherL = append(otherL, rn.v[mOtherLoadCore])
				if base, bok := runs[key{s, baseline, rd}]; bok && base.ok {
					for m := 0; m < nMetrics; m++ {
						if base.v[m] > 0 {
							ratio[m] = append(ratio[m], rn.v[m]/base.v[m])
						}
					}
				}
			}
			if allRuns == 0 {
				continue
			}
			name := proxyTitle[p]
			if name == "" {
				name = p
			}
			if okRuns < allRuns {
				name += fmt.Sprintf(" (%d/%d runs ok)", okRuns, allRuns)
			}
			if okRuns == 0 {
				fmt.Fprintf(w, "| %s | failed | | | | | | | | |\n", name)
				continue
			}
			fmt.Fprintf(w, "| %s | %.0f | %.2f ms | %.1f | %.1f MiB | %.0f%% | %s | %s | %s | %s |\n",
				name, median(abs[mRPS]), median(abs[mP99]), median(abs[mCPU]), median(abs[mRSS]), median(abs[mPct]),
				fmtRatio(ratio[mRPS]), fmtRatio(ratio[mP99]), fmtRatio(ratio[mCPU]), fmtRatio(ratio[mRSS]))
		}
		if len(loads) > 0 {
			sort.Float64s(loads)
			fmt.Fprintf(w, "\nLoad core (wrk + upstream) busy: %.0f–%.0f%% across runs", loads[0], loads[len(loads)-1])
			if loads[len(loads)-1] >= 95 {
				fmt.Fprint(w, " — at ~100% the load generator, not the proxy, limits req/s; compare CPU µs/req")
			}
			fmt.Fprintln(w, ".")
			sort.Float64s(otherP)
			sort.Float64s(otherL)
			maxP, maxL := otherP[len(otherP)-1], otherL[len(otherL)-1]
			fmt.Fprintf(w, "CPU used by other processes during the runs (max): %.0f%% of the proxy core, %.0f%% of the load core", maxP, maxL)
			if maxP > 10 || maxL > 10 {
				fmt.Fprint(w, " — **the machine was not quiet; treat these numbers with care**")
			}
			fmt.Fprintln(w, ".")
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "Rounds: %d. Absolute values: median over rounds. \"vs nginx\": median over rounds of the ratio to plain nginx in the same round (req/s: higher is better; p99, CPU/req, RSS: lower is better). \"proxy CPU\": the proxy's CPU time / wall time (100%% = its core saturated).\n", len(rounds))
	if len(failures) > 0 {
		fmt.Fprintf(w, "\n**Failed runs (excluded):**\n\n")
		for _, f := range failures {
			fmt.Fprintf(w, "- %s\n", f)
		}
	}
	return nil
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func fmtRatio(v []float64) string {
	if len(v) == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f×", median(v))
}
