package qsim

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qorbgo/qorb/pool"
	"github.com/qorbgo/qorb/sim"
	"github.com/qorbgo/qorb/sim/policytest"
)

// forgetsDead is a deliberately broken Rebalancer: it gives no probe
// slot to a dead backend, so a backend down long enough to be declared
// dead is never used again.
type forgetsDead struct{}

func (forgetsDead) Rebalance(in pool.RebalanceInput, want []int) {
	pool.DefaultRebalancer{}.Rebalance(in, want)
	for i, s := range in.Sets {
		if s.Dead && !s.Online {
			want[i] = 0
		}
	}
}

func forgetsDeadPolicy() pool.Policy { return pool.Policy{Rebalancer: forgetsDead{}} }

func init() {
	RegisterPolicy("forgets-dead", forgetsDeadPolicy)
	// The default policy, with a check of its own that every run with a
	// crash breaks.
	Register("few-connects", policytest.Config{Policy: func() pool.Policy { return pool.Policy{} },
		Check: func(r *sim.Result) error {
			if r.Fleet.Connects > 10 {
				return fmt.Errorf("few-connects: %d connects, want at most 10", r.Fleet.Connects)
			}
			return nil
		}})
}

// recorder is a rapid.TB that records a failure instead of failing the
// test, so that a test can look at what policytest.Check found.
type recorder struct {
	t      *testing.T
	failed bool
	msgs   []string
}

func (r *recorder) Helper()                   {}
func (r *recorder) Name() string              { return r.t.Name() }
func (r *recorder) Logf(f string, a ...any)   { r.msgs = append(r.msgs, fmt.Sprintf(f, a...)) }
func (r *recorder) Log(a ...any)              { r.msgs = append(r.msgs, fmt.Sprint(a...)) }
func (r *recorder) Skipf(f string, a ...any)  { r.t.Skipf(f, a...) }
func (r *recorder) Skip(a ...any)             { r.t.Skip(a...) }
func (r *recorder) SkipNow()                  { r.t.SkipNow() }
func (r *recorder) Errorf(f string, a ...any) { r.failed = true; r.Logf(f, a...) }
func (r *recorder) Error(a ...any)            { r.failed = true; r.Log(a...) }
func (r *recorder) Fatalf(f string, a ...any) { r.failed = true; r.Logf(f, a...) }
func (r *recorder) Fatal(a ...any)            { r.failed = true; r.Log(a...) }
func (r *recorder) FailNow()                  { r.failed = true }
func (r *recorder) Fail()                     { r.failed = true }
func (r *recorder) Failed() bool              { return r.failed }

// setFlag sets a flag for the test and puts it back after.
func setFlag(t *testing.T, name, value string) {
	f := flag.Lookup(name)
	old := f.Value.String()
	f.Value.Set(value)
	t.Cleanup(func() { f.Value.Set(old) })
}

