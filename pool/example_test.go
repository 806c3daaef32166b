package pool_test

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/fsm"
	"github.com/qorbgo/qorb/pool"
	"github.com/qorbgo/qorb/resolver"
)

// session stands in for a real connection type (net.Conn, *pgx.Conn, ...).
type session struct{ backend backend.Name }

// sessions is a Connector that opens sessions in memory.
type sessions struct{}

func (sessions) Connect(_ context.Context, b backend.Backend) (*session, error) {
	return &session{backend: b.Name}, nil
}

func (sessions) Close(*session) error { return nil }

func ExamplePool() {
	r := resolver.NewFixed(netip.MustParseAddrPort("127.0.0.1:5432"))
	p, err := pool.New(r, backend.Connector[*session](sessions{}), pool.Policy{MaxSlots: 4})
	if err != nil {
		panic(err)
	}
	defer p.Close(context.Background())

	h, err := p.Claim(context.Background())
	if err != nil {
		panic(err)
	}
	fmt.Println("claimed a session to", h.Conn().backend)
	h.Release()
	// Output: claimed a session to 127.0.0.1:5432
}

func ExampleWithObserver() {
	r := resolver.NewFixed(netip.MustParseAddrPort("127.0.0.1:5432"))
	print := fsm.ObserverFunc(func(t fsm.Transition) {
		fmt.Printf("%s[%s] %s --%s--> %s\n", t.Kind(), t.ID, t.FromName(), t.EventName(), t.ToName())
	})
	p, err := pool.New(r, backend.Connector[*session](sessions{}), pool.Policy{MaxSlots: 1, SparesWanted: 1},
		pool.WithObserver(print), pool.WithName("db"))
	if err != nil {
		panic(err)
	}
	h, err := p.Claim(context.Background())
	if err != nil {
		panic(err)
	}
	h.Release()
	p.Close(context.Background())
	// Output:
	// resolver[db] resolving --answer--> resolved
	// slot[127.0.0.1:5432/0]  --create--> connecting
	// slot[127.0.0.1:5432/0] connecting --connect_ok--> connected
	// set[127.0.0.1:5432] offline --up--> online
	// pool[db] starting --backend_up--> running
	// slot[127.0.0.1:5432/0] connected --claim--> claimed
	// slot[127.0.0.1:5432/0] claimed --return--> connected
	// pool[db] running --close--> stopping
	// resolver[db] resolved --stop--> stopped
	// set[127.0.0.1:5432] online --remove--> draining
	// slot[127.0.0.1:5432/0] connected --stop--> stopped
	// set[127.0.0.1:5432] draining --drained--> stopped
	// pool[db] stopping --closed--> stopped
}

func ExamplePool_Stats() {
	r := resolver.NewFixed(netip.MustParseAddrPort("127.0.0.1:5432"), netip.MustParseAddrPort("127.0.0.1:5433"))
	p, err := pool.New(r, backend.Connector[*session](sessions{}), pool.Policy{MaxSlots: 4, SparesWanted: 4})
	if err != nil {
		panic(err)
	}
	defer p.Close(context.Background())
	h, err := p.Claim(context.Background())
	if err != nil {
		panic(err)
	}
	defer h.Release()
	st := p.Stats()
	fmt.Println("pool:", st.State, "claimed:", st.Slots.Claimed)
	for _, b := range st.Backends {
		fmt.Println("backend", b.Name)
	}
	// Output:
	// pool: running claimed: 1
	// backend 127.0.0.1:5432
	// backend 127.0.0.1:5433
}

// waitTimes is a claim and release tracer: it counts claims and adds up
// how long connections were held.
type waitTimes struct {
	mu     sync.Mutex
	claims int
	held   time.Duration
}

func (w *waitTimes) TraceClaimStart(ctx context.Context, _ pool.ClaimStartData) context.Context {
	return ctx
}

func (w *waitTimes) TraceClaimEnd(_ context.Context, d pool.ClaimEndData) {
	if d.Err == nil {
		w.mu.Lock()
		w.claims++
		w.mu.Unlock()
	}
}

func (w *waitTimes) TraceRelease(d pool.ReleaseData) {
	w.mu.Lock()
	w.held += d.Held
	w.mu.Unlock()
}

