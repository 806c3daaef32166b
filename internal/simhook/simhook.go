// Package simhook is what the simulator (package sim) needs of a pool and
// a pool's users must not depend on: a loop shared by several pools,
// claims that do not block, Do's end of a claim, and read-only views of the pool's bookkeeping.
// Package pool fills the hooks in at init; the values it takes and returns
// as any are *pool.Pool[C], *pool.Handle[C] and pool.Option.
package simhook

import (
	"context"
	"time"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/fsm"
	"github.com/qorbgo/qorb/slot"
	"github.com/qorbgo/qorb/slotset"
)

var (
	// WithLoop returns a pool.Option that runs the pool on l instead of a
	// loop of its own, so that several pools (a fleet of clients) share one
	// clock, one random source and one timer heap, and their events
	// interleave in one deterministic order. The loop's clock, seed and
	// logger are used. On a shared loop the IDs of the pool's slots and
	// sets in transition records start with the pool's name and a slash.
	WithLoop func(l *fsm.Loop) any

	// ClaimAsync is Claim for a caller that must not block: the simulator,
	// driving pools in virtual time. It must be called without the loop
	// held. done is called exactly once, with the loop held, before
	// ClaimAsync returns or later from the event that serves or fails the
	// claim, with a *pool.Handle[C] or an error; it must not call the pool.
	// timeout replaces Policy.ClaimTimeout when positive. ctx may be nil.
	// handed, when not nil, is called with the loop held each time the
	// claim is handed a connection (its *pool.Handle[C]), before its check
	// on claim or acquire hook runs (a claim whose hook failed is handed
	// another): it is where the order of hand-offs shows; done may follow
	// much later.
	ClaimAsync func(p any, ctx context.Context, timeout time.Duration, handed func(h any), done func(h any, err error))

	// TryClaimAsync is ClaimAsync for TryClaim: it never waits; with no
	// idle connection done gets pool.ErrNoIdle at once, and a failed check
	// on claim or acquire hook ends the claim with its error.
	TryClaimAsync func(p any, ctx context.Context, handed func(h any), done func(h any, err error))

	// Do ends a claim (h, a *pool.Handle[C]) as Pool.Do ends its own
	// once its function returned: it calls f, then releases the
	// connection, or discards it when f returns an error that the pool's
	// Policy.IsBadConn blames on the connection, or panics (the panic goes
	// on). It reports whether it discarded the connection, and f's error.
	// It is the same code as Do's, for a simulated claimer whose request
	// (f, which returns at once) was made in virtual time. It must be
	// called without the loop held.
	Do func(h any, f func() error) (discarded bool, err error)

	// CloseAsync is Close for a caller that must not block: it must be
	// called without the loop held, and runs the first half of Close at
	// once (the resolver stops, waiting claims fail with ErrClosed, idle
	// connections close, claimed ones are left to finish). quiet is called
	// once, with the loop held, when nothing is left to wait for (no slot,
	// none of the pool's I/O in flight): from CloseAsync itself when that is
	// so at once, or later from the event that made it so; it must not
	// call the pool. end is the second half, to be called exactly once and
	// without the loop held, after quiet or when the caller stops waiting
	// (a Close whose context ended): it closes what is left, claimed
	// connections included, and returns how many claimed connections it
	// closed. Then the pool is closed as after Close returned: a later
	// Close returns nil. end is nil when the pool was already closing.
	CloseAsync func(p any, quiet func()) (end func() (forced int))

	// TimerOwner returns the pool (a *pool.Pool[C]) that armed t, a timer
	// of the loop it runs on, or nil for a timer of no pool. Every timer
	// of a pool names it: its slots', its sets', its claimers' deadlines,
	// its rebalancing and its resolver's.
	TimerOwner func(t *fsm.Timer) any

	// Inspect returns a pool's totals. The loop must be held.
	Inspect func(p any) Pool
	// InspectSet returns the view of the named backend's set, and false
	// when the pool has none. The loop must be held.
	InspectSet func(p any, name backend.Name) (Set, bool)
	// InspectSets appends the views of every set, in preference order, to
	// dst. The loop must be held.
	InspectSets func(p any, dst []Set) []Set

	// Inspector returns the views of a pool that the simulator reads at
	// the end of every event: the same as Inspect and InspectSet, looked
	// up once and filled in place.
	Inspector func(p any) PoolInspector
)

// PoolInspector is a read-only view of one pool. Its methods must be
// called with the loop held.
type PoolInspector interface {
	// Inspect fills v with the pool's totals, as Inspect returns them.
	Inspect(v *Pool)
	// Set returns the view of the named backend's set, or nil when the
	// pool has none.
	Set(name backend.Name) SetInspector
}

// SetInspector is a read-only view of one slot set of a pool. Its method
// must be called with the loop held.
type SetInspector interface {
	// Inspect fills v with the set's view, as InspectSet returns it, and
	// reports true while the set is its pool's; once the pool dropped it
	// (it stopped), it reports false and leaves v alone: the pool may
	// have a new set for the same backend, which Set returns.
	Inspect(v *Set) bool
}

// Pool is a read-only view of a pool's totals.
type Pool struct {
	State   int8 // the pool machine's state, a pool/machine.State
	Slots   int  // slots not stopped, in every set (the pool's own count)
	Claimed int  // claimed slots (the pool's own count)
	Waiters int  // claimers in the queue
	Sets    int  // slot sets, draining ones included
	// IndexErr describes a disagreement between the pool's index of what
	// its picker would pick and the sets themselves; "" when they agree.
	// The pick is checked at every call, every set when a change that no
	// transition shows (the preference order, an ejection) came since the
	// last call, and at one call in 64; a set that moved is checked by
	// its own view (Set.IndexErr).
	IndexErr string
	// PolicyError is the last error a policy of the pool caused
	// (Stats.PolicyError), or "".
	PolicyError string
}

// Set is a read-only view of one backend's slot set: its recorded counters
// and, in ByState, the states of its slots counted one by one.
type Set struct {
	Name     backend.Name  // the backend
	State    slotset.State // the set machine's state
	Dead     bool          // Policy.DeadAfter failures in a row
	Wanted   int           // slots the rebalancer last wanted for this backend
	Slots    int           // slots not stopped
	Live     int           // recorded: slots holding a connection
	Claimed  int           // recorded: claimed slots
	Retiring int           // recorded: slots to stop at their next idle moment
	Idle     int           // connected slots in the idle stack
	// ByState counts the set's slots by state, indexed by slot.State.
	ByState [slot.NumStates]int
	// IndexErr describes a disagreement between the set and its entry in
	// the pool's index of what its picker would pick; "" when they agree.
	IndexErr string
}
