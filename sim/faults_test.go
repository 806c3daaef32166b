package sim

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/qorbgo/qorb/pool"
)

// A check_fail or hang fault with a probability hits some calls, not all.
func TestProbabilisticFaults(t *testing.T) {
	r, _ := runText(t, "p-check.toml", requestScenario("10ms", "1s", `[[faults]]
at = "5s"
kind = "check_fail"
backends = ["db"]
probability = 0.2
for = "20s"
`))
	rq := r.Fleet.Requests
	if rq.Error == 0 || rq.OK == 0 {
		t.Fatalf("requests %s: want some errors among good ones", rq)
	}
	if share := float64(rq.Error) / float64(rq.OK+rq.Error); share < 0.05 || share > 0.4 {
		t.Fatalf("requests %s: %.2f failed, want about 0.2 of those made during the fault", rq, share)
	}
	r, _ = runText(t, "p-hang.toml", requestScenario("10ms", "300ms", `[[faults]]
at = "5s"
kind = "hang"
backends = ["db"]
probability = 0.1
for = "20s"
`))
	if rq := r.Fleet.Requests; rq.Timeout == 0 || rq.OK < 4*rq.Timeout || rq.Reset+rq.Error != 0 {
		t.Fatalf("requests %s: want about one in ten timed out", rq)
	}
}

// A slow fault with a ramp slows requests step by step.
func TestSlowRamp(t *testing.T) {
	r, trace := runText(t, "ramp.toml", requestScenario("10ms", "1s", `[[faults]]
at = "0s"
kind = "slow"
backends = ["db"]
factor = 21
ramp = "20s"
for = "25s"
`))
	times := r.Fleet.Requests.Times
	if times.Max != Duration(210*time.Millisecond) || times.P50 < Duration(50*time.Millisecond) || times.P50 > Duration(150*time.Millisecond) {
		t.Fatalf("request times %+v: want a median between, and a max at, ×21", times)
	}
	if !strings.Contains(trace, `"to":"slow db ×21 ramp 20s for 25s"`) {
		t.Fatal("the fault's description in the trace")
	}
}

// A partition with clients cuts only those clients off: their requests
// to the backend time out and their pools take it offline, while the
// other client goes on using it.
func TestPartitionOfSomeClients(t *testing.T) {
	r, _ := runText(t, "cut.toml", `name = "cut"
duration = "40s"
[[backends]]
name = "db"
count = 2
[[clients]]
name = "c"
count = 2
[clients.policy]
max_slots = 4
spares_wanted = 2
health_interval = "1s"
health_timeout = "100ms"
connect_timeout = "200ms"
[clients.workload]
rate = 20
hold = "10ms"
io_timeout = "500ms"
[[faults]]
at = "10s"
kind = "partition"
backends = ["db-1"]
clients = ["c-001"]
for = "20s"
[expect]
recover_within = "10s"
max_claim_errors = 0
`)
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	cut, other := r.Clients[0].Requests, r.Clients[1].Requests
	if cut.Failed() == 0 || other.Failed() != 0 {
		t.Fatalf("requests of the client cut off: %s; of the other: %s", cut, other)
	}
	if cut.Failed() > 10 {
		t.Fatalf("requests of the client cut off: %s; want its pool to stop using db-1", cut)
	}
}

// A heavy-tailed hold makes a few requests outlast the I/O timeout.
func TestHeavyTailedHold(t *testing.T) {
	r, _ := runText(t, "tail.toml", requestScenario("pareto(1ms, 1.2)", "100ms", ""))
	rq := r.Fleet.Requests
	if rq.Timeout == 0 || rq.OK < 50*rq.Timeout {
		t.Fatalf("requests %s: want a few timeouts in the tail", rq)
	}
	if rq.Times.P50 > Duration(3*time.Millisecond) {
		t.Fatalf("median request %v", rq.Times.P50)
	}
}

// A partition that loses the packets a client sends to a backend loses
// the FINs of the connections the client closes meanwhile: the server
// holds them, against its max_conns, until the partition ends. One that
// loses only the backend's packets lets the FINs through.
func TestOneWayPartitionKeepsServerConnections(t *testing.T) {
	const text = `name = "one-way"
duration = "1m"
[[backends]]
name = "db-1"
max_conns = 4
[[clients]]
name = "a"
[clients.policy]
max_slots = 4
spares_wanted = 4
health_interval = "1s"
health_timeout = "100ms"
connect_timeout = "200ms"
[[clients]]
name = "b"
start = "20s"
[clients.policy]
max_slots = 2
spares_wanted = 2
[[faults]]
at = "10s"
kind = "partition"
backends = ["db-1"]
clients = ["a"]
for = "30s"
direction = "%s"
`
	run := func(direction string, until time.Duration) *Sim {
		sc, err := Parse("one-way.toml", []byte(fmt.Sprintf(text, direction)))
		if err != nil {
			t.Fatal(err)
		}
		s, err := New(sc, Options{})
		if err != nil {
			t.Fatal(err)
		}
		s.runUntil(int64(until))
		if s.violation != nil {
			t.Fatal(s.violation)
		}
		return s
	}
	s := run(DirectionToBackends, 39*time.Second)
	b := s.backends[0]
	if b.ghosts != 4 || b.server != 4 || b.refused == 0 || s.clients[1].inst.open != 0 {
		t.Errorf("to_backends, before the end: the server keeps %d of a's closed connections, holds %d, refused %d connects; b has %d open; want 4, 4, some, 0",
			b.ghosts, b.server, b.refused, s.clients[1].inst.open)
	}
	s = run(DirectionFromBackends, 39*time.Second)
	b = s.backends[0]
	if b.ghosts != 0 || b.server != 2 || b.refused != 0 || s.clients[1].inst.open != 2 {
		t.Errorf("from_backends, before the end: the server keeps %d of a's closed connections, holds %d, refused %d connects; b has %d open; want 0, 2, 0, 2",
			b.ghosts, b.server, b.refused, s.clients[1].inst.open)
	}
	// Once the partition ends, the server lets a's old connections go:
	// it holds exactly what the clients hold.
	s = run(DirectionToBackends, 50*time.Second)
	b = s.backends[0]
	if open := s.clients[0].inst.open + s.clients[1].inst.open; b.ghosts != 0 || b.server != open || open == 0 {
		t.Errorf("to_backends, after the end: the server keeps %d closed connections and holds %d; the clients hold %d; want 0 and as many as the clients, some", b.ghosts, b.server, open)
	}
}

