// Package fsm is the engine under every qorb machine: machines declared once
// with github.com/looplab/fsm and compiled into dense transition tables, and
// the one event loop that executes them.
//
// # Machines
//
// A machine kind (slot, slot set, resolver, pool) is declared once with
// [Declare] from looplab's [github.com/looplab/fsm.Events], typed by its
// package's state and event constants:
//
//	var Kind = fsm.MustDeclare[State, Event]("slot", stateNames, eventNames, lf.Events{...})
//
// The declaration is the source of truth: it is compiled into a table
// indexed by (state, event) that the loop executes in a few nanoseconds
// without allocating, it renders the Mermaid diagrams under docs/, and a
// property test checks that the table and looplab agree on every (state,
// event) pair. [Machine] is a kind's untyped description, the one records
// point to.
//
// One machine's state is a [State] value embedded in what it describes
// (a slot, a set, a resolver, the pool). Its field is unexported: it is read
// with [State.Get] and changes only through [Kind.Fire] with an event of its
// own kind, so no code can write a state directly or fire another kind's
// event on it:
//
//	var st fsm.State[slot.State, slot.Event] // connecting: the first state declared
//	slot.Kind.Fire(loop, &st, "b1/0", slot.ConnectOK)
//	st.Get() == slot.Connected
//
// An event that has no transition from the current state is a bug:
// [Kind.Fire] leaves the state as it is, reports the refused transition to
// the observers and the logger, and panics when the loop is strict
// ([Config.Strict], which tests and the simulator turn on).
//
// # Transition records
//
// Every transition is reported to the loop's observers as a [Transition]:
// the time, a pointer to the kind's [Machine], the machine's id, and its
// from state, event and to state as the small integers of their constants.
// [Kind.Step] reads a record back typed; names appear only at the edge, in
// [Transition.String], the JSON form and the logs. With no observer, no
// record is built and the clock is not read.
//
// # The loop
//
// A [Loop] is a lock-protected executor: whoever holds it (a caller of the
// pool's API, an I/O goroutine posting its result, the loop's own timer) runs
// one event to completion, so all machine state changes happen one event at
// a time, in one place. Time is read only through a [github.com/benbjohnson/clock.Clock]; timers
// live in the loop's own heap ordered by (deadline, insertion sequence), and
// one real timer is armed for the earliest deadline. [NewLoop] takes a
// [Config]: the clock, the seed, the logger and strictness.
//
// Machines do no I/O and read no clock. I/O runs off the loop through
// [Loop.Spawn], and its result comes back as an event.
//
// # Random streams
//
// The loop has a seed, not a random source. Each component that draws (the
// pool, a slot set, a slot, a resolver) embeds a [Stream] seeded from the
// loop's seed and its own kind and name, so that adding a backend, a slot or
// a pool on a shared loop does not change what any other component draws:
//
//	sl.rng.Init(loop, "slot", sl.id) // once, when the slot is made
//	d -= time.Duration(sl.rng.Int64N(int64(d)/10 + 1))
//
// A Stream is 16 bytes and its draws allocate nothing; [Stream.Rand] wraps
// it for a policy that takes a *rand.Rand. A long-lived component that
// hands one out often (the pool, to its picker) takes a *rand.Rand of its
// own stream from [Loop.NewRand].
package fsm
