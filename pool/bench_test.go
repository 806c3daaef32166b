package pool

// Benchmarks of the claim path against jackc/puddle. Each benchmark runs
// the pool in four variants (variant=plain, validator, observer, tracer)
// and, next to each, puddle in the same shape (the same number of
// resources, no hooks), as sub-benchmarks named key=value, so that
//
//	benchstat -col /impl
//
// puts qorb and puddle side by side. scripts/bench.sh runs them
// interleaved and prints the tables; docs/benchmarks.md explains them.

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/puddle/v2"

	"github.com/benbjohnson/clock"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/fsm"
)

// benchConn is a connection that costs nothing to open.
type benchConn struct{}

type benchConnector struct{}

func (benchConnector) Connect(context.Context, backend.Backend) (*benchConn, error) {
	return &benchConn{}, nil
}
func (benchConnector) Close(*benchConn) error { return nil }

// validatingConnector is a benchConnector with a Validator whose check
// succeeds at once and is counted. With the default policy it checks each
// new connection, and one claimed after being idle for over a second;
// with Policy.CheckOnRelease, every release too.
type validatingConnector struct {
	benchConnector
	n *atomic.Int64
}

func (v validatingConnector) Validate(context.Context, *benchConn) error {
	v.n.Add(1)
	return nil
}

// countingObserver counts transitions. Observe runs with the loop held,
// so a plain counter is enough.
type countingObserver struct{ n uint64 }

func (o *countingObserver) Observe(fsm.Transition) { o.n++ }

// nopClaimTracer traces claims and does nothing with them.
type nopClaimTracer struct{}

func (nopClaimTracer) TraceClaimStart(ctx context.Context, _ ClaimStartData) context.Context {
	return ctx
}
func (nopClaimTracer) TraceClaimEnd(context.Context, ClaimEndData) {}

// benchVariant is one configuration of the pool under test.
type benchVariant struct {
	name string
	pol  func(*Policy) // changes to the default policy, or nil
	// setup returns the connector and options of a new pool of this
	// variant, and a check, run once the pool is closed, that what the
	// variant adds did run.
	setup func() (backend.Connector[*benchConn], []Option, func(Stats) error)
}

var benchVariants = []benchVariant{
	{"plain", nil, func() (backend.Connector[*benchConn], []Option, func(Stats) error) {
		return benchConnector{}, nil, func(st Stats) error {
			if st.Recycles != 0 {
				return fmt.Errorf("%d recycles without a validator", st.Recycles)
			}
			return nil
		}
	}},
	{"validator", nil, func() (backend.Connector[*benchConn], []Option, func(Stats) error) {
		v := validatingConnector{n: new(atomic.Int64)}
		return v, nil, func(st Stats) error {
			if v.n.Load() == 0 {
				return errors.New("the validator never ran")
			}
			if st.Recycles != 0 {
				return fmt.Errorf("%d releases checked with the default policy", st.Recycles)
			}
			return nil
		}
	}},
	{"validator-on-release", func(p *Policy) { p.CheckOnRelease = true }, func() (backend.Connector[*benchConn], []Option, func(Stats) error) {
		v := validatingConnector{n: new(atomic.Int64)}
		return v, nil, func(st Stats) error {
			if st.Recycles == 0 {
				return errors.New("no release was checked")
			}
			return nil
		}
	}},
	{"observer", nil, func() (backend.Connector[*benchConn], []Option, func(Stats) error) {
		obs := new(countingObserver)
		return benchConnector{}, []Option{WithObserver(obs)}, func(Stats) error {
			if obs.n == 0 {
				return errors.New("the observer saw no transition")
			}
			return nil
		}
	}},
	{"tracer", nil, func() (backend.Connector[*benchConn], []Option, func(Stats) error) {
		return benchConnector{}, []Option{WithTracer(nopClaimTracer{})}, nil
	}},
}

// benchBackends are the backend counts of BenchmarkClaimRelease.
var benchBackends = []int{1, 16, 128}

// benchSlots is the pool size for n backends: 16 over one backend, and
// four per backend beyond, so that every backend has idle connections.
func benchSlots(backends int) int { return max(16, 4*backends) }

