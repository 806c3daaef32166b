package slotset

import "github.com/qorbgo/qorb/fsm"

// Set is one backend's slot set as far as the set itself goes: its
// machine, how many of its slots hold a connection, its failure accounting
// and dead detection, and its drain. The slots themselves (and their
// connections, of the pool's type) are kept by the pool, which tells the
// set what happens to them; the set fires its own events.
//
// Concurrency contract: every method must be called on the pool's core
// (with its loop held); l is that loop, and nil only for a set that
// reports to nobody.
type Set struct {
	id    string
	state fsm.State[State, Event]
	live  int // slots holding a connection

	// failures counts consecutive failures across the set's slots:
	// connects, checks, recycles and discards; a connect or a check that
	// succeeds resets it. At Policy.DeadAfter the backend is dead: it
	// stays offline with a single probe slot until a connect succeeds.
	failures int
	dead     bool
	lastErr  error

	// Counts the pool keeps for the set, as its slots change:
	Wanted   int // slots the rebalancer last wanted for the backend
	Claimed  int // slots claimed
	Retiring int // slots to stop at their next idle moment
	// Orphans counts connections and connects of the set's stopped slots
	// not yet finished: they still count against the caps, and a
	// draining set stops only once they are done.
	Orphans int
}

// New returns the set of the backend whose machine ID (in traces) is id,
// offline.
func New(id string) Set { return Set{id: id} }

// ID is the set's machine ID.
func (s *Set) ID() string { return s.id }

// State is the set machine's state.
func (s *Set) State() State { return s.state.Get() }

// Live is the number of the set's slots that hold a connection.
func (s *Set) Live() int { return s.live }

// Dead reports whether DeadAfter consecutive failures made the backend
// dead.
func (s *Set) Dead() bool { return s.dead }

// Failures is the number of consecutive failures.
func (s *Set) Failures() int { return s.failures }

// LastErr is the last failure's error, or nil.
func (s *Set) LastErr() error { return s.lastErr }

func (s *Set) fire(l *fsm.Loop, ev Event) { Kind.Fire(l, &s.state, s.id, ev) }

// Connected records that one of the set's slots connected: the backend is
// alive (not dead, its failures forgotten), and comes online if it was
// offline. It reports whether this is the set's first connection.
func (s *Set) Connected(l *fsm.Loop) (first bool) {
	s.live++
	s.failures = 0
	s.dead = false
	if s.live == 1 && s.state.Get() == Offline {
		s.fire(l, Up)
	}
	return s.live == 1
}

// Lost records that a slot of the set no longer holds its connection. It
// reports whether the set went offline: it was online and this was its
// last connection.
func (s *Set) Lost(l *fsm.Loop) (down bool) {
	s.live--
	if s.live == 0 && s.state.Get() == Online {
		s.fire(l, Down)
		return true
	}
	return false
}

// Failed records a failure with its error. It reports whether the backend
// became dead with it: deadAfter consecutive failures.
func (s *Set) Failed(err error, deadAfter int) (newlyDead bool) {
	s.failures++
	s.lastErr = err
	if !s.dead && s.failures >= deadAfter {
		s.dead = true
		return true
	}
	return false
}

// Checked records a check or a recycle hook that succeeded: the failures
// in a row are forgotten.
func (s *Set) Checked() { s.failures = 0 }

// Remove records that the resolver no longer lists the backend: the set
// drains. A set stopped or already draining does not move.
func (s *Set) Remove(l *fsm.Loop) {
	if st := s.state.Get(); st != Draining && st != Stopped {
		s.fire(l, Remove)
	}
}

// Restore records that the resolver lists a draining backend again: it is
// online at once if its slots still hold connections.
func (s *Set) Restore(l *fsm.Loop) {
	if s.state.Get() != Draining {
		return
	}
	s.fire(l, Restore)
	if s.live > 0 {
		s.fire(l, Up)
	}
}

// Drain stops a draining set once nothing of it is left: no slot, and no
// orphan. It reports whether the set stopped.
func (s *Set) Drain(l *fsm.Loop, slots int) bool {
	if s.state.Get() != Draining || slots > 0 || s.Orphans > 0 {
		return false
	}
	s.fire(l, Drained)
	return true
}
