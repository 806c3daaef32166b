package connset_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/connector/tcp"
	"github.com/qorbgo/qorb/connset"
	"github.com/qorbgo/qorb/internal/echotest"
	"github.com/qorbgo/qorb/pool"
	"github.com/qorbgo/qorb/resolver"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// events records what the set reports, in order, and signals each.
type events struct {
	mu      sync.Mutex
	log     []string
	added   map[net.Conn]int
	removed map[net.Conn]int
	ch      chan string
}

func newEvents() *events {
	return &events{added: map[net.Conn]int{}, removed: map[net.Conn]int{}, ch: make(chan string, 64)}
}

func (e *events) onAdded(b backend.Backend, c net.Conn) {
	e.mu.Lock()
	e.added[c]++
	e.log = append(e.log, "added "+string(b.Name))
	e.mu.Unlock()
	e.ch <- "added " + string(b.Name)
}

func (e *events) onRemoved(b backend.Backend, c net.Conn) {
	e.mu.Lock()
	e.removed[c]++
	if e.added[c] != 1 {
		e.log = append(e.log, "removed before added: "+string(b.Name))
	}
	e.log = append(e.log, "removed "+string(b.Name))
	e.mu.Unlock()
	e.ch <- "removed " + string(b.Name)
}

func (e *events) await(t *testing.T, ctx context.Context, what string) string {
	t.Helper()
	select {
	case got := <-e.ch:
		if len(got) < len(what) || got[:len(what)] != what {
			t.Fatalf("the set reported %q; want %q…", got, what)
		}
		return got
	case <-ctx.Done():
		t.Fatalf("waiting for %q: %v", what, ctx.Err())
	}
	return ""
}

// TestConnectionSetOverTCP: a set of two over three loopback servers keeps
// one connection to each of two backends; when one backend dies, its
// connection is reported removed and replaced by one to the third; Close
// reports every connection removed, each exactly once and after it was
// added.
func TestConnectionSetOverTCP(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	a, b, c := echotest.NewServer(t), echotest.NewServer(t), echotest.NewServer(t)
	conns, err := tcp.New(tcp.Config{Validate: echotest.Check})
	if err != nil {
		t.Fatal(err)
	}
	ev := newEvents()
	set, err := connset.New(resolver.NewFixed(a.Addr(), b.Addr(), c.Addr()), backend.Connector[net.Conn](conns),
		connset.Config[net.Conn]{Target: 2, Added: ev.onAdded, Removed: ev.onRemoved,
			Policy: pool.Policy{BackoffMin: time.Millisecond, BackoffMax: 20 * time.Millisecond, BackoffJitter: time.Millisecond,
				HealthInterval: 50 * time.Millisecond, HealthTimeout: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	ev.await(t, ctx, "added")
	ev.await(t, ctx, "added")
	if st := set.State(); st != connset.Full {
		t.Fatalf("state %s with two connections; want full", st)
	}
	members := set.Members()
	if len(members) != 2 || members[0].Backend.Name == members[1].Backend.Name {
		t.Fatalf("members %+v; want two, to two backends", members)
	}
	for _, m := range members {
		if err := echotest.Check(ctx, m.Conn); err != nil {
			t.Fatalf("member to %s: %v", m.Backend.Name, err)
		}
	}

	// Kill the first member's server: the health check finds its
	// connection dead, the set removes it and takes one to the backend it
	// did not use yet.
	used := map[backend.Name]bool{members[0].Backend.Name: true, members[1].Backend.Name: true}
	for _, s := range []*echotest.Server{a, b, c} {
		if backend.FromAddr(s.Addr()).Name == members[0].Backend.Name {
			s.Kill()
		}
	}
	ev.await(t, ctx, "removed "+string(members[0].Backend.Name))
	got := ev.await(t, ctx, "added")
	if name := backend.Name(got[len("added "):]); used[name] {
		t.Fatalf("the replacement went to %s, a backend already used or dead", name)
	}
	if st := set.State(); st != connset.Full {
		t.Fatalf("state %s after the replacement; want full", st)
	}

	// A lower target closes the surplus at once; a higher one than the
	// live backends can hold leaves the set partial.
	if err := set.SetTarget(1); err != nil {
		t.Fatal(err)
	}
	ev.await(t, ctx, "removed")
	if n, st := len(set.Members()), set.State(); n != 1 || st != connset.Full {
		t.Fatalf("%d members, %s, at target 1; want 1, full", n, st)
	}
	if err := set.SetTarget(3); err != nil {
		t.Fatal(err)
	}
	ev.await(t, ctx, "added")
	if n, st := len(set.Members()), set.State(); n != 2 || st != connset.Partial {
		t.Fatalf("%d members, %s, at target 3 with two live backends; want 2, partial", n, st)
	}
	if err := set.SetTarget(0); err != connset.ErrTarget {
		t.Fatalf("SetTarget(0): %v; want ErrTarget", err)
	}

	if err := set.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if st := set.State(); st != connset.Closed {
		t.Fatalf("state %s after Close", st)
	}
	ev.mu.Lock()
	defer ev.mu.Unlock()
	for conn, n := range ev.added {
		if n != 1 || ev.removed[conn] != 1 {
			t.Errorf("a connection was added %d times and removed %d times; want once each", n, ev.removed[conn])
		}
	}
	for _, l := range ev.log {
		if len(l) > 14 && l[:14] == "removed before" {
			t.Errorf("%s", l)
		}
	}
	if len(ev.added) != 4 || len(set.Members()) != 0 {
		t.Errorf("%d connections added, %d members left after Close; want 4 and 0 (log %v)", len(ev.added), len(set.Members()), ev.log)
	}
}

func TestTargetMustBePositive(t *testing.T) {
	_, err := connset.New(resolver.NewFixed(), backend.Connector[net.Conn](nil), connset.Config[net.Conn]{})
	if err != connset.ErrTarget {
		t.Fatalf("New with no target: %v; want ErrTarget", err)
	}
}
