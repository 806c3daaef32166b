package pool

import (
	"context"
	"errors"
	"time"

	"github.com/qorbgo/qorb/backend"
)

// A Tracer is told what happens to claims and connections, with durations,
// so that metrics and spans can be built outside the pool. It is any value
// that implements one or more of [ClaimTracer], [ReleaseTracer],
// [ConnectTracer] and [CloseTracer]; register it with [WithTracer]. The
// model is pgx's AcquireTracer and ReleaseTracer.
//
// Concurrency contract: trace methods are never called with the pool's loop
// held, and may be called from any goroutine, concurrently: from the
// claimer's goroutine for claims and releases, from the goroutine running
// the connect or close for connects and closes. They must be safe for
// concurrent use and must not call back into the pool. A pool without a
// tracer pays nothing for tracing: no clock read, no allocation.
//
// Tracer is any value, not an interface with methods, because a tracer
// implements whichever of the four it needs and Go cannot spell "at least
// one of these interfaces" as a type: New checks it, and fails with an
// error naming the four when a value given to WithTracer implements none
// (WithTracer(42) is an error from New, not a silent no-op).
type Tracer any

// ClaimTracer traces claims. TraceClaimStart is called when Claim is
// entered; the context it returns is the one passed to TraceClaimEnd, so a
// span can be started and ended. TraceClaimEnd is called once per
// TraceClaimStart, when Claim returns.
type ClaimTracer interface {
	TraceClaimStart(ctx context.Context, d ClaimStartData) context.Context
	TraceClaimEnd(ctx context.Context, d ClaimEndData)
}

// ReleaseTracer traces the end of claims: Release and Discard.
type ReleaseTracer interface {
	TraceRelease(d ReleaseData)
}

// ConnectTracer traces connects. TraceConnectStart is called on the
// goroutine that runs the connect, before the connector's Connect; the
// context it returns is the one passed to TraceConnectEnd, called after
// Connect (and, with a Validator, the first check) returned.
type ConnectTracer interface {
	TraceConnectStart(ctx context.Context, d ConnectStartData) context.Context
	TraceConnectEnd(ctx context.Context, d ConnectEndData)
}

// CloseTracer traces connections being closed: it is called before the
// connector's Close, once for every connection the connector returned.
type CloseTracer interface {
	TraceClose(d CloseData)
}

// ClaimStartData describes a claim that starts.
type ClaimStartData struct {
	Pool string // the pool's name (WithName)
}

// ClaimEndData describes a claim that ended.
type ClaimEndData struct {
	Pool    string
	Backend backend.Backend // the claimed connection's backend; zero when Err is set
	// Wait is how long the claim waited, on the pool's clock: from its
	// start to its return when it queued or ran a hook (a check on
	// claim, an AcquireHook); zero for a claim served at once from an
	// idle connection, for which the pool reads no clock.
	Wait time.Duration
	Err  error // why the claim failed, or nil
	// TimedOut is set when the claim failed because its deadline
	// (Policy.ClaimTimeout) passed, not because it failed fast or its
	// context ended.
	TimedOut bool
}

// ReleaseData describes a claim given back with Release or Discard.
type ReleaseData struct {
	Pool      string
	Backend   backend.Backend
	Held      time.Duration // from the hand-off to the release, on the pool's clock
	Discarded bool          // Discard, not Release
	Err       error         // the error passed to Discard, or nil
}

// ConnectStartData describes a connect that starts.
type ConnectStartData struct {
	Pool    string
	Backend backend.Backend
}

// ConnectEndData describes a connect that ended.
type ConnectEndData struct {
	Pool     string
	Backend  backend.Backend
	Duration time.Duration // Connect and the first check, on the pool's clock
	Err      error         // why it failed, or nil
}

// CloseData describes a connection being closed.
type CloseData struct {
	Pool    string
	Backend backend.Backend
	Cause   CloseCause
}

// CloseCause says why a connection is closed.
type CloseCause int8

