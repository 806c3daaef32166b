package sim

import (
	"bytes"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/qorbgo/qorb/pool"
)

func marshal(t *testing.T, sc *Scenario) []byte {
	t.Helper()
	b, err := sc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSwarmDrawIsDeterministic: the same scenario and seed draw the same
// scenario; other seeds draw others; the scenario drawn from is left as
// it was.
func TestSwarmDrawIsDeterministic(t *testing.T) {
	sc := shipped(t)["backend-dies-under-load"]
	before := marshal(t, sc)
	seen := map[string]uint64{}
	for seed := uint64(1); seed <= 50; seed++ {
		a, b := marshal(t, sc.Swarm(seed)), marshal(t, sc.Swarm(seed))
		if !bytes.Equal(a, b) {
			t.Fatalf("seed %d draws two scenarios:\n%s\n---\n%s", seed, a, b)
		}
		if prev, ok := seen[string(a)]; ok {
			t.Errorf("seeds %d and %d draw the same scenario", prev, seed)
		}
		seen[string(a)] = seed
	}
	if !bytes.Equal(before, marshal(t, sc)) {
		t.Error("drawing changed the scenario drawn from")
	}
	d := sc.Swarm(7)
	if d.Seed != 7 || d.Name != "backend-dies-under-load-swarm-7" || !strings.HasPrefix(d.Description, "Drawn by swarm testing from backend-dies-under-load with seed 7") {
		t.Errorf("seed %d, name %q, description %q", d.Seed, d.Name, d.Description)
	}
	if !reflect.DeepEqual(d.Clients[0].Policy, sc.Clients[0].Policy) || d.Duration != sc.Duration || !reflect.DeepEqual(d.BackendNames(), sc.BackendNames()) {
		t.Error("the drawn scenario has another topology")
	}
}

// TestSwarmDrawsValidScenarios: every draw over every shipped scenario is
// a scenario Parse accepts (every fault ends within the run), written by
// Marshal as a file that reads back to it; over the draws every kind of
// fault comes up, and runs differ in the kinds they have.
func TestSwarmDrawsValidScenarios(t *testing.T) {
	kinds := map[string]int{}
	knobs := map[string]int{}
	options := map[string]int{}
	mixes := map[string]bool{}
	for name, sc := range shipped(t) {
		for seed := uint64(1); seed <= 60; seed++ {
			d := sc.Swarm(seed)
			if err := d.check(); err != nil {
				t.Fatalf("%s seed %d: %v", name, seed, err)
			}
			out := marshal(t, d)
			back, err := Parse("drawn.toml", out)
			if err != nil {
				t.Fatalf("%s seed %d: %v\n%s", name, seed, err, out)
			}
			if a, b := comparable(d), comparable(back); !reflect.DeepEqual(a, b) {
				t.Fatalf("%s seed %d: read back differs:\n%+v\n%+v", name, seed, a, b)
			}
			// Pauses are drawn apart, up to three more.
			if n := len(d.Faults) - countKind(d.Faults, FaultPause); n == 0 || n > swarmMaxFaults {
				t.Errorf("%s seed %d: %d faults", name, seed, n)
			}
			var mix []string
			for _, f := range d.Faults {
				kinds[f.Kind]++
				switch {
				case f.Probability > 0:
					options["probability"]++
				case f.Ramp > 0:
					options["ramp"]++
				case f.Kind == FaultPartition && len(f.Clients) > 0:
					options["partition of some clients"]++
				}
				if f.Direction != "" {
					options[f.Direction]++
				}
				if !slices.Contains(mix, f.Kind) {
					mix = append(mix, f.Kind)
				}
			}
			slices.Sort(mix)
			mixes[strings.Join(mix, ",")] = true
			for _, k := range []string{swarmConnectErrors, swarmDiscards} {
				if strings.Contains(d.Description, "; "+k) || strings.Contains(d.Description, ", "+k) {
					knobs[k]++
				}
			}
		}
	}
	for _, k := range swarmKinds {
		if kinds[k] == 0 {
			t.Errorf("no draw has a %s fault", k)
		}
	}
	for _, o := range []string{"probability", "ramp", "partition of some clients", DirectionToBackends, DirectionFromBackends} {
		if options[o] == 0 {
			t.Errorf("no draw has a fault with %s: %v", o, options)
		}
	}
	if knobs[swarmConnectErrors] == 0 || knobs[swarmDiscards] == 0 {
		t.Errorf("knobs drawn: %v", knobs)
	}
	if len(mixes) < 100 {
		t.Errorf("%d different mixes of kinds in %d draws", len(mixes), 60*len(shipped(t)))
	}
}

// TestSwarmRunReplaysFromItsFile: a drawn run and the run of its file,
// read back, give the same trace.
func TestSwarmRunReplaysFromItsFile(t *testing.T) {
	sc := *shipped(t)["backend-dies-under-load"]
	sc.Duration = Duration(time.Minute)
	sc.Faults = nil
	for seed := uint64(1); seed <= 4; seed++ {
		d := sc.Swarm(seed)
		r, err := Run(d, Options{Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		back, err := Parse("drawn.toml", marshal(t, d))
		if err != nil {
			t.Fatal(err)
		}
		again, err := Run(back, Options{}) // the seed is the file's
		if err != nil {
			t.Fatal(err)
		}
		if r.TraceHash != again.TraceHash {
			t.Errorf("seed %d: trace %s drawn, %s from the file", seed, r.TraceHash, again.TraceHash)
		}
	}
}

// brokenBackoff plugs constBackoff (5ms after any failure) into every
// pool, and declares bounds it breaks: a pool that retries too fast. No
// failure, no retry: only the runs whose faults make connects or checks
// fail show it.
func brokenBackoff() Options {
	return Options{
		Policy: func(_ string, p pool.Policy) pool.Policy { p.Backoff = constBackoff{5 * time.Millisecond}; return p },
		BackoffBounds: func(p pool.Policy, n int) (time.Duration, time.Duration) {
			return 20 * time.Millisecond, 30 * time.Second
		},
	}
}

// TestSwarmCatchesABrokenPool: a swarm over a pool that retries too fast
// finds it in the runs whose mix makes connects or checks fail, not in
// the others; the file of a failing run, read back, fails the same way.
func TestSwarmCatchesABrokenPool(t *testing.T) {
	sc := small(t, "")
	var failing []*Scenario
	passed := 0
	for seed := uint64(1); seed <= 12; seed++ {
		d := sc.Swarm(seed)
		opt := brokenBackoff()
		opt.Seed = seed
		r, err := Run(d, opt)
		if err != nil {
			t.Fatal(err)
		}
		switch v := r.Violation; {
		case v == nil:
			passed++
		case v.Invariant == "backoff-bounds":
			failing = append(failing, d)
			if len(failing) > 1 {
				continue
			}
			back, err := Parse("failing.toml", marshal(t, d))
			if err != nil {
				t.Fatal(err)
			}
			again, err := Run(back, brokenBackoff())
			if err != nil {
				t.Fatal(err)
			}
			if again.Violation == nil || again.Violation.Error() != v.Error() || again.TraceHash != r.TraceHash {
				t.Errorf("seed %d: %v; its file gives %v", seed, v, again.Violation)
			}
		default:
			t.Errorf("seed %d: %v", seed, v)
		}
	}
	t.Logf("%d runs failed, %d passed", len(failing), passed)
	if len(failing) == 0 || passed == 0 {
		t.Errorf("%d runs failed, %d passed: want the broken backoff found by some mixes and not others", len(failing), passed)
	}
}
