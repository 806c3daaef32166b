package pool

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/qorbgo/qorb/backend"
)

// TestRandomOperationsKeepInvariants drives a pool through random claims,
// releases, discards, backend failures, failing health checks, resolver
// changes and clock jumps. The harness checks the invariants at the end of
// every event (slot caps in total and per backend, counts that match the
// slots, idle stacks), and this test checks that no connection is handed to
// two claimers and that Close leaves nothing open.
func TestRandomOperationsKeepInvariants(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		pol := Policy{
			MaxSlots:           rapid.IntRange(1, 10).Draw(rt, "max"),
			MaxSlotsPerBackend: rapid.IntRange(1, 6).Draw(rt, "perBackend"),
			SparesWanted:       rapid.IntRange(1, 8).Draw(rt, "spares"),
			DeadAfter:          rapid.IntRange(1, 4).Draw(rt, "deadAfter"),
			MaxConnLifetime:    time.Duration(rapid.IntRange(0, 3).Draw(rt, "lifetimeMin")) * time.Minute,
		}
		h := startHarness(rt, pol, rapid.IntRange(0, 4).Draw(rt, "backends"), func(f *fakeConnector) backend.Connector[*fakeConn] {
			f.limit = pol.MaxSlots
			return validating{f}
		})
		var held []*Handle[*fakeConn]
		inUse := map[*fakeConn]bool{}
		pickHeld := func() int { return rapid.IntRange(0, len(held)-1).Draw(rt, "held") }
		drop := func(i int) {
			delete(inUse, held[i].Conn())
			held = append(held[:i], held[i+1:]...)
		}
		backendN := func() int { return rapid.IntRange(1, 5).Draw(rt, "backend") }
		steps := rapid.IntRange(1, 50).Draw(rt, "steps")
		for range steps {
			switch op := rapid.IntRange(0, 8).Draw(rt, "op"); op {
			case 0, 1:
				if hd, err := h.tryClaim(); err == nil {
					if inUse[hd.Conn()] {
						rt.Fatalf("connection %d handed to two claimers", hd.Conn().id)
					}
					inUse[hd.Conn()] = true
					held = append(held, hd)
				}
			case 2:
				if len(held) > 0 {
					i := pickHeld()
					hd := held[i]
					drop(i)
					hd.Release()
				}
			case 3:
				if len(held) > 0 {
					i := pickHeld()
					hd := held[i]
					drop(i)
					hd.Discard(errors.New("bad"))
				}
			case 4:
				n := backendN()
				h.fake.set(func(f *fakeConnector) { f.fail[name(n)] = errors.New("refused") })
			case 5:
				n := backendN()
				h.fake.set(func(f *fakeConnector) { delete(f.fail, name(n)); delete(f.validateErr, name(n)) })
			case 6:
				n := backendN()
				h.fake.set(func(f *fakeConnector) { f.validateErr[name(n)] = errors.New("unhealthy") })
			case 7:
				var as []netip.AddrPort
				for i := 1; i <= 5; i++ {
					if rapid.Bool().Draw(rt, "listed") {
						as = append(as, addr(i))
					}
				}
				h.res.Replace(as...)
				h.settle()
			case 8:
				h.advance(time.Duration(rapid.IntRange(0, 90_000).Draw(rt, "ms")) * time.Millisecond)
			}
		}
		for _, hd := range held {
			hd.Release()
		}
		h.advance(2 * time.Minute)
		if err := h.p.Close(context.Background()); err != nil {
			rt.Fatalf("Close: %v", err)
		}
		if n := h.fake.openCount(); n != 0 {
			rt.Fatalf("%d connections open after Close", n)
		}
		if h.fake.overLimit != 0 {
			h.mu.Lock()
			for _, tr := range h.trace {
				rt.Logf("trace: %v", tr)
			}
			h.mu.Unlock()
			rt.Fatalf("open and opening connections exceeded MaxSlots %d times: %s", h.fake.overLimit, h.fake.overWhat)
		}
		if h.fake.doubleClose != 0 {
			rt.Fatalf("%d connections closed twice", h.fake.doubleClose)
		}
		h.close()
	})
}

// tryClaim claims without waiting for a connection that is not there: a
// claim that has to queue is cancelled.
func (h *harness) tryClaim() (*Handle[*fakeConn], error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		h   *Handle[*fakeConn]
		err error
	}
	got := make(chan result, 1)
	go func() {
		hd, err := h.p.Claim(ctx)
		got <- result{hd, err}
	}()
	for {
		select {
		case r := <-got:
			return r.h, r.err
		default:
		}
		h.p.loop.Enter()
		queued := h.p.waiters.n > 0
		h.p.loop.Leave()
		if queued {
			cancel()
			r := <-got
			return r.h, r.err
		}
		runtimeGosched()
	}
}
