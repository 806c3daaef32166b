package pool_test

// The acquire hook (backend.AcquireHook): it runs in the claimer's
// goroutine, a slow one holds up no other claim, and a failing one costs a
// connection but not the claim. These tests use the real clock with a
// connector that opens connections in memory; every wait is bounded.

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/fsm"
	"github.com/qorbgo/qorb/pool"
	"github.com/qorbgo/qorb/resolver"
	"github.com/qorbgo/qorb/slot"
)

// hookConn is a connection of hookConnector.
type hookConn struct {
	id     int64
	b      backend.Name
	closes atomic.Int32
}

// hookConnector opens connections in memory and implements
// backend.AcquireHook with a function set by the test.
type hookConnector struct {
	next    atomic.Int64
	open    atomic.Int64
	acquire func(ctx context.Context, c *hookConn) error
}

func (f *hookConnector) Connect(ctx context.Context, b backend.Backend) (*hookConn, error) {
	f.open.Add(1)
	return &hookConn{id: f.next.Add(1), b: b.Name}, nil
}

func (f *hookConnector) Close(c *hookConn) error {
	if c.closes.Add(1) == 1 {
		f.open.Add(-1)
	}
	return nil
}

func (f *hookConnector) OnAcquire(ctx context.Context, c *hookConn) error { return f.acquire(ctx, c) }

// hookAddrs returns n backend addresses; nothing is dialled.
func hookAddrs(n int) []netip.AddrPort {
	addrs := make([]netip.AddrPort, n)
	for i := range addrs {
		addrs[i] = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(7001+i))
	}
	return addrs
}

// connectedCounter is an observer that closes a channel once n slots
// have connected.
func connectedCounter(n int64) (fsm.Observer, <-chan struct{}) {
	ch := make(chan struct{})
	var count atomic.Int64
	return fsm.ObserverFunc(func(tr fsm.Transition) {
		if st, ok := slot.Kind.Step(tr); ok && !st.Created && st.Event == slot.ConnectOK && count.Add(1) == n {
			close(ch)
		}
	}), ch
}

type claimerKey struct{}

// claimInCaller claims on behalf of claimer id, whose number travels in
// ctx. The acquire hook looks for this function on its own stack.
func claimInCaller(ctx context.Context, p *pool.Pool[*hookConn], id int) (*pool.Handle[*hookConn], error) {
	return p.Claim(context.WithValue(ctx, claimerKey{}, id))
}

// inCaller reports whether the running goroutine came through claimInCaller.
func inCaller() bool {
	buf := make([]byte, 64<<10)
	return strings.Contains(string(buf[:runtime.Stack(buf, false)]), "pool_test.claimInCaller")
}

