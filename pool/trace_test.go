package pool

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/qorbgo/qorb/backend"
)

// recorder is a tracer of every kind that writes one line per call.
type recorder struct {
	mu    sync.Mutex
	lines []string
}

type traceKey struct{}

func (r *recorder) add(format string, a ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, fmt.Sprintf(format, a...))
}

func (r *recorder) TraceClaimStart(ctx context.Context, d ClaimStartData) context.Context {
	r.add("claim-start %s", d.Pool)
	return context.WithValue(ctx, traceKey{}, "span")
}

func (r *recorder) TraceClaimEnd(ctx context.Context, d ClaimEndData) {
	r.add("claim-end %s %s wait=%v err=%v span=%v", d.Pool, d.Backend.Name, d.Wait, d.Err, ctx.Value(traceKey{}))
}

func (r *recorder) TraceRelease(d ReleaseData) {
	r.add("release %s held=%v discarded=%v err=%v", d.Backend.Name, d.Held, d.Discarded, d.Err)
}

func (r *recorder) TraceConnectStart(ctx context.Context, d ConnectStartData) context.Context {
	r.add("connect-start %s", d.Backend.Name)
	return context.WithValue(ctx, traceKey{}, "connect")
}

func (r *recorder) TraceConnectEnd(ctx context.Context, d ConnectEndData) {
	r.add("connect-end %s err=%v span=%v", d.Backend.Name, d.Err != nil, ctx.Value(traceKey{}))
}

func (r *recorder) TraceClose(d CloseData) { r.add("close %s %s", d.Backend.Name, d.Cause) }

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.lines
	r.lines = nil
	slices.Sort(out) // calls from I/O goroutines interleave
	return out
}

func TestTracerSeesClaimsReleasesConnectsAndCloses(t *testing.T) {
	rec := &recorder{}
	h := &harness{t: t, clk: clock.NewMock(), res: resolverFor(1), fake: newFakeConnector()}
	p, err := New(h.res, backend.Connector[*fakeConn](h.fake), Policy{MaxSlots: 1, SparesWanted: 1},
		WithClock(h.clk), WithName("traced"), WithTracer(rec))
	if err != nil {
		t.Fatal(err)
	}
	h.p = p
	h.settle()
	b := string(name(1))
	want := func(lines ...string) {
		t.Helper()
		slices.Sort(lines)
		if got := rec.take(); !slices.Equal(got, lines) {
			t.Fatalf("traced:\n  %q\nwant:\n  %q", got, lines)
		}
	}
	want("connect-start "+b, "connect-end "+b+" err=false span=connect")

	a := h.claim()
	h.advance(3 * time.Second)
	want("claim-start traced", "claim-end traced "+b+" wait=0s err=<nil> span=span")

	// A second claim waits 2s for the only connection.
	got := make(chan error, 1)
	go func() {
		hd, err := h.p.Claim(context.Background())
		if err == nil {
			hd.Discard(errors.New("broken"))
		}
		got <- err
	}()
	h.waitUntil("claimer queued", func() bool { return h.p.waiters.n == 1 })
	h.advance(2 * time.Second)
	a.Release()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	h.settle()
	want("release "+b+" held=5s discarded=false err=<nil>",
		"claim-start traced", "claim-end traced "+b+" wait=2s err=<nil> span=span",
		"release "+b+" held=0s discarded=true err=broken",
		"close "+b+" discarded")

	// The slot reconnects after its backoff; a claim on a closed pool fails.
	h.advance(time.Second)
	want("connect-start "+b, "connect-end "+b+" err=false span=connect")
	if err := h.p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.p.loop.WaitIdle()
	if _, err := h.p.Claim(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
	want("close "+b+" pool_closed", "claim-start traced", "claim-end traced  wait=0s err=pool: closed span=span")
}

type notATracer struct{}

func TestTracerOfNoKindIsAnError(t *testing.T) {
	if _, err := New(resolverFor(1), backend.Connector[*fakeConn](newFakeConnector()), Policy{}, WithTracer(notATracer{})); !errors.Is(err, errTracer) {
		t.Fatalf("New: %v", err)
	}
}

func TestCloseCauseNames(t *testing.T) {
	for c, want := range map[CloseCause]string{CloseFailed: "failed", CloseDiscarded: "discarded", CloseExpired: "expired",
		CloseRetired: "retired", CloseStale: "stale", ClosePoolClosed: "pool_closed", CloseCause(99): "unknown"} {
		if c.String() != want {
			t.Errorf("%d: %q, want %q", c, c.String(), want)
		}
	}
}

// timeouts records ClaimEndData.TimedOut.
type timeouts struct {
	mu  sync.Mutex
	got []bool
}

func (t *timeouts) TraceClaimStart(ctx context.Context, _ ClaimStartData) context.Context { return ctx }
func (t *timeouts) TraceClaimEnd(_ context.Context, d ClaimEndData) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.got = append(t.got, d.TimedOut)
}