func TestDirectionParseErrors(t *testing.T) {
	for _, tc := range []struct{ add, want string }{
		{"[[faults]]\nat = \"1s\"\nkind = \"partition\"\nbackends = [\"db-1\"]\ndirection = \"sideways\"\n", `s.toml:14: faults[0].direction: "sideways": want both, to_backends or from_backends`},
		{"[[faults]]\nat = \"1s\"\nkind = \"crash\"\nbackends = [\"db-1\"]\ndirection = \"to_backends\"\n", `s.toml:14: faults[0].direction: only partition faults take a direction`},
	} {
		_, err := Parse("s.toml", []byte(minimal+tc.add))
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%q:\n got %v\nwant %s…", tc.add, err, tc.want)
		}
	}
}

// Recovery is judged against what DNS serves, not against what the
// pool's resolver lists: a backend added to DNS counts as recovered only
// once the pools use it, after their TTL ran out.
func TestRecoveryAgainstDNSTruth(t *testing.T) {
	r, _ := runText(t, "truth.toml", `name = "truth"
duration = "5m"
[dns]
ttl = "2m"
[[backends]]
name = "db"
count = 3
[[backends]]
name = "db-4"
unlisted = true
[[clients]]
name = "c"
[clients.policy]
max_slots = 8
spares_wanted = 8
[clients.workload]
rate = 20
[[faults]]
at = "10s"
kind = "dns_add"
backends = ["db-4"]
`)
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	rec := r.Faults[0].Recovery
	// The resolver asked at 0s and asks again when its TTL of 2m runs out:
	// db-4 is used from about 2m, 1m50s after it was added.
	if rec == nil || rec.D() < 100*time.Second || rec.D() > 115*time.Second {
		t.Fatalf("recovery after db-4 joined DNS: %v; want about 1m50s, when the pool's resolver lists it", rec)
	}
}

// A backend at its max_conns refuses connects: for a client that holds no
// connection to it, it is not there to recover to. Two clients share a
// backend that accepts one connection; the one refused recovers from a
// crash of the other backend without it.
func TestRecoveryAgainstConnectionCaps(t *testing.T) {
	r, _ := runText(t, "caps.toml", `name = "caps"
duration = "2m"
[[backends]]
name = "db-1"
[[backends]]
name = "db-2"
max_conns = 1
[[clients]]
name = "c"
count = 2
[clients.policy]
max_slots = 2
spares_wanted = 2
max_slots_per_backend = 1
[clients.workload]
rate = 10
[[faults]]
at = "30s"
kind = "crash"
backends = ["db-1"]
for = "10s"
[expect]
recover_within = "5s"
`)
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if r.Backends[1].Refused == 0 {
		t.Fatalf("db-2 refused no connect: %+v", r.Backends[1])
	}
}

// zeroBackoff reconnects at once.
type zeroBackoff struct{}

func (zeroBackoff) Delay(int, *rand.Rand) time.Duration { return 0 }

// A pool whose backoff lets slots reconnect at once storms a backend that
// is down: the connect-storm invariant stops the run, whatever the
// Backoff says of itself. The default backoff, and a short BackoffMin,
// stay within the bound.
func TestConnectStormIsAnInvariant(t *testing.T) {
	const text = `name = "storm"
duration = "1m"
[[backends]]
name = "db"
count = 2
[[clients]]
name = "c"
[clients.policy]
backoff_min = "%s"
[clients.workload]
rate = 20
[[faults]]
at = "10s"
kind = "crash"
backends = ["db-1"]
for = "30s"
`
	sc, err := Parse("storm.toml", []byte(fmt.Sprintf(text, "20ms")))
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(sc, Options{Policy: func(_ string, p pool.Policy) pool.Policy { p.Backoff = zeroBackoff{}; return p }})
	if err != nil {
		t.Fatal(err)
	}
	if r.Violation == nil || r.Violation.Invariant != "connect-storm" {
		t.Fatalf("a zero backoff against a crashed backend: %v; want connect-storm", r.Violation)
	}
	t.Log(r.Violation)
	for _, min := range []string{"20ms", "1ms", "1us"} {
		if r, _ := runText(t, "storm.toml", fmt.Sprintf(text, min)); r.Err() != nil {
			t.Errorf("backoff_min %s: %v", min, r.Err())
		}
	}
}

// A kill's end is when its clients are back, At+Down: recovery is timed
// from then, not from the kill (which charged a correct policy the whole
// time its clients were down).
func TestKillEndsWhenItsClientsAreBack(t *testing.T) {
	f := Fault{Kind: FaultKill, At: Duration(time.Minute), Down: Duration(5 * time.Second), Linger: Duration(time.Minute)}
	if got := f.End(); got != time.Minute+5*time.Second {
		t.Fatalf("kill at 1m, down 5s: ends %v, want 1m5s", got)
	}
}
