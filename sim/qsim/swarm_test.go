package qsim

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qorbgo/qorb/pool"
	"github.com/qorbgo/qorb/sim"
)

type swarmJSON struct {
	Runs     uint64 `json:"runs"`
	Failures []struct {
		Seed      uint64
		Failure   string
		File      string
		Replay    string
		TraceHash string `json:"trace_hash"`
	}
	FailuresBy map[string]uint64 `json:"failures_by"`
	Build      sim.Build
	Wall       string
	Events     uint64
}

func readSwarmJSON(t *testing.T, dir string) swarmJSON {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "swarm.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s swarmJSON
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	return s
}

// TestSwarmReports: twenty short runs finish and report: the runs, none
// failed, the events, the wall time; swarm.json records them and the
// build. Stderr, not a terminal, stays empty.
func TestSwarmReports(t *testing.T) {
	dir := t.TempDir()
	code, out, errs := runQsim("-scenario", tinyScenario(t), "-swarm", "20", "-out", dir)
	if code != 0 || errs != "" {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{"swarm: tiny, seeds 1-20 (20 runs", "runs: 20   failed: 0\n", "faults drawn: ", "events: ", "wall: ",
		"expectations missed (not failures without -swarm-expect)"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	s := readSwarmJSON(t, dir)
	if s.Runs != 20 || len(s.Failures) != 0 || s.Events == 0 || s.Build.Module == "" || s.Build.Go == "" {
		t.Errorf("swarm.json: %+v", s)
	}
	if _, err := time.ParseDuration(s.Wall); err != nil {
		t.Errorf("wall %q: %v", s.Wall, err)
	}
	// With -swarm-expect, the runs that missed max_claim_errors fail.
	code, out, _ = runQsim("-scenario", tinyScenario(t), "-swarm", "20", "-swarm-expect", "-out", t.TempDir())
	if code != 1 || !strings.Contains(out, "expect:max_claim_errors") {
		t.Errorf("-swarm-expect: exit %d\n%s", code, out)
	}
}

// TestSwarmParallelOutputIsSequential: the output is the same, line for
// line, with one run at a time and with four, but for the timings.
func TestSwarmParallelOutputIsSequential(t *testing.T) {
	file := tinyScenario(t)
	dir := t.TempDir()
	timing := regexp.MustCompile(`(?m)^events: .*$|, \d+ at once`)
	_, one, _ := runQsim("-scenario", file, "-swarm", "16", "-workers", "1", "-swarm-expect", "-out", dir)
	_, four, _ := runQsim("-scenario", file, "-swarm", "16", "-workers", "4", "-swarm-expect", "-out", dir)
	one, four = timing.ReplaceAllString(one, ""), timing.ReplaceAllString(four, "")
	if one != four || !strings.Contains(one, "FAIL seed") {
		t.Fatalf("one at a time:\n%s\nfour at a time:\n%s", one, four)
	}
}

// tooFast is a broken Backoff: it retries 5ms after any failure, below
// the bounds the test declares.
type tooFast struct{}

func (tooFast) Delay(int, *rand.Rand) time.Duration { return 5 * time.Millisecond }

func brokenPool(opt *sim.Options) {
	opt.Policy = func(_ string, p pool.Policy) pool.Policy { p.Backoff = tooFast{}; return p }
	opt.BackoffBounds = func(pool.Policy, int) (time.Duration, time.Duration) { return 20 * time.Millisecond, time.Minute }
}

// TestSwarmCatchesABrokenPool: with a pool that retries too fast, the
// swarm fails the runs whose faults make connects or checks fail, writes
// each as a scenario file and prints the command that replays it; that
// command fails the same way, with the same trace.
func TestSwarmCatchesABrokenPool(t *testing.T) {
	adjustOptions = brokenPool
	defer func() { adjustOptions = nil }()
	dir := t.TempDir()
	code, out, errs := runQsim("-scenario", tinyScenario(t), "-swarm", "12", "-out", dir)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", code, out, errs)
	}
	s := readSwarmJSON(t, dir)
	if len(s.Failures) == 0 || len(s.Failures) == 12 || s.FailuresBy["backoff-bounds"] != uint64(len(s.Failures)) {
		t.Fatalf("failures: %+v\n%s", s.FailuresBy, out)
	}
	for _, f := range s.Failures[:2] {
		line := "FAIL seed " + itoa(f.Seed) + ": invariant backoff-bounds violated"
		replay := "qsim -scenario " + filepath.Join(dir, "seed-"+itoa(f.Seed)+".toml") + " -seed " + itoa(f.Seed)
		if !strings.Contains(out, line) || f.Replay != replay || !strings.Contains(out, "  replay: "+replay+"\n") {
			t.Errorf("want %q and %q in:\n%s", line, replay, out)
		}
		args := strings.Fields(strings.TrimPrefix(f.Replay, "qsim "))
		code, summary, _ := runQsim(args...)
		if code != 1 || !strings.Contains(summary, "INVARIANT VIOLATED: backoff-bounds") || !strings.Contains(summary, "trace hash: "+f.TraceHash) {
			t.Errorf("%s: exit %d, want the same violation and trace %s:\n%s", f.Replay, code, f.TraceHash, summary)
		}
	}
	// Without -out, the files go to a new temporary directory.
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	code, out, _ = runQsim("-scenario", tinyScenario(t), "-swarm", "12")
	dirs, _ := filepath.Glob(filepath.Join(tmp, "qsim-swarm-*"))
	if code != 1 || len(dirs) != 1 || !strings.Contains(out, "replay: qsim -scenario "+filepath.Join(dirs[0], "seed-")) ||
		!strings.Contains(out, "wrote "+filepath.Join(dirs[0], "swarm.json")) {
		t.Errorf("exit %d, directories %v:\n%s", code, dirs, out)
	}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }
