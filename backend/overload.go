package backend

import (
	"errors"
	"fmt"
	"time"
)

// ErrOverloaded marks a connect error as the server's refusal under load:
// it is up, and asks its clients to come back later (PostgreSQL's 53300
// "too many clients" and 57P03 "the database system is starting up",
// Redis's LOADING, gRPC's RESOURCE_EXHAUSTED). A Connector returns it
// wrapped, with [Overloaded].
//
// The pool does not count such an error toward the backend's death and
// closes none of its open connections: it holds every new connect to that
// backend for the retry-after the server asked for (or, without one, the
// failed slot's backoff), gives the capacity the backend refuses to the
// others, and counts the refusal in its Stats (Overloaded).
var ErrOverloaded = errors.New("backend: server overloaded")

// OverloadError is the error [Overloaded] returns: the connector's error,
// and how long the server asked its clients to wait.
type OverloadError struct {
	// Err is the connector's error.
	Err error
	// RetryAfter is how long no connect to the backend should be tried;
	// 0: the server said nothing, and the pool's backoff applies.
	RetryAfter time.Duration
}

// Overloaded returns err marked as the server's refusal under load, with
// the time the server asked to wait before the next connect (0 when it
// said nothing). errors.Is(e, ErrOverloaded) holds for the result, and it
// wraps err. A negative retryAfter is taken as 0.
func Overloaded(err error, retryAfter time.Duration) error {
	return &OverloadError{Err: err, RetryAfter: max(retryAfter, 0)}
}

// Error returns the connector's error with the retry-after, if any.
func (e *OverloadError) Error() string {
	if e.Err == nil {
		if e.RetryAfter > 0 {
			return fmt.Sprintf("%v: retry after %v", ErrOverloaded, e.RetryAfter)
		}
		return ErrOverloaded.Error()
	}
	if e.RetryAfter > 0 {
		return fmt.Sprintf("%s (overloaded: retry after %v)", e.Err, e.RetryAfter)
	}
	return e.Err.Error() + " (overloaded)"
}

// Unwrap returns the connector's error and ErrOverloaded.
func (e *OverloadError) Unwrap() []error { return []error{e.Err, ErrOverloaded} }

// IsOverloaded reports whether err says the server refused under load,
// and with it the retry-after the server asked for (0: none given).
func IsOverloaded(err error) (retryAfter time.Duration, ok bool) {
	var oe *OverloadError
	if errors.As(err, &oe) {
		return oe.RetryAfter, true
	}
	return 0, errors.Is(err, ErrOverloaded)
}