// TestHarnessFailureReplays is the whole loop: policytest finds the
// broken rebalancer and writes the smallest failing schedule, whose
// header prints the command that replays it; that command, run through
// Main with the policy registered, fails the same way, with the same
// trace as policytest.Replay; the stock policies pass the file.
func TestHarnessFailureReplays(t *testing.T) {
	setFlag(t, "rapid.nofailfile", "true") // the failure is expected
	if flag.Lookup("rapid.seed").Value.String() == "0" {
		setFlag(t, "rapid.seed", "1") // the same search on every run
	}
	file := filepath.Join(t.TempDir(), "forgets-dead.toml")
	cfg := policytest.Config{Name: "forgets-dead", QSim: "go run ./cmd/myqsim", Policy: forgetsDeadPolicy, Out: file,
		MaxBackends: 1, MaxClients: 1, MaxFaults: 1, Duration: time.Minute, RecoverWithin: 20 * time.Second}
	rec := &recorder{t: t}
	policytest.Check(rec, cfg)
	if !rec.failed {
		t.Fatal("policytest did not catch the broken rebalancer")
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var cmd string
	for _, l := range strings.Split(string(data), "\n") {
		if c, ok := strings.CutPrefix(l, "#   go run ./cmd/myqsim "); ok {
			cmd = c
		}
	}
	if want := "-policy forgets-dead -scenario " + file; cmd != want {
		t.Fatalf("the header's replay command ends %q, want %q:\n%s", cmd, want, data)
	}
	if !strings.Contains(string(data), "# expectation recover_within not met: got never after fault 0") {
		t.Fatalf("the header does not say the client never recovered:\n%s", data)
	}
	r, err := policytest.Replay(file, cfg)
	if err == nil {
		t.Fatal("policytest.Replay passes the file")
	}
	code, out, errs := runQsim(append(strings.Fields(cmd), "-progress=false")...)
	if code != 1 || !strings.Contains(out, "FAIL recover_within: never after fault 0") || !strings.Contains(out, "trace hash: "+r.TraceHash) {
		t.Fatalf("%s: exit %d, want 1 with the failure and trace %s of policytest.Replay (%v):\n%s%s", cmd, code, r.TraceHash, err, out, errs)
	}
	if code, out, _ := runQsim("-scenario", file, "-progress=false"); code != 0 {
		t.Errorf("the stock policies fail the file: exit %d\n%s", code, out)
	}
}

// crashFile writes a scenario in which one of two backends crashes for
// twenty seconds.
func crashFile(t *testing.T) string {
	f := filepath.Join(t.TempDir(), "crash.toml")
	err := os.WriteFile(f, []byte(`name = "crash"
duration = "1m"
seed = 1
[[backends]]
name = "db"
count = 2
[[clients]]
name = "client"
[clients.workload]
rate = 5
hold = "1ms"
[[faults]]
at = "10s"
kind = "crash"
backends = ["db-1"]
for = "20s"
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestPolicyChecksOfTheHarness: -policy runs the harness's checks after
// the run, as policytest does: the registered Config's Check fails the
// run (one run, -seeds and -swarm alike) though every invariant holds;
// the swarm's replay commands name the policy.
func TestPolicyChecksOfTheHarness(t *testing.T) {
	file := crashFile(t)
	if code, out, _ := runQsim("-scenario", file, "-progress=false"); code != 0 {
		t.Fatalf("the stock policies fail: exit %d\n%s", code, out)
	}
	code, out, _ := runQsim("-policy", "few-connects", "-scenario", file, "-progress=false")
	if code != 1 || !strings.Contains(out, "invariants: ok") || !strings.Contains(out, "\nFAIL few-connects: 30 connects, want at most 10\n") {
		t.Fatalf("-policy few-connects: exit %d, want 1 with the check's failure:\n%s", code, out)
	}
	code, out, _ = runQsim("-policy", "few-connects", "-scenario", file, "-seeds", "1-2")
	if code != 1 || strings.Count(out, "FAIL few-connects: ") != 2 {
		t.Fatalf("-policy few-connects -seeds 1-2: exit %d, want two failures:\n%s", code, out)
	}
	dir := t.TempDir()
	code, out, _ = runQsim("-policy", "few-connects", "-scenario", file, "-swarm", "6", "-out", dir)
	s := readSwarmJSON(t, dir)
	if code != 1 || len(s.Failures) == 0 || s.FailuresBy["policytest"] == 0 {
		t.Fatalf("-policy few-connects -swarm 6: exit %d, no failure of the check:\n%s", code, out)
	}
	for _, f := range s.Failures {
		if !strings.HasPrefix(f.Replay, "qsim -policy few-connects -scenario ") {
			t.Errorf("replay %q does not name the policy", f.Replay)
		}
	}
}

func TestPolicyUsage(t *testing.T) {
	code, out, errs := runQsim("-policy", "no-such", "-scenario", crashFile(t))
	if code != 2 || out != "" || !strings.Contains(errs, "-policy no-such: no such policy; registered: few-connects, forgets-dead") {
		t.Errorf("an unknown policy: exit %d, want 2 with the registered names\n%s%s", code, out, errs)
	}
	code, out, _ = runQsim("-h")
	if code != 0 || !strings.Contains(out, "-policy name") || !strings.Contains(out, "RegisterPolicy") {
		t.Errorf("-h does not document -policy:\n%s", out)
	}
}

func TestRegisterRefuses(t *testing.T) {
	p := func() pool.Policy { return pool.Policy{} }
	for _, tc := range []struct {
		name string
		do   func()
	}{
		{"twice", func() { RegisterPolicy("forgets-dead", p) }},
		{"empty", func() { RegisterPolicy("", p) }},
		{"space", func() { RegisterPolicy("my policy", p) }},
		{"no policy", func() { Register("none", policytest.Config{}) }},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", tc.name)
				}
			}()
			tc.do()
		}()
	}
}
