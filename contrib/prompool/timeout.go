package prompool

import (
	"context"
	"errors"
	"time"

	"github.com/qorbgo/qorb/pool"
)

// timedOut reports whether a failed claim failed because its deadline
// passed, from what the pool's claim tracer reports (the claim's error and
// its wait) and the pool's Policy.ClaimTimeout (zero when unknown):
//
//   - ErrNoBackends and ErrAllClaimsUsed: always; the pool returns them only
//     when the claim's deadline passed.
//   - ErrNoBackendsOnline: when the claim waited out the pool's
//     ClaimTimeout. The pool also returns this error at once when every
//     backend is dead (and to the claims waiting when that happens), which
//     is not a timeout.
//   - the caller's context.DeadlineExceeded: always; the caller's own
//     deadline passed before a connection came.
//
// ErrClosed, context.Canceled and anything else are not timeouts. The
// pool's kinds are tested first: ErrNoBackendsOnline wraps the last connect
// error, which may itself be a deadline.
func timedOut(err error, wait, claimTimeout time.Duration) bool {
	switch {
	case err == nil, errors.Is(err, pool.ErrClosed):
		return false
	case errors.Is(err, pool.ErrNoBackendsOnline):
		return claimTimeout > 0 && wait >= claimTimeout
	case errors.Is(err, pool.ErrNoBackends), errors.Is(err, pool.ErrAllClaimsUsed):
		return true
	}
	return errors.Is(err, context.DeadlineExceeded)
}
