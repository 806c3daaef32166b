package sim

import (
	"strings"
	"testing"
	"time"
)

// countLines counts the lines of machine and event (any, when "") whose ID starts with prefix,
// at from <= at < to (seconds).
func countLines(lines []traceLine, machine, event, prefix string, from, to float64) int {
	n := 0
	for _, l := range lines {
		if l.Machine == machine && (event == "" || l.Event == event) && strings.HasPrefix(l.ID, prefix) && l.At >= from && l.At < to {
			n++
		}
	}
	return n
}

const pauseScenario = `name = "pause"
duration = "30s"
[[backends]]
name = "db"
count = 2
connect_latency = "2ms"
check_latency = "1ms"
[[clients]]
name = "api"
count = 2
[clients.policy]
health_interval = "1s"
max_slots = 4
spares_wanted = 2
[clients.workload]
rate = 20
hold = "5ms"
timeout = "1s"
[[clients]]
name = "idle"
[clients.policy]
health_interval = "1s"
max_slots = 4
spares_wanted = 2
`

// While a client is paused its timers (health checks) do not fire and its
// claims are not served; at its resume they run; the other client, and
// the world, go on meanwhile.
func TestPauseHoldsTimersAndClaims(t *testing.T) {
	r, trace := runText(t, "pause.toml", pauseScenario+`[[faults]]
at = "10s"
kind = "pause"
clients = ["api-001", "idle"]
for = "3s"
`)
	lines := parseTrace(t, strings.Split(strings.TrimSpace(trace), "\n"))
	for _, tc := range []struct {
		what     string
		machine  string
		event    string
		prefix   string
		from, to float64
		want     func(int) bool
	}{
		{"slot transitions of the paused clients during their pause", "slot", "", "api-001/", 10.000001, 13, func(n int) bool { return n == 0 }},
		{"slot transitions of the paused clients during their pause", "slot", "", "idle/", 10.000001, 13, func(n int) bool { return n == 0 }},
		{"health checks of an idle paused client at its resume", "slot", "check_due", "idle/", 13, 13.000001, func(n int) bool { return n == 2 }},
		{"claims of the paused client at its resume", "slot", "claim", "api-001/", 13, 13.000001, func(n int) bool { return n == 4 }},
		{"claims of the paused client just after its resume", "slot", "claim", "api-001/", 13, 13.5, func(n int) bool { return n > 40 }},
		{"health checks of the other client during the pause", "slot", "check_due", "api-002/", 10.000001, 13, func(n int) bool { return n > 0 }},
		{"claims of the other client during the pause", "slot", "claim", "api-002/", 10.000001, 13, func(n int) bool { return n > 30 }},
		{"the pause's start", "client", "pause", "api-001", 10, 10.000001, func(n int) bool { return n == 1 }},
		{"the resume", "client", "resume", "api-001", 13, 13.000001, func(n int) bool { return n == 1 }},
	} {
		if n := countLines(lines, tc.machine, tc.event, tc.prefix, tc.from, tc.to); !tc.want(n) {
			t.Errorf("%s: %d", tc.what, n)
		}
	}
	// The claims that arrived during the pause were served from its
	// resume on, their waits counted from their arrival: the first waited
	// nearly 3s.
	c := r.Clients[0]
	if c.Waits.Max < Duration(2500*time.Millisecond) || c.Waits.Max > Duration(3*time.Second) || c.Errors.Failed() != 0 {
		t.Errorf("paused client: longest wait %v, failed %s; want just under 3s, none failed", c.Waits.Max, c.Errors)
	}
	if o := r.Clients[1]; o.Waits.Max > Duration(10*time.Millisecond) {
		t.Errorf("the other client waited up to %v", o.Waits.Max)
	}
	if c.Pauses != 1 || c.Paused != Duration(3*time.Second) {
		t.Errorf("pauses %d, paused %v", c.Pauses, c.Paused)
	}
}

// A connect that completes in the world during the pause is seen by its
// client at the resume, with the outcome the backend gave when it
// completed: here the backend crashes after the connect succeeded, and
// the pool sees the connect succeed.
func TestPauseDeliversIOAtResume(t *testing.T) {
	_, trace := runText(t, "pause-io.toml", `name = "pause-io"
duration = "10s"
[[backends]]
name = "db"
connect_latency = "100ms"
check_latency = "1ms"
[[clients]]
name = "api"
validate = false
[[faults]]
at = "50ms"
kind = "pause"
clients = ["api"]
for = "1s"
[[faults]]
at = "500ms"
kind = "crash"
backends = ["db"]
for = "2s"
`)
	lines := parseTrace(t, strings.Split(strings.TrimSpace(trace), "\n"))
	if n := countLines(lines, "slot", "connect_ok", "api/", 0, 1.05); n != 0 {
		t.Fatalf("%d connects seen during the pause", n)
	}
	if n := countLines(lines, "slot", "connect_ok", "api/", 1.05, 1.050001); n == 0 {
		t.Fatal("no connect seen at the resume")
	}
}

