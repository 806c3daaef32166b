// Command echo runs a qorb pool over three loopback TCP echo servers under
// a small workload, kills the busiest server part-way, and prints per-backend
// stats as it goes:
//
//	go run ./examples/echo [-duration 3s] [-workers 8] [-stats-addr 127.0.0.1:7070]
//
// Workers claim a connection, echo a message through it and release it;
// on an I/O error they discard the handle and claim again. The connector
// checks connections with a one-byte echo round trip, so the killed
// server's connections are found and dropped, and its slots move to the
// two servers left. Every half second the program prints each backend's
// state, its slots by state, its claims and failures. At the end it closes
// the pool, checks that every server saw all its connections closed, and
// exits 0; it exits 1 when a claim failed while servers were up or a
// connection was left open.
//
// With -stats-addr it also serves the pool's stats over HTTP (package
// statshttp) on that address while it runs, and prints the URL; watch it
// with qtop (contrib/cmd/qtop). Port 0 picks a free port. The endpoint is
// off by default.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/qorbgo/qorb/connector/tcp"
	"github.com/qorbgo/qorb/internal/echotest"
	"github.com/qorbgo/qorb/pool"
	"github.com/qorbgo/qorb/resolver"
	"github.com/qorbgo/qorb/statshttp"
)

func main() {
	duration := flag.Duration("duration", 3*time.Second, "how long the workload runs")
	workers := flag.Int("workers", 8, "goroutines claiming, echoing and releasing")
	maxSlots := flag.Int("max-slots", 6, "Policy.MaxSlots: connections across all backends")
	interval := flag.Duration("interval", 500*time.Millisecond, "how often to print stats")
	statsAddr := flag.String("stats-addr", "", "serve the pool's stats over HTTP on this address (host:port, port 0 for any); off when empty")
	flag.Parse()
	if *duration <= 0 || *workers <= 0 || *maxSlots <= 0 || *interval <= 0 {
		fmt.Fprintln(os.Stderr, "echo: -duration, -workers, -max-slots and -interval must be positive")
		os.Exit(2)
	}
	cfg := config{duration: *duration, workers: *workers, maxSlots: *maxSlots, interval: *interval, statsAddr: *statsAddr}
	if err := run(os.Stdout, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
		os.Exit(1)
	}
}

// config is the program's flags.
type config struct {
	duration  time.Duration // how long the workload runs
	workers   int           // goroutines claiming, echoing and releasing
	maxSlots  int           // Policy.MaxSlots
	interval  time.Duration // how often to print stats
	statsAddr string        // where to serve the stats endpoint; "" for nowhere
	// statsReady, when set, is called with the endpoint's URL once it
	// serves (for tests).
	statsReady func(url string)
}

func run(out io.Writer, cfg config) error {
	duration, workers, maxSlots, interval := cfg.duration, cfg.workers, cfg.maxSlots, cfg.interval
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	var servers []*server
	defer func() {
		for _, s := range servers {
			s.kill()
		}
	}()
	addrs := make([]netip.AddrPort, 3)
	for i := range addrs {
		s, err := startServer()
		if err != nil {
			return err
		}
		servers = append(servers, s)
		addrs[i] = s.addr
	}
	fmt.Fprintf(out, "echo servers on %v; %d workers for %v; MaxSlots %d\n\n", addrs, workers, duration, maxSlots)

	conn, err := tcp.New(tcp.Config{DialTimeout: time.Second, Validate: echotest.Check})
	if err != nil {
		return err
	}
	p, err := pool.New(resolver.NewFixed(addrs...), conn, pool.Policy{
		MaxSlots:           maxSlots,
		MaxSlotsPerBackend: maxSlots,
		SparesWanted:       maxSlots / 2,
		ClaimTimeout:       2 * time.Second,
		ConnectTimeout:     time.Second,
		HealthInterval:     250 * time.Millisecond,
		HealthTimeout:      500 * time.Millisecond,
		BackoffMax:         time.Second,
	}, pool.WithName("echo"))
	if err != nil {
		return err
	}
	closed := false
	defer func() {
		if !closed {
			_ = p.Close(context.Background())
		}
	}()

	if cfg.statsAddr != "" {
		stopStats, err := serveStats(out, cfg.statsAddr, p, cfg.statsReady)
		if err != nil {
			return err
		}
		defer stopStats()
	}

	// The workload: every worker claims, echoes and releases until the
	// duration ends, at most maxIterations times.
	const maxIterations = 1_000_000
	load, cancelLoad := context.WithTimeout(ctx, duration)
	defer cancelLoad()
	var st loadStats
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() { work(load, p, w, maxIterations, &st) })
	}

	// Kill the busiest server a third of the way through; print stats as it goes.
	start := time.Now()
	killAt := time.NewTimer(duration / 3)
	defer killAt.Stop()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var killed *server
