package sim

import (
	"strings"
	"testing"
)

// Tests of pool bugs the simulator found. They fail until the pool is
// fixed; the pool is not this package's to change.

// TestPoolBugChurnWhenSparesBelowBackends: a client that wants fewer
// connections (claimed + spares) than there are backends tears down and
// reopens a connection to every backend beyond its share at each periodic
// rebalance, forever, with no fault and a steady load. The periodic
// shrink closes the last connection of a healthy backend (its want is 0);
// the backend goes offline; an offline backend gets a probe slot at once;
// the probe connects; the backend is online again with one connection the
// rebalancer does not want — until the next tick. Here one client, four
// backends, one spare: 3 connections reopened every 60s.
func TestPoolBugChurnWhenSparesBelowBackends(t *testing.T) {
	sc, err := Parse("churn.toml", []byte(`name = "churn"
duration = "10m"
[[backends]]
name = "db"
count = 4
[[clients]]
name = "c"
validate = false
[clients.policy]
spares_wanted = 1
[clients.workload]
rate = 1
hold = "1ms"
`))
	if err != nil {
		t.Fatal(err)
	}
	var trace strings.Builder
	r, err := Run(sc, Options{Trace: &trace})
	if err != nil {
		t.Fatal(err)
	}
	if r.Violation != nil {
		t.Fatal(r.Violation)
	}
	downs := strings.Count(trace.String(), `"event":"down"`)
	t.Logf("%d connects in 10 minutes of steady load with 4 backends; sets went down %d times", r.Fleet.Connects, downs)
	if r.Fleet.Connects > 8 {
		t.Errorf("%d connects for a pool that needs at most 4 (one per backend): connections churn at each rebalance", r.Fleet.Connects)
	}
}
