package sim

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/connector/tcp"
	"github.com/qorbgo/qorb/fsm"
	"github.com/qorbgo/qorb/internal/echotest"
	"github.com/qorbgo/qorb/pool"
	"github.com/qorbgo/qorb/resolver"
	"github.com/qorbgo/qorb/slotset"
)

// The fidelity test runs one story for real and in the simulator and
// compares them: three backends, one client making 50 one-millisecond
// requests a second over up to six connections (three spares, health
// checks every 500ms), the second backend killed at 2s (its listener and
// every connection closed) and started again at 4s, on the same port.
const fidelityScenario = `name = "fidelity"
duration = "6s"
[[backends]]
name = "db"
count = 3
connect_latency = "100us..300us"
check_latency = "50us..150us"
[[clients]]
name = "c"
[clients.policy]
max_slots = 6
spares_wanted = 3
health_interval = "500ms"
backoff_min = "20ms"
backoff_max = "1s"
[clients.workload]
rate = 50
hold = "1ms"
timeout = "2s"
io_timeout = "1s"
[[faults]]
at = "2s"
kind = "crash"
backends = ["db-2"]
for = "2s"
`

// fidelityTimes is when the killed backend went offline and came back
// online, after its kill and its restart.
type fidelityTimes struct {
	offline, online time.Duration
	failedClaims    int
}

// setWatch records when the watched set went down and up, on the real
// clock, from the start.
type setWatch struct {
	start time.Time
	name  string
	mu    sync.Mutex
	downs []time.Duration
	ups   []time.Duration
}

func (w *setWatch) Observe(t fsm.Transition) {
	st, ok := slotset.Kind.Step(t)
	if !ok || !strings.HasSuffix(t.ID, w.name) {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case st.From == slotset.Online && st.To == slotset.Offline:
		w.downs = append(w.downs, time.Since(w.start))
	case (st.From == slotset.Offline || st.From == slotset.Failing) && st.To == slotset.Online:
		w.ups = append(w.ups, time.Since(w.start))
	}
}

// runReal runs the story with a real pool, real loopback servers and the
// real clock. It takes about six seconds.
func runReal(t *testing.T) fidelityTimes {
	servers := make([]*echotest.Server, 3)
	var addrs []netip.AddrPort
	for i := range servers {
		servers[i] = echotest.NewServer(t)
		addrs = append(addrs, servers[i].Addr())
	}
	conns, err := tcp.New(tcp.Config{Validate: echotest.Check})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	w := &setWatch{start: start, name: string(backend.FromAddr(addrs[1]).Name)}
	p, err := pool.New(resolver.NewFixed(addrs...), backend.Connector[net.Conn](conns),
		pool.Policy{MaxSlots: 6, SparesWanted: 3, HealthInterval: 500 * time.Millisecond,
			BackoffMin: 20 * time.Millisecond, BackoffMax: time.Second, BackoffJitter: 20 * time.Millisecond},
		pool.WithObserver(w))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	failed := 0
	tick := time.NewTicker(20 * time.Millisecond) // 50 claims a second
	defer tick.Stop()
	killed, restarted := false, false
	for now := range tick.C {
		el := now.Sub(start)
		if el >= 6*time.Second {
			break
		}
		if !killed && el >= 2*time.Second {
			servers[1].Kill()
			killed = true
		}
		if !restarted && el >= 4*time.Second {
			servers[1].Start()
			restarted = true
		}
		h, err := p.Claim(ctx)
		if err != nil {
			failed++
			continue
		}
		if err := echotest.Check(ctx, h.Conn()); err != nil {
			h.Discard(err)
			continue
		}
		h.Release()
	}
	if err := p.Close(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.downs) == 0 || len(w.ups) < 2 {
		t.Fatalf("the killed backend went down at %v and up at %v; want down once after the kill and up again after the restart", w.downs, w.ups)
	}
	return fidelityTimes{offline: w.downs[0] - 2*time.Second, online: w.ups[len(w.ups)-1] - 4*time.Second, failedClaims: failed}
}

// runSimulated runs the story in the simulator.
func runSimulated(t *testing.T) fidelityTimes {
	r, lines := runTraced(t, mustParse(t, fidelityScenario))
	var ft fidelityTimes
	var downs, ups []time.Duration
	for _, l := range lines {
		var tl struct {
			At      float64 `json:"at"`
			Machine string  `json:"machine"`
			ID      string  `json:"id"`
			From    string  `json:"from"`
			To      string  `json:"to"`
		}
		if json.Unmarshal([]byte(l), &tl) != nil || tl.Machine != "set" || tl.ID != "c/db-2" {
			continue
		}
		at := time.Duration(tl.At * float64(time.Second))
		switch {
		case tl.From == "online" && tl.To == "offline":
			downs = append(downs, at)
		case (tl.From == "offline" || tl.From == "failing") && tl.To == "online":
			ups = append(ups, at)
		}
	}
	if len(downs) == 0 || len(ups) < 2 {
		t.Fatalf("simulated: db-2 went down at %v and up at %v", downs, ups)
	}
	ft.offline, ft.online = downs[0]-2*time.Second, ups[len(ups)-1]-4*time.Second
	ft.failedClaims = int(r.Fleet.Errors.Failed())
	return ft
}

func mustParse(t *testing.T, text string) *Scenario {
	t.Helper()
	sc, err := Parse("fidelity.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// TestFidelity runs the story for real and in the simulator and checks
// that they agree: no claim fails in either, the killed backend goes
// offline within 800ms of its kill in both (a health interval and a bit),
// within 400ms of each other, and comes back within 1.5s of its restart
// in both
// (the backoff's jitter and the health checks' phases differ between
// the runs, so the times are not expected to match exactly).
func TestFidelity(t *testing.T) {
	if testing.Short() {
		t.Skip("runs six seconds of real time")
	}
	real := runReal(t)
	sim := runSimulated(t)
	t.Logf("killed backend offline after %v for real, %v simulated; back online %v after its restart for real, %v simulated; failed claims %d, %d",
		real.offline, sim.offline, real.online, sim.online, real.failedClaims, sim.failedClaims)
	for _, c := range []struct {
		what string
		ok   bool
	}{
		{"no claim failed for real", real.failedClaims == 0},
		{"no claim failed simulated", sim.failedClaims == 0},
		{"offline within 800ms of the kill for real", real.offline >= 0 && real.offline <= 800*time.Millisecond},
		{"offline within 800ms of the kill simulated", sim.offline >= 0 && sim.offline <= 800*time.Millisecond},
		{"offline times within 400ms of each other", (real.offline - sim.offline).Abs() <= 400*time.Millisecond},
		{"back online within 1.5s of the restart for real", real.online >= 0 && real.online <= 1500*time.Millisecond},
		{"back online within 1.5s of the restart simulated", sim.online >= 0 && sim.online <= 1500*time.Millisecond},
	} {
		if !c.ok {
			t.Errorf("want %s", c.what)
		}
	}
}
