package pool_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/pool"
	"github.com/qorbgo/qorb/resolver"
)

// busyServer is a loopback server that admits up to max sessions: each is
// greeted "OK" and kept open until the client closes it. Beyond max, it
// greets "BUSY <retry-after>" and hangs up, as a database at its
// connection limit answers "too many clients". It records when each
// connection arrived and whether any admitted session ended.
type busyServer struct {
	ln         net.Listener
	max        int
	retryAfter time.Duration
	wg         sync.WaitGroup

	mu       sync.Mutex
	open     int
	arrivals []time.Time // every connection, admitted or not
	busy     []time.Time // the ones answered BUSY
	ended    int         // admitted sessions that ended
	busyCh   chan struct{}
}

func startBusyServer(t *testing.T, max int, retryAfter time.Duration) *busyServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &busyServer{ln: ln, max: max, retryAfter: retryAfter, busyCh: make(chan struct{}, 1024)}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.arrivals = append(s.arrivals, time.Now())
			if s.open >= s.max {
				s.busy = append(s.busy, time.Now())
				s.mu.Unlock()
				fmt.Fprintf(c, "BUSY %s\n", s.retryAfter)
				c.Close()
				s.busyCh <- struct{}{}
				continue
			}
			s.open++
			s.mu.Unlock()
			fmt.Fprintf(c, "OK\n")
			s.wg.Go(func() {
				defer c.Close()
				buf := make([]byte, 1)
				_, _ = c.Read(buf) // until the client closes
				s.mu.Lock()
				s.open--
				s.ended++
				s.mu.Unlock()
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		s.wg.Wait()
	})
	return s
}

// busyConnector dials, reads the greeting, and returns a "BUSY d" answer
// as backend.Overloaded with retry-after d. It records when each Connect
// began and when each busy answer was returned to the pool.
type busyConnector struct {
	mu     sync.Mutex
	starts []time.Time
	busy   []time.Time
	busyCh chan struct{}
}

func (bc *busyConnector) Connect(ctx context.Context, b backend.Backend) (net.Conn, error) {
	bc.mu.Lock()
	bc.starts = append(bc.starts, time.Now())
	bc.mu.Unlock()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", b.Addr.String())
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetReadDeadline(dl)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	c.SetReadDeadline(time.Time{})
	if err != nil {
		c.Close()
		return nil, err
	}
	if after, ok := strings.CutPrefix(strings.TrimSpace(line), "BUSY "); ok {
		c.Close()
		ra, err := time.ParseDuration(after)
		if err != nil {
			return nil, fmt.Errorf("bad greeting %q: %w", line, err)
		}
		bc.mu.Lock()
		bc.busy = append(bc.busy, time.Now())
		bc.mu.Unlock()
		select {
		case bc.busyCh <- struct{}{}:
		default:
		}
		return nil, backend.Overloaded(errors.New("too many clients"), ra)
	}
	return c, nil
}

func (*busyConnector) Close(c net.Conn) error { return c.Close() }

// TestTCPOverloadedServerIsLeftAloneForItsRetryAfter: a server at its
// connection limit answers "busy, retry after 300ms". After each such
// answer no connect reaches it for 300ms, the session it admitted stays
// open, the backend is never dead, and claims are served from the open
// connection all along. (Two slots: one holds the session, so that every
// connect after the first two is the other's, and none can have been
// decided before the pool read the busy answer.)
func TestTCPOverloadedServerIsLeftAloneForItsRetryAfter(t *testing.T) {
	const retryAfter = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	srv := startBusyServer(t, 1, retryAfter)
	bc := &busyConnector{busyCh: make(chan struct{}, 64)}
	p, err := pool.New(resolver.NewFixed(srv.ln.Addr().(*net.TCPAddr).AddrPort()), backend.Connector[net.Conn](bc),
		pool.Policy{MaxSlots: 2, SparesWanted: 2, DeadAfter: 1, BackoffMin: time.Millisecond, BackoffMax: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// Busy answers until four holds have passed, with claims served in
	// between from the one session the server admitted.
	for i := 0; ; i++ {
		select {
		case <-bc.busyCh:
		case <-ctx.Done():
			t.Fatalf("after %d busy answers: %v", i, ctx.Err())
		}
		h, err := p.Claim(ctx)
		if err != nil {
			t.Fatalf("claim while the server is busy: %v", err)
		}
		h.Release()
		bc.mu.Lock()
		n := len(bc.busy)
		span := bc.busy[n-1].Sub(bc.busy[0])
		bc.mu.Unlock()
		if span >= 4*retryAfter {
			break
		}
	}
	st := p.Stats()
	srv.mu.Lock()
	endedBefore := srv.ended
	srv.mu.Unlock()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	closes := p.Stats().Closes
	bc.mu.Lock()
	starts, busy := append([]time.Time(nil), bc.starts...), append([]time.Time(nil), bc.busy...)
	bc.mu.Unlock()
	// No connect began within the retry-after of a busy answer the pool
	// had been given.
	for _, b := range busy {
		for _, a := range starts {
			if a.After(b) && a.Sub(b) < retryAfter {
				t.Errorf("a connect began %v after a busy answer asked for %v", a.Sub(b), retryAfter)
			}
		}
	}
	// The admitted session stayed open until Close.
	if endedBefore != 0 {
		t.Errorf("%d admitted sessions ended before Close: the pool closed an open connection", endedBefore)
	}
	if closes != 1 {
		t.Errorf("%d connections closed; want the one session, at Close", closes)
	}
	bs := st.Backends[0]
	if bs.Dead || st.State != "running" || bs.Overloaded < 4 || st.Overloaded != bs.Overloaded || bs.ConsecutiveFailures != 0 {
		t.Errorf("backend dead %v, pool %s, %d failures in a row, overloaded %d (pool %d): want alive, running, 0, at least 4", bs.Dead, st.State, bs.ConsecutiveFailures, bs.Overloaded, st.Overloaded)
	}
	t.Logf("%d connects, %d answered busy, over %v", len(starts), len(busy), starts[len(starts)-1].Sub(starts[0]).Round(time.Millisecond))
}