// newBenchPool returns a pool of variant v over backends loopback
// addresses (never dialled) with slots connections, all connected and
// spread over every backend. It is closed when b ends, after which the
// variant's check runs.
func newBenchPool(b *testing.B, v benchVariant, backends, slots int) *Pool[*benchConn] {
	b.Helper()
	conn, opts, check := v.setup()
	pol := Policy{MaxSlots: slots, MaxSlotsPerBackend: slots, SparesWanted: slots}
	if v.pol != nil {
		v.pol(&pol)
	}
	p, err := New(resolverFor(backends), conn, pol, append(opts, WithStrict(true))...)
	if err != nil {
		b.Fatal(err)
	}
	p.loop.WaitIdle()
	b.Cleanup(func() {
		st := p.Stats()
		_ = p.Close(context.Background())
		p.loop.WaitIdle()
		if check != nil {
			if err := check(st); err != nil {
				b.Errorf("variant %s: %v", v.name, err)
			}
		}
	})
	st := p.Stats()
	if st.Slots.Connected != slots || len(st.Backends) != backends {
		b.Fatalf("%d idle slots over %d backends, want %d over %d", st.Slots.Connected, len(st.Backends), slots, backends)
	}
	for _, bs := range st.Backends {
		if bs.Slots.Connected == 0 {
			b.Fatalf("backend %s has no idle slot: %+v", bs.Name, st.Slots)
		}
	}
	return p
}

// newPuddle returns a puddle pool of n resources, all created.
func newPuddle(b *testing.B, n int) *puddle.Pool[*benchConn] {
	b.Helper()
	p, err := puddle.NewPool(&puddle.Config[*benchConn]{
		Constructor: func(context.Context) (*benchConn, error) { return &benchConn{}, nil },
		Destructor:  func(*benchConn) {},
		MaxSize:     int32(n),
	})
	if err != nil {
		b.Fatal(err)
	}
	for range n {
		if err := p.CreateResource(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	b.Cleanup(p.Close)
	return p
}

// BenchmarkClaimRelease: one goroutine claims and releases, a connection
// always idle; the pool has benchSlots(backends) connections.
func BenchmarkClaimRelease(b *testing.B) {
	ctx := context.Background()
	for _, v := range benchVariants {
		b.Run("variant="+v.name, func(b *testing.B) {
			for _, n := range benchBackends {
				b.Run(fmt.Sprintf("backends=%d", n), func(b *testing.B) {
					b.Run("impl=qorb", func(b *testing.B) {
						p := newBenchPool(b, v, n, benchSlots(n))
						b.ReportAllocs()
						for b.Loop() {
							h, err := p.Claim(ctx)
							if err != nil {
								b.Fatal(err)
							}
							h.Release()
						}
					})
					b.Run("impl=puddle", func(b *testing.B) {
						p := newPuddle(b, benchSlots(n))
						b.ReportAllocs()
						for b.Loop() {
							r, err := p.Acquire(ctx)
							if err != nil {
								b.Fatal(err)
							}
							r.Release()
						}
					})
				})
			}
		})
	}
}

// BenchmarkClaimReleaseParallel: GOMAXPROCS goroutines (run it with
// -cpu 1,2,8,16) claim and release on 16 connections, one backend.
func BenchmarkClaimReleaseParallel(b *testing.B) {
	const slots = 16
	ctx := context.Background()
	for _, v := range benchVariants {
		b.Run("variant="+v.name, func(b *testing.B) {
			b.Run("impl=qorb", func(b *testing.B) {
				p := newBenchPool(b, v, 1, slots)
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						h, err := p.Claim(ctx)
						if err != nil {
							b.Error(err)
							return
						}
						h.Release()
					}
				})
			})
			b.Run("impl=puddle", func(b *testing.B) {
				p := newPuddle(b, slots)
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						r, err := p.Acquire(ctx)
						if err != nil {
							b.Error(err)
							return
						}
						r.Release()
					}
				})
			})
		})
	}
}

// BenchmarkSixtyFourClaimers: 64 goroutines claiming from 16 connections,
// one backend, each holding its connection for about 1µs of CPU work. One
// op is one claim, hold and release.
func BenchmarkSixtyFourClaimers(b *testing.B) {
	benchClaimers(b, 64, 16, time.Microsecond)
}

// BenchmarkThousandClaimers is qorb's shape: 1000 goroutines claiming from
// 16 connections, one backend, each holding its connection for about 2µs
// of CPU work. One op is one claim, hold and release.
func BenchmarkThousandClaimers(b *testing.B) {
	benchClaimers(b, 1000, 16, 2*time.Microsecond)
}

// benchClaimers runs every variant, and puddle, with claimers goroutines
// sharing b.N claims of slots connections, each held for hold.
func benchClaimers(b *testing.B, claimers, slots int, hold time.Duration) {
	spins := spinsFor(hold)
	for _, v := range benchVariants {
		b.Run("variant="+v.name, func(b *testing.B) {
			b.Run("impl=qorb", func(b *testing.B) {
				p := newBenchPool(b, v, 1, slots)
				runClaimers(b, claimers, spins, p.Claim, (*Handle[*benchConn]).Release)
			})
			b.Run("impl=puddle", func(b *testing.B) {
				p := newPuddle(b, slots)
				runClaimers(b, claimers, spins, p.Acquire, (*puddle.Resource[*benchConn]).Release)
			})
		})
	}
}

