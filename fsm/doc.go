// Package fsm is the engine under every qorb machine: machines declared once
// with github.com/looplab/fsm and compiled into dense transition tables, and
// the one event loop that executes them.
//
// # Machines
//
// A machine kind (slot, slot set, resolver, pool) is declared once with
// [Declare] from looplab's [github.com/looplab/fsm.Events]. The declaration is the source of
// truth: it is compiled into a table indexed by (state, event) that the loop
// executes in a few nanoseconds without allocating, it renders the Mermaid
// diagrams under docs/, and a property test checks that the table and
// looplab agree on every (state, event) pair. An event that has no
// transition from the current state is a bug: [Loop.Fire] reports it to the
// logger and the observers, and panics when the binary is a test.
//
// # The loop
//
// A [Loop] is a lock-protected executor: whoever holds it (a caller of the
// pool's API, an I/O goroutine posting its result, the loop's own timer) runs
// one event to completion, so all machine state changes happen one event at
// a time, in one place. Time is read only through a [github.com/benbjohnson/clock.Clock]; timers
// live in the loop's own heap ordered by (deadline, insertion sequence), and
// one real timer is armed for the earliest deadline. Randomness comes from
// one seeded math/rand/v2 source owned by the loop. Every transition is
// reported to observers as a [Transition] record.
//
// Machines do no I/O and read no clock. I/O runs off the loop through
// [Loop.Spawn], and its result comes back as an event.
package fsm
