// Package resolver turns a service into the current set of its backends.
//
// A [Resolver] runs on the pool's loop and delivers full snapshots of the
// backend set (level-triggered: each update is the whole set, never a
// delta). Every resolver runs the declared resolver machine, [Kind]. [Fixed] is a
// resolver whose set the program replaces at run time; resolver/dns finds
// backends through DNS SRV records.
package resolver

import (
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/fsm"
)

// Host is what a pool offers its resolver.
type Host interface {
	// Loop is the pool's loop. The resolver fires its machine, schedules
	// its timers and spawns its queries there.
	Loop() *fsm.Loop
	// Update delivers the full current backend set. It must be called with
	// the loop held. The host copies what it keeps; the resolver may reuse
	// the slice.
	Update(backends []backend.Backend)
}

// Resolver discovers the backends of one service.
//
// Concurrency contract: Start, Stop and Stats are called by the pool with
// its loop held, Start once before anything else and Stop once at the end.
// After Stop returns the resolver must not call Update, fire its machine or
// schedule timers on the loop again; queries still in flight are dropped
// when they complete.
type Resolver interface {
	Start(h Host)
	Stop()
	Stats() Stats
}

// Stats describes a resolver for the pool's Stats.
type Stats struct {
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
type Fixed struct {
	mu   sync.Mutex // guards host, and set before Start
	host Host

	// With the loop held once started:
	state      fsm.State[State, Event]
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
// from any goroutine, before or after the pool starts; after the pool closes
// it does nothing.
func (f *Fixed) Replace(addrs ...netip.AddrPort) { f.ReplaceBackends(fromAddrs(addrs)...) }

// ReplaceBackends changes the set to the given named backends, like Replace.
func (f *Fixed) ReplaceBackends(bs ...backend.Backend) {
	bs = slices.Clone(bs)
	f.mu.Lock()
	h := f.host
	if h == nil {
		f.set = bs
		f.mu.Unlock()
		return
	}
	f.mu.Unlock()
	l := h.Loop()
	l.Enter()
	defer l.Leave()
	f.deliver(bs)
}

func (f *Fixed) deliver(bs []backend.Backend) {
	if f.state.Get() == Stopped {
		return
	}
	l := f.host.Loop()
	if f.state.Get() != Resolving {
		Kind.Fire(l, &f.state, "fixed", Query)
	}
	f.set = bs
	f.lastAnswer = l.Now()
	f.answers++
	Kind.Fire(l, &f.state, "fixed", Answer)
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
	if f.state.Get() == Stopped {
		return
	}
	var l *fsm.Loop // nil before Start: nobody to report to
	if f.host != nil {
		l = f.host.Loop()
	}
	Kind.Fire(l, &f.state, "fixed", Stop)
}

// Stats implements [Resolver].
func (f *Fixed) Stats() Stats {
	return Stats{State: f.state.Get().String(), LastAnswer: f.lastAnswer, Backends: slices.Clone(f.set), Queries: f.answers}
}
