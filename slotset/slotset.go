// Package slotset is the slot-set machine: all the slots of one backend,
// and whether that backend can serve claims. Kind is its declaration (see
// docs/set.md); [Set] holds its behaviour: online while a slot holds a
// connection, failure accounting and dead detection, drain.
//
// A set is online while at least one of its slots holds a connection, and
// offline otherwise; failing while it holds none and connects to it fail,
// with one connect to it in flight at a time. After Policy.DeadAfter
// consecutive failures a backend is also dead: it keeps a single probe
// slot until a connect succeeds. A backend the resolver no longer lists drains: its claimed slots
// finish, then close, and the set stops.
package slotset

import (
	lf "github.com/looplab/fsm"

	"github.com/qorbgo/qorb/fsm"
)

// State is a slot set's state. The names are part of traces and stay stable.
type State int8

const (
	// Offline: no slot holds a connection.
	Offline State = iota
	// Online: at least one slot holds a connection; the backend serves claims.
	Online
	// Draining: removed by the resolver; claimed slots finish, then close.
	Draining
	// Stopped: every slot is stopped. Terminal.
	Stopped
	// Failing: no slot holds a connection, and connects to the backend
	// fail: one connect to it is in flight at a time, the other slots
	// wait until it comes online (postgres-nio's connectionCreationFailing).
	// After Policy.DeadAfter failures in a row it is also dead.
	Failing
	// NumStates is the number of states: every State is below it.
	NumStates
)

// Event is something that happens to a slot set.
type Event int8

const (
	Up      Event = iota // a slot connected while none held a connection
	Down                 // the last connection was lost
	Remove               // the resolver stopped listing the backend
	Restore              // the resolver lists a draining backend again
	Drained              // the last slot of a draining set stopped
	Stop                 // the pool closes
	Fail                 // a connect failed while no slot held a connection
)

var (
	stateNames = []string{"offline", "online", "draining", "stopped", "failing"}
	eventNames = []string{"up", "down", "remove", "restore", "drained", "stop", "fail"}
	stateDocs  = []string{
		"no slot holds a connection (a dead backend keeps one probe slot)",
		"at least one slot holds a connection; the backend serves claims",
		"removed by the resolver: claimed slots finish, then close",
		"every slot stopped (terminal)",
		"no slot holds a connection and connects fail: one connect in flight at a time (dead after DeadAfter in a row)",
	}
	eventDocs = []string{
		"a slot connected while none held a connection",
		"the last connection was lost",
		"the resolver no longer lists the backend",
		"the resolver lists the draining backend again",
		"the last slot of a draining set stopped",
		"the pool closes",
		"a connect failed while no slot held a connection",
	}
)

// Kind is the slot-set machine's declaration, compiled and typed: a machine's
// fsm.State[State, Event] changes only through Kind.Fire with one of its
// [Event]s.
var Kind = fsm.MustDeclare[State, Event]("set", stateNames, eventNames, lf.Events{
	{Name: "up", Src: []string{"offline", "failing"}, Dst: "online"},
	{Name: "down", Src: []string{"online"}, Dst: "offline"},
	{Name: "remove", Src: []string{"offline", "online", "failing"}, Dst: "draining"},
	{Name: "restore", Src: []string{"draining"}, Dst: "offline"},
	{Name: "drained", Src: []string{"draining"}, Dst: "stopped"},
	{Name: "stop", Src: []string{"offline", "online", "draining", "failing"}, Dst: "stopped"},
	{Name: "fail", Src: []string{"offline"}, Dst: "failing"},
})

// String returns the state's trace name.
func (s State) String() string { return Kind.StateName(s) }

// String returns the event's trace name.
func (e Event) String() string { return Kind.EventName(e) }

// Markdown renders docs/set.md.
func Markdown() string {
	return Kind.Machine().Markdown("One slot set per backend. A set is online while any of its slots holds a connection.", stateDocs, eventDocs)
}
