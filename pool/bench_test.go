package pool

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/jackc/puddle/v2"

	"github.com/qorbgo/qorb/backend"
)

// benchConn is a connection that costs nothing to open.
type benchConn struct{}

type benchConnector struct{}

func (benchConnector) Connect(context.Context, backend.Backend) (*benchConn, error) {
	return &benchConn{}, nil
}
func (benchConnector) Close(*benchConn) error { return nil }

// newBenchPool returns a pool of n connections, all connected.
func newBenchPool(b *testing.B, n int) *Pool[*benchConn] {
	b.Helper()
	p, err := New(resolverFor(1), backend.Connector[*benchConn](benchConnector{}), Policy{MaxSlots: n, MaxSlotsPerBackend: n, SparesWanted: n}, WithStrict(true))
	if err != nil {
		b.Fatal(err)
	}
	p.loop.WaitIdle()
	b.Cleanup(func() { _ = p.Close(context.Background()) })
	return p
}

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

// BenchmarkClaimRelease: one goroutine, a connection always free.
func BenchmarkClaimRelease(b *testing.B) {
	ctx := context.Background()
	b.Run("impl=qorb", func(b *testing.B) {
		p := newBenchPool(b, 16)
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
		p := newPuddle(b, 16)
		b.ReportAllocs()
		for b.Loop() {
			r, err := p.Acquire(ctx)
			if err != nil {
				b.Fatal(err)
			}
			r.Release()
		}
	})
}

// BenchmarkClaimReleaseParallel: GOMAXPROCS goroutines, 16 connections.
func BenchmarkClaimReleaseParallel(b *testing.B) {
	ctx := context.Background()
	b.Run("impl=qorb", func(b *testing.B) {
		p := newBenchPool(b, 16)
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
		p := newPuddle(b, 16)
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
}

// BenchmarkThousandClaimers is qorb's shape: 1000 goroutines claiming from
// 16 connections, each holding its connection for 50µs. One op is one
// claim, hold and release.
func BenchmarkThousandClaimers(b *testing.B) {
	const claimers, slots, hold = 1000, 16, 50 * time.Microsecond
	run := func(b *testing.B, claim func() (release func(), err error)) {
		b.ReportAllocs()
		var wg sync.WaitGroup
		work := make(chan struct{}, b.N)
		for range b.N {
			work <- struct{}{}
		}
		close(work)
		b.ResetTimer()
		for range claimers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range work {
					release, err := claim()
					if err != nil {
						b.Error(err)
						return
					}
					time.Sleep(hold)
					release()
				}
			}()
		}
		wg.Wait()
	}
	ctx := context.Background()
	b.Run("impl=qorb", func(b *testing.B) {
		p := newBenchPool(b, slots)
		run(b, func() (func(), error) {
			h, err := p.Claim(ctx)
			if err != nil {
				return nil, err
			}
			return h.Release, nil
		})
	})
	b.Run("impl=puddle", func(b *testing.B) {
		p := newPuddle(b, slots)
		run(b, func() (func(), error) {
			r, err := p.Acquire(ctx)
			if err != nil {
				return nil, err
			}
			return r.Release, nil
		})
	})
}

// BenchmarkIdleSlotHeap reports the heap a pool holds per idle slot
// (connections excluded: the connector's are empty structs) for pools of
// 16, 256 and 4096 slots over one backend.
func BenchmarkIdleSlotHeap(b *testing.B) {
	for _, n := range []int{16, 256, 4096} {
		b.Run(fmt.Sprintf("slots=%d", n), func(b *testing.B) {
			var perSlot float64
			for b.Loop() {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				p, err := New(resolverFor(1), backend.Connector[*benchConn](benchConnector{}),
					Policy{MaxSlots: n, MaxSlotsPerBackend: n, SparesWanted: n})
				if err != nil {
					b.Fatal(err)
				}
				p.loop.WaitIdle()
				runtime.GC()
				runtime.ReadMemStats(&after)
				if st := p.Stats(); st.Slots.Connected != n {
					b.Fatalf("%d idle slots, want %d", st.Slots.Connected, n)
				}
				perSlot = float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
				_ = p.Close(context.Background())
				p.loop.WaitIdle()
			}
			b.ReportMetric(perSlot, "B/slot")
		})
	}
}
