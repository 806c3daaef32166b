package prompool

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/qorbgo/qorb/pool"
)

// wrapped is an error that wraps kind and cause, as the pool's claim
// errors with a last connect error do.
type wrapped struct{ kind, cause error }

func (w wrapped) Error() string   { return w.kind.Error() + ": " + w.cause.Error() }
func (w wrapped) Unwrap() []error { return []error{w.kind, w.cause} }

func TestTimedOut(t *testing.T) {
	const limit = time.Second
	connectTimeout := fmt.Errorf("connect db1: %w", context.DeadlineExceeded)
	for _, tc := range []struct {
		name         string
		err          error
		wait         time.Duration
		claimTimeout time.Duration
		want         bool
	}{
		{"served", nil, limit, limit, false},
		{"no backends", pool.ErrNoBackends, limit, limit, true},
		{"all claims used", pool.ErrAllClaimsUsed, limit, limit, true},
		{"all claims used, timeout unknown", pool.ErrAllClaimsUsed, limit, 0, true},
		{"no backends online after the claim timeout", wrapped{pool.ErrNoBackendsOnline, errors.New("refused")}, limit, limit, true},
		{"no backends online, failed fast", wrapped{pool.ErrNoBackendsOnline, errors.New("refused")}, 0, limit, false},
		{"no backends online before the claim timeout", pool.ErrNoBackendsOnline, limit - 1, limit, false},
		{"no backends online, timeout unknown", pool.ErrNoBackendsOnline, limit, 0, false},
		{"no backends online, last error a connect deadline, failed fast", wrapped{pool.ErrNoBackendsOnline, connectTimeout}, 0, limit, false},
		{"caller's deadline", context.DeadlineExceeded, limit / 2, limit, true},
		{"caller cancelled", context.Canceled, limit / 2, limit, false},
		{"closed", pool.ErrClosed, limit, limit, false},
		{"other", errors.New("acquire hook: bad"), limit, limit, false},
	} {
		if got := timedOut(tc.err, tc.wait, tc.claimTimeout); got != tc.want {
			t.Errorf("%s: timedOut = %v, want %v", tc.name, got, tc.want)
		}
	}
}