loop:
	for {
		select {
		case <-killAt.C:
			killed = busiest(servers)
			killed.kill()
			fmt.Fprintf(out, "--- killed the server on %s after %v\n\n", killed.addr, time.Since(start).Round(time.Millisecond))
		case <-tick.C:
			printStats(out, time.Since(start), p.Stats(), &st, killed)
		case <-load.Done():
			break loop
		}
	}
	wg.Wait()
	fmt.Fprintln(out, "--- the workload ended")
	printStats(out, time.Since(start), p.Stats(), &st, killed)

	closeCtx, cancelClose := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelClose()
	err = p.Close(closeCtx)
	closed = true
	if err != nil {
		return fmt.Errorf("close: %w", err)
	}

	// Every server must see each of its connections closed.
	var problems []error
	for _, s := range servers {
		open, err := s.drain(5 * time.Second)
		fmt.Fprintf(out, "server %s: accepted %d connections, at most %d open at once, %d open after Close\n",
			s.addr, s.accepted.Load(), s.peak.Load(), open)
		if err != nil {
			problems = append(problems, err)
		}
	}
	fmt.Fprintf(out, "echoed %d messages; %d I/O errors (handles discarded); %d failed claims\n",
		st.ok.Load(), st.ioErrors.Load(), st.claimErrors.Load())
	if n := st.claimErrors.Load(); n > 0 {
		problems = append(problems, fmt.Errorf("%d claims failed while servers were up (last: %v)", n, st.lastClaimErr.Load()))
	}
	return errors.Join(problems...)
}

// serveStats serves p's stats on addr until the returned function is
// called.
func serveStats(out io.Writer, addr string, p *pool.Pool[net.Conn], ready func(string)) (stop func(), err error) {
	h := statshttp.New(statshttp.Config{})
	if err := h.Add("echo", p); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("stats endpoint: %w", err)
	}
	url := "http://" + ln.Addr().String()
	fmt.Fprintf(out, "stats on %s/ (watch: cd contrib && go run ./cmd/qtop %s)\n\n", url, url)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln) // returns when Shutdown closes the listener
	}()
	if ready != nil {
		ready(url)
	}
	return func() {
		h.Close() // ends the streams, so that Shutdown need not wait for them
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}, nil
}

// loadStats counts the workers' results.
type loadStats struct {
	ok, ioErrors, claimErrors atomic.Int64
	lastClaimErr              atomic.Value // error
}

// work runs one worker until ctx ends or after n round trips.
func work(ctx context.Context, p *pool.Pool[net.Conn], id, n int, st *loadStats) {
	for i := 0; i < n && ctx.Err() == nil; i++ {
		h, err := p.Claim(ctx)
		if err != nil {
			if ctx.Err() == nil { // not the end of the run
				st.claimErrors.Add(1)
				st.lastClaimErr.Store(err)
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		msg := fmt.Appendf(nil, "worker %d message %d\n", id, i)
		if err := echotest.RoundTrip(h.Conn(), msg, time.Second); err != nil {
			h.Discard(err)
			st.ioErrors.Add(1)
			continue
		}
		// Hold the connection a little, as a request would, so that the
		// workers compete for the slots.
		time.Sleep(time.Millisecond)
		h.Release()
		st.ok.Add(1)
	}
}

// printStats prints the pool's totals and a table of its backends.
func printStats(out io.Writer, since time.Duration, st pool.Stats, ls *loadStats, killed *server) {
	fmt.Fprintf(out, "t=%-6v pool %s: %d slots, %d claimed, %d waiting; claims %d, echoed %d, I/O errors %d, failed claims %d\n",
		since.Round(10*time.Millisecond), st.State, st.Slots.Total, st.Slots.Claimed, st.Waiters,
		st.Claims, ls.ok.Load(), ls.ioErrors.Load(), ls.claimErrors.Load())
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "backend\tstate\tconnecting\tconnected\tclaimed\trecycling\tchecking\tfailed\tclaims\tfailures\t")
	for _, b := range st.Backends {
		state := b.State
		if b.Dead {
			state += ",dead"
		}
		name := b.Name
		if killed != nil && b.Name == killed.addr.String() {
			name += " (killed)"
		}
		s := b.Slots
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", name, state,
			s.Connecting, s.Connected, s.Claimed, s.Recycling, s.Checking, s.Failed, b.Claims, b.Failures)
	}
	tw.Flush()
	fmt.Fprintln(out)
}

// server is a loopback TCP echo server that counts its connections.
type server struct {
	ln       net.Listener
	addr     netip.AddrPort
	accepted atomic.Int64
	peak     atomic.Int64
	wg       sync.WaitGroup // the accept loop and every handler

	mu     sync.Mutex
	conns  map[net.Conn]bool
	killed bool
}

func startServer() (*server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &server{ln: ln, addr: ln.Addr().(*net.TCPAddr).AddrPort(), conns: map[net.Conn]bool{}}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // the listener is closed
			}
			s.mu.Lock()
			if s.killed {
				s.mu.Unlock()
				c.Close()
				continue
			}
			s.conns[c] = true
			s.accepted.Add(1)
			s.peak.Store(max(s.peak.Load(), int64(len(s.conns))))
			s.mu.Unlock()
			s.wg.Go(func() {
				_, _ = io.Copy(c, c) // until the client closes, or kill
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			})
		}
	})
	return s, nil
}

// busiest returns the server with the most open connections.
func busiest(servers []*server) *server {
	best, most := servers[0], -1
	for _, s := range servers {
		s.mu.Lock()
		n := len(s.conns)
		s.mu.Unlock()
		if n > most {
			best, most = s, n
		}
	}
	return best
}

// kill stops the server as a crash would: new connects are refused and
// every open connection is closed.
func (s *server) kill() {
	s.ln.Close()
	s.mu.Lock()
	s.killed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// drain stops accepting and waits, up to timeout, for the clients to close
// every connection. It returns how many were still open.
func (s *server) drain(timeout time.Duration) (int, error) {
	s.ln.Close()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return 0, nil
	case <-time.After(timeout):
		s.mu.Lock()
		open := len(s.conns)
		s.mu.Unlock()
		s.kill()
		<-done
		return open, fmt.Errorf("server %s: %d connections still open %v after the pool closed", s.addr, open, timeout)
	}
}
