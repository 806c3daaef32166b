package qsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/qorbgo/qorb/sim"
)

// swarmConfig is what -swarm runs.
type swarmConfig struct {
	sc       *sim.Scenario // the topology; its faults are replaced by drawn ones
	scenario string        // how -scenario named it
	first    uint64        // the first seed
	runs     uint64        // seeds first … first+runs-1
	workers  int
	expect   bool   // a missed expectation fails the run (-swarm-expect)
	out      string // where failing scenarios and swarm.json go; "" makes a temporary directory at the first failure
	progress bool   // a status line on stderr
	pol      *policy
	budget   budget // of each run
}

// swarmRun is what one run of the swarm gives: only what the summary
// needs, and the drawn scenario of a failing run.
type swarmRun struct {
	seed      uint64
	events    uint64
	virtual   time.Duration
	faults    int
	kinds     []string // the fault kinds of the drawn schedule, each once
	failure   string   // the invariant violated, "panic", "budget" (stopped over its budget), with expect "expect:NAME", with -policy "policytest"; "" when it passed
	detail    string   // the violation, the panic's value, or the unmet expectation
	missed    []string // the expectations it did not meet
	drawn     *sim.Scenario
	traceHash string
}

// swarmFailure is one failing run in swarm.json.
type swarmFailure struct {
	Seed    uint64 `json:"seed"`
	Failure string `json:"failure"` // the invariant, "panic", "budget" (stopped over its budget), "expect:NAME", or "policytest" (a check of -policy)
	Detail  string `json:"detail"`
	File    string `json:"file"`   // the drawn scenario, replayable
	Replay  string `json:"replay"` // the command that replays it
	// TraceHash is the run's trace hash (empty after a panic): the
	// replay gives the same.
	TraceHash string `json:"trace_hash,omitempty"`
}

// swarmResult is swarm.json: what a swarm ran and found.
type swarmResult struct {
	Scenario  string    `json:"scenario"`   // the scenario whose topology the runs share
	FirstSeed uint64    `json:"first_seed"` // the runs' seeds are first_seed … first_seed+runs-1
	Runs      uint64    `json:"runs"`
	Workers   int       `json:"workers"`
	Expect    bool      `json:"expect"` // missed expectations counted as failures (-swarm-expect)
	Build     sim.Build `json:"build"`  // the qorb and Go versions that ran it
	// Failures lists the failing runs in seed order; FailuresBy counts
	// them by invariant ("panic", "expect:NAME").
	Failures   []swarmFailure    `json:"failures"`
	FailuresBy map[string]uint64 `json:"failures_by"`
	// Missed counts the runs that missed each expectation of the
	// scenario (failures only with Expect).
	Missed map[string]uint64 `json:"missed_expectations"`
	// Kinds counts the runs whose schedule had each fault kind.
	Kinds        map[string]uint64 `json:"fault_kinds"`
	Faults       uint64            `json:"faults"`  // faults drawn in all
	Events       uint64            `json:"events"`  // simulator events and loop timers, all runs
	Virtual      sim.Duration      `json:"virtual"` // virtual time simulated, all runs
	Wall         sim.Duration      `json:"wall"`    // real time the swarm took
	EventsPerSec float64           `json:"events_per_second"`
}

