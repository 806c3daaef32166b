// Command qsim runs failure simulations of qorb pools in virtual time.
//
// With no flags it runs a built-in scenario (a backend dies under load)
// and prints the summary, ending with the trace's hash:
//
//	go run ./cmd/qsim
//	go run ./cmd/qsim -scenario testdata/scenarios/dns-outage.toml -seed 7
//	go run ./cmd/qsim -scenario rolling-deploy -seeds 1-20
//	go run ./cmd/qsim -scenario herd -out /tmp/herd
//
// -scenario takes a file or the name of a built-in scenario (-list lists
// them). -seeds runs a range of seeds and prints one line each. -out
// writes trace.jsonl, summary.txt, result.json and picture.svg into a
// directory. The exit status is 1 when an invariant or an expectation
// fails, 2 on a usage or scenario error.
package main

import (
	"embed"
	"flag"
	"fmt"
	"io"
	"os"
)

//go:embed scenarios/*.toml
var builtin embed.FS

// defaultScenario is run when -scenario is not given.
const defaultScenario = "backend-dies-under-load"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("qsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	scenario := fs.String("scenario", defaultScenario, "scenario `file`, or the name of a built-in scenario")
	seed := fs.Uint64("seed", 0, "seed (default: the scenario's)")
	seeds := fs.String("seeds", "", "run a `range` of seeds, such as 1-20, one summary line each")
	out := fs.String("out", "", "write trace.jsonl, summary.txt, result.json and picture.svg into `dir`")
	list := fs.Bool("list", false, "list the built-in scenarios")
	progress := fs.Bool("progress", true, "show a progress bar on stderr for runs longer than a second")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "qsim: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if *list {
		return listBuiltin(stdout, stderr)
	}
	sc, err := loadScenario(*scenario)
	if err != nil {
		fmt.Fprintf(stderr, "qsim: %v\n", err)
		return 2
	}
	if *seeds != "" {
		lo, hi, err := parseRange(*seeds)
		if err != nil {
			fmt.Fprintf(stderr, "qsim: -seeds: %v\n", err)
			return 2
		}
		return runSeeds(sc, lo, hi, stdout, stderr)
	}
	return runOne(sc, *seed, *out, *progress, stdout, stderr)
}
