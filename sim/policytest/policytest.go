// Package policytest property-tests a pool policy (its Rebalancer, Picker
// and Backoff) in the simulator.
//
// [Check] draws workloads and fault schedules with pgregory.net/rapid as
// structured values (a number of backends, a list of clients, a list of
// faults), runs each in the simulator with the policy under test, and
// fails when an invariant breaks or a client does not recover in time
// after the last fault. rapid then shrinks the schedule: it removes faults
// and clients and moves numbers toward their smallest values, not bits of
// a seed. The smallest failing schedule is written as a scenario file
// that [Replay] (with the policy) and qsim (with the default policies, for
// comparison) run again.
//
//	func TestMyRebalancer(t *testing.T) {
//		policytest.Check(t, policytest.Config{
//			Policy: func() pool.Policy { return pool.Policy{Rebalancer: MyRebalancer{}} },
//		})
//	}
package policytest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"pgregory.net/rapid"

	"github.com/qorbgo/qorb/pool"
	"github.com/qorbgo/qorb/sim"
)

// Config is the policy under test and the space of schedules drawn.
type Config struct {
	// Policy returns the policy to test, with its Rebalancer, Picker or
	// Backoff; it is called for every pool. Required.
	Policy func() pool.Policy
	// BackoffBounds gives the delay allowed after the n-th consecutive
	// failure when the policy's Backoff is not a pool.ExponentialBackoff
	// (see sim.Options.BackoffBounds). Optional.
	BackoffBounds func(p pool.Policy, n int) (lo, hi time.Duration)
	// Check adds checks of one's own on each run's result. Optional.
	Check func(*sim.Result) error
	// MaxConnectRate bounds the connects a backend sees in one second
	// from each client: the larger of MaxConnectRate and ten a second for
	// each slot the client may hold to it (MaxSlotsPerBackend, capped by
	// MaxSlots; a slot of the default backoff tries about five times in
	// its first second of failures). A policy that reconnects at once (a
	// backoff of zero) storms a dead backend far past it (about 400 a
	// second from one probe slot), whatever its Backoff claims. Default
	// 100; negative turns the check off.
	MaxConnectRate float64

	// MaxBackends, MaxClients and MaxFaults bound the schedules drawn.
	// Defaults 4, 3 and 4.
	MaxBackends, MaxClients, MaxFaults int
	// Duration of each run, in virtual time. Default 4m. Faults start and
	// last within the first Duration-RecoverWithin, so that there is time
	// to recover after the last one.
	Duration time.Duration
	// RecoverWithin is the liveness bound: every client is back to its
	// target within this time after the last fault ends. Default 75s:
	// with the default policy a backend may wait up to RebalanceInterval
	// (60s) for a probe slot while the pool is at MaxSlots.
	RecoverWithin time.Duration
	// Out is the file the smallest failing schedule is written to.
	// Default testdata/policytest/<test name>.toml, next to the test.
	Out string
}

func (c Config) withDefaults(name string) Config {
	if c.MaxBackends <= 0 {
		c.MaxBackends = 4
	}
	if c.MaxClients <= 0 {
		c.MaxClients = 3
	}
	if c.MaxFaults < 0 {
		c.MaxFaults = 0
	} else if c.MaxFaults == 0 {
		c.MaxFaults = 4
	}
	if c.Duration <= 0 {
		c.Duration = 4 * time.Minute
	}
	if c.RecoverWithin <= 0 {
		c.RecoverWithin = 75 * time.Second
	}
	if c.Duration < c.RecoverWithin+10*time.Second {
		c.Duration = c.RecoverWithin + 10*time.Second
	}
	if c.Out == "" {
		c.Out = filepath.Join("testdata", "policytest", safeName(name)+".toml")
	}
	if c.MaxConnectRate == 0 {
		c.MaxConnectRate = 100
	}
	return c
}

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, s)
}

// Schedule is one drawn workload and fault schedule.
type Schedule struct {
	Seed     uint64   // the simulation's seed
	Backends int      // how many backends, db-1 …
	Clients  []Client // one pool each
	Faults   []Fault  // in any order
}

// Client is one drawn client: claims per second and how long each holds
// its connection.
type Client struct {
	Rate int           // claims per second
	Hold time.Duration // each claim's hold
}

