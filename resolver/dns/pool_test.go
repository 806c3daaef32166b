package dns

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/fsm"
	"github.com/qorbgo/qorb/pool"
	"github.com/qorbgo/qorb/resolver"
	"github.com/qorbgo/qorb/slotset"
)

// recordingConnector "connects" without any I/O (the addresses are never
// dialled) and counts connects and closes per backend.
type recordingConnector struct {
	mu       sync.Mutex
	connects map[backend.Name]int
	closes   map[backend.Name]int
}

type recConn struct{ b backend.Backend }

func (c *recordingConnector) Connect(ctx context.Context, b backend.Backend) (*recConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.connects[b.Name]++
	return &recConn{b}, nil
}

func (c *recordingConnector) Close(conn *recConn) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closes[conn.b.Name]++
	return nil
}

// claimAll claims n connections at once and returns their backends' names,
// releasing them after.
func claimAll(t *testing.T, p *pool.Pool[*recConn], n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var hs []*pool.Handle[*recConn]
	var got []string
	for range n {
		h, err := p.Claim(ctx)
		if err != nil {
			t.Fatalf("claim: %v (stats %+v)", err, p.Stats())
		}
		if h.Conn().b != h.Backend() {
			t.Fatalf("handle's backend %v, connection's %v", h.Backend(), h.Conn().b)
		}
		hs = append(hs, h)
		got = append(got, string(h.Backend().Name))
	}
	for _, h := range hs {
		h.Release()
	}
	return got
}

func TestPoolOverDNS(t *testing.T) {
	z := startZoneServer(t, zonePath)
	r := newResolver(t, "_many._tcp.example.test.", Config{}, z)
	mock := clock.NewMock()
	resolved := make(chan struct{}, 16)
	newOnline := make(chan struct{}, 1)
	var traceMu sync.Mutex
	var trace []string
	t.Cleanup(func() {
		if t.Failed() {
			traceMu.Lock()
			defer traceMu.Unlock()
			for _, l := range trace {
				t.Log(l)
			}
		}
	})
	obs := fsm.ObserverFunc(func(tr fsm.Transition) {
		traceMu.Lock()
		trace = append(trace, tr.String())
		traceMu.Unlock()
		if st, ok := slotset.Kind.Step(tr); ok && tr.ID == "new.example.test.@192.0.2.7:5006" && st.To == slotset.Online {
			select {
			case newOnline <- struct{}{}:
			default:
			}
		}
		if st, ok := resolver.Kind.Step(tr); ok && st.To == resolver.Resolved {
			select {
			case resolved <- struct{}{}:
			default:
			}
		}
	})
	conn := &recordingConnector{connects: map[backend.Name]int{}, closes: map[backend.Name]int{}}
	p, err := pool.New(r, conn, pool.Policy{}, pool.WithClock(mock), pool.WithObserver(obs), pool.WithStrict(true))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := p.Close(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	<-resolved

	for _, name := range claimAll(t, p, 8) {
		if !slices.Contains(manySet, name) {
			t.Fatalf("claim landed on %s, which DNS does not list", name)
		}
	}
	if st := p.Stats().Resolver; st.State != "resolved" || !slices.Equal(names(st.Backends), manySet) {
		t.Fatalf("pool's resolver stats %+v", st)
	}

	// v6 leaves, new arrives; the others stay and keep their connections.
	z.set("_many._tcp", typeSRV,
		"_many._tcp SRV 0 0 5001 v4", "_many._tcp SRV 0 0 5003 dual", "_many._tcp SRV 0 0 5006 new")
	z.set("new", typeA, "new A 192.0.2.7")
	newSet := []string{
		"dual.example.test.@192.0.2.3:5003",
		"dual.example.test.@[2001:db8::3]:5003",
		"new.example.test.@192.0.2.7:5006",
		"v4.example.test.@192.0.2.1:5001",
	}
	// Past the TTL (30s) and its jitter. When the loop's own wake-up runs
	// after the mock has passed its deadline, it runs what is due at once.
	mock.Add(40 * time.Second)
	<-resolved
	if st := p.Stats().Resolver; !slices.Equal(names(st.Backends), newSet) {
		t.Fatalf("after the change the resolver lists %v", names(st.Backends))
	}
	<-newOnline
	seen := map[string]bool{}
	for _, name := range claimAll(t, p, 8) {
		if !slices.Contains(newSet, name) {
			t.Fatalf("after the change a claim landed on %s", name)
		}
		seen[name] = true
	}
	if !seen["new.example.test.@192.0.2.7:5006"] {
		t.Errorf("no claim landed on the new backend: %v", seen)
	}
	// A backend whose name stayed is the same backend to the pool: its
	// slot set (and so its connections) is never removed; the one that
	// left DNS is drained.
	traceMu.Lock()
	removed := map[string]bool{}
	for _, l := range trace {
		if strings.Contains(l, "--remove-->") {
			removed[l[strings.Index(l, "set[")+4:strings.Index(l, "] ")]] = true
		}
	}
	traceMu.Unlock()
	if len(removed) != 1 || !removed["v6.example.test.@[2001:db8::6]:5002"] {
		t.Errorf("removed slot sets: %v, want only v6's", removed)
	}
	for _, b := range p.Stats().Backends {
		if !slices.Contains(newSet, string(b.Name)) && b.Slots.Total > 0 {
			t.Errorf("removed backend %s still has slots: %+v", b.Name, b.Slots)
		}
	}
}
