package qsim

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/qorbgo/qorb/sim"
	"github.com/qorbgo/qorb/sim/policytest"
)

// policy is the registered policy -policy plugs into every client; a
// nil *policy runs the scenario's own policies.
type policy struct {
	name string
	cfg  policytest.Config
}

// budget is a run's budget, from -max-events and -max-live-claims.
type budget struct {
	events uint64
	live   int
}

// options returns the options of a run of seed within b: those that plug
// p's policy in, with adjustOptions applied.
func (p *policy) options(seed uint64, b budget) sim.Options {
	var opt sim.Options
	if p != nil {
		opt = p.cfg.Options()
	}
	opt.Seed = seed
	opt.MaxEvents, opt.MaxLiveClaims = b.events, b.live
	if adjustOptions != nil {
		adjustOptions(&opt)
	}
	return opt
}

// verify runs the checks policytest adds to the simulator's own on a
// run of sc with p's policy; nil without a policy.
func (p *policy) verify(sc *sim.Scenario, r *sim.Result) error {
	if p == nil {
		return nil
	}
	return p.cfg.Verify(sc, r)
}

// flag is how a replay command names p: " -policy NAME", or "".
func (p *policy) flag() string {
	if p == nil {
		return ""
	}
	return " -policy " + p.name
}

// runOne runs one seed, prints the scenario's story and the summary (and
// the failure of a check of p's), and writes the files of -out.
func runOne(sc *sim.Scenario, seed uint64, out string, progress bool, pol *policy, b budget, stdout, stderr io.Writer) int {
	opt := pol.options(seed, b)
	if progress {
		opt.Progress = newProgressBar(stderr).update
	}
	sc.WriteStory(stdout)
	fmt.Fprintln(stdout)
	r, err := runWithFiles(sc, opt, out)
	if err != nil {
		fmt.Fprintf(stderr, "qsim: %s\n", explain(err))
		if out != "" && r != nil {
			fmt.Fprintf(stderr, "qsim: wrote the run so far to %s\n", out)
		}
		return 2
	}
	r.WriteSummary(stdout)
	perr := pol.verify(sc, r)
	if perr != nil {
		fmt.Fprintf(stdout, "FAIL %v\n", perr)
	}
	if out != "" {
		fmt.Fprintf(stdout, "wrote %s\n", out)
	}
	if !r.OK() || perr != nil {
		return 1
	}
	return 0
}

// runWithFiles runs sc and, when dir is not empty, writes the trace, the
// summary, the result and the picture into it. The error is for a
// scenario that cannot run or a file that cannot be written.
func runWithFiles(sc *sim.Scenario, opt sim.Options, dir string) (*sim.Result, error) {
	if dir == "" {
		return sim.Run(sc, opt)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.Create(filepath.Join(dir, "trace.jsonl"))
	if err != nil {
		return nil, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	opt.Trace = w
	r, err := sim.Run(sc, opt)
	if be, over := err.(*sim.BudgetError); over {
		// The run so far: its trace, and a summary that says where it
		// stopped.
		if werr := errors.Join(w.Flush(), f.Close(), writeOut(dir, r)); werr != nil {
			return r, fmt.Errorf("%s\n%w", explain(be), werr)
		}
		return r, be
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	if err := errors.Join(w.Flush(), f.Close(), writeOut(dir, r)); err != nil {
		return nil, err
	}
	return r, nil
}

// explain returns err's message, a budget's with the flag that raises it.
func explain(err error) string {
	be, ok := err.(*sim.BudgetError)
	if !ok {
		return err.Error()
	}
	if be.Budget == sim.BudgetLiveClaims {
		return be.Explain("-max-live-claims")
	}
	return be.Explain("-max-events")
}

func writeOut(dir string, r *sim.Result) error {
	var sb strings.Builder
	r.WriteSummary(&sb)
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	var svg strings.Builder
	r.WriteSVG(&svg)
	return errors.Join(
		os.WriteFile(filepath.Join(dir, "summary.txt"), []byte(sb.String()), 0o644),
		os.WriteFile(filepath.Join(dir, "result.json"), append(js, '\n'), 0o644),
		os.WriteFile(filepath.Join(dir, "picture.svg"), []byte(svg.String()), 0o644),
	)
}