// A claim whose deadline passes is a timeout, in the tracer and in Stats;
// one that fails fast, or whose context ends, is not.
func TestClaimTimeoutsAreToldApart(t *testing.T) {
	tr := &timeouts{}
	h := &harness{t: t, clk: clock.NewMock(), res: resolverFor(1), fake: newFakeConnector()}
	h.fake.fail[name(1)] = errors.New("refused")
	p, err := New(h.res, backend.Connector[*fakeConn](h.fake), Policy{MaxSlots: 1, SparesWanted: 1, ClaimTimeout: time.Second, DeadAfter: 100},
		WithClock(h.clk), WithTracer(tr), WithStrict(true))
	if err != nil {
		t.Fatal(err)
	}
	h.p = p
	t.Cleanup(h.close)
	h.settle()
	if err := h.claimAfter(time.Second); !errors.Is(err, ErrNoBackendsOnline) || !errors.Is(err, h.fake.fail[name(1)]) {
		t.Fatalf("claim: %v", err)
	}
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Claim(done); !errors.Is(err, context.Canceled) {
		t.Fatalf("claim: %v", err)
	}
	st := p.Stats()
	if st.ClaimErrors.Timeouts != 1 || st.ClaimErrors.NoBackendsOnline != 1 || st.ClaimErrors.Context != 1 {
		t.Fatalf("claim errors %+v", st.ClaimErrors)
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if !slices.Equal(tr.got, []bool{true, false}) {
		t.Fatalf("timed out: %v, want [true false]", tr.got)
	}
}

// TestOldestClaimIsALowerBound: claims are not stamped with the clock;
// Stats times them against the pool's own clock reads. A claim first
// seen by one Stats call shows its age, from that call, in the next; it
// never shows more than its true age.
func TestOldestClaimIsALowerBound(t *testing.T) {
	h := newHarness(t, Policy{MaxSlots: 2, SparesWanted: 2, HealthInterval: time.Hour}, 1, nil)
	defer h.close()
	h.advance(time.Second)
	c1 := h.claim()
	if got := h.stats().OldestClaim; got != 0 {
		t.Fatalf("oldest claim %v at once; want 0 (no clock read since the claim)", got)
	}
	h.advance(5 * time.Second)
	if got := h.stats().OldestClaim; got != 5*time.Second {
		t.Fatalf("oldest claim %v; want 5s (since the last Stats)", got)
	}
	h.advance(2 * time.Second)
	c2 := h.claim()
	h.advance(3 * time.Second)
	if got := h.stats().OldestClaim; got != 10*time.Second {
		t.Fatalf("oldest claim %v; want 10s: the first claim's", got)
	}
	c1.Release()
	h.advance(time.Second)
	if got := h.stats().OldestClaim; got != time.Second {
		t.Fatalf("oldest claim %v after the first was released; want 1s: the second, from the Stats that first saw it", got)
	}
	c2.Release()
	if got := h.stats().OldestClaim; got != 0 {
		t.Fatalf("oldest claim %v with none held; want 0", got)
	}
}
