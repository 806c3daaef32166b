package sim

import (
	"strings"
	"testing"
)

// An I/O's outcome is decided when it completes: a backend that crashes
// during a 5s connect makes that connect fail, instead of handing the pool
// a connection the backend no longer has.
func TestConnectFailsWhenTheBackendCrashesDuringIt(t *testing.T) {
	r, trace := runText(t, "crash-mid-connect.toml", `name = "crash-mid-connect"
duration = "30s"
[[backends]]
name = "db"
connect_latency = "5s"
[[clients]]
name = "c"
validate = false
[clients.policy]
max_slots = 1
spares_wanted = 1
connect_timeout = "10s"
[clients.workload]
rate = 1
hold = "1ms"
timeout = "20s"
[[faults]]
at = "1s"
kind = "crash"
backends = ["db"]
for = "1s"
`)
	first := ""
	for _, l := range strings.Split(trace, "\n") {
		if strings.Contains(l, `"id":"c/db/0"`) && strings.Contains(l, `"from":"connecting"`) {
			first = l
			break
		}
	}
	if !strings.Contains(first, `"event":"connect_err"`) || !strings.HasPrefix(first, `{"at":5.`) {
		t.Fatalf("the connect under way when its backend crashed ended with %s", first)
	}
	if r.Fleet.Claims == 0 {
		t.Fatal("no claim was served after the backend came back")
	}
}

// The simulator's claims run the acquire hook: with a backend that
// crashes, hooks fail on the connections it lost, those are discarded and
// their claimers served again from the head of the queue; nothing breaks
// an invariant and the claims that waited are served.
func TestAcquireHookInTheSimulator(t *testing.T) {
	r, trace := runText(t, "acquire.toml", `name = "acquire"
duration = "1m"
[[backends]]
name = "db"
count = 2
[[clients]]
name = "c"
acquire_hook = true
[clients.policy]
max_slots = 4
spares_wanted = 4
health_interval = "1h"
[clients.workload]
rate = 50
hold = "1ms..5ms"
timeout = "5s"
[[faults]]
at = "20s"
kind = "crash"
backends = ["db-1"]
for = "5s"
`)
	discards := strings.Count(trace, `"event":"discard"`)
	if discards == 0 {
		t.Fatal("no acquire hook failed on a connection the crashed backend lost")
	}
	if failed := r.Fleet.Errors.Failed(); failed != 0 {
		t.Fatalf("%d claims failed; the hook's failures should be retried at the head of the queue", failed)
	}
	t.Logf("%d claims, %d connections discarded by a failed acquire hook", r.Fleet.Claims, discards)
}
