package tcp_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/connector/tcp"
)

// echoServer is a loopback TCP echo server for the tests. Its handlers
// end when the client closes its end (or stop closes the server).
type echoServer struct {
	ln     net.Listener
	addr   netip.AddrPort
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]bool
	silent bool // read but never answer
}

func startEcho(t *testing.T, silent bool) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &echoServer{ln: ln, addr: ln.Addr().(*net.TCPAddr).AddrPort(), conns: map[net.Conn]bool{}, silent: silent}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[c] = true
			s.mu.Unlock()
			s.wg.Go(func() {
				defer func() {
					s.mu.Lock()
					delete(s.conns, c)
					s.mu.Unlock()
					c.Close()
				}()
				if s.silent {
					_, _ = io.Copy(io.Discard, c)
					return
				}
				_, _ = io.Copy(c, c)
			})
		}
	})
	t.Cleanup(s.stop)
	return s
}

// stop closes the listener and every connection, and waits for the
// handlers.
func (s *echoServer) stop() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *echoServer) backend() backend.Backend { return backend.FromAddr(s.addr) }

// waitGone waits until the server has no connection open: its handlers
// saw EOF.
func (s *echoServer) waitGone(t *testing.T) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.ln.Close()
		s.wg.Wait()
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("server still has open connections")
	}
}

func newConnector(t *testing.T, cfg tcp.Config) backend.Connector[net.Conn] {
	t.Helper()
	c, err := tcp.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// roundTrip echoes msg with a deadline of its own.
func roundTrip(c net.Conn, msg string) error {
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return err
	}
	return rawRoundTrip(c, msg)
}

// rawRoundTrip echoes msg without touching the deadline, so it fails at
// once when a past deadline is left on c.
func rawRoundTrip(c net.Conn, msg string) error {
	if _, err := io.WriteString(c, msg); err != nil {
		return err
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != msg {
		return errors.New("echoed " + string(buf) + ", want " + msg)
	}
	return nil
}

// ping is a validation function that relies on the connector for its
// deadline.
func ping(_ context.Context, c net.Conn) error { return rawRoundTrip(c, ".") }

func TestValidatorOnlyWhenConfigured(t *testing.T) {
	plain := newConnector(t, tcp.Config{})
	if _, ok := plain.(backend.Validator[net.Conn]); ok {
		t.Fatal("connector without Validate implements backend.Validator")
	}
	checked := newConnector(t, tcp.Config{Validate: ping})
	if _, ok := checked.(backend.Validator[net.Conn]); !ok {
		t.Fatal("connector with Validate does not implement backend.Validator")
	}
	for _, c := range []backend.Connector[net.Conn]{plain, checked} {
		if _, ok := c.(backend.AcquireHook[net.Conn]); ok {
			t.Fatal("connector implements backend.AcquireHook")
		}
		if _, ok := c.(backend.RecycleHook[net.Conn]); ok {
			t.Fatal("connector implements backend.RecycleHook")
		}
	}
}

func TestConnectRoundTripClose(t *testing.T) {
	s := startEcho(t, false)
	conn := newConnector(t, tcp.Config{DialTimeout: time.Second, KeepAlive: -1})
	c, err := conn.Connect(context.Background(), s.backend())
	if err != nil {
		t.Fatal(err)
	}
	if got := c.RemoteAddr().String(); got != s.addr.String() {
		t.Fatalf("connected to %s, want %s", got, s.addr)
	}
	if err := roundTrip(c, "hello"); err != nil {
		t.Fatal(err)
	}
	if err := conn.Close(c); err != nil {
		t.Fatal(err)
	}
	if err := roundTrip(c, "x"); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("I/O after Close: %v, want net.ErrClosed", err)
	}
	s.waitGone(t) // the server saw EOF
	if err := conn.Close(nil); err != nil {
		t.Fatalf("Close(nil) = %v", err)
	}
}

