// Package qsim is the simulator's command line, qsim, as a library: [Main]
// runs it with the arguments of a command. The stock command, cmd/qsim,
// is a thin main over it.
//
// qsim runs failure simulations of qorb pools in virtual time: the real
// pool code against simulated backends, DNS and faults, giving the same
// result, byte for byte, from the same seed. With no flags it runs a
// built-in scenario (a backend dies under load): it tells the scenario's
// story (what happens when, and what to look at), then prints the
// summary, ending with the trace's hash:
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
// on a usage, scenario or output error, or for a run stopped over its
// budget (-max-events, -max-live-claims).
//
// # Policies of one's own
//
// A policy's Rebalancer, Picker and Backoff are Go values, which a
// scenario file cannot name. To run scenarios with them (a failing
// schedule that package sim/policytest wrote, above all), write a qsim of
// your own: a main that registers the policies and calls Main.
//
//	// Command myqsim is qsim with our policies.
//	package main
//
//	func main() {
//		qsim.RegisterPolicy("my-rebalancer", func() pool.Policy {
//			return pool.Policy{Rebalancer: MyRebalancer{}}
//		})
//		os.Exit(qsim.Main(os.Args[1:], os.Stdout, os.Stderr))
//	}
//
// Then
//
//	go run ./cmd/myqsim -policy my-rebalancer -scenario sim/policytest/testdata/policytest/TestMyRebalancer.toml
//
// runs every client of the scenario with that policy, in place of the
// scenario's own [clients.policy], exactly as policytest ran it: with
// the same backoff bounds and the same checks after the run (the connect
// rate bound and Config.Check), which fail the run like an invariant.
// With -seeds and -swarm the policy runs in every seed. Give the same
// name as policytest.Config.Name, and the command that runs this qsim as
// policytest.Config.QSim (for example "go run ./cmd/myqsim"), and
// policytest prints this command in the header of the files it writes,
// next to the go test command that replays the failure in the test
// itself. [Register] registers a whole
// policytest.Config, for a policy tested with BackoffBounds, Check or
// MaxConnectRate of its own.
package qsim

import (
	"embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/qorbgo/qorb/pool"
	"github.com/qorbgo/qorb/sim"
	"github.com/qorbgo/qorb/sim/policytest"
)

//go:embed scenarios/*.toml
var builtin embed.FS

// Bounds of the flags that set counts: -workers and the runs of -seeds
// and -swarm.
const (
	maxWorkers = 256
	maxRuns    = 10_000_000
)

// defaultScenario is run when -scenario is not given.
const defaultScenario = "backend-dies-under-load"

// adjustOptions, when set, adjusts the options of every run. qsim leaves
// it nil; tests set it to plug a broken policy into the pools.
var adjustOptions func(*sim.Options)

// registry holds the policies -policy can name.
var registry struct {
	mu       sync.Mutex
	policies map[string]policytest.Config
}

// RegisterPolicy makes policy runnable as -policy name: every client of
// the scenario runs with policy() in place of its own, and each run is
// checked as package sim/policytest checks it, with the harness's
// defaults. Call it before Main, from main or an init function. It
// panics when name is empty, holds a character other than a letter, a
// digit, '-', '_' or '.', or is registered already.
func RegisterPolicy(name string, policy func() pool.Policy) {
	Register(name, policytest.Config{Name: name, Policy: policy})
}

// Register is [RegisterPolicy] with the whole policytest.Config the
// policy is tested with: its Policy (required), BackoffBounds, Check and
// MaxConnectRate apply to every run with -policy name. It panics as
// RegisterPolicy does, and when cfg.Policy is nil.
func Register(name string, cfg policytest.Config) {
	if name == "" || strings.TrimFunc(name, func(r rune) bool {
		return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.'
	}) != "" {
		panic(fmt.Sprintf("qsim: RegisterPolicy: bad name %q: want letters, digits, '-', '_' and '.'", name))
	}
	if cfg.Policy == nil {
		panic("qsim: Register " + name + ": Config.Policy is nil")
	}
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if _, ok := registry.policies[name]; ok {
		panic("qsim: RegisterPolicy: " + name + " is registered twice")
	}
	if registry.policies == nil {
		registry.policies = map[string]policytest.Config{}
	}
	registry.policies[name] = cfg
}

