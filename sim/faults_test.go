package sim

import (
	"strings"
	"testing"
	"time"
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
