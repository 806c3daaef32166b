// Package policytest property-tests a pool policy (its Rebalancer, Picker
// and Backoff) in the simulator.
//
// [Check] draws workloads and fault schedules with pgregory.net/rapid as
// structured values (a list of backends, a list of clients, a list of
// faults, a DNS TTL: see [Schedule]), runs each in the simulator with the
// policy under test, and fails when an invariant breaks, a client does
// not recover in time after the last fault, or a backend sees a storm of
// connects. rapid then shrinks the schedule: it removes faults, clients
// and backends, and moves every drawn value toward the simplest (no
// connection cap or accept rate, the default latencies, a constant hold,
// short faults, small numbers), not bits of a seed.
//
// The drawn backends may cap their connections (max_conns) and accept
// rate, their connect and check latencies and the clients' hold times
// are drawn from constant, uniform, exponential and Pareto
// distributions, and some faults keep a backend down for [LongFault]:
// long enough for the policy's backoff to reach its maximum, so that a
// backoff that grows past it is caught. Without Config.BackoffBounds a
// Backoff of one's own is held to the policy's BackoffMax (plus
// BackoffJitter).
//
// The smallest failing schedule is written as a scenario file that
// [Replay] runs again with the policy from Go, and that a qsim of one's
// own (package sim/qsim, with the policy registered under Config.Name)
// runs from the command line; the file's header prints that command.
//
//	func TestMyRebalancer(t *testing.T) {
//		policytest.Check(t, policytest.Config{
//			Name:   "my-rebalancer", // registered with qsim.RegisterPolicy in cmd/myqsim
//			QSim:   "go run ./cmd/myqsim",
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
	// Name names the policy on the command line: the name it is
	// registered under with qsim.RegisterPolicy (package sim/qsim) in a
	// qsim of one's own. With it, the header of a failing schedule's
	// file prints the command that replays it. Optional.
	Name string
	// QSim is the command, run from the module's root, that runs the qsim
	// in which the policy is registered, as the header of a failing
	// schedule's file writes it. Default "go run ./cmd/qsim".
	QSim string
	// BackoffBounds gives the delay allowed after the n-th consecutive
	// failure when the policy's Backoff is not a pool.ExponentialBackoff
	// (see sim.Options.BackoffBounds); p is the policy the pool runs
	// with, its zero fields replaced by their defaults. Default: from 0
	// to p.BackoffMax + p.BackoffJitter, so that a Backoff of one's own
	// must keep within the policy's declared maximum (set BackoffMax to
	// it, or give BackoffBounds).
	BackoffBounds func(p pool.Policy, n int) (lo, hi time.Duration)
	// Check adds checks of one's own on each run's result. Optional.
	Check func(*sim.Result) error
	// MaxConnectRate bounds the connects a backend, up or down, sees in
	// one second from each client: the larger of MaxConnectRate and
	// sim.ConnectStormLimit of the client's policy (ten a second for each
	// slot the client may hold to it, more with a BackoffMin under 20ms
	// or a BackoffMax under a second). A policy that reconnects at once (a
	// backoff of zero) storms a dead backend far past it (about 400 a
	// second from one probe slot), whatever its Backoff claims; the
	// simulator's connect-storm invariant catches that too, per pool, for
	// backends that are down. Default 100; negative turns the check off.
	MaxConnectRate float64

	// MaxBackends, MaxClients and MaxFaults bound the schedules drawn.
	// Defaults 4, 3 and 4.
	MaxBackends, MaxClients, MaxFaults int
	// Duration of each run, in virtual time. Default 4m. Faults start and
	// last within the first Duration-RecoverWithin, so that there is time
	// to recover after the last one, except the faults that last
	// LongFault: their run is lengthened to end RecoverWithin and ten
	// seconds after them.
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
	if c.BackoffBounds == nil {
		c.BackoffBounds = declaredBackoffBounds
	}
	if c.QSim == "" {
		c.QSim = "go run ./cmd/qsim"
	}
	return c
}

// declaredBackoffBounds holds a Backoff to the policy's declared
// maximum: BackoffMax, plus BackoffJitter.
func declaredBackoffBounds(p pool.Policy, _ int) (lo, hi time.Duration) {
	return 0, p.BackoffMax + p.BackoffJitter
}

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, s)
}

// Options returns the simulator options that plug cfg's policy into
// every client of a scenario, with the backoff bounds Check holds it to
// (Config.BackoffBounds or its default). Set Seed, Trace and Progress on
// the result as needed. Check, Replay and package sim/qsim run with them.
func (c Config) Options() sim.Options {
	c = c.withDefaults("")
	return sim.Options{
		Policy:        func(string, pool.Policy) pool.Policy { return c.Policy() },
		BackoffBounds: c.BackoffBounds,
	}
}

