// Package connset keeps a set of connections to the backends of one
// service, at most one per backend, for protocols that multiplex many
// requests over one connection (HTTP/2, gRPC): there are no claims. It
// follows cueball's ConnectionSet. The set tells its user each connection
// added and removed, and replaces a failed one with backoff; the
// resolver, health checks, backoff, dead backends and the deterministic
// loop are the pool's (package pool), whose slots it uses, one per
// backend.
//
// The set's own state is a declared machine (see docs/connset.md): empty,
// partial (fewer connections than the target), full, closed.
package connset

import (
	"context"
	"errors"
	"slices"
	"sync"

	lf "github.com/looplab/fsm"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/fsm"
	"github.com/qorbgo/qorb/internal/poolhook"
	"github.com/qorbgo/qorb/pool"
	"github.com/qorbgo/qorb/resolver"
)

// State is a connection set's state.
type State int8

const (
	// Empty: no connection.
	Empty State = iota
	// Partial: fewer connections than the target.
	Partial
	// Full: as many connections as the target.
	Full
	// Closed: Close was called. Terminal.
	Closed
)

// Event is something that happens to a connection set.
type Event int8

const (
	Below   Event = iota // the connections or the target changed: some connections, fewer than the target
	Reached              // ... as many connections as the target, or more until the surplus closes
	Emptied              // ... no connection
	Close                // Close was called
)

var (
	stateNames = []string{"empty", "partial", "full", "closed"}
	eventNames = []string{"below", "reached", "emptied", "close"}
	stateDocs  = []string{
		"no connection",
		"fewer connections than the target",
		"as many connections as the target",
		"Close was called (terminal)",
	}
	eventDocs = []string{
		"a connection was added or removed, or the target changed: some connections, fewer than the target",
		"the same: at least as many connections as the target",
		"the same: no connection",
		"Close was called",
	}
)

// Kind is the connection set's machine, compiled from its declaration.
var Kind = fsm.MustDeclare[State, Event]("connset", stateNames, eventNames, lf.Events{
	{Name: "below", Src: []string{"empty", "partial", "full"}, Dst: "partial"},
	{Name: "reached", Src: []string{"empty", "partial", "full"}, Dst: "full"},
	{Name: "emptied", Src: []string{"empty", "partial", "full"}, Dst: "empty"},
	{Name: "close", Src: []string{"empty", "partial", "full"}, Dst: "closed"},
})

// String returns the state's trace name.
func (s State) String() string { return Kind.StateName(s) }

// String returns the event's trace name.
func (e Event) String() string { return Kind.EventName(e) }

// Markdown renders docs/connset.md.
func Markdown() string {
	return Kind.Machine().Markdown("A connection set keeps up to its target of connections, at most one per backend. The pool's slots hold them; the set's machine follows how many there are.", stateDocs, eventDocs)
}

// Config configures a connection set.
type Config[C any] struct {
	// Target is how many connections the set keeps, at most one per
	// backend: with fewer backends, one to each. Required, at least 1.
	Target int
	// Added is told of each connection the set takes: connected and,
	// with a Validator, checked. Removed is told of each one it lets go,
	// before the connector closes it; after Removed returns, the
	// connection must not be used. Each connection is added once and
	// removed at most once, in that order. Both run with the set's
	// machine held: they must return quickly and must not call the set.
	// Either may be nil.
	Added, Removed func(b backend.Backend, c C)
	// Policy is the pool policy of the slots: backoff, connect timeout,
	// health checks, lifetimes, dead backends. Its sizes are the set's:
	// MaxSlots, SparesWanted and MinSlots are the target, and
	// MaxSlotsPerBackend is one.
	Policy pool.Policy
}

// Member is one connection of the set.
type Member[C any] struct {
	Backend backend.Backend
	Conn    C
}

// Set is a connection set. Its methods are safe for concurrent use.
type Set[C any] struct {
	p      *pool.Pool[C]
	target int

	mu      sync.Mutex // guards members and state for readers
	members []Member[C]
	state   fsm.State[State, Event]
	added   func(backend.Backend, C)
	removed func(backend.Backend, C)
}

