package sim

import (
	"strings"
	"testing"
)

// hookScenario has one client whose claims run an acquire hook against
// db-1, partitioned from 30s: the hooks that start then hang until the
// pool's HealthTimeout (1s) ends them.
const hookScenario = `name = "hooks"
duration = "1m"
[[backends]]
name = "db"
count = 2
[[clients]]
name = "c"
validate = false
acquire_hook = true
[clients.policy]
max_slots = 4
spares_wanted = 4
health_timeout = "1s"
health_interval = "1h"
[clients.workload]
rate = 20
hold = "1ms..5ms"
timeout = "5s"
[[faults]]
at = "30s"
kind = "partition"
backends = ["db-1"]
for = "10s"
`

// TestHungHookEndsAtItsTimeout: an acquire hook that hangs ends exactly
// when the pool's HealthTimeout timer cancels its context, although no
// machine moves then.
func TestHungHookEndsAtItsTimeout(t *testing.T) {
	_, trace := runText(t, "hooks.toml", hookScenario)
	claimed := map[string]float64{}
	n := 0
	for _, l := range parseTrace(t, strings.Split(strings.TrimSpace(trace), "\n")) {
		if l.Machine != "slot" || !strings.HasPrefix(l.ID, "c/db-1/") || l.At < 30 {
			continue
		}
		switch l.Event {
		case "claim":
			claimed[l.ID] = l.At
		case "discard":
			if at, ok := claimed[l.ID]; ok {
				n++
				if d := l.At - at; d < 0.999999 || d > 1.000001 {
					t.Errorf("%s: hook started at %.9f, failed at %.9f: want 1s later", l.ID, at, l.At)
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no hook against the partitioned backend failed")
	}
}

// TestCloseDuringHangingHooks: a close while hooks hang ends them when
// Close begins (the pool ends their context then, on a goroutine of its
// own); every run of the same seed gives the same trace.
func TestCloseDuringHangingHooks(t *testing.T) {
	sc, err := Parse("hooks.toml", []byte(hookScenario+`[[faults]]
at = "30.5s"
kind = "close"
drain = "2s"
`))
	if err != nil {
		t.Fatal(err)
	}
	first := ""
	for range 10 {
		r, err := Run(sc, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if r.Violation != nil {
			t.Fatal(r.Violation)
		}
		if len(r.Closes) != 1 || r.Closes[0].Forced {
			t.Fatalf("closes %+v: want one, quiet", r.Closes)
		}
		if first == "" {
			first = r.TraceHash
		} else if r.TraceHash != first {
			t.Fatalf("trace hash %s, then %s: the same seed gives different runs", first, r.TraceHash)
		}
	}
}
