// Package sim is the deterministic simulator of qorb pools: it runs the
// real pool code (the same machines, the same loop, the same policies)
// against simulated backends, connections and DNS in virtual time, with
// faults, and gives the same result, byte for byte, from the same seed.
//
// # How a run works
//
// A [Scenario] (a TOML file under testdata/scenarios/, see docs/sim.md)
// names the backends, the DNS records, the clients and their workloads,
// the faults and the duration. [Run] builds one [fsm.Loop] on a virtual
// clock and creates every client's pool on it (internal/simhook.WithLoop), so the
// events of the whole fleet interleave in one order. The loop is halted:
// it never arms a timer of its own. The simulator keeps a queue of its own
// events (claim arrivals, releases, I/O completions, faults), ordered by
// (virtual time, sequence), and merges it with the loop's timer heap: at
// each step it moves the clock to the earliest deadline of either and runs
// that event to completion.
//
// I/O goes through the loop's spawner: the simulated connector's Connect,
// Validate and Close return at once and record the virtual time the call
// takes and how it ends (refused, hung, reset), drawn from the scenario
// and the run's seeded streams; the pool's completion then runs as a
// simulator event at that time. A hung call completes as soon as its
// context is cancelled (the pool's connect or health timeout, or Close),
// at the same virtual instant: connectors honour their context. A connect
// whose context ends before it completes is never established.
//
// DNS: each client's resolver is a stand-in for resolver/dns, or (with
// [DNSSpec] Resolver "dns") resolver/dns itself, whose exchanges go to
// simulated DNS servers through internal/dnshook. An exchange runs inside
// the resolver's spawned query: it answers at once from records built from
// the backends as they are listed then, and records the virtual time it
// takes (the server's latency, or the resolver's timeout when the server
// does not answer); the resolver's completion then runs at that time.
//
// Claims use internal/simhook.ClaimAsync; the callback, run with the loop held,
// checks the hand-out and starts the claim's request, which feels the
// backend (slowness, hangs and partitions up to the workload's I/O
// timeout, crashes, errors: see request.go). When it ends, without the
// loop held, the claimer reports it (Handle.Report) and calls
// Handle.Release, or Discard after a failed request; a Do claim
// (Workload.Do) hands the request's error to Do's own end of the claim
// (internal/simhook.Do), which asks the policy's IsBadConn.
//
// # Determinism
//
// No goroutine runs during a simulation, no decision depends on map
// order, and every random draw comes from streams derived from the one
// seed and a component's name: one per pool, slot set, slot and resolver
// (through [fsm.Stream]), and one per backend, client, DNS and fault
// schedule. The trace, one JSON line per machine
// transition and per simulator event, is hashed with SHA-256; the same
// scenario and seed give the same hash on every machine and GOMAXPROCS.
//
// # Invariants
//
// After every event (fsm.Loop.OnEventEnd) the simulator compares a model
// of every slot and slot set, built from the trace alone, with the pools'
// bookkeeping (through internal/simhook's read-only views): one state per
// slot, counts by state that match, slot caps per pool and per backend,
// sets online exactly when they hold a connection, backoff delays
// within the policy's bounds, and no storm of connects to a backend that
// is down, whatever the policy's Backoff. Each hand-out is checked: no connection to
// two claimers, none closed, none from a backend the client's resolver no
// longer lists, none after the claim's deadline, none after the pool's
// Close began, first-in first-out. No claimer's connection is closed
// under it except by a Close whose context ended or whose drain deadline
// passed (a close fault closes pools gracefully: see [FaultClose]). The
// connector refuses calls after Close returned and double closes; at the
// end every connection must be closed, no timer left and no I/O in
// flight. The first violation stops the run with the trace before it.
//
// Liveness: after each fault ends the simulator measures the time until
// every client is back to its target (see Expect.RecoverWithin), and the
// scenario's [Expect] table bounds it and the claim outcomes.
//
// # Swarm testing
//
// [Scenario.Swarm] keeps a scenario's topology and draws, from a seed, a
// mix of faults of its own: a random subset of the fault kinds with
// random weights, and the faults' targets, lengths and times (see
// docs/sim.md, "Swarm mode"). qsim -swarm runs many seeds so, in
// parallel, and writes each failing one as a scenario file that replays
// it.
package sim
