// Package resolver turns a service into the current set of its backends.
//
// A [Resolver] delivers full snapshots of the backend set to the [Host] a
// pool gives it (level-triggered: each update is the whole set, never a
// delta). The host is narrow: a snapshot, an error, a timer, a query off
// the pool's core. The pool runs the declared resolver machine, [Kind], for
// each resolver from what it reports (see [Tracker]). [Fixed] is a resolver
// of addresses the program gives and may replace at run time;
// resolver/dns finds backends through DNS SRV records, or resolves a
// "host:port" (a host name, such as "localhost:5432") through the system
// resolver, as net.Dial does, and again as time passes.
package resolver

import (
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/fsm"
)

// Host is what a pool offers its resolver, and all a resolver needs of it:
// deliver a snapshot, report an error, set a timer, run a query off the
// pool's core. A custom resolver needs nothing from the engine.
//
// Concurrency contract: the host calls the resolver's Start and Stop, its
// timer functions and the completions of its queries one at a time, on the
// pool's core. Every Host method but Do must be called from one of those
// calls, never from another goroutine; Do is for the other goroutines.
type Host interface {
	// Querying reports that a query started.
	Querying()
	// Update reports a good answer: the full current backend set. The host
	// copies what it keeps; the resolver may reuse the slice. An answer
	// that repeats the last set changes nothing but the resolver's state.
	Update(backends []backend.Backend)
	// ReportError reports a failed query or a bad answer. The host keeps
	// the last good set.
	ReportError(err error)
	// NewTimer returns a stopped timer that runs f on the core when it
	// fires.
	NewTimer(f func()) Timer
	// Go runs query off the core (on a goroutine, or in virtual time in a
	// simulation); query must not touch the resolver's state. The function
	// it returns, if not nil, then runs on the core.
	Go(query func() (done func()))
	// Now is the time on the pool's clock.
	Now() time.Time
	// Rand is the resolver's own random stream, derived from the pool's
	// seed.
	Rand() *rand.Rand
	// Log writes a log line once the current event ends, off the core.
	Log(level slog.Level, msg string, args ...any)
	// Do runs f on the core and returns when it has run. It is for a
	// goroutine that is not already on the core (a program replacing a
	// Fixed set); called from the core it deadlocks.
	Do(f func())
}

// Timer is a resolver's timer on the pool's clock.
type Timer interface {
	// Reset schedules the timer to fire d from now, replacing any earlier
	// schedule.
	Reset(d time.Duration)
	// Stop unschedules the timer.
	Stop()
}

// Resolver discovers the backends of one service.
//
// Concurrency contract: Start, Stop and Stats are called by the pool on
// its core, Start once before anything else and Stop once at the end.
// After Stop returns the resolver must not call its Host again; queries
// still in flight are dropped when they complete.
type Resolver interface {
	Start(h Host)
	Stop()
	Stats() Stats
}

// Tracker runs the resolver machine, [Kind], for a host: it turns what a
// resolver reports into the machine's events. The pool keeps one per
// resolver; resolvers never see it.
type Tracker struct {
	st fsm.State[State, Event]
}

// State is the machine's state.
func (t *Tracker) State() State { return t.st.Get() }

// Querying records that a query started. l may be nil (nobody observes).
func (t *Tracker) Querying(l *fsm.Loop, id string) {
	if s := t.st.Get(); s == Resolved || s == Failed {
		Kind.Fire(l, &t.st, id, Query)
	}
}

// Answered records a good answer.
func (t *Tracker) Answered(l *fsm.Loop, id string) { t.end(l, id, Answer) }

// Failed records a failed query.
func (t *Tracker) Failed(l *fsm.Loop, id string) { t.end(l, id, Error) }

func (t *Tracker) end(l *fsm.Loop, id string, ev Event) {
	switch s := t.st.Get(); {
	case s == Stopped:
		return
	case s == Failed, s == Resolved && ev == Answer:
		// An outcome with no query reported: one was made.
		Kind.Fire(l, &t.st, id, Query)
	}
	// From resolved, an error follows a partial answer whose set was kept.
	Kind.Fire(l, &t.st, id, ev)
}

