package qsim

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runQsim runs qsim with args and returns its exit status and outputs.
func runQsim(args ...string) (code int, stdout, stderr string) {
	var out, errs bytes.Buffer
	code = Main(args, &out, &errs)
	return code, out.String(), errs.String()
}

func TestHelp(t *testing.T) {
	code, out, errs := runQsim("-h")
	if code != 0 || errs != "" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	for _, want := range []string{"qsim runs failure simulations", "-swarm N", "-seeds", "Exit status:", "  2  usage"} {
		if !strings.Contains(out, want) {
			t.Errorf("-h does not say %q:\n%s", want, out)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"-seed", "3", "-seeds", "1-5"}, "-seed and -seeds"},
		{[]string{"-swarm", "5", "-seeds", "1-5"}, "-swarm and -seeds"},
		{[]string{"-swarm-expect"}, "-swarm-expect is for -swarm"},
		{[]string{"-swarm", "0"}, "-swarm 0"},
		{[]string{"-workers", "0", "-seeds", "1-2"}, "-workers 0"},
		{[]string{"-describe", "no-such-thing"}, "no built-in scenario no-such-thing"},
		{[]string{"-bogus"}, "flag provided but not defined"},
		{[]string{"extra"}, "unexpected arguments"},
	} {
		code, out, errs := runQsim(tc.args...)
		if code != 2 || !strings.Contains(errs, tc.msg) || out != "" {
			t.Errorf("%v: exit %d, want 2 with %q on stderr\n%s%s", tc.args, code, tc.msg, out, errs)
		}
	}
}

func TestListShowsWholeDescriptions(t *testing.T) {
	code, out, _ := runQsim("-list")
	sc, err := loadScenario(defaultScenario)
	if code != 0 || err != nil {
		t.Fatalf("exit %d, %v", code, err)
	}
	lines := strings.Split(strings.TrimSpace(sc.Description), "\n")
	for _, l := range lines {
		if !strings.Contains(out, "    "+l+"\n") {
			t.Errorf("-list leaves out %q:\n%s", l, out)
		}
	}
	if n := strings.Count(out, "\n\n"); n < 10 {
		t.Errorf("%d scenarios listed", n+1)
	}
}

