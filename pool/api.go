package pool

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"slices"
	"syscall"
	"time"

	"github.com/qorbgo/qorb/slot"
)

var (
	// ErrNoIdle is returned by TryClaim when no idle connection can be
	// handed out at once (all are claimed, or claimers are already
	// waiting, whom TryClaim does not overtake).
	ErrNoIdle = errors.New("pool: no idle connection")

	// ErrQueueFull is returned by Claim when the claim would have to wait
	// and Policy.MaxWaiters claims already wait.
	ErrQueueFull = errors.New("pool: claim queue full")

	// ErrBadConn marks an error as the connection's fault: Do discards
	// the connection when f returns an error that wraps it (see
	// DefaultIsBadConn).
	ErrBadConn = errors.New("pool: bad connection")
)

// TryClaim is Claim that never waits: it returns an idle connection at
// once, or fails with ErrNoIdle (nothing idle, or claimers waiting, whom
// it does not overtake), ErrNoBackendsOnline when the pool is failed,
// ErrClosed after Close, or ctx's error. A miss does not grow the pool:
// Policy.SparesWanted keeps idle connections ready. When the connection
// is due a check on claim or the connector has an AcquireHook, they run
// in the caller's goroutine within Policy.HealthTimeout; when one fails,
// the connection is discarded and TryClaim returns that error.
func (p *Pool[C]) TryClaim(ctx context.Context) (*Handle[C], error) {
	var buf [2]context.Context
	var ctxs []context.Context
	if p.tr.claim != nil {
		ctxs = p.traceClaimStart(ctx, buf[:0])
	}
	h, err := p.tryClaim(ctx)
	if err == nil && (p.onAcquire != nil || h.sl.checkDue) {
		herr := p.hooksOn(ctx, h, p.pol.HealthTimeout)
		p.loop.Enter()
		if herr != nil {
			p.hookFailed(h, herr)
			h, err = nil, herr
		} else if h, err = p.afterHooks(h, time.Time{}); h == nil && err == nil {
			// Its backend left the resolver's list while the hooks ran:
			// nothing else is handed out without a wait.
			p.st.failed(ErrNoIdle)
			err = ErrNoIdle
		}
		p.loop.Leave()
	}
	if p.tr.claim != nil {
		p.traceClaimEnd(ctxs, 0, h, err)
	}
	return h, err
}

func (p *Pool[C]) tryClaim(ctx context.Context) (*Handle[C], error) {
	p.loop.Enter()
	defer p.loop.Leave()
	return p.tryRequest(ctx)
}

// tryRequest is the core of TryClaim, with the loop held, shared with the
// simulator's claims.
func (p *Pool[C]) tryRequest(ctx context.Context) (*Handle[C], error) {
	if err := ctx.Err(); err != nil {
		p.st.failed(err)
		return nil, err
	}
	if err := p.admit(); err != nil {
		return nil, err
	}
	if p.waiters.head == nil {
		if h := p.takeIdle(); h != nil {
			return h, nil
		}
	}
	p.st.failed(ErrNoIdle)
	return nil, ErrNoIdle
}

// Do claims a connection, calls f with it, and gives it back: released
// when f returns nil or an error that Policy.IsBadConn does not blame on
// the connection, discarded (with that error) when it does. When f
// panics, the connection is discarded and Do panics again with the same
// value. Do returns Claim's error, or f's.
func (p *Pool[C]) Do(ctx context.Context, f func(C) error) error {
	h, err := p.Claim(ctx)
	if err != nil {
		return err
	}
	_, err = h.do(f, nil)
	return err
}

// DoHandle is Do for a function that needs the claim's handle, not only
// its connection: to report how the backend did (Handle.Report, which
// the LeastLatency picker and outlier ejection learn from) or to read
// which backend serves it (Handle.Backend). The function must not
// Release or Discard the handle; DoHandle ends the claim as Do does, by
// the function's error or panic.
func (p *Pool[C]) DoHandle(ctx context.Context, f func(*Handle[C]) error) error {
	h, err := p.Claim(ctx)
	if err != nil {
		return err
	}
	_, err = h.do(nil, f)
	return err
}

// do is Do and DoHandle once the connection is claimed: it calls f with
// the connection, or fh with the handle, and ends the claim as the
// call's outcome says. It releases the connection when the call returns
// nil or an error that Policy.IsBadConn does not blame on the
// connection, and discards it with that error when it does; when the
// call panics, it discards the connection and lets the panic go on. It
// returns whether it discarded the connection, and the call's error.
// The simulator's Do claims end here too (internal/simhook.Do), with f
// standing for their request.
func (h *Handle[C]) do(f func(C) error, fh func(*Handle[C]) error) (discarded bool, err error) {
	p := h.pool("Do")
	done := false
	defer func() {
		if !done {
			// The function panicked: the connection may be in any state.
			h.Discard(errors.New("pool: Do: the function panicked"))
		}
	}()
	if fh != nil {
		err = fh(h)
	} else {
		err = f(h.Conn())
	}
	done = true
	if err != nil && p.pol.IsBadConn(err) {
		h.Discard(err)
		return true, err
	}
	h.Release()
	return false, err
}

// DefaultIsBadConn is Policy.IsBadConn's default: it blames the
// connection for an error that wraps ErrBadConn or database/sql/driver's
// ErrBadConn; io.EOF or io.ErrUnexpectedEOF (the peer hung up); net's
// ErrClosed; a reset, aborted or broken connection (ECONNRESET,
// ECONNABORTED, EPIPE); or a network timeout, or the caller's context
// ending (context.Canceled, context.DeadlineExceeded), after which a
// request may be left half done on the connection. Other errors are the
// request's, and the connection is released.
func DefaultIsBadConn(err error) bool {
	if err == nil {
		return false
	}
	for _, target := range []error{ErrBadConn, driver.ErrBadConn, io.EOF, io.ErrUnexpectedEOF, net.ErrClosed,
		syscall.ECONNRESET, syscall.ECONNABORTED, syscall.EPIPE, context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, target) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Reset closes every idle connection now, and every other one (claimed,
// being checked or recycled, or being opened) when it comes back, without
// failing any claim; each slot opens a new connection at once. Use it
// after a failover, when the connections may go to a demoted primary.
// Reset does nothing after Close.
func (p *Pool[C]) Reset() {
	p.loop.Enter()
	defer p.loop.Leave()
	if p.closing() {
		return
	}
	p.st.resets++
	for _, s := range slices.Clone(p.order) {
		for _, sl := range s.slots {
			switch sl.State() {
			case slot.Claimed, slot.Recycling, slot.Checking, slot.Connecting:
				sl.replace = true
			}
		}
		for _, sl := range slices.Clone(s.idle) {
			p.expire(sl)
		}
	}
}