// Claims queued when the pause begins whose deadlines pass during it fail
// at the resume, late, and none is served past its deadline, although the
// release of the connection they wait for came due first (the pool checks
// the deadline of a waiter at each hand-off).
func TestPauseFailsQueuedClaimsAtResume(t *testing.T) {
	r, trace := runText(t, "pause-deadline.toml", `name = "pause-deadline"
duration = "20s"
[[backends]]
name = "db"
connect_latency = "2ms"
[[clients]]
name = "api"
[clients.policy]
max_slots = 1
spares_wanted = 1
[clients.workload]
rate = 20
hold = "200ms"
timeout = "300ms"
[[faults]]
at = "5s"
kind = "pause"
clients = ["api"]
for = "2s"
`)
	c := r.Clients[0]
	if c.Errors.AllClaimsUsed == 0 || c.FailWaits.Max < Duration(1500*time.Millisecond) {
		t.Fatalf("failed %s, failed after at most %v: want claims failed late at the resume", c.Errors, c.FailWaits.Max)
	}
	lines := parseTrace(t, strings.Split(strings.TrimSpace(trace), "\n"))
	if n := countLines(lines, "claim", "error", "api", 5.000001, 7); n != 0 {
		t.Fatalf("%d claims failed during the pause", n)
	}
	if n := countLines(lines, "claim", "error", "api", 7, 7.000001); n == 0 {
		t.Fatal("no claim failed at the resume")
	}
}

func TestPauseParseErrors(t *testing.T) {
	const fault = "[[faults]]\nat = \"10s\"\nkind = \"pause\"\n"
	for _, tc := range []struct{ add, want string }{
		{fault, "s.toml:10: faults[0].for: a pause needs for: how long the clients stay paused, such as \"2s\""},
		{fault + "for = \"0s\"\n", "s.toml:13: faults[0].for: a pause needs for"},
		{fault + "for = \"2s\"\nbackends = [\"db-1\"]\n", "s.toml:14: faults[0].backends: a pause fault takes no backends"},
		{fault + "for = \"2s\"\nclients = [\"x\"]\n", `s.toml:14: faults[0].clients[0]: "x" matches no client`},
		{fault + "for = \"2s\"\nfactor = 2.0\n", "s.toml:14: faults[0].factor: only slow and load faults take a factor"},
		{fault + "for = \"2s\"\ndown = \"1s\"\n", "s.toml:14: faults[0].down: only restart, close and kill faults take down"},
		{fault + "for = \"55s\"\n", "s.toml:13: faults[0].for: the fault lasts past the end of the run: at 10s + for 55s ends at 1m5s, after 1m0s"},
	} {
		_, err := Parse("s.toml", []byte(minimal+tc.add))
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%q:\n got %v\nwant %s…", tc.add, err, tc.want)
		}
	}
	if _, err := Parse("s.toml", []byte(minimal+fault+"for = \"2s\"\n")); err != nil {
		t.Fatal(err)
	}
}

// Swarm draws pauses in about one run in two, from a stream of their own,
// each with a for of 10ms to 10s that ends within the run.
func TestSwarmDrawsPauses(t *testing.T) {
	sc := shipped(t)["backend-dies-under-load"]
	with := 0
	for seed := uint64(1); seed <= 100; seed++ {
		d := sc.Swarm(seed)
		n := 0
		for _, f := range d.Faults {
			if f.Kind != FaultPause {
				continue
			}
			n++
			if f.For < Duration(10*time.Millisecond) || f.For > Duration(10*time.Second) || f.At+f.For > d.Duration {
				t.Errorf("seed %d: pause at %v for %v", seed, f.At, f.For)
			}
		}
		if n > 0 {
			with++
			if !strings.Contains(d.Description, "pauses.") {
				t.Errorf("seed %d: the description does not count the pauses: %s", seed, d.Description)
			}
		}
	}
	if with < 30 || with > 70 {
		t.Errorf("%d of 100 draws have pauses", with)
	}
}

// countKind counts the faults of a kind.
func countKind(fs []Fault, kind string) int {
	n := 0
	for _, f := range fs {
		if f.Kind == kind {
			n++
		}
	}
	return n
}

// A fault that acts on a paused client's pool (here a restart) takes
// effect at its resume.
func TestPauseDefersRestartToResume(t *testing.T) {
	_, trace := runText(t, "pause-restart.toml", pauseScenario+`[[faults]]
at = "10s"
kind = "pause"
clients = ["api-001"]
for = "3s"
[[faults]]
at = "11s"
kind = "restart"
clients = ["api-001"]
`)
	lines := parseTrace(t, strings.Split(strings.TrimSpace(trace), "\n"))
	if n := countLines(lines, "client", "restart", "api-001", 0, 13); n != 0 {
		t.Fatalf("%d restarts during the pause", n)
	}
	if n := countLines(lines, "client", "restart", "api-001", 13, 13.000001); n != 1 {
		t.Fatalf("%d restarts at the resume", n)
	}
	if n := countLines(lines, "slot", "", "api-001#2/", 0, 14.1); n == 0 {
		t.Fatal("no new pool after the restart's down time")
	}
}

// A connect that completes in the world while its client is paused opens
// a connection its pool gets only at the resume. When a restart held for
// the same resume closes the pool first, Close cannot close what it has
// not got: the connection arrives after Close returned, and the pool
// closes it then, as its Close documents. (Found by policytest, once its
// schedules drew pauses.)
func TestPauseConnectArrivesAfterClose(t *testing.T) {
	r, trace := runText(t, "late.toml", `name = "late"
duration = "1m"
[dns]
ttl = "1s"
[[backends]]
name = "db-1"
accept_rate = 7
connect_latency = "71ms"
check_latency = "2ms"
[[clients]]
name = "client-1"
[clients.policy]
picker = "least-latency"
[clients.workload]
rate = 9
hold = "1ms"
[[clients]]
name = "client-2"
[clients.policy]
picker = "least-latency"
[clients.workload]
rate = 1
hold = "1ms"
[[faults]]
at = "1s"
kind = "pause"
for = "14s"
[[faults]]
at = "3s"
kind = "restart"
down = "27s"
`)
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(trace, `"event":"restart"`) {
		t.Fatal("no restart in the trace")
	}
}