func TestConnectErrors(t *testing.T) {
	conn := newConnector(t, tcp.Config{DialTimeout: time.Second})

	// A port nobody listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := backend.FromAddr(ln.Addr().(*net.TCPAddr).AddrPort())
	ln.Close()
	_, err = conn.Connect(context.Background(), refused)
	if !errors.Is(err, syscall.ECONNREFUSED) || !strings.Contains(err.Error(), "dial tcp "+refused.Addr.String()) {
		t.Fatalf("connect to a closed port: %v, want connection refused naming the address", err)
	}

	// A context already done.
	s := startEcho(t, false)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if c, err := conn.Connect(ctx, s.backend()); !errors.Is(err, context.Canceled) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("connect with a cancelled context: %v, want context.Canceled", err)
	}

	// A backend without an address.
	if _, err := conn.Connect(context.Background(), backend.Backend{Name: "nowhere"}); err == nil || !strings.Contains(err.Error(), `"nowhere" has no address`) {
		t.Fatalf("connect without an address: %v", err)
	}
}

func TestValidate(t *testing.T) {
	s := startEcho(t, false)
	silent := startEcho(t, true)
	boom := errors.New("boom")
	var calls int
	conn := newConnector(t, tcp.Config{Validate: func(ctx context.Context, c net.Conn) error {
		calls++
		if calls == 2 {
			return boom
		}
		return ping(ctx, c)
	}})
	v := conn.(backend.Validator[net.Conn])
	c, err := conn.Connect(context.Background(), s.backend())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(c)
	if err := v.Validate(context.Background(), c); err != nil {
		t.Fatalf("first validate: %v", err)
	}
	if err := v.Validate(context.Background(), c); !errors.Is(err, boom) {
		t.Fatalf("second validate: %v, want the function's error", err)
	}
	if err := v.Validate(context.Background(), nil); err == nil {
		t.Fatal("validate of a nil connection succeeded")
	}

	// A connection to a server that never answers: the check is bounded
	// by its context's deadline, even though the function sets none.
	mute, err := conn.Connect(context.Background(), silent.backend())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(mute)
	readOnly := newConnector(t, tcp.Config{Validate: func(ctx context.Context, c net.Conn) error {
		var b [1]byte
		_, err := c.Read(b[:])
		return err
	}}).(backend.Validator[net.Conn])
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := readOnly.Validate(ctx, mute); !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("validate past its deadline: %v", err)
	}
	// The deadline was cleared: the connection works again.
	if err := rawRoundTrip(mute, ""); err != nil {
		t.Fatal(err)
	}
	if err := rawRoundTrip(c, "after"); err != nil {
		t.Fatal(err)
	}
}

func TestValidateInterruptedByCancel(t *testing.T) {
	silent := startEcho(t, true)
	started := make(chan struct{})
	conn := newConnector(t, tcp.Config{Validate: func(ctx context.Context, c net.Conn) error {
		close(started)
		var b [1]byte
		_, err := c.Read(b[:]) // blocks: the server never answers
		return err
	}})
	c, err := conn.Connect(context.Background(), silent.backend())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(c)
	ctx, cancel := context.WithCancel(context.Background()) // no deadline
	defer cancel()
	go func() {
		<-started
		cancel()
	}()
	done := make(chan error, 1)
	go func() { done <- conn.(backend.Validator[net.Conn]).Validate(ctx, c) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("interrupted validate: %v, want context.Canceled wrapping the read error", err)
		}
	case <-time.After(5 * time.Second):
		c.Close() // unblock the read
		<-done
		t.Fatal("cancelling the context did not interrupt a blocked read")
	}
	// The deadline was cleared: a write still goes through.
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatalf("write after an interrupted validate: %v", err)
	}
	// A context already done fails at once, without calling the function.
	if err := conn.(backend.Validator[net.Conn]).Validate(ctx, c); !errors.Is(err, context.Canceled) {
		t.Fatalf("validate with a done context: %v", err)
	}
}

func TestValidateClearsStaleDeadline(t *testing.T) {
	s := startEcho(t, false)
	conn := newConnector(t, tcp.Config{Validate: ping})
	c, err := conn.Connect(context.Background(), s.backend())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(c)
	// A claimer left a deadline that has passed since.
	if err := c.SetDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := conn.(backend.Validator[net.Conn]).Validate(context.Background(), c); err != nil {
		t.Fatalf("validate after a stale deadline: %v", err)
	}
}