// registered returns the policy registered as name.
func registered(name string) (policytest.Config, bool) {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	cfg, ok := registry.policies[name]
	return cfg, ok
}

// registeredNames returns the registered names, sorted.
func registeredNames() []string {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	var names []string
	for n := range registry.policies {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
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

-policy NAME runs every client with a policy registered in a qsim of one's
own (package sim/qsim: RegisterPolicy, then Main), in place of the
scenario's, with the checks of package sim/policytest; it replays a
schedule policytest wrote with that policy.

Flags:
`

const usageTail = `
Exit status:
  0  every run kept every invariant and met every expectation of its scenario
     (with -swarm: kept every invariant and did not panic; expectations
     count too with -swarm-expect)
  1  a run broke an invariant, missed an expectation, or (-swarm) panicked or
     went over its budget
  2  usage, scenario or output error, or a run stopped over its budget
     (-max-events, -max-live-claims; with -swarm it is a failing run)

See docs/sim.md for the scenario format, the invariants and swarm mode.
`

// Main runs qsim with args (without the program's name), writing to
// stdout and stderr, and returns the exit status: 0 when every run kept
// every invariant and met every expectation, 1 when one did not, 2 on a
// usage, scenario or output error or a run stopped over its budget. -h
// prints the usage on stdout. Main may be called more than once; the
// runs of one call go to every core (-workers).
func Main(args []string, stdout, stderr io.Writer) int {
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
	maxEvents := fs.Uint64("max-events", sim.DefaultMaxEvents, "stop a run past `N` events, with a message saying so: its budget of time")
	maxLive := fs.Int("max-live-claims", sim.DefaultMaxLiveClaims, "stop a run past `N` claims live at once, with a message saying so: its budget of memory")
	policyName := fs.String("policy", "", "run every client with the policy registered as `name` (RegisterPolicy, in a qsim of one's own)\nin place of the scenario's, with the checks of sim/policytest")
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
	case *workers < 1 || *workers > maxWorkers:
		return usageErr("-workers %d: want 1 to %d: each worker holds up to two runs in memory, and a run uses one core", *workers, maxWorkers)
	case *maxEvents < 1:
		return usageErr("-max-events %d: want at least 1", *maxEvents)
	case *maxLive < 1:
		return usageErr("-max-live-claims %d: want at least 1", *maxLive)
	case *swarm > maxRuns:
		return usageErr("-swarm %d: at most %d runs at a time: even small runs take hours by then (-seed starts the next swarm where one ended)", *swarm, maxRuns)
	}
	bud := budget{events: *maxEvents, live: *maxLive}
	var pol *policy
	if set["policy"] {
		cfg, ok := registered(*policyName)
		if !ok {
			names := registeredNames()
			if len(names) == 0 {
				return usageErr("-policy %s: no policy is registered in this qsim (a qsim of your own registers them: see package sim/qsim)", *policyName)
			}
			return usageErr("-policy %s: no such policy; registered: %s", *policyName, strings.Join(names, ", "))
		}
		pol = &policy{name: *policyName, cfg: cfg}
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
		if hi-lo >= maxRuns {
			return usageErr("-seeds %s: %d seeds; at most %d at a time: even small runs take hours by then (split the range)", *seeds, hi-lo+1, maxRuns)
		}
		return runSeeds(sc, lo, hi, *workers, *out, pol, bud, stdout, stderr)
	case *swarm > 0:
		first := *seed
		if first == 0 {
			first = max(sc.Seed, 1)
		}
		return runSwarm(swarmConfig{sc: sc, scenario: *scenario, first: first, runs: *swarm, workers: *workers, expect: *swarmExpect,
			out: *out, progress: showProgress, pol: pol, budget: bud}, stdout, stderr)
	}
	return runOne(sc, *seed, *out, showProgress, pol, bud, stdout, stderr)
}
