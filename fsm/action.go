package fsm

import "context"

// An Action is what the core asks its driver to do off the loop: the typed
// description of one spawned job. Drivers execute the job; a test driver
// can hold it and print it, and decide when and how it completes.
type Action struct {
	Kind ActionKind
	ID   string // the machine the action is for: a slot's or a resolver's ID
	// Ctx is the context the action's I/O runs with, when it has one: it
	// ends when the core gives up on the I/O (a timeout, a stopped slot,
	// Close), and a driver may use it to end an I/O that would hang.
	Ctx context.Context
}

// ActionKind says what an action does.
type ActionKind int8

const (
	// Connect opens a connection (and, with a Validator, checks it first).
	Connect ActionKind = iota
	// Check runs the health check on an idle connection.
	Check
	// Recycle runs the recycle hook on a released connection.
	Recycle
	// CloseConn closes a connection.
	CloseConn
	// Query asks a resolver's servers.
	Query
	// Acquire runs the acquire hook on a connection being handed out.
	Acquire
)

var actionNames = [...]string{"connect", "check", "recycle", "close", "query", "acquire"}

// String returns the action kind's name: connect, check, recycle, close,
// query or acquire.
func (k ActionKind) String() string {
	if k >= 0 && int(k) < len(actionNames) {
		return actionNames[k]
	}
	return "action(?)"
}

// String formats the action as "kind id".
func (a Action) String() string { return a.Kind.String() + " " + a.ID }