const (
	// CloseFailed: a health check, first check or recycle hook failed or
	// timed out.
	CloseFailed CloseCause = iota
	// CloseDiscarded: the claimer discarded it, or its acquire hook failed.
	CloseDiscarded
	// CloseExpired: it reached Policy.MaxConnLifetime or MaxConnIdleTime.
	CloseExpired
	// CloseRetired: its slot is no longer wanted (rebalancing, or its
	// backend left the resolver's set).
	CloseRetired
	// CloseStale: it arrived from a connect the pool had already given up
	// on (a timeout), or after Close.
	CloseStale
	// ClosePoolClosed: the pool is closing.
	ClosePoolClosed
)

var closeCauseNames = [...]string{"failed", "discarded", "expired", "retired", "stale", "pool_closed"}

// String returns the cause's name: failed, discarded, expired, retired,
// stale or pool_closed.
func (c CloseCause) String() string {
	if int(c) < len(closeCauseNames) && c >= 0 {
		return closeCauseNames[c]
	}
	return "unknown"
}

// tracers holds the registered tracers by kind; nil slices cost nothing.
type tracers struct {
	claim   []ClaimTracer
	release []ReleaseTracer
	connect []ConnectTracer
	close   []CloseTracer
}

var errTracer = errors.New("pool: a tracer must implement ClaimTracer, ReleaseTracer, ConnectTracer or CloseTracer")

func (t *tracers) add(tr Tracer) error {
	found := false
	if x, ok := tr.(ClaimTracer); ok {
		t.claim = append(t.claim, x)
		found = true
	}
	if x, ok := tr.(ReleaseTracer); ok {
		t.release = append(t.release, x)
		found = true
	}
	if x, ok := tr.(ConnectTracer); ok {
		t.connect = append(t.connect, x)
		found = true
	}
	if x, ok := tr.(CloseTracer); ok {
		t.close = append(t.close, x)
		found = true
	}
	if !found {
		return errTracer
	}
	return nil
}

// traceClaimStart runs the claim tracers; it appends to ctxs the contexts
// they gave back, one per tracer, for traceClaimEnd.
func (p *Pool[C]) traceClaimStart(ctx context.Context, ctxs []context.Context) []context.Context {
	for _, t := range p.tr.claim {
		ctxs = append(ctxs, t.TraceClaimStart(ctx, ClaimStartData{Pool: p.name}))
	}
	return ctxs
}

func (p *Pool[C]) traceClaimEnd(ctxs []context.Context, wait time.Duration, h *Handle[C], err error) {
	d := ClaimEndData{Pool: p.name, Wait: wait, Err: err, TimedOut: timedOut(err)}
	if h != nil && err == nil {
		d.Backend = *h.sl.backend()
	}
	for i, t := range p.tr.claim {
		t.TraceClaimEnd(ctxs[i], d)
	}
}

func (p *Pool[C]) traceRelease(b backend.Backend, held time.Duration, discarded bool, err error) {
	d := ReleaseData{Pool: p.name, Backend: b, Held: held, Discarded: discarded, Err: err}
	for _, t := range p.tr.release {
		t.TraceRelease(d)
	}
}

func (p *Pool[C]) traceClose(b backend.Backend, cause CloseCause) {
	d := CloseData{Pool: p.name, Backend: b, Cause: cause}
	for _, t := range p.tr.close {
		t.TraceClose(d)
	}
}

func (p *Pool[C]) traceConnectStart(ctx context.Context, b backend.Backend) []context.Context {
	ctxs := make([]context.Context, len(p.tr.connect))
	for i, t := range p.tr.connect {
		ctxs[i] = t.TraceConnectStart(ctx, ConnectStartData{Pool: p.name, Backend: b})
	}
	return ctxs
}

func (p *Pool[C]) traceConnectEnd(ctxs []context.Context, b backend.Backend, start time.Time, err error) {
	d := ConnectEndData{Pool: p.name, Backend: b, Duration: p.loop.Now().Sub(start), Err: err}
	for i, t := range p.tr.connect {
		t.TraceConnectEnd(ctxs[i], d)
	}
}
