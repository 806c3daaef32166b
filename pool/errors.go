package pool

import (
	"errors"
	"fmt"
	"time"
)

var (
	// ErrNoBackends is returned by Claim when its deadline passes while the
	// resolver lists no backend at all. Check the resolver (its Stats say
	// what it last saw); retrying helps only once it finds backends.
	ErrNoBackends = errors.New("pool: no backends")

	// ErrNoBackendsOnline is returned by Claim when backends are known but
	// none holds a connection: at once when the pool is failed (every
	// backend dead), or when the deadline passes. The error also wraps the
	// last connect or check error, so errors.Is and errors.As see it.
	ErrNoBackendsOnline = errors.New("pool: no backends online")

	// ErrCircuitOpen is returned by Claim at once while the circuit
	// breaker is open: no connection to any backend could be made for
	// Policy.CircuitBreakAfter. The error also wraps ErrNoBackendsOnline
	// and the last connect error; RetryAfter says when the next connect
	// is tried. The first connection made closes the breaker.
	ErrCircuitOpen = errors.New("pool: circuit breaker open")

	// ErrAllClaimsUsed is returned by Claim when its deadline passes while
	// backends are online but every connection is claimed. The pool is at
	// capacity: release handles sooner, or raise Policy.MaxSlots.
	ErrAllClaimsUsed = errors.New("pool: all claims used")

	// ErrClosed is returned by Claim after Close was called, and to the
	// claimers still waiting when it is.
	ErrClosed = errors.New("pool: closed")
)

// claimError is a claim failure of one kind with the last backend error
// as its cause.
type claimError struct {
	kind    error
	cause   error
	timeout bool // the claim's deadline passed
	// retryAfter, when positive, is how long until the pool next tries a
	// connect to a dead backend (see RetryAfter).
	retryAfter time.Duration
	// also is a second kind the error is (ErrNoBackendsOnline for
	// ErrCircuitOpen), or nil.
	also error
}

// RetryAfter reports, for an error of a claim that failed fast because
// every backend is dead (ErrNoBackendsOnline from a failed pool), how long
// until the pool next tries to connect to one of them: a claim made before
// then fails the same way, so a caller that retries should wait this
// long (an HTTP server may pass it on as Retry-After). ok is false for
// any other error, and when no attempt is scheduled because one is in
// flight or about to start: its outcome is not known yet, and a caller
// should wait a short delay of its own before it claims again.
func RetryAfter(err error) (d time.Duration, ok bool) {
	var ce *claimError
	if errors.As(err, &ce) && ce.retryAfter > 0 {
		return ce.retryAfter, true
	}
	return 0, false
}

func (e *claimError) Error() string {
	if e.cause == nil {
		return e.kind.Error()
	}
	return fmt.Sprintf("%v: last error: %v", e.kind, e.cause)
}

// Unwrap returns the kind and the cause, for errors.Is and errors.As.
func (e *claimError) Unwrap() []error {
	errs := []error{e.kind}
	if e.also != nil {
		errs = append(errs, e.also)
	}
	if e.cause != nil {
		errs = append(errs, e.cause)
	}
	return errs
}

// waitError is the error of a claim whose context ended while it waited
// in the queue: the context's error, and why no connection had come (the
// error the claim would have had at its deadline, without the timeout
// mark), as grpc-go adds the last connection error to a deadline.
// errors.Is sees both: context.DeadlineExceeded (or Canceled) and, say,
// ErrNoBackendsOnline with the last connect error.
type waitError struct {
	ctx error
	why error
}

func (e *waitError) Error() string { return fmt.Sprintf("%v (while waiting: %v)", e.ctx, e.why) }

// Unwrap returns the context's error and the reason, for errors.Is and
// errors.As.
func (e *waitError) Unwrap() []error { return []error{e.ctx, e.why} }

// timedOut reports whether err says that a claim's deadline passed.
func timedOut(err error) bool {
	if err == nil {
		return false
	}
	var ce *claimError
	return errors.As(err, &ce) && ce.timeout
}

// withCause returns kind alone when cause is nil.
func withCause(kind, cause error) error {
	if cause == nil {
		return kind
	}
	return &claimError{kind: kind, cause: cause}
}

// PanicError is the error recorded when a connector, hook or policy panics.
type PanicError struct {
	Op    string // "connect", "validate", "acquire hook", ...
	Value any    // what was passed to panic
}

// Error names the call that panicked and the panic's value.
func (e *PanicError) Error() string { return fmt.Sprintf("pool: %s panicked: %v", e.Op, e.Value) }
