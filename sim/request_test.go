package sim

import (
	"strings"
	"testing"
	"time"
)

// requestScenario is one client of one backend making a claim a second,
// each holding its connection for hold, with a fault.
func requestScenario(hold, ioTimeout, fault string) string {
	return `name = "requests"
duration = "30s"
[[backends]]
name = "db"
[[clients]]
name = "c"
[clients.policy]
max_slots = 4
spares_wanted = 2
health_interval = "1s"
health_timeout = "100ms"
connect_timeout = "200ms"
[clients.workload]
rate = 20
hold = "` + hold + `"
io_timeout = "` + ioTimeout + `"
timeout = "2s"
` + fault
}

// A request on a hung backend gets no answer: the claimer waits out its
// I/O timeout, then discards the connection. The request is failed, not
// a good claim.
func TestRequestHangsUntilIOTimeout(t *testing.T) {
	r, trace := runText(t, "hang.toml", requestScenario("10ms", "700ms", `[[faults]]
at = "10s"
kind = "hang"
backends = ["db"]
for = "5s"
`))
	rq := r.Fleet.Requests
	if rq.Timeout == 0 || rq.Reset != 0 || rq.Error != 0 {
		t.Fatalf("requests %s: want timeouts only", rq)
	}
	if r.Fleet.Discards != rq.Failed() {
		t.Fatalf("%d discards, %d failed requests", r.Fleet.Discards, rq.Failed())
	}
	if rq.OK+rq.Failed() != r.Fleet.Claims {
		t.Fatalf("%d requests, %d claims served", rq.OK+rq.Failed(), r.Fleet.Claims)
	}
	if rq.Times.Max > Duration(10*time.Millisecond) {
		t.Fatalf("a good request took %v", rq.Times.Max)
	}
	if !strings.Contains(trace, `"machine":"request","id":"c","from":"","event":"failed","to":"timeout db"`) {
		t.Fatal("no failed request in the trace")
	}
	// The first failed request ends 700ms after the hang began, or later.
	i := strings.Index(trace, `"event":"failed"`)
	at := mustFloat(t, trace[strings.LastIndex(trace[:i], `{"at":`)+6:][:12])
	if at < 10.7 {
		t.Fatalf("the first request failed at %v, before the I/O timeout after the hang", at)
	}
}

// A crash fails the requests in flight at once (reset) and the claimers
// discard their connections; a slow backend makes requests slower, and a
// request slower than the I/O timeout fails at it.
func TestRequestFeelsCrashAndSlowness(t *testing.T) {
	r, _ := runText(t, "crash.toml", requestScenario("20ms..40ms", "1s", `[[faults]]
at = "10s"
kind = "crash"
backends = ["db"]
for = "5s"
`))
	if rq := r.Fleet.Requests; rq.Reset == 0 || rq.Timeout != 0 {
		t.Fatalf("requests %s: want resets", rq)
	}

	fast, _ := runText(t, "fast.toml", requestScenario("10ms", "1s", ""))
	slow, _ := runText(t, "slow.toml", requestScenario("10ms", "1s", `[[faults]]
at = "0s"
kind = "slow"
backends = ["db"]
factor = 5
`))
	if got := fast.Fleet.Requests.Times.Max; got != Duration(10*time.Millisecond) {
		t.Fatalf("requests took up to %v on a normal backend, want 10ms", got)
	}
	if got := slow.Fleet.Requests.Times.P50; got != Duration(50*time.Millisecond) {
		t.Fatalf("requests took %v at the median on a backend 5× slower, want 50ms", got)
	}
	over, _ := runText(t, "over.toml", requestScenario("10ms", "30ms", `[[faults]]
at = "0s"
kind = "slow"
backends = ["db"]
factor = 5
`))
	if rq := over.Fleet.Requests; rq.OK != 0 || rq.Timeout == 0 {
		t.Fatalf("requests %s on a backend slower than the I/O timeout: want timeouts only", rq)
	}
}

// A backend that serves errors answers requests with one: the claimer
// reports a backend error and discards.
func TestRequestErrorsOnCheckFail(t *testing.T) {
	r, _ := runText(t, "errors.toml", requestScenario("10ms", "1s", `[[faults]]
at = "10s"
kind = "check_fail"
backends = ["db"]
for = "5s"
`))
	if rq := r.Fleet.Requests; rq.Error == 0 {
		t.Fatalf("requests %s: want errors", rq)
	}
	if r.Backends[0].FailedRequests != r.Fleet.Requests.Failed() || r.Backends[0].Claims != r.Fleet.Claims {
		t.Fatalf("backend %+v, fleet %+v", r.Backends[0], r.Fleet.Requests)
	}
}

// The request outcomes have expectations of their own.
func TestRequestExpectations(t *testing.T) {
	r, _ := runText(t, "expect.toml", requestScenario("10ms", "700ms", `[[faults]]
at = "10s"
kind = "hang"
backends = ["db"]
for = "5s"
[expect]
max_failed_requests = 0
max_discards = 0
max_claim_share = { backend = "db", share = 0.5 }
`))
	got := map[string]bool{}
	for _, e := range r.Expect {
		got[e.Name] = e.OK
	}
	if got["max_failed_requests"] || got["max_discards"] || got["max_claim_share"] || len(got) != 3 {
		t.Fatalf("expectations %+v: want all three missed", r.Expect)
	}
}
