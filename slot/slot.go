// Package slot declares the slot machine: one slot is a commitment to hold
// one connection to one backend, and its state says what that connection is
// doing. See docs/slot.md for the diagram.
//
// The machine does no I/O and reads no clock; the pool fires its events on
// the loop and runs the I/O that the states call for.
package slot

import (
	lf "github.com/looplab/fsm"

	"github.com/qorbgo/qorb/fsm"
)

// State is a slot's state. The names printed by String are part of traces
// and stay stable.
type State int8

const (
	// Connecting: a connect (and, with a Validator, a first check) is in flight.
	Connecting State = iota
	// Connected: idle and healthy; the slot can be claimed.
	Connected
	// Claimed: a caller holds the connection.
	Claimed
	// Recycling: released; the recycle hook is running.
	Recycling
	// Checking: the periodic health check is running on the idle connection.
	Checking
	// Failed: the connection was lost or never made; backing off.
	Failed
	// Stopped: the slot is gone. Terminal.
	Stopped
	// Waiting: the slot is to connect again, and waits for its earlier
	// connection to finish closing (or its abandoned I/O to end), so that
	// it never stands for two connections at once.
	Waiting
)

// Event is something that happens to a slot.
type Event int8

const (
	ConnectOK      Event = iota // the connect (and first check) succeeded
	ConnectErr                  // the connect or first check failed, or timed out
	Claim                       // a claimer takes the connection
	Release                     // the claimer gives it back; recycling starts
	RecycleOK                   // the recycle hook succeeded
	RecycleErr                  // the recycle hook failed
	Giveback                    // a claimer whose context ended returns it unused
	Discard                     // the claimer reports the connection bad
	CheckDue                    // the health interval elapsed on an idle slot
	CheckOK                     // the health check succeeded
	CheckErr                    // the health check failed
	BackoffElapsed              // the backoff delay ended; connect again
	Expire                      // the connection reached its lifetime or idle limit
	Stop                        // the slot is no longer wanted, or the pool closes
	Return                      // the claimer gives it back, with no recycle hook to run
	Wait                        // the connect must wait for an earlier connection to close
	Ready                       // the earlier connection closed: connect now
)

var (
	stateNames = []string{"connecting", "connected", "claimed", "recycling", "checking", "failed", "stopped", "waiting"}
	eventNames = []string{"connect_ok", "connect_err", "claim", "release", "recycle_ok", "recycle_err", "giveback",
		"discard", "check_due", "check_ok", "check_err", "backoff_elapsed", "expire", "stop", "return", "wait", "ready"}
	stateDocs = []string{
		"a connect (and, with a Validator, a first check) is in flight",
		"idle and healthy; can be claimed",
		"a caller holds the connection",
		"released; the recycle hook runs",
		"the periodic health check runs on the idle connection",
		"no connection; backing off before the next connect",
		"gone (terminal)",
		"to connect again once its earlier connection has closed",
	}
	eventDocs = []string{
		"the connect (and first check) succeeded",
		"the connect or first check failed or timed out",
		"a claimer takes the connection",
		"the claimer releases it; recycling starts",
		"the recycle hook succeeded",
		"the recycle hook failed: the connection is closed",
		"a claimer whose context ended returns it unused",
		"the claimer reports the connection bad: it is closed",
		"the health interval elapsed on an idle slot",
		"the health check succeeded",
		"the health check failed: the connection is closed",
		"the backoff delay ended",
		"the connection reached its lifetime or idle limit: reconnect",
		"the slot is no longer wanted, or the pool closes",
		"the claimer releases it and there is no recycle hook to run",
		"its earlier connection is still closing: the connect waits",
		"the earlier connection closed: connect",
	}
)

// Kind is the slot machine's declaration, compiled and typed: a machine's
// fsm.State[State, Event] changes only through Kind.Fire with one of its
// [Event]s.
var Kind = fsm.MustDeclare[State, Event]("slot", stateNames, eventNames, lf.Events{
	{Name: "connect_ok", Src: []string{"connecting"}, Dst: "connected"},
	{Name: "connect_err", Src: []string{"connecting"}, Dst: "failed"},
	{Name: "claim", Src: []string{"connected"}, Dst: "claimed"},
	{Name: "release", Src: []string{"claimed"}, Dst: "recycling"},
	{Name: "recycle_ok", Src: []string{"recycling"}, Dst: "connected"},
	{Name: "recycle_err", Src: []string{"recycling"}, Dst: "failed"},
	{Name: "giveback", Src: []string{"claimed"}, Dst: "connected"},
	{Name: "discard", Src: []string{"claimed"}, Dst: "failed"},
	{Name: "check_due", Src: []string{"connected"}, Dst: "checking"},
	{Name: "check_ok", Src: []string{"checking"}, Dst: "connected"},
	{Name: "check_err", Src: []string{"checking"}, Dst: "failed"},
	{Name: "backoff_elapsed", Src: []string{"failed"}, Dst: "connecting"},
	{Name: "expire", Src: []string{"connected"}, Dst: "connecting"},
	{Name: "stop", Src: []string{"connecting", "connected", "claimed", "recycling", "checking", "failed", "waiting"}, Dst: "stopped"},
	{Name: "return", Src: []string{"claimed"}, Dst: "connected"},
	{Name: "wait", Src: []string{"connecting"}, Dst: "waiting"},
	{Name: "ready", Src: []string{"waiting"}, Dst: "connecting"},
})

// String returns the state's trace name.
func (s State) String() string { return Kind.StateName(s) }

// String returns the event's trace name.
func (e Event) String() string { return Kind.EventName(e) }

// NumStates is the number of slot states, for arrays indexed by State.
const NumStates = 8

// HasConn reports whether a slot in state s holds an open connection.
func (s State) HasConn() bool { return s >= Connected && s <= Checking }

// Markdown renders docs/slot.md.
func Markdown() string {
	return Kind.Machine().Markdown("A slot holds at most one connection to one backend. The pool fires these events on its loop; the connect, check, recycle and close they call for run off the loop.", stateDocs, eventDocs)
}
