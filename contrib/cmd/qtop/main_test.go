package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/qorbgo/qorb/connector/tcp"
	"github.com/qorbgo/qorb/pool"
	"github.com/qorbgo/qorb/resolver"
	"github.com/qorbgo/qorb/statshttp"
)

// runMainEnv makes the test binary run qtop itself, so that the tmux test
// needs no build of its own.
const runMainEnv = "QTOP_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	goleak.VerifyTestMain(m)
}

// deadline bounds every wait in these tests.
const deadline = 10 * time.Second

// echoServer is a loopback TCP echo server that a test can kill.
type echoServer struct {
	ln    net.Listener
	addr  netip.AddrPort
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]bool
	dead  bool
}

func startEcho(t *testing.T) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &echoServer{ln: ln, addr: ln.Addr().(*net.TCPAddr).AddrPort(), conns: map[net.Conn]bool{}}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			if s.dead {
				s.mu.Unlock()
				c.Close()
				continue
			}
			s.conns[c] = true
			s.mu.Unlock()
			s.wg.Go(func() { _, _ = io.Copy(c, c); c.Close() })
		}
	})
	t.Cleanup(s.kill)
	return s
}

// kill stops the server as a crash would: connects are refused and open
// connections closed.
func (s *echoServer) kill() {
	s.ln.Close()
	s.mu.Lock()
	s.dead = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// echoCheck is a health check: a one-byte round trip.
func echoCheck(_ context.Context, c net.Conn) error {
	if _, err := c.Write([]byte{'?'}); err != nil {
		return err
	}
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return err
	}
	return nil
}

// servePools starts a pool named name over servers, with a few workers
// claiming, echoing and releasing until the test ends, and serves its
// stats on a loopback HTTP server whose URL it returns.
func servePools(t *testing.T, name string, servers ...*echoServer) string {
	t.Helper()
	conn, err := tcp.New(tcp.Config{DialTimeout: time.Second, Validate: echoCheck})
	if err != nil {
		t.Fatal(err)
	}
	var addrs []netip.AddrPort
	for _, s := range servers {
		addrs = append(addrs, s.addr)
	}
	p, err := pool.New(resolver.NewFixed(addrs...), conn, pool.Policy{
		MaxSlots: 6, MaxSlotsPerBackend: 6, SparesWanted: 3,
		ClaimTimeout: 2 * time.Second, ConnectTimeout: time.Second,
		HealthInterval: 100 * time.Millisecond, HealthTimeout: 500 * time.Millisecond,
		BackoffMax: 500 * time.Millisecond,
	}, pool.WithName(name))
	if err != nil {
		t.Fatal(err)
	}
	h := statshttp.New(statshttp.Config{})
	if err := h.Add(name, p); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { work(ctx, p) })
	}
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		h.Close()
		srv.Close()
		closeCtx, cancelClose := context.WithTimeout(context.Background(), deadline)
		defer cancelClose()
		if err := p.Close(closeCtx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return srv.URL
}

// work claims, echoes and releases until ctx ends, at most a million
// times, pausing a millisecond between claims.
func work(ctx context.Context, p *pool.Pool[net.Conn]) {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for range 1_000_000 {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		h, err := p.Claim(ctx)
		if err != nil {
			continue
		}
		if err := h.Conn().SetDeadline(time.Now().Add(time.Second)); err != nil {
			h.Discard(err)
			continue
		}
		if err := echoCheck(ctx, h.Conn()); err != nil {
			h.Discard(err)
			continue
		}
		h.Release()
	}
}

// TestBadInput: a broken endpoint, a server that is not one, an unknown
// pool and bad arguments get clear errors and a non-zero exit.
func TestBadInput(t *testing.T) {
	url := servePools(t, "echo", startEcho(t))
	refused := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}()
	notQorb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintln(w, "<html>hello</html>")
	}))
	defer notQorb.Close()
	wrongJSON := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintln(w, `{"hello": "world"}`)
	}))
	defer wrongJSON.Close()

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{refused}, 1, `qtop: Get "http://` + refused + `/pools": dial tcp ` + refused + `: connect: connection refused`},
		{[]string{notQorb.URL}, 1, `qtop: GET ` + notQorb.URL + `/pools: got "text/html", not JSON: not a qorb stats endpoint (body: "<html>hello</html>")`},
		{[]string{wrongJSON.URL}, 1, "qtop: GET " + wrongJSON.URL + "/pools: the answer has no snapshot time: not a qorb stats endpoint"},
		{[]string{url + "/debug"}, 1, "qtop: GET " + url + "/debug/pools: 404 Not Found: statshttp: no route GET /debug/pools"},
		{[]string{"-pool", "nope", url}, 1, `qtop: ` + url + ` serves no pool named "nope"; pools: echo`},
		{[]string{"ftp://127.0.0.1"}, 1, `qtop: endpoint "ftp://127.0.0.1": want http://host:port[/path] of a qorb stats endpoint`},
		{[]string{}, 2, "usage: qtop [flags] URL"},
		{[]string{"a", "b"}, 2, "usage: qtop [flags] URL"},
		{[]string{"-interval", "0s", url}, 2, "usage: qtop [flags] URL"},
		{[]string{"-nonsense", url}, 2, "flag provided but not defined: -nonsense"},
	} {
		var out, errOut bytes.Buffer
		code := run(tc.args, strings.NewReader(""), &out, &errOut)
		if code != tc.code || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("qtop %v: exit %d, stderr %q; want %d and %q", tc.args, code, errOut.String(), tc.code, tc.want)
		}
		if out.Len() != 0 {
			t.Errorf("qtop %v wrote to stdout: %q", tc.args, out.String())
		}
	}
}

// TestStart reads a real endpoint: the first snapshot is in the model, and
// a bare host:port works.
func TestStart(t *testing.T) {
	url := servePools(t, "echo", startEcho(t), startEcho(t))
	m, err := start(strings.TrimPrefix(url, "http://"), time.Second, deadline, "echo")
	if err != nil {
		t.Fatal(err)
	}
	p, ok := m.last["echo"]
	if !ok || m.cur != "echo" || len(p.Backends) != 2 || p.At.IsZero() || m.endpoint != url {
		t.Fatalf("model after start: cur %q endpoint %q pool %+v", m.cur, m.endpoint, p)
	}
	// A second read through the model's own fetch gives a rate.
	m = m.withSnapshot(m.fetch().(snapshotMsg).pools)
	if !strings.Contains(screen(m), "claims/s ") || strings.Contains(screen(m), "claims/s -") {
		t.Errorf("no claims/s after two reads:\n%s", screen(m))
	}
}