func ExampleWithTracer() {
	clk := clock.NewMock() // the pool times claims on its own clock
	tr := &waitTimes{}
	r := resolver.NewFixed(netip.MustParseAddrPort("127.0.0.1:5432"))
	p, err := pool.New(r, backend.Connector[*session](sessions{}), pool.Policy{MaxSlots: 1, SparesWanted: 1},
		pool.WithClock(clk), pool.WithTracer(tr))
	if err != nil {
		panic(err)
	}
	for range 3 {
		h, err := p.Claim(context.Background())
		if err != nil {
			panic(err)
		}
		clk.Add(20 * time.Millisecond) // use the connection
		h.Release()
	}
	p.Close(context.Background())
	fmt.Printf("%d claims held %v in all\n", tr.claims, tr.held)
	// Output: 3 claims held 60ms in all
}

func ExamplePool_Do() {
	r := resolver.NewFixed(netip.MustParseAddrPort("127.0.0.1:5432"))
	p, err := pool.New(r, backend.Connector[*session](sessions{}), pool.Policy{MaxSlots: 1, SparesWanted: 1})
	if err != nil {
		panic(err)
	}
	defer p.Close(context.Background())

	// A request's own error releases the connection; an error that is
	// the connection's fault (here pool.ErrBadConn, wrapped) discards it.
	err = p.Do(context.Background(), func(s *session) error { return fmt.Errorf("no such row") })
	fmt.Println(err, p.Stats().Discards)
	err = p.Do(context.Background(), func(s *session) error { return fmt.Errorf("protocol: %w", pool.ErrBadConn) })
	fmt.Println(err, p.Stats().Discards)
	// Output:
	// no such row 0
	// protocol: pool: bad connection 1
}

func ExamplePool_DoHandle() {
	r := resolver.NewFixed(netip.MustParseAddrPort("127.0.0.1:5432"))
	p, err := pool.New(r, backend.Connector[*session](sessions{}), pool.Policy{MaxSlots: 1, SparesWanted: 1})
	if err != nil {
		panic(err)
	}
	defer p.Close(context.Background())

	// With the handle, the function can say how the backend did: the
	// LeastLatency picker and outlier ejection learn from it.
	err = p.DoHandle(context.Background(), func(h *pool.Handle[*session]) error {
		h.Report(3*time.Millisecond, nil)
		return nil
	})
	b := p.Stats().Backends[0]
	fmt.Println(err, b.Reports, b.Latency)
	// Output: <nil> 1 3ms
}

func ExamplePool_TryClaim() {
	r := resolver.NewFixed(netip.MustParseAddrPort("127.0.0.1:5432"))
	p, err := pool.New(r, backend.Connector[*session](sessions{}), pool.Policy{MaxSlots: 1, SparesWanted: 1})
	if err != nil {
		panic(err)
	}
	defer p.Close(context.Background())

	h, err := p.Claim(context.Background()) // waits for the first connection
	if err != nil {
		panic(err)
	}
	_, err = p.TryClaim(context.Background()) // the only one is claimed: no wait
	fmt.Println(err)
	h.Release()
	// Output: pool: no idle connection
}

// Claims labelled with the work they serve are listed by Held and counted
// per label in Stats: which code holds the connections, and since when.
func ExamplePool_Held() {
	r := resolver.NewFixed(netip.MustParseAddrPort("127.0.0.1:5432"))
	p, err := pool.New(r, backend.Connector[*session](sessions{}), pool.Policy{MaxSlots: 4, TrackHeld: true})
	if err != nil {
		panic(err)
	}
	defer p.Close(context.Background())

	ctx := pool.WithClaimLabel(context.Background(), "nightly-report")
	h, err := p.Claim(ctx)
	if err != nil {
		panic(err)
	}
	for _, c := range p.Held() {
		fmt.Printf("held: %s on %s\n", c.Label, c.Backend)
	}
	fmt.Println("by label:", p.Stats().HeldByLabel)
	h.Release()
	fmt.Println("held after release:", len(p.Held()))
	// Output:
	// held: nightly-report on 127.0.0.1:5432
	// by label: map[nightly-report:1]
	// held after release: 0
}
