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

	// failures counts consecutive connects that failed while the set
	// held no connection; a connect or a check that succeeds resets it.
	// The first makes an offline set failing; at Policy.DeadAfter the
	// backend is dead: it stays failing with a single probe slot until a
	// connect succeeds. Connections that were
	// open and are lost (a server ending sessions, an idle timeout, a
	// failed check, a caller's discard) are not connect failures and do
	// not count; nor does a connect refused while the set holds others,
	// which says the backend is at its capacity, not down.
	failures int
	dead     bool
	lastErr  error
	lastAt   int64 // when lastErr was recorded, a stamp of the loop's clock
	// refusedAt is the number of connections the set held and was
	// opening when a connect to it was refused while it held others: the
	// most the backend accepts now (0 when none is known).
	refusedAt int

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

// LastErr is the last failure's error, or nil once the backend came back:
// it is cleared when the set gets its first connection.
func (s *Set) LastErr() error { return s.lastErr }

// LastErrAt is when LastErr was recorded (a stamp of the loop's clock,
// fsm.Loop.Nanos), or 0.
func (s *Set) LastErrAt() int64 { return s.lastAt }

// Capacity is the number of connections the set held when the backend
// last refused one more (see Refused), or 0 when it has refused none since
// Forget: the most the backend accepts from this pool now.
func (s *Set) Capacity() int { return s.refusedAt }

func (s *Set) fire(l *fsm.Loop, ev Event) { Kind.Fire(l, &s.state, s.id, ev) }

// Connected records that one of the set's slots connected: the backend is
// alive (not dead, its failures forgotten), and comes online if it was
// offline. It reports whether this is the set's first connection.
func (s *Set) Connected(l *fsm.Loop) (first bool) {
	s.live++
	s.failures = 0
	s.dead = false
	if s.live == 1 {
		s.lastErr, s.lastAt = nil, 0 // back: what failed before is over
	}
	if s.refusedAt > 0 && s.live > s.refusedAt {
		s.refusedAt = s.live // it accepts more than it did
	}
	if st := s.state.Get(); s.live == 1 && (st == Offline || st == Failing) {
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

// Failed records a connect that failed, with its error, at now (a stamp),
// and says what it means for the backend:
//
//   - While the set holds connections the backend is up and refused this
//     one (refused): that does not count toward dead. The connections it
//     holds and the connects in flight (connecting, which it accepted so
//     far) are its capacity (see Capacity), and capped reports that the
//     capacity was learned now or lowered.
//   - Otherwise it is a connect failure: an offline set fires Fail and is
//     failing (l is the pool's loop, as for Connected), and newlyDead
//     reports whether the backend became dead with it: deadAfter
//     consecutive failures.
func (s *Set) Failed(l *fsm.Loop, err error, now int64, deadAfter, connecting int) (refused, capped, newlyDead bool) {
	s.lastErr, s.lastAt = err, now
	if s.live > 0 {
		return true, s.refusedAtCapacity(connecting), false
	}
	s.failures++
	if s.state.Get() == Offline {
		s.fire(l, Fail)
	}
	if !s.dead && s.failures >= deadAfter {
		s.dead = true
		return false, false, true
	}
	return false, false, false
}

// Overloaded records a connect the backend refused under load (the
// connector's error wraps backend.ErrOverloaded), with its error, at now (a
// stamp). The backend is up and asked to be left alone: that never counts
// toward dead, whether or not the set holds connections. While it holds
// some, they and the connects in flight (connecting) are its capacity, as
// for a refusal in Failed, and capped reports that the capacity was learned
// now or lowered.
func (s *Set) Overloaded(err error, now int64, connecting int) (capped bool) {
	s.lastErr, s.lastAt = err, now
	return s.live > 0 && s.refusedAtCapacity(connecting)
}

// refusedAtCapacity records a connect refused while the set holds
// connections: those and the connects in flight are the most the backend
// accepts now. It reports whether that capacity was learned or lowered.
func (s *Set) refusedAtCapacity(connecting int) bool {
	if c := s.live + connecting; s.refusedAt == 0 || c < s.refusedAt {
		s.refusedAt = c
		return true
	}
	return false
}

// Dropped records that an open connection of the set was lost (a check or
// a recycle hook failed, or a claimer discarded it), with the error, at now
// (a stamp). It says nothing of whether the backend accepts connections:
// the failures in a row do not change.
func (s *Set) Dropped(err error, now int64) { s.lastErr, s.lastAt = err, now }

// Forget forgets the capacity the backend showed by refusing connects,
// so that the set may grow to its share again and learn anew.
func (s *Set) Forget() { s.refusedAt = 0 }

// Probe raises the capacity by one, so that one more connect is tried; a
// capacity of 0 stays 0.
func (s *Set) Probe() {
	if s.refusedAt > 0 {
		s.refusedAt++
	}
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
