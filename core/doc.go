// Package core holds the pool's decisions that depend on nothing but their
// inputs: the time comes in as a value, and what to do next goes out as a
// value (a verdict, a count, the time of the next deadline). It reads no
// clock, takes no lock, starts no goroutine and does no I/O; a test of its
// source says so, and fails on an import or a call that would.
//
// It is where the pool's single-threaded logic moves, one rule at a time,
// behind the pool's existing tests (docs/core.md, "The core"): today it
// holds the claim queue's shedding ([CoDel]), a backend's connect gate
// ([ConnectGate]: the connects in flight and the rate of new ones), the
// clock that times claims ([ClaimClock]), and the arithmetic of
// rebalancing ([Demand], [DampedShrink], [Clamp]). Package pool drives
// them: it owns the timers, the queue of claimers and the connections, and
// asks the core what each event means.
package core