// Fault is one drawn fault: Kind (a sim fault kind) on backend number
// Backend (1-based; unused by dns_outage, restart, load and close) at At,
// for For.
type Fault struct {
	Kind    string        // a sim fault kind, or Delist
	Backend int           // 1-based
	At      time.Duration // when it starts
	For     time.Duration // how long it lasts (restart and close: how long the client is down)
}

// faultKinds are drawn in this order; shrinking moves toward the first.
var faultKinds = []string{sim.FaultCrash, sim.FaultHang, sim.FaultPartition, sim.FaultCheckFail, sim.FaultSlow,
	sim.FaultDNSOutage, Delist, sim.FaultRestart, sim.FaultLoad, sim.FaultClose}

// Delist is a drawn fault kind of the harness's own: the backend leaves
// DNS at At and comes back For later (a dns_remove and a dns_add).
const Delist = "delist"

// generator draws schedules within cfg's bounds.
func generator(cfg Config) *rapid.Generator[Schedule] {
	window := int((cfg.Duration - cfg.RecoverWithin) / time.Second) // faults happen in [0, window]
	return rapid.Custom(func(t *rapid.T) Schedule {
		s := Schedule{
			Seed:     uint64(rapid.IntRange(1, 1000).Draw(t, "seed")),
			Backends: rapid.IntRange(1, cfg.MaxBackends).Draw(t, "backends"),
		}
		s.Clients = rapid.SliceOfN(rapid.Custom(func(t *rapid.T) Client {
			return Client{
				Rate: rapid.IntRange(1, 20).Draw(t, "rate"),
				Hold: time.Duration(rapid.IntRange(1, 50).Draw(t, "hold_ms")) * time.Millisecond,
			}
		}), 1, cfg.MaxClients).Draw(t, "clients")
		s.Faults = rapid.SliceOfN(rapid.Custom(func(t *rapid.T) Fault {
			return Fault{
				Kind:    rapid.SampledFrom(faultKinds).Draw(t, "kind"),
				Backend: rapid.IntRange(1, s.Backends).Draw(t, "backend"),
				At:      time.Duration(rapid.IntRange(0, window/2).Draw(t, "at_s")) * time.Second,
				For:     time.Duration(rapid.IntRange(1, window/2).Draw(t, "for_s")) * time.Second,
			}
		}), 0, cfg.MaxFaults).Draw(t, "faults")
		return s
	})
}

// Scenario turns the schedule into a scenario for the simulator, with the
// numbers of policy p.
func (s Schedule) Scenario(name string, p pool.Policy, d, recoverWithin time.Duration) *sim.Scenario {
	sc := &sim.Scenario{
		Name:     name,
		Duration: sim.Duration(d),
		Seed:     s.Seed,
		DNS:      sim.DNSSpec{TTL: sim.Duration(5 * time.Second)},
		Backends: []sim.BackendSpec{{Name: "db", Count: s.Backends}},
		Expect:   sim.Expect{RecoverWithin: sim.Duration(recoverWithin)},
	}
	if s.Backends == 1 {
		sc.Backends[0].Count = 0
		sc.Backends[0].Name = "db-1"
	}
	for i, c := range s.Clients {
		sc.Clients = append(sc.Clients, sim.ClientSpec{
			Name:     fmt.Sprintf("client-%d", i+1),
			Policy:   sim.PolicySpecOf(p),
			Workload: sim.Workload{Rate: float64(c.Rate), Hold: sim.Const(c.Hold)},
		})
	}
	for _, f := range s.Faults {
		sf := sim.Fault{At: sim.Duration(f.At), Kind: f.Kind}
		switch f.Kind {
		case sim.FaultRestart, sim.FaultClose:
			sf.Down = sim.Duration(f.For)
		case sim.FaultDNSOutage:
			sf.For = sim.Duration(f.For)
		case sim.FaultLoad:
			sf.For = sim.Duration(f.For)
			sf.Factor = 5
		case Delist:
			b := []string{fmt.Sprintf("db-%d", f.Backend)}
			sc.Faults = append(sc.Faults,
				sim.Fault{At: sim.Duration(f.At), Kind: sim.FaultDNSRemove, Backends: b},
				sim.Fault{At: sim.Duration(f.At + f.For), Kind: sim.FaultDNSAdd, Backends: b})
			continue
		default:
			sf.For = sim.Duration(f.For)
			sf.Backends = []string{fmt.Sprintf("db-%d", f.Backend)}
			if f.Kind == sim.FaultSlow {
				sf.Factor = 20
			}
		}
		sc.Faults = append(sc.Faults, sf)
	}
	return sc
}

