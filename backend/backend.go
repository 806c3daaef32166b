// Package backend names the backends of a service and defines how to
// connect to one: the [Connector] and its optional hooks.
package backend

import (
	"context"
	"net/netip"
)

// Name identifies a backend within a service. It is stable across resolver
// updates: a backend that keeps its name keeps its connections.
type Name string

// Backend is one instance of the service.
type Backend struct {
	Name Name           `json:"name"`
	Addr netip.AddrPort `json:"addr"`
}

// String returns the backend's name.
func (b Backend) String() string { return string(b.Name) }

// FromAddr returns the backend for addr, named by the address's string.
func FromAddr(addr netip.AddrPort) Backend {
	return Backend{Name: Name(addr.String()), Addr: addr}
}

// Connector opens and closes connections of type C to backends.
//
// The pool calls Connect and Close on goroutines of its own, never while it
// holds its loop, and may call them concurrently for different connections.
// Connect must honour ctx: the pool cancels it when the connect timeout ends
// or the pool closes. A Connector may also implement [Validator],
// [AcquireHook] and [RecycleHook]; the pool finds them by type assertion.
// A panic in any of these calls is recovered and counted as an error.
type Connector[C any] interface {
	// Connect opens one connection to b.
	Connect(ctx context.Context, b Backend) (C, error)
	// Close closes c. It is called exactly once for every connection that
	// Connect returned, unless the pool's Close had already returned when
	// the connection arrived.
	Close(c C) error
}

// Validator checks that an idle connection still works. The pool calls it
// on every new connection before handing it out, periodically on idle
// connections (Policy.HealthInterval), and on a connection claimed after
// it stayed idle longer than Policy.CheckIdleAfter (default 1s), before
// Claim returns it. With Policy.CheckOnRelease and no [RecycleHook], it
// also runs on every released connection. An error closes the connection:
// on an open connection it is a lost connection, which never makes the
// backend dead; on a new one, while the backend holds no other, it counts
// as a failed connect.
type Validator[C any] interface {
	Validate(ctx context.Context, c C) error
}

// AcquireHook prepares a connection just before Claim returns it. It runs in
// the claimer's goroutine with the hook timeout; on error the connection is
// discarded and the claimer keeps its place at the head of the queue.
type AcquireHook[C any] interface {
	OnAcquire(ctx context.Context, c C) error
}

// RecycleHook cleans a released connection before it is handed out again
// (for example, resetting session state). It runs off the claim path; on
// error the connection is closed and its backend charged a failure.
type RecycleHook[C any] interface {
	OnRecycle(ctx context.Context, c C) error
}