func TestDescribe(t *testing.T) {
	code, out, _ := runQsim("-describe", "rolling-deploy")
	want, _ := builtin.ReadFile("scenarios/rolling-deploy.toml")
	if code != 0 || out != string(want) {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	file := filepath.Join(t.TempDir(), "mine.toml")
	os.WriteFile(file, want, 0o644)
	if code, out, _ := runQsim("-describe", file); code != 0 || out != string(want) {
		t.Fatalf("-describe a file: exit %d:\n%s", code, out)
	}
}

// TestSeedsOut: -out with -seeds writes each seed's files into a
// directory of its own.
func TestSeedsOut(t *testing.T) {
	dir := t.TempDir()
	code, out, errs := runQsim("-scenario", "all-down-then-back", "-seeds", "2-3", "-out", dir)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	for _, seed := range []string{"seed-2", "seed-3"} {
		for _, f := range []string{"trace.jsonl", "summary.txt", "result.json", "picture.svg"} {
			st, err := os.Stat(filepath.Join(dir, seed, f))
			if err != nil || st.Size() == 0 {
				t.Errorf("%s/%s: %v", seed, f, err)
			}
		}
		summary, _ := os.ReadFile(filepath.Join(dir, seed, "summary.txt"))
		if !strings.Contains(string(summary), "seed: "+strings.TrimPrefix(seed, "seed-")) {
			t.Errorf("%s/summary.txt is another seed's:\n%s", seed, summary)
		}
	}
}

// TestSeedsParallelOutputIsSequential: -seeds prints the same lines, in
// seed order, whatever the number of runs at once.
func TestSeedsParallelOutputIsSequential(t *testing.T) {
	file := tinyScenario(t)
	_, one, _ := runQsim("-scenario", file, "-seeds", "1-8", "-workers", "1")
	_, four, _ := runQsim("-scenario", file, "-seeds", "1-8", "-workers", "4")
	if one != four || strings.Count(one, "trace hash:") != 8 {
		t.Fatalf("one at a time:\n%s\nfour at a time:\n%s", one, four)
	}
}

// tinyScenario is a scenario small enough to swarm in tests.
func tinyScenario(t *testing.T) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "tiny.toml")
	err := os.WriteFile(file, []byte(`name = "tiny"
duration = "30s"
[[backends]]
name = "db"
count = 2
[[clients]]
name = "c"
[clients.policy]
max_slots = 4
spares_wanted = 2
connect_timeout = "2s"
health_timeout = "500ms"
health_interval = "5s"
[clients.workload]
rate = 10
hold = "5ms"
timeout = "1s"
[expect]
max_claim_errors = 0
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	return file
}

// TestResultJSON: result.json has readable durations and the build.
func TestResultJSON(t *testing.T) {
	dir := t.TempDir()
	if code, out, errs := runQsim("-scenario", tinyScenario(t), "-out", dir); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	js, _ := os.ReadFile(filepath.Join(dir, "result.json"))
	var r struct {
		Virtual string `json:"virtual"`
		Build   struct{ Module, Go string }
	}
	if err := json.Unmarshal(js, &r); err != nil || r.Virtual != "30s" || r.Build.Module == "" || !strings.HasPrefix(r.Build.Go, "go") {
		t.Fatalf("%v: %+v\n%s", err, r, js)
	}
}

// TestScenarioOutOfBounds: a rate of 1e12 (which took 24 GB before the
// process was killed) is refused at load: exit 2, the field, the value
// and the bound.
func TestScenarioOutOfBounds(t *testing.T) {
	data, _ := builtin.ReadFile("scenarios/" + defaultScenario + ".toml")
	file := filepath.Join(t.TempDir(), "fast.toml")
	os.WriteFile(file, []byte(strings.Replace(string(data), "rate = 20", "rate = 1e12", 1)), 0o644)
	code, out, errs := runQsim("-scenario", file)
	if code != 2 || out != "" || !strings.Contains(errs, "clients[0].workload.rate: 1e+12 claims a second: at most 10000 per client") {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
}

// TestBudgetFlags: a run past -max-events stops at once with a message
// that names the flag; -seeds and -swarm count such runs apart.
func TestBudgetFlags(t *testing.T) {
	code, out, errs := runQsim("-max-events", "5000")
	if code != 2 || strings.Contains(out, "trace hash:") || !strings.Contains(errs, "backend-dies-under-load seed 1: stopped at ") ||
		!strings.Contains(errs, "having run 5001 events") || !strings.Contains(errs, "Raise it with -max-events (now 5000; such as -max-events 10000)") {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	dir := t.TempDir()
	code, out, errs = runQsim("-max-events", "5000", "-out", dir)
	summary, _ := os.ReadFile(filepath.Join(dir, "summary.txt"))
	js, _ := os.ReadFile(filepath.Join(dir, "result.json"))
	if code != 2 || !strings.Contains(errs, "wrote the run so far to "+dir) || !strings.Contains(string(summary), "STOPPED OVER BUDGET") ||
		!strings.Contains(string(js), `"budget": "events",`) {
		t.Fatalf("-out: exit %d\n%s%s\nsummary.txt:\n%s", code, out, errs, summary)
	}
	code, out, errs = runQsim("-max-live-claims", "3", "-seeds", "1-2")
	if code != 2 || !strings.Contains(out, "0 of 2 seeds failed, 2 stopped over their budget") || strings.Count(errs, "Raise it with -max-live-claims (now 3") != 2 {
		t.Fatalf("-seeds: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs = runQsim("-scenario", tinyScenario(t), "-swarm", "2", "-max-events", "100", "-out", t.TempDir())
	if code != 1 || !strings.Contains(out, "failed: 2 (budget 2)") || !strings.Contains(out, "Raise it with -max-events") {
		t.Fatalf("-swarm: exit %d\n%s%s", code, out, errs)
	}
}

// TestFlagBounds: flags that set counts are bounded too.
func TestFlagBounds(t *testing.T) {
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"-max-events", "0"}, "-max-events 0: want at least 1"},
		{[]string{"-max-live-claims", "0"}, "-max-live-claims 0: want at least 1"},
		{[]string{"-workers", "100000", "-seeds", "1-2"}, "-workers 100000: want 1 to 256"},
		{[]string{"-seeds", "1-20000000"}, "-seeds 1-20000000: 20000000 seeds; at most 10000000"},
		{[]string{"-swarm", "20000000"}, "-swarm 20000000: at most 10000000 runs"},
	} {
		code, out, errs := runQsim(tc.args...)
		if code != 2 || !strings.Contains(errs, tc.msg) || out != "" {
			t.Errorf("%v: exit %d, want 2 with %q on stderr\n%s%s", tc.args, code, tc.msg, out, errs)
		}
	}
}

// TestFirstRun: qsim with no flags, the README's first command, tells
// its scenario's story before the summary (what happens when, and what
// to look at), and the summary says what "recovered ... after its end"
// means.
func TestFirstRun(t *testing.T) {
	code, out, errs := runQsim()
	if code != 0 || errs != "" {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	at := 0
	for _, want := range []string{
		"backend-dies-under-load\n  Three clients spread 60 claims a second over four database backends.\n",
		"\n  What to look at: db-2's line under backends",
		"\nwhat happens, in virtual time (5m0s of it):\n",
		"\n  0s       4 backends: db-1…db-4\n",
		"\n  0s       3 clients (api-001…api-003) start, each with a pool, making 20 claims a second",
		"\n  2m0s     fault 0: crash db-2 for 1m0s — the process dies: its connections break, its port refuses\n             connects\n",
		"\n  3m0s     fault 0 ends; recovery is timed from here\n",
		"\n  5m0s     the workload stops",
		"\nwhat to look at in the summary:\n",
		"\n  expectations  what this scenario promises, each ok or FAIL: every client back to its target within\n                45s of the last fault's end; no failed claim; 99% of the claims served within 10ms\n",
		"\n  faults        each fault's recovery:",
		"\nscenario: backend-dies-under-load   seed: 1\n",
		"\nfaults:\n  0. at 2m0s: crash db-2 for 1m0s — ends 3m0s, recovered ",
		" after its end\n  (\"recovered X after its end\": X after the fault ended, every client was back to its target,",
		"\nexpectations:\n  ok   recover_within: ",
		"\ntrace hash: ",
	} {
		i := strings.Index(out[at:], want)
		if i < 0 {
			t.Fatalf("the first run does not say, after byte %d, %q:\n%s", at, want, out)
		}
		at += i + len(strings.TrimSuffix(want, "\n")) // the next may begin with it
	}
}