// Verify runs the checks the harness adds to the simulator's own on the
// result r of a run of sc with cfg's policy (run with [Config.Options]):
// the connect rate bound (Config.MaxConnectRate) and Config.Check. It
// does not repeat r.Err(), the simulator's invariants and expectations.
func (c Config) Verify(sc *sim.Scenario, r *sim.Result) error {
	c = c.withDefaults("")
	if err := c.checkConnectRate(sc, r); err != nil {
		return err
	}
	if c.Check != nil {
		return c.Check(r)
	}
	return nil
}

// run runs one scenario with cfg's policy and returns what went wrong.
func (c Config) run(sc *sim.Scenario) (*sim.Result, error) {
	r, err := sim.Run(sc, c.Options())
	if err != nil {
		return nil, err
	}
	if err := r.Err(); err != nil {
		return r, err
	}
	return r, c.Verify(sc, r)
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
		limit += max(c.MaxConnectRate, float64(sim.ConnectStormLimit(pol))) * float64(max(cl.Count, 1))
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
	p := cfg.Policy()
	gen := generator(cfg, p)
	rapid.Check(t, func(rt *rapid.T) {
		s := gen.Draw(rt, "schedule")
		sc := s.Scenario(t.Name(), p, cfg.Duration, cfg.RecoverWithin)
		_, err := cfg.run(sc)
		if err == nil {
			return
		}
		if werr := cfg.writeSchedule(sc, err); werr != nil {
			rt.Fatalf("%v (and writing the schedule: %v)", err, werr)
		}
		rt.Fatalf("%v\nsmallest failing schedule so far: %s (%d backends, %d clients, %d faults)\n%s",
			err, cfg.Out, len(s.Backends), len(s.Clients), len(s.Faults), cfg.replayHelp())
	})
}

// ReplayCommand returns the command line, run from the module's root,
// that replays the scenario file with cfg's policy in a qsim of one's
// own: cfg.QSim -policy cfg.Name -scenario file, the file's path made
// relative to the module's root when it lies within it. It is "" when
// cfg has no Name.
func (c Config) ReplayCommand(file string) string {
	c = c.withDefaults("")
	if c.Name == "" {
		return ""
	}
	return fmt.Sprintf("%s -policy %s -scenario %s", c.QSim, c.Name, fromModuleRoot(file))
}

// replayHelp says how to replay cfg.Out.
func (c Config) replayHelp() string {
	if cmd := c.ReplayCommand(c.Out); cmd != "" {
		return "replay it (from the module's root): " + cmd
	}
	return "replay it with policytest.Replay, or set Config.Name and register the policy in a qsim of your own (package sim/qsim)"
}

// fromModuleRoot returns file's path relative to the root of the module
// the working directory is in (the directory with go.mod), or file's
// absolute path when it is outside it or there is no module.
func fromModuleRoot(file string) string {
	abs, err := filepath.Abs(file)
	if err != nil {
		return file
	}
	dir, err := os.Getwd()
	if err != nil {
		return abs
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		up := filepath.Dir(dir)
		if up == dir {
			return abs
		}
		dir = up
	}
	rel, err := filepath.Rel(dir, abs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return abs
	}
	return rel
}

// writeSchedule writes sc as a scenario file at c.Out, with a header
// saying what failed and how to replay it.
func (c Config) writeSchedule(sc *sim.Scenario, failure error) error {
	body, err := sc.Marshal()
	if err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("# The smallest failing schedule policytest found.\n")
	for _, l := range strings.Split(failure.Error(), "\n") {
		b.WriteString("# " + l + "\n")
	}
	b.WriteString("# The policy's Rebalancer, Picker and Backoff are Go values.\n")
	if cmd := c.ReplayCommand(c.Out); cmd != "" {
		b.WriteString("# Replay it with the policy, from the module's root:\n")
		b.WriteString("#   " + cmd + "\n")
		b.WriteString("# or from Go with policytest.Replay(file, config).\n")
	} else {
		b.WriteString("# Replay it with policytest.Replay(file, config), or set Config.Name and\n")
		b.WriteString("# register the policy in a qsim of your own (package sim/qsim).\n")
	}
	b.WriteString("# qsim -scenario file runs it with the default Rebalancer, Picker and\n")
	b.WriteString("# Backoff, for comparison.\n\n")
	b.Write(body)
	if err := os.MkdirAll(filepath.Dir(c.Out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(c.Out, []byte(b.String()), 0o644)
}

// Replay runs a scenario file (a schedule Check wrote, or any scenario)
// with cfg's policy and the harness's checks, and returns the result and
// what went wrong, if anything.
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
