package sim

import (
	"fmt"
	"testing"
	"time"
)

// fleetScenario is the benchmark's fleet: clients × backends, each client
// claiming rate times a second, for d.
func fleetScenario(clients, backends int, rate float64, d time.Duration, validate bool) *Scenario {
	return &Scenario{
		Name:     "bench-fleet",
		Duration: Duration(d),
		Backends: []BackendSpec{{Name: "db", Count: backends}},
		Clients: []ClientSpec{{Name: "app", Count: clients, Validate: &validate,
			Policy:   PolicySpec{MaxSlots: 64, MaxSlotsPerBackend: 4, SparesWanted: 8},
			Workload: Workload{Rate: rate, Hold: Uniform(time.Millisecond, 9*time.Millisecond), Timeout: Duration(time.Second)}}},
		Faults: []Fault{{At: Duration(d / 2), Kind: FaultCrash, Backends: []string{"db-1", "db-2"}, For: Duration(d / 10)}},
	}
}

func benchFleet(b *testing.B, d time.Duration, validate bool) {
	benchScenario(b, fleetScenario(10, 32, 200, d, validate))
}

func benchScenario(b *testing.B, sc *Scenario) {
	var events, transitions uint64
	var virtual, wall time.Duration
	cpu := cpuTime()
	for b.Loop() {
		r, err := Run(sc, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := r.Err(); err != nil {
			b.Fatal(err)
		}
		events += r.Events
		transitions += r.Transitions
		virtual += r.Virtual.D()
		wall += r.Wall.D()
	}
	cpu = cpuTime() - cpu
	b.ReportMetric(float64(events)/wall.Seconds(), "events/s")
	if cpu > 0 {
		// CPU time (the garbage collector's included) varies less than
		// wall time on a machine shared with other work.
		b.ReportMetric(float64(events)/cpu.Seconds(), "events/cpu-s")
	}
	b.ReportMetric(float64(transitions)/wall.Seconds(), "transitions/s")
	b.ReportMetric(virtual.Seconds()/wall.Seconds(), "virtual/wall")
}

// BenchmarkFleet runs 10 clients × 32 backends × 200 claims a second per
// client, with two backends crashing midway, for one virtual minute; with
// and without a Validator (a health check on each release and every 30s).
func BenchmarkFleet(b *testing.B) {
	b.Run("validate=false", func(b *testing.B) { benchFleet(b, time.Minute, false) })
	b.Run("validate=true", func(b *testing.B) { benchFleet(b, time.Minute, true) })
}

// BenchmarkFleetHour is the same fleet for one virtual hour (the target:
// under 30 seconds of wall time).
func BenchmarkFleetHour(b *testing.B) {
	b.Run("validate=false", func(b *testing.B) { benchFleet(b, time.Hour, false) })
}

// BenchmarkFleetSize runs the fleet at several sizes for ten virtual
// seconds, without a Validator: the events per second should fall no
// faster than the logarithm of the size.
func BenchmarkFleetSize(b *testing.B) {
	for _, sz := range []struct{ clients, backends int }{{10, 32}, {200, 32}, {10, 512}} {
		b.Run(fmt.Sprintf("clients=%d/backends=%d", sz.clients, sz.backends), func(b *testing.B) {
			benchScenario(b, fleetScenario(sz.clients, sz.backends, 200, 10*time.Second, false))
		})
	}
}
