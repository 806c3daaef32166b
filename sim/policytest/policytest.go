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
//	func TestMyRebalancer(t *testing.T) {
//		policytest.Check(t, policytest.Config{
//			Policy: func() pool.Policy { return pool.Policy{Rebalancer: MyRebalancer{}} },
//			// Optional: the qsim of one's own the policy is registered in
//			// (qsim.RegisterPolicy("my-rebalancer", ...) in cmd/myqsim).
//			Name: "my-rebalancer",
//			QSim: "go run ./cmd/myqsim",
//		})
//	}
//
// # Files written, and replaying a failure
//
// On a failure Check writes the smallest failing schedule as a scenario
// file into the test's package directory: testdata/policytest/<test
// name>.toml ([DefaultDir]), or <dir>/<test name>.toml with
// -policytest.dir=dir or $POLICYTEST_DIR ([DirEnv]), or the file
// Config.Out names. The failure says where it wrote it, and prints the
// command, run from the module's root, that replays it in the test
// itself ([GoTestCommand]):
//
//	go test ./mypkg -run '^TestMyRebalancer$' -args -policytest.replay=testdata/policytest/TestMyRebalancer.toml
//
// With -policytest.replay=file (or $POLICYTEST_REPLAY, [ReplayEnv]) every
// Check runs the scenario in file once with its policy in place of
// drawn schedules, and fails as the search did while the bug is there.
// [Replay] runs a file from Go, for a regression test of one's own; a
// qsim of one's own (package sim/qsim, with the policy registered under
// Config.Name, run by Config.QSim) runs it from the command line, and
// with both set the failure prints that command too.
//
// rapid writes a fail file of its own on a failure, under
// testdata/rapid/<test name>/ in the package directory, and runs it
// again first on the next go test; -rapid.nofailfile turns it off. The
// values in a failure's log read as one writes them: the drawn
// [Schedule] with its durations as duration strings and distributions
// as in scenario files, the policy by the fields set.
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
	// qsim of one's own. With it and QSim, a failure prints the qsim
	// command that replays the failing schedule too. Optional.
	Name string
	// QSim is the command, run from the module's root, that runs the qsim
	// in which the policy is registered under Name, for example
	// "go run ./cmd/myqsim". Optional: without it no qsim command is
	// printed (the stock qsim knows no policy of one's own), only the go
	// test command that replays the failure in the test itself.
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
	// Out is the file the smallest failing schedule is written to; a
	// relative path is from the test's package directory. Default
	// <dir>/<test name>.toml, where dir is -policytest.dir, else
	// $POLICYTEST_DIR, else testdata/policytest ([DefaultDir]): in the
	// package's directory, next to the test.
	Out string

	outDefault bool // Out was left to its default
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
		c.Out = filepath.Join(outDir(), safeName(name)+".toml")
		c.outDefault = true
	}
	if c.MaxConnectRate == 0 {
		c.MaxConnectRate = 100
	}
	if c.BackoffBounds == nil {
		c.BackoffBounds = declaredBackoffBounds
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
// violation, the policy, the file's name and the go test command that
// replays the file in this test ([GoTestCommand]). rapid's flags
// (-rapid.checks, -rapid.seed) apply, and rapid writes a fail file of
// its own under testdata/rapid.
//
// With -policytest.replay=file (or $POLICYTEST_REPLAY) Check draws
// nothing: it runs the scenario in file once with cfg's policy and, when
// the run fails, fails t with the violation and the policy (and writes
// no file).
func Check(t TB, cfg Config) {
	t.Helper()
	if cfg.Policy == nil {
		t.Fatalf("policytest: Config.Policy is required")
		return
	}
	cfg = cfg.withDefaults(t.Name())
	if file := replayFile(); file != "" {
		cfg.replay(t, file)
		return
	}
	p := cfg.Policy()
	gen := generator(cfg, p)
	rapid.Check(t, func(rt *rapid.T) {
		s := gen.Draw(rt, "schedule")
		sc := s.Scenario(t.Name(), p, cfg.Duration, cfg.RecoverWithin)
		_, err := cfg.run(sc)
		if err == nil {
			return
		}
		werr := cfg.writeSchedule(t.Name(), sc, err)
		rt.Fatalf("%s", cfg.failure(t.Name(), sc, err, werr))
	})
}

// ReplayCommand returns the command line, run from the module's root,
// that replays the scenario file with cfg's policy in a qsim of one's
// own: cfg.QSim -policy cfg.Name -scenario file, the file's path made
// relative to the module's root when it lies within it. It is "" unless
// cfg has both a Name and a QSim. [GoTestCommand] replays the file with
// go test, in the test that calls Check.
func (c Config) ReplayCommand(file string) string {
	if c.Name == "" || c.QSim == "" {
		return ""
	}
	return fmt.Sprintf("%s -policy %s -scenario %s", c.QSim, c.Name, shellQuote(fromModuleRoot(file)))
}

// failure is the message of a failed Check: the violation, the policy,
// where the schedule was written (or why it was not) and how to replay
// it.
func (c Config) failure(test string, sc *sim.Scenario, err, werr error) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v\npolicy under test: %s\n", err, formatPolicy(c.Policy()))
	if werr != nil {
		fmt.Fprintf(&b, "policytest could not write the smallest failing schedule (%s) to %s: %v", counts(sc), c.Out, werr)
		return b.String()
	}
	fmt.Fprintf(&b, "policytest wrote the smallest failing schedule (%s) to %s", counts(sc), fromModuleRoot(c.Out))
	if c.outDefault {
		fmt.Fprintf(&b, " (-policytest.dir or $%s choose the folder, Config.Out the file)", DirEnv)
	}
	fmt.Fprintf(&b, "\nreplay it, from the module's root: %s", GoTestCommand(test, c.Out))
	if cmd := c.ReplayCommand(c.Out); cmd != "" {
		fmt.Fprintf(&b, "\nor with the qsim the policy is registered in: %s", cmd)
	}
	return b.String()
}

// counts says how many backends, clients and faults sc has.
func counts(sc *sim.Scenario) string {
	n := func(k int, what string) string {
		if k == 1 {
			return "1 " + what
		}
		return fmt.Sprintf("%d %ss", k, what)
	}
	return n(len(sc.BackendNames()), "backend") + ", " + n(len(sc.Clients), "client") + ", " + n(len(sc.Faults), "fault")
}

// writeSchedule writes sc, which fails test, as a scenario file at
// c.Out, with a header saying what failed and how to replay it.
func (c Config) writeSchedule(test string, sc *sim.Scenario, failure error) error {
	body, err := sc.Marshal()
	if err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("# The smallest failing schedule policytest found in " + test + ".\n")
	for _, l := range strings.Split(failure.Error(), "\n") {
		b.WriteString("# " + l + "\n")
	}
	b.WriteString("# The policy under test (its Rebalancer, Picker and Backoff are Go values):\n")
	b.WriteString("#   " + formatPolicy(c.Policy()) + "\n")
	b.WriteString("# Replay it in the test, from the module's root:\n")
	b.WriteString("#   " + GoTestCommand(test, c.Out) + "\n")
	if cmd := c.ReplayCommand(c.Out); cmd != "" {
		b.WriteString("# with the qsim the policy is registered in, from the module's root:\n")
		b.WriteString("#   " + cmd + "\n")
	}
	b.WriteString("# or from Go with policytest.Replay(file, config).\n")
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
