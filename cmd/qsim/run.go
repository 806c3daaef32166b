package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/qorbgo/qorb/sim"
)

// loadScenario reads a scenario file, or a built-in scenario by name.
func loadScenario(name string) (*sim.Scenario, error) {
	if _, err := os.Stat(name); err == nil {
		return sim.Load(name)
	}
	base := strings.TrimSuffix(filepath.Base(name), ".toml")
	data, err := builtin.ReadFile("scenarios/" + base + ".toml")
	if err != nil {
		if strings.ContainsAny(name, "/.") {
			return nil, fmt.Errorf("%s: no such file, and no built-in scenario %s (-list lists them)", name, base)
		}
		return nil, fmt.Errorf("no built-in scenario %s and no such file (-list lists them)", name)
	}
	return sim.Parse("builtin:"+base+".toml", data)
}

func listBuiltin(stdout, stderr io.Writer) int {
	entries, err := fs.ReadDir(builtin, "scenarios")
	if err != nil {
		fmt.Fprintf(stderr, "qsim: %v\n", err)
		return 2
	}
	for _, e := range entries {
		name := strings.TrimSuffix(e.Name(), ".toml")
		sc, err := loadScenario(name)
		if err != nil {
			fmt.Fprintf(stderr, "qsim: %v\n", err)
			return 2
		}
		first, _, _ := strings.Cut(strings.TrimSpace(sc.Description), "\n")
		fmt.Fprintf(stdout, "%-28s %s\n", name, first)
	}
	return 0
}

// parseRange reads "A-B" (or a single seed).
func parseRange(s string) (lo, hi uint64, err error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		b = a
	}
	lo, err1 := strconv.ParseUint(strings.TrimSpace(a), 10, 64)
	hi, err2 := strconv.ParseUint(strings.TrimSpace(b), 10, 64)
	if err1 != nil || err2 != nil || lo == 0 || hi < lo {
		return 0, 0, fmt.Errorf("%q: want A-B with 1 ≤ A ≤ B, such as 1-20", s)
	}
	return lo, hi, nil
}

// runSeeds runs every seed of the range and prints one line each.
func runSeeds(sc *sim.Scenario, lo, hi uint64, stdout, stderr io.Writer) int {
	status := 0
	failed := 0
	for seed := lo; seed <= hi; seed++ {
		r, err := sim.Run(sc, sim.Options{Seed: seed})
		if err != nil {
			fmt.Fprintf(stderr, "qsim: %v\n", err)
			return 2
		}
		verdict := "ok"
		if err := r.Err(); err != nil {
			verdict = "FAIL " + err.Error()
			status = 1
			failed++
		}
		fmt.Fprintf(stdout, "seed %-6d claims %-8d failed %-6d p99 %-10v connects %-6d %s  trace hash: %s\n",
			seed, r.Fleet.Claims, r.Fleet.Errors.Failed(), r.Fleet.Waits.P99, r.Fleet.Connects, verdict, r.TraceHash)
	}
	fmt.Fprintf(stdout, "%d of %d seeds failed\n", failed, hi-lo+1)
	return status
}

// runOne runs one seed, prints the summary, and writes the files of -out.
func runOne(sc *sim.Scenario, seed uint64, out string, progress bool, stdout, stderr io.Writer) int {
	opt := sim.Options{Seed: seed}
	var traceFile *os.File
	var traceBuf *bufio.Writer
	if out != "" {
		if err := os.MkdirAll(out, 0o755); err != nil {
			fmt.Fprintf(stderr, "qsim: %v\n", err)
			return 2
		}
		f, err := os.Create(filepath.Join(out, "trace.jsonl"))
		if err != nil {
			fmt.Fprintf(stderr, "qsim: %v\n", err)
			return 2
		}
		traceFile = f
		traceBuf = bufio.NewWriterSize(f, 1<<20)
		opt.Trace = traceBuf
	}
	if progress {
		opt.Progress = newProgressBar(stderr).update
	}
	r, err := sim.Run(sc, opt)
	if err != nil {
		fmt.Fprintf(stderr, "qsim: %v\n", err)
		return 2
	}
	r.WriteSummary(stdout)
	if out != "" {
		err := errors.Join(traceBuf.Flush(), traceFile.Close(), writeOut(out, r))
		if err != nil {
			fmt.Fprintf(stderr, "qsim: %v\n", err)
			return 2
		}
		fmt.Fprintf(stdout, "wrote %s\n", out)
	}
	if !r.OK() {
		return 1
	}
	return 0
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

// progressBar draws a bar on stderr for runs longer than a second.
type progressBar struct {
	w     io.Writer
	start time.Time
	last  time.Time
	drawn bool
}

func newProgressBar(w io.Writer) *progressBar { return &progressBar{w: w, start: time.Now()} }

func (p *progressBar) update(now, total time.Duration) {
	t := time.Now()
	done := now >= total
	if !done && (t.Sub(p.start) < time.Second || t.Sub(p.last) < 200*time.Millisecond) {
		return
	}
	if done && !p.drawn {
		return
	}
	p.last = t
	p.drawn = true
	const width = 40
	frac := 1.0
	if total > 0 {
		frac = min(float64(now)/float64(total), 1)
	}
	n := int(frac * width)
	bar := strings.Repeat("=", n) + strings.Repeat(" ", width-n)
	fmt.Fprintf(p.w, "\r[%s] %3.0f%%  %v / %v virtual, %v wall", bar, frac*100, now.Round(time.Second), total, t.Sub(p.start).Round(100*time.Millisecond))
	if done {
		fmt.Fprintln(p.w)
	}
}