// options are the simulator options that plug cfg's policy in.
func (c Config) options() sim.Options {
	return sim.Options{
		Policy:        func(string, pool.Policy) pool.Policy { return c.Policy() },
		BackoffBounds: c.BackoffBounds,
	}
}

// run runs one scenario with cfg's policy and returns what went wrong.
func (c Config) run(sc *sim.Scenario) (*sim.Result, error) {
	r, err := sim.Run(sc, c.options())
	if err != nil {
		return nil, err
	}
	if err := r.Err(); err != nil {
		return r, err
	}
	if err := c.checkConnectRate(sc, r); err != nil {
		return r, err
	}
	if c.Check != nil {
		if err := c.Check(r); err != nil {
			return r, err
		}
	}
	return r, nil
}

// checkConnectRate fails a run in which a backend saw more connects in
// one second than the clients' bound (see Config.MaxConnectRate).
func (c Config) checkConnectRate(sc *sim.Scenario, r *sim.Result) error {
	if c.MaxConnectRate < 0 {
		return nil
	}
	limit := 0.0
	for _, cl := range sc.Clients {
		pol := cl.Policy.Policy()
		if c.Policy != nil {
			pol = c.Policy()
		}
		per, most := pol.MaxSlotsPerBackend, pol.MaxSlots
		if per == 0 {
			per = 16
		}
		if most == 0 {
			most = 16
		}
		limit += max(c.MaxConnectRate, 10*float64(min(per, most))) * float64(max(cl.Count, 1))
	}
	for _, b := range r.Backends {
		if float64(b.PeakConnectRate) > limit {
			return fmt.Errorf("policytest: %s saw %d connects in one second, over the %.0f its %d clients allow: the backoff lets slots reconnect at once",
				b.Name, b.PeakConnectRate, limit, len(sc.Clients))
		}
	}
	return nil
}

// TB is what Check needs of a *testing.T.
type TB interface {
	rapid.TB
}

// Check draws schedules and runs them with cfg's policy. On a failure it
// writes the smallest failing schedule to cfg.Out (overwritten as rapid
// shrinks, so the file holds the smallest) and fails t with the
// violation and the file's name. rapid's flags (-rapid.checks,
// -rapid.seed) apply.
func Check(t TB, cfg Config) {
	t.Helper()
	if cfg.Policy == nil {
		t.Fatalf("policytest: Config.Policy is required")
		return
	}
	cfg = cfg.withDefaults(t.Name())
	rapid.Check(t, func(rt *rapid.T) {
		s := generator(cfg).Draw(rt, "schedule")
		sc := s.Scenario(t.Name(), cfg.Policy(), cfg.Duration, cfg.RecoverWithin)
		_, err := cfg.run(sc)
		if err == nil {
			return
		}
		if werr := writeSchedule(cfg.Out, sc, err); werr != nil {
			rt.Fatalf("%v (and writing the schedule: %v)", err, werr)
		}
		rt.Fatalf("%v\nsmallest failing schedule so far: %s (%d backends, %d clients, %d faults)",
			err, cfg.Out, s.Backends, len(s.Clients), len(s.Faults))
	})
}

// writeSchedule writes sc as a scenario file, with a header saying what
// failed and how to replay it.
func writeSchedule(path string, sc *sim.Scenario, failure error) error {
	body, err := sc.Marshal()
	if err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("# The smallest failing schedule policytest found.\n")
	for _, l := range strings.Split(failure.Error(), "\n") {
		b.WriteString("# " + l + "\n")
	}
	b.WriteString("# The policy's Rebalancer, Picker and Backoff are Go values: replay it with\n")
	b.WriteString("# policytest.Replay(file, config). qsim -scenario file runs it with the\n")
	b.WriteString("# default policies, for comparison.\n\n")
	b.Write(body)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// Replay runs a scenario file (a schedule Check wrote, or any scenario)
// with cfg's policy, and returns the result and what went wrong, if
// anything.
func Replay(file string, cfg Config) (*sim.Result, error) {
	if cfg.Policy == nil {
		return nil, errors.New("policytest: Config.Policy is required")
	}
	sc, err := sim.Load(file)
	if err != nil {
		return nil, err
	}
	return cfg.run(sc)
}
