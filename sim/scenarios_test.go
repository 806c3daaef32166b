package sim

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// shipped loads every scenario under testdata/scenarios.
func shipped(t *testing.T) map[string]*Scenario {
	t.Helper()
	files, err := filepath.Glob("../testdata/scenarios/*.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	out := map[string]*Scenario{}
	for _, f := range files {
		sc, err := Load(f)
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimSuffix(filepath.Base(f), ".toml")] = sc
	}
	return out
}

func summary(r *Result) string {
	var b strings.Builder
	r.WriteSummary(&b)
	return b.String()
}

// TestShippedScenarios runs every shipped scenario with its own seed and
// GOMAXPROCS=1: each must keep every invariant and meet every expectation
// its file states. Then it runs them all again with GOMAXPROCS=2, two at a
// time, and each must give the same trace hash.
func TestShippedScenarios(t *testing.T) {
	scs := shipped(t)
	names := sortedKeys(scs)
	hashes := map[string]string{}
	prev := runtime.GOMAXPROCS(1)
	for _, name := range names {
		start := time.Now()
		r, err := Run(scs[name], Options{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Logf("%s: %d events, %d claims, %d failed, wall %v, hash %.16s", name, r.Events, r.Fleet.Claims, r.Fleet.Errors.Failed(), time.Since(start).Round(time.Millisecond), r.TraceHash)
		if err := r.Err(); err != nil {
			t.Errorf("%s: %v\n%s", name, err, summary(r))
		}
		hashes[name] = r.TraceHash
	}
	runtime.GOMAXPROCS(2)
	defer runtime.GOMAXPROCS(prev)
	var wg sync.WaitGroup
	var mu sync.Mutex
	work := make(chan string)
	for range 2 {
		wg.Go(func() {
			for name := range work {
				r, err := Run(scs[name], Options{})
				mu.Lock()
				if err != nil {
					t.Errorf("%s: %v", name, err)
				} else if r.TraceHash != hashes[name] {
					t.Errorf("%s: trace hash %s with GOMAXPROCS=2, %s with 1", name, r.TraceHash, hashes[name])
				}
				mu.Unlock()
			}
		})
	}
	for _, name := range names {
		work <- name
	}
	close(work)
	wg.Wait()
	checkGoldenHashes(t, hashes)
}

// goldenHashes pins the trace hash of every shipped scenario, so that any
// change of behaviour shows up as a reviewed diff of this file. Regenerate
// it with: go test ./sim -run TestShippedScenarios -update
const goldenHashes = "testdata/trace-hashes.txt"

func checkGoldenHashes(t *testing.T, hashes map[string]string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("# Trace hash of each shipped scenario with its own seed (go test ./sim -run TestShippedScenarios -update).\n")
	for _, name := range sortedKeys(hashes) {
		fmt.Fprintf(&b, "%s %s\n", name, hashes[name])
	}
	if *update {
		if err := os.WriteFile(goldenHashes, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(goldenHashes)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got := b.String(); got != string(want) {
		t.Errorf("trace hashes changed: the pool or the simulator behaves differently. If that is intended, review and run with -update.\ngot:\n%swant:\n%s", got, want)
	}
}

// TestSeedsDiffer runs the first 30 virtual seconds of every shipped
// scenario with two seeds: the traces must differ.
func TestSeedsDiffer(t *testing.T) {
	scs := shipped(t)
	for _, name := range sortedKeys(scs) {
		if heavyUnderRace(t, name, scs[name]) {
			continue
		}
		sc := *scs[name]
		sc.Duration = Duration(30 * time.Second)
		sc.Faults = nil
		sc.DNS.Changes = nil
		a, err := Run(&sc, Options{Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		b, err := Run(&sc, Options{Seed: 2})
		if err != nil {
			t.Fatal(err)
		}
		if a.TraceHash == b.TraceHash {
			t.Errorf("%s: seeds 1 and 2 give the same trace %s", name, a.TraceHash)
		}
		if a.Violation != nil || b.Violation != nil {
			t.Errorf("%s: %v %v", name, a.Violation, b.Violation)
		}
	}
}

// heavyUnderRace reports whether sc is a fleet too big to run again and
// again under the race detector (each run of slow-start-recovery's 1,000
// clients takes about 14 s there). TestShippedScenarios runs every
// scenario whatever its size; the tests that run each shipped scenario
// once more, for another property, leave these out under -race only, and
// say so.
func heavyUnderRace(t *testing.T, name string, sc *Scenario) bool {
	t.Helper()
	if !raceOn {
		return false
	}
	n := 0
	for _, c := range sc.Clients {
		n += max(c.Count, 1)
	}
	if n <= 200 {
		return false
	}
	t.Logf("%s: %d clients, left out under -race (TestShippedScenarios runs it)", name, n)
	return true
}