// swarmOne draws and runs one seed.
func swarmOne(cfg *swarmConfig, seed uint64) (out swarmRun) {
	out.seed = seed
	var drawn *sim.Scenario
	defer func() {
		if v := recover(); v != nil {
			out.failure, out.detail = "panic", fmt.Sprintf("%v\n%s", v, debug.Stack())
			out.drawn = drawn // nil when the draw panicked
		}
	}()
	drawn = cfg.sc.Swarm(seed)
	out.faults = len(drawn.Faults)
	for _, f := range drawn.Faults {
		if !slices.Contains(out.kinds, f.Kind) {
			out.kinds = append(out.kinds, f.Kind)
		}
	}
	r, err := sim.Run(drawn, cfg.pol.options(seed, cfg.budget))
	if be, over := err.(*sim.BudgetError); over {
		// Not the pool's failure, but a run that did not finish: a
		// failure of its own kind, with its file.
		out.events, out.virtual = r.Events, be.At.D()
		out.failure, out.detail, out.drawn = "budget", explain(be), drawn
		return out
	}
	if err != nil {
		// The draw made a scenario the simulator refuses: a bug of the
		// draw, reported as a failure with its file.
		out.failure, out.detail, out.drawn = "invalid-draw", err.Error(), drawn
		return out
	}
	out.events, out.virtual, out.traceHash = r.Events, r.Virtual.D(), r.TraceHash
	if v := r.Violation; v != nil {
		out.virtual = min(out.virtual, v.At.D()) // where it stopped
	}
	for _, e := range r.Expect {
		if !e.OK {
			out.missed = append(out.missed, e.Name)
		}
	}
	switch {
	case r.Violation != nil:
		out.failure, out.detail = r.Violation.Invariant, r.Violation.Error()
	case cfg.expect && len(out.missed) > 0:
		out.failure, out.detail = "expect:"+out.missed[0], r.Err().Error()
	default:
		if err := cfg.pol.verify(drawn, r); err != nil {
			out.failure, out.detail = "policytest", err.Error()
		}
	}
	if out.failure != "" {
		out.drawn = drawn
	}
	return out
}

// runSwarm runs the swarm, prints each failure as it comes (in seed
// order) with the command that replays it, then the summary.
func runSwarm(cfg swarmConfig, stdout, stderr io.Writer) int {
	if cfg.first+cfg.runs-1 < cfg.first {
		fmt.Fprintf(stderr, "qsim: -seed %d -swarm %d: the seeds pass the largest seed\n", cfg.first, cfg.runs)
		return 2
	}
	res := swarmResult{Scenario: cfg.sc.Name, FirstSeed: cfg.first, Runs: cfg.runs, Workers: cfg.workers, Expect: cfg.expect,
		Build: sim.CurrentBuild(), Failures: []swarmFailure{}, FailuresBy: map[string]uint64{}, Missed: map[string]uint64{}, Kinds: map[string]uint64{}}
	fmt.Fprintf(stdout, "swarm: %s, seeds %d-%d (%d runs, %d at once), qorb %s, %s\n",
		cfg.sc.Name, cfg.first, cfg.first+cfg.runs-1, cfg.runs, cfg.workers, res.Build.Module, res.Build.Go)
	var status statusLine
	if cfg.progress {
		status.w = stderr
	}
	dir := cfg.out
	var virtual time.Duration
	var done uint64
	var writeErr error
	start := time.Now()
	parallel(cfg.runs, cfg.workers, func(i uint64) swarmRun {
		return swarmOne(&cfg, cfg.first+i)
	}, func(i uint64, sr swarmRun) {
		done++
		res.Events += sr.events
		res.Faults += uint64(sr.faults)
		virtual += sr.virtual
		for _, k := range sr.kinds {
			res.Kinds[k]++
		}
		for _, m := range sr.missed {
			res.Missed[m]++
		}
		if sr.failure != "" {
			status.clear()
			f, err := writeFailure(&cfg, &dir, sr)
			if err != nil {
				writeErr = errors.Join(writeErr, err)
			}
			res.Failures = append(res.Failures, f)
			res.FailuresBy[sr.failure]++
			detail, _, _ := strings.Cut(sr.detail, "\n")
			fmt.Fprintf(stdout, "FAIL seed %d: %s\n  replay: %s\n", sr.seed, detail, f.Replay)
		}
		wall := time.Since(start)
		status.show("swarm: %d/%d runs, %d failed, %s events/s, %v", done, cfg.runs, len(res.Failures),
			rate(res.Events, wall), wall.Round(time.Second))
	})
	status.clear()
	res.Wall = sim.Duration(time.Since(start))
	res.Virtual = sim.Duration(virtual)
	if res.Wall > 0 {
		res.EventsPerSec = float64(res.Events) / res.Wall.D().Seconds()
	}
	writeSwarmSummary(stdout, &res)
	if dir != "" {
		if err := writeSwarmJSON(dir, &res); err != nil {
			writeErr = errors.Join(writeErr, err)
		} else {
			fmt.Fprintf(stdout, "wrote %s\n", filepath.Join(dir, "swarm.json"))
		}
	}
	if writeErr != nil {
		fmt.Fprintf(stderr, "qsim: %v\n", writeErr)
		return 2
	}
	if len(res.Failures) > 0 {
		return 1
	}
	return 0
}

