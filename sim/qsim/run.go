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

// options returns the options of a run of seed: those that plug p's
// policy in, with adjustOptions applied.
func (p *policy) options(seed uint64) sim.Options {
	var opt sim.Options
	if p != nil {
		opt = p.cfg.Options()
	}
	opt.Seed = seed
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

// runOne runs one seed, prints the summary (and the failure of a check of
// p's), and writes the files of -out.
func runOne(sc *sim.Scenario, seed uint64, out string, progress bool, pol *policy, stdout, stderr io.Writer) int {
	opt := pol.options(seed)
	if progress {
		opt.Progress = newProgressBar(stderr).update
	}
	r, err := runWithFiles(sc, opt, out)
	if err != nil {
		fmt.Fprintf(stderr, "qsim: %v\n", err)
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
	if err != nil {
		f.Close()
		return nil, err
	}
	if err := errors.Join(w.Flush(), f.Close(), writeOut(dir, r)); err != nil {
		return nil, err
	}
	return r, nil
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