// runClaimers starts claimers goroutines that share b.N claims: each
// claims, spins for spins iterations while holding the connection, and
// releases it.
func runClaimers[H any](b *testing.B, claimers, spins int, claim func(context.Context) (H, error), release func(H)) {
	ctx := context.Background()
	var next atomic.Int64
	var sink atomic.Uint64
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	for range claimers {
		wg.Go(func() {
			var x uint64
			for next.Add(1) <= int64(b.N) {
				h, err := claim(ctx)
				if err != nil {
					b.Error(err)
					return
				}
				x = spin(x, spins)
				release(h)
			}
			sink.Add(x)
		})
	}
	wg.Wait()
	b.StopTimer()
}

// spin does n steps of a linear congruential generator from x: CPU work
// that neither blocks nor yields, to hold a connection without sleeping
// (a sleep of a few microseconds lasts far longer on most kernels).
func spin(x uint64, n int) uint64 {
	for range n {
		x = x*6364136223846793005 + 1442695040888963407
	}
	return x
}

// spinRate is how many spin steps take a microsecond on this machine: the
// best of a few timed runs, measured once.
var spinRate = sync.OnceValue(func() float64 {
	const steps = 1 << 18
	best := time.Duration(1 << 62)
	var x uint64
	for range 5 {
		start := time.Now()
		x = spin(x, steps)
		best = min(best, time.Since(start))
	}
	runtime.KeepAlive(x)
	return steps / (float64(best) / float64(time.Microsecond))
})

// spinsFor is the number of spin steps that take about d.
func spinsFor(d time.Duration) int {
	return max(1, int(spinRate()*float64(d)/float64(time.Microsecond)))
}

// BenchmarkIdleSlotHeap reports the heap a pool holds per idle slot
// (connections excluded: the connector's are empty structs) for pools of
// 16, 256 and 4096 slots over one backend: the last pool's, so run it
// for a few iterations (the first pool of a process also pays for
// one-time allocations). TestIdleSlotHeap bounds what one more idle slot
// costs.
func BenchmarkIdleSlotHeap(b *testing.B) {
	for _, n := range []int{16, 256, 4096} {
		b.Run(fmt.Sprintf("slots=%d", n), func(b *testing.B) {
			var perSlot float64
			for b.Loop() {
				perSlot = float64(idleHeap(b, n, 1)) / float64(n)
			}
			b.ReportMetric(perSlot, "B/slot")
		})
	}
}

// BenchmarkClaimReleaseHeld: the cost of the registry of held claims
// (Policy.TrackHeld) on a claim and release, one goroutine, one backend of
// 16 connections: off; on with claims that have no label; on with a label
// in the claim's context (WithClaimLabel). The context is made once.
func BenchmarkClaimReleaseHeld(b *testing.B) {
	plain := benchVariants[0]
	for _, tc := range []struct {
		name  string
		track bool
		ctx   context.Context
	}{
		{"off", false, context.Background()},
		{"track", true, context.Background()},
		{"track-label", true, WithClaimLabel(context.Background(), "checkout")},
	} {
		b.Run("held="+tc.name, func(b *testing.B) {
			v := plain
			v.pol = func(p *Policy) { p.TrackHeld = tc.track }
			p := newBenchPool(b, v, 1, 16)
			b.ReportAllocs()
			for b.Loop() {
				h, err := p.Claim(tc.ctx)
				if err != nil {
					b.Fatal(err)
				}
				h.Release()
			}
		})
	}
}

// failingConnector fails every connect at once.
type failingConnector struct{}

func (failingConnector) Connect(context.Context, backend.Backend) (*benchConn, error) {
	return nil, errors.New("i/o timeout")
}

func (failingConnector) Close(*benchConn) error { return nil }

// BenchmarkClaimCircuitOpen: a claim while the circuit breaker is open
// (no connection for Policy.CircuitBreakAfter) fails at once; one op is
// one failed claim.
func BenchmarkClaimCircuitOpen(b *testing.B) {
	clk := clock.NewMock()
	p, err := New(resolverFor(4), backend.Connector[*benchConn](failingConnector{}),
		Policy{DeadAfter: 1000, CircuitBreakAfter: time.Second}, WithClock(clk))
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close(context.Background())
	p.loop.WaitIdle()
	clk.Set(clk.Now().Add(2 * time.Second))
	p.loop.Enter()
	p.loop.RunDue()
	p.loop.Leave()
	if st := p.Stats(); st.State != "broken" {
		b.Fatalf("pool %s, want broken", st.State)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Claim(ctx); !errors.Is(err, ErrCircuitOpen) {
			b.Fatal(err)
		}
	}
}