// Stop records that the resolver stopped.
func (t *Tracker) Stop(l *fsm.Loop, id string) {
	if t.st.Get() != Stopped {
		Kind.Fire(l, &t.st, id, Stop)
	}
}

// Stats describes a resolver for the pool's Stats.
type Stats struct {
	// State is the resolver machine's state. The pool fills it in from
	// the machine it runs for the resolver; resolvers leave it empty.
	State      string            `json:"state"`
	LastError  string            `json:"last_error,omitempty"`
	LastAnswer time.Time         `json:"last_answer"`
	Backends   []backend.Backend `json:"backends"`
	Queries    uint64            `json:"queries"`
	Errors     uint64            `json:"errors"`
}

// Fixed is a resolver whose backend set is given by the program and can be
// replaced at any time with [Fixed.Replace]. It is the resolver for tests,
// simulations and services whose backends come from configuration.
//
// It lists addresses, never names: it resolves nothing. For a host name,
// use the resolver of package resolver/dns with "host:port" and no DNS
// servers, as in dns.New("db.internal:5432", nil, dns.Config{}): it
// resolves the name through the system resolver (/etc/hosts, then DNS, as
// net.Dial does), again every few seconds, and reports "no such host" as
// the resolver's error.
type Fixed struct {
	mu      sync.Mutex // guards host and stopped, and set before Start
	host    Host
	stopped bool

	// On the core once started:
	set        []backend.Backend
	lastAnswer time.Time
	answers    uint64
}

// NewFixed returns a resolver listing one backend per address, each named
// by its address's string.
func NewFixed(addrs ...netip.AddrPort) *Fixed {
	return &Fixed{set: fromAddrs(addrs)}
}

// NewFixedBackends returns a resolver listing the given named backends.
func NewFixedBackends(bs ...backend.Backend) *Fixed {
	return &Fixed{set: slices.Clone(bs)}
}

func fromAddrs(addrs []netip.AddrPort) []backend.Backend {
	bs := make([]backend.Backend, len(addrs))
	for i, a := range addrs {
		bs[i] = backend.FromAddr(a)
	}
	return bs
}

// Replace changes the set to one backend per address. It is safe to call
// from any goroutine, before or after the pool starts, but not from the
// pool's core (an observer or a policy); after the pool closes it does
// nothing.
func (f *Fixed) Replace(addrs ...netip.AddrPort) { f.ReplaceBackends(fromAddrs(addrs)...) }

// ReplaceBackends changes the set to the given named backends, like Replace.
func (f *Fixed) ReplaceBackends(bs ...backend.Backend) {
	bs = slices.Clone(bs)
	f.mu.Lock()
	h, stopped := f.host, f.stopped
	if h == nil {
		f.set = bs
	}
	f.mu.Unlock()
	if h == nil || stopped {
		return
	}
	h.Do(func() { f.deliver(bs) })
}

func (f *Fixed) deliver(bs []backend.Backend) {
	f.mu.Lock()
	stopped := f.stopped
	f.mu.Unlock()
	if stopped {
		return
	}
	f.set = bs
	f.lastAnswer = f.host.Now()
	f.answers++
	f.host.Querying()
	f.host.Update(f.set)
}

// Start implements [Resolver]: it delivers the current set at once.
func (f *Fixed) Start(h Host) {
	f.mu.Lock()
	f.host = h
	f.mu.Unlock()
	f.deliver(f.set)
}

// Stop implements [Resolver].
func (f *Fixed) Stop() {
	f.mu.Lock()
	f.stopped = true
	f.mu.Unlock()
}

// Stats implements [Resolver].
func (f *Fixed) Stats() Stats {
	return Stats{LastAnswer: f.lastAnswer, Backends: slices.Clone(f.set), Queries: f.answers}
}