// TestSlowAcquireHookDoesNotBlockOtherClaims: four backends of eight slots
// each, all connected, and 32 claimers at once. The acquire hook blocks
// for the connections of two backends until the test lets it go: the
// sixteen claims it holds wait, while the sixteen others, and more claims
// after them, are served. The hook runs in each claimer's own goroutine
// with the claimer's context under the hook timeout.
func TestSlowAcquireHookDoesNotBlockOtherClaims(t *testing.T) {
	const (
		backends   = 4
		perBackend = 8
		slots      = backends * perBackend
		hookLimit  = 20 * time.Second // Policy.HealthTimeout, which bounds the hook
	)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()

	addrs := hookAddrs(backends)
	slow := map[backend.Name]bool{backend.FromAddr(addrs[0]).Name: true, backend.FromAddr(addrs[2]).Name: true}
	release := make(chan struct{})
	entered := make(chan struct{}, slots) // a hook of a slow backend is waiting

	var mu sync.Mutex
	hookedBy := map[*hookConn]int{} // which claimer's hook acquired each connection
	var hookErrs []error
	hookErr := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		hookErrs = append(hookErrs, fmt.Errorf(format, args...))
	}

	conn := &hookConnector{acquire: func(ctx context.Context, c *hookConn) error {
		id, ok := ctx.Value(claimerKey{}).(int)
		if !ok {
			hookErr("hook for %s: the context is not the claimer's", c.b)
		}
		if !inCaller() {
			hookErr("hook for claimer %d: not running in the claimer's goroutine", id)
		}
		if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > hookLimit {
			hookErr("hook for claimer %d: deadline %v, want within the hook timeout %v", id, dl, hookLimit)
		}
		if slow[c.b] {
			entered <- struct{}{}
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		mu.Lock()
		hookedBy[c] = id
		mu.Unlock()
		return nil
	}}
	connected, allConnected := connectedCounter(slots)
	p, err := pool.New(resolver.NewFixed(addrs...), backend.Connector[*hookConn](conn), pool.Policy{
		MaxSlots: slots, SparesWanted: slots, MaxSlotsPerBackend: perBackend,
		ClaimTimeout: 10 * time.Second, HealthTimeout: hookLimit,
	}, pool.WithObserver(connected), pool.WithStrict(true))
	if err != nil {
		t.Fatal(err)
	}
	released := false
	defer func() {
		if !released {
			close(release)
		}
		p.Close(context.Background())
	}()
	select {
	case <-allConnected:
	case <-ctx.Done():
		t.Fatalf("the slots did not all connect: %+v", p.Stats().Slots)
	}

	// One claimer per slot: every claim finds an idle connection at once.
	type result struct {
		id  int
		h   *pool.Handle[*hookConn]
		err error
	}
	fast := make(chan result, slots)
	slowDone := make(chan result, slots)
	for i := range slots {
		go func() {
			h, err := claimInCaller(ctx, p, i)
			if err == nil && slow[h.Backend().Name] {
				slowDone <- result{i, h, err}
				return
			}
			fast <- result{i, h, err}
		}()
	}

	// The hooks of the slow backends' sixteen connections all wait at
	// once, and the sixteen other claims return meanwhile.
	var held []result
	for range slots / 2 {
		select {
		case <-entered:
		case <-ctx.Done():
			t.Fatalf("only %d slow hooks started", len(entered))
		}
	}
	for range slots / 2 {
		select {
		case r := <-fast:
			if r.err != nil {
				t.Fatalf("claimer %d: %v", r.id, r.err)
			}
			held = append(held, r)
		case <-ctx.Done():
			t.Fatalf("the claims served by fast backends did not return while the slow hooks waited (%d returned)", len(held))
		}
	}
	select {
	case r := <-slowDone:
		t.Fatalf("claimer %d returned while its hook was held", r.id)
	default:
	}

	// More claims are served while the slow hooks still wait: give back a
	// few fast connections and claim them again.
	for i, r := range held[:4] {
		r.h.Release()
		h, err := claimInCaller(ctx, p, slots+i)
		if err != nil {
			t.Fatalf("claim while the slow hooks wait: %v", err)
		}
		if slow[h.Backend().Name] {
			t.Fatalf("claim served by %s, whose connections are all claimed", h.Backend().Name)
		}
		held[i] = result{slots + i, h, nil}
	}
	if st := p.Stats(); st.Slots.Claimed != slots {
		t.Fatalf("%d slots claimed, want all %d (the slow hooks' included): %+v", st.Slots.Claimed, slots, st.Slots)
	}

	// Let the slow hooks go: their claimers get the slow backends'
	// connections.
	close(release)
	released = true
	for range slots / 2 {
		select {
		case r := <-slowDone:
			held = append(held, r)
		case r := <-fast:
			t.Fatalf("claimer %d: got %v, %v; want a slow backend's connection", r.id, r.h, r.err)
		case <-ctx.Done():
			t.Fatal("the slow claims did not return once their hooks were let go")
		}
	}

	mu.Lock()
	defer mu.Unlock()
	for _, err := range hookErrs {
		t.Error(err)
	}
	seen := map[*hookConn]bool{}
	count := map[backend.Name]int{}
	for _, r := range held {
		c := r.h.Conn()
		if seen[c] {
			t.Errorf("connection %d handed out twice", c.id)
		}
		seen[c] = true
		count[c.b]++
		if by, ok := hookedBy[c]; !ok || by != r.id {
			t.Errorf("claimer %d got connection %d, acquired by the hook of claimer %d (ok %v)", r.id, c.id, by, ok)
		}
	}
	for _, a := range addrs {
		if n := count[backend.FromAddr(a).Name]; n != perBackend {
			t.Errorf("backend %s: %d connections claimed, want %d", a, n, perBackend)
		}
	}
	for _, r := range held {
		r.h.Release()
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := conn.open.Load(); n != 0 {
		t.Errorf("%d connections open after Close", n)
	}
}

// TestAcquireHookFailureDiscardsConnection: an acquire hook that fails
// (or overruns the hook timeout) once makes the pool discard that
// connection and count it, and the claimer still gets a connection: a
// spare one, or the one the slot opens again after its backoff.
func TestAcquireHookFailureDiscardsConnection(t *testing.T) {
	errHook := errors.New("session reset failed")
	for _, tc := range []struct {
		name     string
		policy   pool.Policy
		firstErr func(ctx context.Context) error // what the first hook call does
		lastErr  string                          // in the backend's last error
	}{
		{
			name:     "spare connection",
			policy:   pool.Policy{MaxSlots: 2, SparesWanted: 2},
			firstErr: func(context.Context) error { return errHook },
			lastErr:  "acquire hook: " + errHook.Error(),
		},
		{
			name:     "only connection",
			policy:   pool.Policy{MaxSlots: 1, SparesWanted: 1},
			firstErr: func(context.Context) error { return errHook },
			lastErr:  "acquire hook: " + errHook.Error(),
		},
		{
			name:   "hook timeout",
			policy: pool.Policy{MaxSlots: 2, SparesWanted: 2, HealthTimeout: 50 * time.Millisecond},
			firstErr: func(ctx context.Context) error {
				<-ctx.Done() // bounded by the hook timeout
				return ctx.Err()
			},
			lastErr: "acquire hook: " + context.DeadlineExceeded.Error(),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			var calls atomic.Int64
			var failed atomic.Pointer[hookConn]
			conn := &hookConnector{acquire: func(ctx context.Context, c *hookConn) error {
				if calls.Add(1) == 1 {
					failed.Store(c)
					return tc.firstErr(ctx)
				}
				return nil
			}}
			pol := tc.policy
			pol.ClaimTimeout = 10 * time.Second
			connected, allConnected := connectedCounter(int64(pol.MaxSlots))
			p, err := pool.New(resolver.NewFixed(hookAddrs(1)...), backend.Connector[*hookConn](conn), pol, pool.WithObserver(connected), pool.WithStrict(true))
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close(context.Background())
			select {
			case <-allConnected:
			case <-ctx.Done():
				t.Fatal("the slots did not connect")
			}

			h, err := p.Claim(ctx)
			if err != nil {
				t.Fatalf("claim after a failed acquire hook: %v", err)
			}
			bad := failed.Load()
			if bad == nil || h.Conn() == bad {
				t.Fatalf("claim returned connection %v; the hook failed on %v", h.Conn(), bad)
			}
			if n := calls.Load(); n != 2 {
				t.Errorf("%d hook calls, want 2", n)
			}
			st := p.Stats()
			if st.Discards != 1 || st.Failures != 1 || st.Claims != 2 {
				t.Errorf("stats: discards %d failures %d claims %d; want 1, 1, 2", st.Discards, st.Failures, st.Claims)
			}
			if ce := st.ClaimErrors; ce != (pool.ClaimErrors{}) {
				t.Errorf("claim errors: %+v", ce)
			}
			// The backend's own LastError is cleared when it comes back
			// (with the only connection gone, it went offline); the pool's
			// keeps it.
			if len(st.Backends) != 1 || !strings.Contains(st.LastError, tc.lastErr) || st.Backends[0].Failures != 1 || st.Backends[0].Lost != 1 {
				t.Errorf("stats %+v; want one lost connection with last error containing %q", st, tc.lastErr)
			}
			h.Release()
			if err := p.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if n := bad.closes.Load(); n != 1 {
				t.Errorf("the discarded connection was closed %d times, want once", n)
			}
			if n := conn.open.Load(); n != 0 {
				t.Errorf("%d connections open after Close", n)
			}
		})
	}
}
