// Package pool is the public face of qorb: a [Pool] of connections to the
// many backends of one service.
//
// A resolver finds the backends; the pool keeps slots per backend (a slot is
// a commitment to hold one connection), spreads claimed + spare slots over
// the backends that are online, checks idle connections, backs off from
// failures, and serves claims first-in, first-out. Every slot, slot set,
// resolver and the pool itself is a declared machine (see docs/), driven by
// one event loop (package fsm) whose clock and seed come in through
// [WithClock] and [WithSeed], so that a run can be repeated exactly. The
// pool, each slot set, each slot and the resolver draw from random streams
// of their own, derived from the seed and their names, so that a new
// backend or slot does not change what the others draw.
//
// # Concurrency
//
// All methods of Pool are safe for concurrent use; a Handle belongs to its
// claimer. The pool never calls the connector while it holds its loop:
// connects, checks, recycle hooks and closes are actions the core asks for,
// run on goroutines of their own, and their results come back as events
// (docs/core.md). The acquire hook, and the check of a connection claimed
// after it stayed idle longer than Policy.CheckIdleAfter, run in the
// claimer's goroutine.
// Policies (Rebalancer, Picker, Backoff) and observers run on the loop and
// must not block; tracers and log handlers are called without the loop
// held.
//
// # Handles
//
// Each Claim returns a handle of its own. A handle used after its claim
// ended (a second Release, a Release after Discard, a copy kept after the
// connection went to another claimer) does nothing: the misuse is counted
// in Stats.Misuse and logged.
//
// # Claiming
//
// [Pool.Claim] waits in the queue; [Pool.TryClaim] never waits; [Pool.Do]
// claims, runs a function and gives the connection back (or discards it
// when the function's error is the connection's fault); [Pool.DoHandle]
// does the same with a function that gets the handle. A claimer can tell
// the pool how the backend did ([Handle.Report]), which the latency-aware
// picker ([LeastLatency]) and outlier ejection (Policy.Ejection) use.
// [Pool.Reset] replaces every connection without failing a claim.
//
// # Policies
//
// [Policy] sizes the pool (MaxSlots, MaxSlotsPerBackend, SparesWanted,
// MinSlots, ShrinkHalfLife), bounds claims (ClaimTimeout; load shedding
// with TargetClaimDelay), limits connects (ConnectTimeout, backoff,
// MaxConnectingPerBackend, ConnectRatePerBackend), and checks and retires
// connections (HealthInterval, CheckIdleAfter, CheckOnRelease, lifetimes).
// docs/policies.md compares each field with cueball's, qorb's, pgxpool's
// and go-redis's options.
//
// # Errors
//
// A claim that cannot be served fails with one of [ErrNoBackends],
// [ErrNoBackendsOnline], [ErrAllClaimsUsed] or [ErrClosed], with
// [ErrClaimShed] under load shedding, with [ErrQueueFull] when the queue
// is bounded (Policy.MaxWaiters) and full, with [ErrNoIdle] from TryClaim, or
// with its context's error; all work with errors.Is, and
// ErrNoBackendsOnline also wraps the last connect or check error.
package pool