func init() {
	poolhook.SetPool = func(set any) any { return set.(interface{ pool() any }).pool() }
}

// pool is the set's pool, for the simulator's checks (poolhook.SetPool).
func (s *Set[C]) pool() any { return s.p }

// ErrTarget is returned by New for a target below one.
var ErrTarget = errors.New("connset: the target must be at least 1")

// New returns a set that keeps cfg.Target connections to the backends r
// finds, opened with c. Options are the pool's (WithClock, WithSeed,
// WithObserver, WithLogger, WithName...); the set's machine reports to the
// same observers.
func New[C any](r resolver.Resolver, c backend.Connector[C], cfg Config[C], opts ...pool.Option) (*Set[C], error) {
	if cfg.Target < 1 {
		return nil, ErrTarget
	}
	s := &Set[C]{target: cfg.Target, added: cfg.Added, removed: cfg.Removed}
	pol := cfg.Policy
	pol.MaxSlots, pol.SparesWanted, pol.MinSlots, pol.MaxSlotsPerBackend = cfg.Target, cfg.Target, cfg.Target, 1
	opts = append(slices.Clone(opts), pool.WithConnHooks(s.onAdded, s.onRemoved))
	p, err := pool.New(r, c, pol, opts...)
	if err != nil {
		return nil, err
	}
	s.p = p
	return s, nil
}

// onAdded runs on the pool's loop when a slot takes a connection.
func (s *Set[C]) onAdded(b backend.Backend, c C) {
	s.mu.Lock()
	s.members = append(s.members, Member[C]{Backend: b, Conn: c})
	s.settle()
	s.mu.Unlock()
	if s.added != nil {
		s.added(b, c)
	}
}

// onRemoved runs on the pool's loop when the pool lets a connection go.
func (s *Set[C]) onRemoved(b backend.Backend, c C) {
	s.mu.Lock()
	// At most one connection per backend: the slot of a backend takes a
	// new connection only once its old one is let go.
	i := slices.IndexFunc(s.members, func(m Member[C]) bool { return m.Backend.Name == b.Name })
	if i >= 0 {
		s.members = slices.Delete(s.members, i, i+1)
		s.settle()
	}
	s.mu.Unlock()
	if i >= 0 && s.removed != nil {
		s.removed(b, c)
	}
}

// settle moves the set's machine to the state its connections and target
// call for, unless it is closed (connections closed by Close are still
// reported removed). s.mu is held. The machine runs on no loop: each
// transition is checked against the declaration (an impossible one
// panics), and is not reported to the pool's observers.
func (s *Set[C]) settle() {
	if s.state.Get() == Closed {
		return
	}
	ev := Below
	switch n := len(s.members); {
	case n == 0:
		ev = Emptied
	case n >= s.target:
		ev = Reached
	}
	Kind.Fire(nil, &s.state, "connset", ev)
}

// SetTarget changes how many connections the set keeps (at least 1):
// connections open at once up to a higher target, and ones beyond a lower
// target close at once (each reported removed).
func (s *Set[C]) SetTarget(n int) error {
	if n < 1 {
		return ErrTarget
	}
	if err := poolhook.Resize(s.p, n, n, n); err != nil {
		return err
	}
	s.mu.Lock()
	s.target = n
	s.settle()
	s.mu.Unlock()
	return nil
}

// State returns the set's state.
func (s *Set[C]) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state.Get()
}

// Members returns the connections the set holds now, oldest first.
func (s *Set[C]) Members() []Member[C] {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.members)
}

// Stats returns the pool's statistics of the set's slots.
func (s *Set[C]) Stats() pool.Stats { return s.p.Stats() }

// Close closes every connection (each reported removed) and stops the
// set, as the pool's Close does: it waits until ctx ends for nothing,
// since no connection is ever claimed.
func (s *Set[C]) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.state.Get() != Closed {
		Kind.Fire(nil, &s.state, "connset", Close)
	}
	s.mu.Unlock()
	return s.p.Close(ctx)
}
