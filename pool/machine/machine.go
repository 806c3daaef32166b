// Package machine declares the pool machine: the states a Pool as a whole
// goes through and the events that move it (docs/pool.md). The names are
// part of traces; an observer (pool.WithObserver) reads a pool's
// transitions back with Kind.Step. The slot's and the slot set's machines
// are declared in packages slot and slotset.
package machine

import (
	lf "github.com/looplab/fsm"

	"github.com/qorbgo/qorb/fsm"
)

// State is the pool's state. The names are part of traces and stay stable.
type State int8

const (
	// Starting: no backend has come online yet. Claims wait.
	Starting State = iota
	// Running: at least one backend is or has been online. Claims are served.
	Running
	// Failed: every known backend is dead. Claims fail fast with
	// ErrNoBackendsOnline and the last connect error.
	Failed
	// Broken: the circuit breaker is open: no connection could be made to
	// any backend for Policy.CircuitBreakAfter. Claims fail fast with
	// ErrCircuitOpen and the last connect error while the pool keeps
	// trying; the first connection closes the breaker.
	Broken
	// Stopping: Close was called; claimed connections are being waited for.
	Stopping
	// Stopped: closed. Terminal.
	Stopped
)

// Event is something that happens to the pool.
type Event int8

const (
	// BackendUp: a backend came online.
	BackendUp Event = iota
	// AllDead: every known backend is dead.
	AllDead
	// CloseCalled: Close was called.
	CloseCalled
	// Closed: every slot stopped, or Close's context ended.
	Closed
	// Revive: a failed pool knows a backend that is not dead (a new one
	// the resolver listed, or none at all): claims wait again.
	Revive
	// Break: no connection for Policy.CircuitBreakAfter: the circuit
	// breaker opens.
	Break
)

var (
	stateNames = []string{"starting", "running", "failed", "broken", "stopping", "stopped"}
	eventNames = []string{"backend_up", "all_dead", "close", "closed", "revive", "break"}
	stateDocs  = []string{
		"no backend has come online yet; claims wait",
		"claims are served",
		"every known backend is dead; claims fail fast with the last error",
		"circuit breaker open: no connection for CircuitBreakAfter; claims fail fast while the pool keeps trying",
		"Close was called; claimed connections are waited for",
		"closed (terminal)",
	}
	eventDocs = []string{
		"a backend came online",
		"every known backend is dead",
		"Close was called",
		"every slot stopped, or Close's context ended",
		"the resolver lists a backend that is not dead, or none at all: claims wait again",
		"no connection to any backend for CircuitBreakAfter",
	}
)

// Kind is the pool machine's declaration, compiled and typed: a machine's
// fsm.State[State, Event] changes only through Kind.Fire with one of its
// [Event]s.
var Kind = fsm.MustDeclare[State, Event]("pool", stateNames, eventNames, lf.Events{
	{Name: "backend_up", Src: []string{"starting", "failed", "broken"}, Dst: "running"},
	{Name: "all_dead", Src: []string{"starting", "running", "broken"}, Dst: "failed"},
	{Name: "close", Src: []string{"starting", "running", "failed", "broken"}, Dst: "stopping"},
	{Name: "closed", Src: []string{"stopping"}, Dst: "stopped"},
	{Name: "revive", Src: []string{"failed"}, Dst: "running"},
	{Name: "break", Src: []string{"starting", "running"}, Dst: "broken"},
})

// String returns the state's trace name.
func (s State) String() string { return Kind.StateName(s) }

// String returns the event's trace name.
func (e Event) String() string { return Kind.EventName(e) }

// Markdown renders docs/pool.md from the declaration.
func Markdown() string {
	return Kind.Machine().Markdown("The pool as a whole. Claims fail fast while it is failed.", stateDocs, eventDocs)
}
