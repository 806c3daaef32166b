package policytest

import (
	"strings"
	"testing"
	"time"

	"github.com/qorbgo/qorb/pool"
	"github.com/qorbgo/qorb/sim"
)

// TestScheduleDraws: the generator draws every feature of a schedule
// (caps, accept rates, latencies, holds of every kind, TTLs, long
// faults) often enough, each within its bounds, and every drawn schedule
// makes a scenario the simulator accepts.
func TestScheduleDraws(t *testing.T) {
	p := pool.Policy{}
	cfg := Config{Policy: func() pool.Policy { return p }}.withDefaults(t.Name())
	gen := generator(cfg, p)
	seen := map[string]int{}
	const n = 300
	for i := range n {
		s := gen.Example(i)
		seen["ttl "+s.TTL.String()]++
		for _, b := range s.Backends {
			if b.MaxConns > 0 {
				seen["max_conns"]++
				if lo, hi := 10+16*(len(s.Clients)-1), 16*len(s.Clients); b.MaxConns < lo || b.MaxConns > hi {
					t.Errorf("schedule %d: max_conns %d for %d clients: want %d to %d", i, b.MaxConns, len(s.Clients), lo, hi)
				}
			}
			if b.AcceptRate > 0 {
				seen["accept_rate"]++
			}
			for _, d := range []sim.Dist{b.Connect, b.Check} {
				if !d.IsZero() {
					seen["latency"]++
				}
				if d.Max() > 100*time.Millisecond {
					t.Errorf("schedule %d: latency %v can reach %v", i, d, d.Max())
				}
			}
		}
		for _, c := range s.Clients {
			kind := c.Hold.String()
			switch {
			case kind[0] == 'e':
				seen["hold exp"]++
			case kind[0] == 'p':
				seen["hold pareto"]++
			case len(kind) > 3 && strings.Contains(kind, ".."):
				seen["hold uniform"]++
			default:
				seen["hold const"]++
			}
		}
		for _, f := range s.Faults {
			if f.For == LongFault(p) {
				seen["long fault"]++
			}
		}
		sc := s.Scenario(t.Name(), p, cfg.Duration, cfg.RecoverWithin)
		data, err := sc.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sim.Parse("drawn.toml", data); err != nil {
			t.Fatalf("schedule %d makes a scenario the simulator refuses: %v\n%s", i, err, data)
		}
	}
	for _, k := range []string{"ttl 1s", "ttl 5s", "ttl 15s", "ttl 30s", "max_conns", "accept_rate", "latency",
		"hold const", "hold uniform", "hold exp", "hold pareto", "long fault"} {
		if seen[k] < n/30 {
			t.Errorf("%s in %d of %d schedules; want at least %d", k, seen[k], n, n/30)
		}
	}
	t.Log(seen)
}
