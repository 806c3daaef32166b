package slot

import "github.com/qorbgo/qorb/fsm"

// Slot is one slot as far as the slot itself goes: its machine, its
// consecutive failures (the backoff exponent), the generation of its I/O,
// what it still waits for before it may open a new connection, and whether
// it is to stop at its next idle moment. Its connection (of the pool's
// type), its timers and its place in its set are kept by the pool, which
// tells the slot what happens and carries out what the slot's answers ask
// for.
//
// Two pieces of data change what an event means without being states, for
// reasons given at each: pending (with connectWant) and stopWanted.
//
// Concurrency contract: every method must be called on the pool's core
// (with its loop held).
type Slot struct {
	id       string
	state    fsm.State[State, Event]
	failures int32
	// gen is bumped for each I/O the slot starts and each one it gives up
	// on: a completion whose generation is not the current one is stale.
	gen uint32
	// pending counts the slot's earlier connections still closing and its
	// abandoned I/O still running. The slot opens no new connection until
	// it is zero, so that it never stands for two connections at once.
	// connectWant is set while the slot waits for that (Waiting). They
	// are data, not states: a slot in any state may have earlier
	// connections closing; only a slot about to connect waits for them,
	// and that is the declared state Waiting.
	pending     int32
	connectWant bool
	// stopWanted marks a claimed, recycling or checking slot to stop when
	// it comes back idle. It is data, not a state, because the slot's
	// state still says what its connection is doing, and the I/O in
	// flight completes as it would; the mark decides what follows.
	stopWanted bool
}

// New returns a slot whose machine ID (in traces) is id, connecting. The
// ID may be "" and set later, before the slot's first transition is
// observed (see SetID).
func New(id string) Slot { return Slot{id: id} }

// ID is the slot's machine ID, or "" while it has none.
func (s *Slot) ID() string { return s.id }

// SetID gives the slot its machine ID. A pool with many slots names them
// only when something reads the names (an observer, a log, a driver of
// actions), so that an idle slot holds no string of its own.
func (s *Slot) SetID(id string) { s.id = id }

// State is the slot machine's state.
func (s *Slot) State() State { return s.state.Get() }

// Fire fires ev on the slot's machine (see fsm.Kind.Fire).
func (s *Slot) Fire(l *fsm.Loop, ev Event) bool { return Kind.Fire(l, &s.state, s.id, ev) }

// Failures is the number of consecutive failures: the backoff exponent.
func (s *Slot) Failures() int { return int(s.failures) }

// Failed counts a failure and returns the count in a row.
func (s *Slot) Failed() int {
	s.failures++
	return int(s.failures)
}

// Succeeded forgets the failures in a row.
func (s *Slot) Succeeded() { s.failures = 0 }

// StartIO returns the generation of a new I/O.
func (s *Slot) StartIO() uint32 {
	s.gen++
	return s.gen
}

// Current reports whether gen is the generation of the slot's current I/O.
func (s *Slot) Current(gen uint32) bool { return s.gen == gen }

// Abandon makes the slot's current I/O stale. When one is in flight, it
// stays pending against the slot until its completion runs.
func (s *Slot) Abandon(inFlight bool) {
	if inFlight {
		s.pending++
	}
	s.gen++
}

// Closing records that an earlier connection of the slot started closing.
func (s *Slot) Closing() { s.pending++ }

// ConnectWhenFree reports whether a slot in connecting may connect now;
// otherwise it waits (Waiting) until PendingDone says so.
func (s *Slot) ConnectWhenFree(l *fsm.Loop) (now bool) {
	if s.pending > 0 {
		s.connectWant = true
		s.Fire(l, Wait)
		return false
	}
	return true
}

// PendingDone records that one earlier connection closed or one abandoned
// I/O ended. It reports whether the slot, waiting, may now make its
// connect: it is connecting again.
func (s *Slot) PendingDone(l *fsm.Loop) (connect bool) {
	s.pending--
	if s.pending == 0 && s.connectWant && s.state.Get() == Waiting {
		s.connectWant = false
		s.Fire(l, Ready)
		return true
	}
	return false
}

// TakePending returns what the slot still has pending and forgets it, for
// a slot that stops: its set carries it from now on.
func (s *Slot) TakePending() int {
	n := int(s.pending)
	s.pending = 0
	s.connectWant = false
	return n
}

// Retiring reports whether the slot is to stop at its next idle moment.
func (s *Slot) Retiring() bool { return s.stopWanted }

// Retire asks the slot to stop. It reports whether it can stop now
// (nothing holds its connection), and otherwise whether this call marked it
// to stop at its next idle moment (false when it already was, or is
// stopped).
func (s *Slot) Retire() (now, marked bool) {
	switch s.state.Get() {
	case Connecting, Connected, Failed, Waiting:
		return true, false
	case Claimed, Recycling, Checking:
		if !s.stopWanted {
			s.stopWanted = true
			return false, true
		}
	}
	return false, false
}

// Keep cancels a retirement; it reports whether the slot was retiring.
func (s *Slot) Keep() bool {
	was := s.stopWanted
	s.stopWanted = false
	return was
}

// Created reports the new slot to the loop's observers (see
// fsm.Kind.Created).
func (s *Slot) Created(l *fsm.Loop) { Kind.Created(l, s.id, &s.state) }
