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
// All methods of Pool and Handle are safe for concurrent use. The pool never
// calls the connector while it holds its loop: connects, checks, recycle
// hooks and closes run on goroutines of their own and post their results
// back. Policies (Rebalancer, Picker, Backoff) and observers run on the loop
// and must not block.
//
// # Errors
//
// A claim that cannot be served fails with one of [ErrNoBackends],
// [ErrNoBackendsOnline], [ErrAllClaimsUsed] or [ErrClosed], or with its
// context's error; all work with errors.Is, and ErrNoBackendsOnline also
// wraps the last connect or check error.
package pool
