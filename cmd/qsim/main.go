// Command qsim runs failure simulations of qorb pools in virtual time:
// the real pool code against simulated backends, DNS and faults, giving
// the same result, byte for byte, from the same seed.
//
// With no flags it runs a built-in scenario (a backend dies under load)
// and prints the summary, ending with the trace's hash:
//
//	go run ./cmd/qsim
//	go run ./cmd/qsim -scenario testdata/scenarios/dns-outage.toml -seed 7
//	go run ./cmd/qsim -scenario rolling-deploy -seeds 1-20
//	go run ./cmd/qsim -scenario thundering-herd -out /tmp/herd
//	go run ./cmd/qsim -swarm 1000
//
// -scenario takes a file or the name of a built-in scenario (-list lists
// them with their stories; -describe prints one). -seeds runs a range of
// seeds in parallel and prints one line each, in seed order. -swarm N
// runs N seeds, each with its own mix of faults drawn from the seed over
// the scenario's backends and clients, and writes every failing run as a
// scenario file that replays it. -out writes the files of a run (or of
// each seed, or the swarm's failures) into a directory.
//
// The exit status is 0 when every run kept every invariant and met every
// expectation (with -swarm: kept every invariant and did not panic; with
// -swarm-expect, met every expectation too), 1 when one did not, and 2
// on a usage, scenario or output error.
package main

import (
	"embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/qorbgo/qorb/sim"
)

//go:embed scenarios/*.toml
var builtin embed.FS

// defaultScenario is run when -scenario is not given.
const defaultScenario = "backend-dies-under-load"

// adjustOptions, when set, adjusts the options of every run. qsim leaves
// it nil; tests set it to plug a broken policy into the pools.
var adjustOptions func(*sim.Options)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usageHead = `qsim runs failure simulations of qorb connection pools in virtual time: the
real pool code against simulated backends, DNS and faults, with every
invariant checked after every event. The same scenario and seed give the
same run, byte for byte, on any machine.

Usage:
  qsim [-scenario NAME|FILE] [-seed N] [-out DIR]   one run: its summary
  qsim -scenario S -seeds A-B [-out DIR]            one line per seed, in parallel
  qsim -scenario S -swarm N [-seed FIRST] [-out DIR] [-swarm-expect]
                                                    N runs, each with its own
                                                    faults drawn from its seed
  qsim -list                                        the built-in scenarios
  qsim -describe NAME|FILE                          one scenario's file

Flags:
`

const usageTail = `
Exit status:
  0  every run kept every invariant and met every expectation of its scenario
     (with -swarm: kept every invariant and did not panic; expectations
     count too with -swarm-expect)
  1  a run broke an invariant, missed an expectation, or (-swarm) panicked
  2  usage, scenario or output error

See docs/sim.md for the scenario format, the invariants and swarm mode.
`

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("qsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {} // -h prints it on stdout; a mistake gets a hint on stderr
	scenario := fs.String("scenario", defaultScenario, "scenario `file`, or the name of a built-in scenario")
	seed := fs.Uint64("seed", 0, "seed `N` (default: the scenario's); with -swarm, the first seed")
	seeds := fs.String("seeds", "", "run a `range` of seeds, such as 1-20, in parallel: one line each, in seed order")
	swarm := fs.Uint64("swarm", 0, "run `N` seeds, each with faults drawn from its seed in place of the scenario's")
	swarmExpect := fs.Bool("swarm-expect", false, "with -swarm, count a run that misses an expectation of the scenario as failed")
	workers := fs.Int("workers", runtime.GOMAXPROCS(0), "`N` runs at once with -seeds and -swarm: GOMAXPROCS by default")
	out := fs.String("out", "", "write the files of the run into `dir`: trace.jsonl, summary.txt, result.json, picture.svg\n(-seeds: one directory per seed; -swarm: swarm.json and a scenario file per failing run)")
	list := fs.Bool("list", false, "list the built-in scenarios with their stories")
	describe := fs.String("describe", "", "print the scenario file of a built-in scenario `name` (or of a file)")
	progress := fs.Bool("progress", true, "show progress on stderr when it is a terminal (a run longer than a second, or -swarm)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usageHead)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			fmt.Fprint(stdout, usageTail)
			return 0
		}
		fmt.Fprintln(stderr, "run qsim -h for the usage")
		return 2
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "qsim: "+format+"\n", a...)
		fmt.Fprintln(stderr, "run qsim -h for the usage")
		return 2
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case fs.NArg() > 0:
		return usageErr("unexpected arguments %q", fs.Args())
	case set["seed"] && set["seeds"]:
		return usageErr("-seed and -seeds: give one seed, or a range")
	case set["swarm"] && set["seeds"]:
		return usageErr("-swarm and -seeds: -swarm runs N seeds from -seed (default the scenario's)")
	case set["swarm"] && *swarm == 0:
		return usageErr("-swarm 0: want at least one run")
	case set["swarm-expect"] && !set["swarm"]:
		return usageErr("-swarm-expect is for -swarm")
	case *workers < 1:
		return usageErr("-workers %d: want at least 1", *workers)
	}
	if *list {
		return listBuiltin(stdout, stderr)
	}
	if *describe != "" {
		return describeScenario(*describe, stdout, stderr)
	}
	sc, err := loadScenario(*scenario)
	if err != nil {
		fmt.Fprintf(stderr, "qsim: %v\n", err)
		return 2
	}
	showProgress := *progress && isTerminal(stderr)
	switch {
	case *seeds != "":
		lo, hi, err := parseRange(*seeds)
		if err != nil {
			return usageErr("-seeds: %v", err)
		}
		return runSeeds(sc, lo, hi, *workers, *out, stdout, stderr)
	case *swarm > 0:
		first := *seed
		if first == 0 {
			first = max(sc.Seed, 1)
		}
		return runSwarm(swarmConfig{sc: sc, scenario: *scenario, first: first, runs: *swarm, workers: *workers, expect: *swarmExpect,
			out: *out, progress: showProgress}, stdout, stderr)
	}
	return runOne(sc, *seed, *out, showProgress, stdout, stderr)
}