// writeFailure writes a failing run's drawn scenario into *dir (making a
// temporary directory the first time, when -out is not given). A run
// whose draw panicked has no scenario: the swarm of that one seed
// replays it.
func writeFailure(cfg *swarmConfig, dir *string, sr swarmRun) (swarmFailure, error) {
	detail, _, _ := strings.Cut(sr.detail, "\n")
	f := swarmFailure{Seed: sr.seed, Failure: sr.failure, Detail: detail, TraceHash: sr.traceHash}
	if sr.drawn == nil {
		f.Replay = fmt.Sprintf("qsim%s -scenario %s -swarm 1 -seed %d", cfg.pol.flag(), cfg.scenario, sr.seed)
		return f, nil
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "qsim-swarm-")
		if err != nil {
			return f, err
		}
		*dir = d
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return f, err
	}
	data, err := sr.drawn.Marshal()
	if err != nil {
		return f, err
	}
	f.File = filepath.Join(*dir, fmt.Sprintf("seed-%d.toml", sr.seed))
	f.Replay = fmt.Sprintf("qsim%s -scenario %s -seed %d", cfg.pol.flag(), f.File, sr.seed)
	return f, os.WriteFile(f.File, data, 0o644)
}

func writeSwarmSummary(w io.Writer, res *swarmResult) {
	fmt.Fprintf(w, "runs: %d   failed: %d", res.Runs, len(res.Failures))
	if len(res.Failures) > 0 {
		fmt.Fprintf(w, " (%s)", counts(res.FailuresBy))
	}
	fmt.Fprintln(w)
	if len(res.Missed) > 0 {
		how := "not failures without -swarm-expect"
		if res.Expect {
			how = "failures with -swarm-expect"
		}
		fmt.Fprintf(w, "expectations missed (%s): %s\n", how, counts(res.Missed))
	}
	fmt.Fprintf(w, "faults drawn: %d; runs with each kind: %s\n", res.Faults, counts(res.Kinds))
	ratio := "-"
	if res.Wall > 0 {
		ratio = fmt.Sprintf("%.0f×", res.Virtual.D().Seconds()/res.Wall.D().Seconds())
	}
	fmt.Fprintf(w, "events: %d (%s/s)   virtual: %s   wall: %s   virtual/wall: %s\n",
		res.Events, rate(res.Events, res.Wall.D()), res.Virtual.D().Round(time.Second), res.Wall.D().Round(time.Millisecond), ratio)
}

// counts lists a count per name, largest first: "a 3, b 1".
func counts(m map[string]uint64) string {
	names := slices.Sorted(maps.Keys(m))
	slices.SortStableFunc(names, func(a, b string) int { return int(m[b]) - int(m[a]) })
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s %d", n, m[n])
	}
	return strings.Join(parts, ", ")
}

// rate formats n per second of d: "1.23M", "45.6k", "789".
func rate(n uint64, d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	v := float64(n) / d.Seconds()
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

func writeSwarmJSON(dir string, res *swarmResult) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "swarm.json"), append(js, '\n'), 0o644)
}
