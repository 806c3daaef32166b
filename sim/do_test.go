package sim

import (
	"errors"
	"net"
	"slices"
	"testing"

	"github.com/qorbgo/qorb/pool"
)

// The errors a Do claim hands to Do's end of the claim are the errors a
// client library returns, and pool.DefaultIsBadConn takes them as it
// takes real ones: a reset and a timeout are the connection's fault, an
// error answer is the request's.
func TestDoRequestErrors(t *testing.T) {
	var ne net.Error
	if !errors.As(errIOTimeout, &ne) || !ne.Timeout() {
		t.Errorf("%v: want a net.Error that timed out", errIOTimeout)
	}
	for _, tc := range []struct {
		err                 error
		byDefault, readOnly bool
	}{
		{errConnReset, true, true},
		{errIOTimeout, true, true},
		{errAnswer, false, false},
		{errReadOnly, false, true},
		{errFoundBad, true, true},
	} {
		if got := pool.DefaultIsBadConn(tc.err); got != tc.byDefault {
			t.Errorf("DefaultIsBadConn(%v) = %v", tc.err, got)
		}
		if got := isBadConnNamed("read-only")(tc.err); got != tc.readOnly {
			t.Errorf("read-only(%v) = %v", tc.err, got)
		}
		if isBadConnNamed("never")(tc.err) || !isBadConnNamed("any-error")(tc.err) {
			t.Errorf("never or any-error got %v wrong", tc.err)
		}
	}
	if isBadConnNamed("default") != nil || isBadConnNamed("") != nil {
		t.Error("default: want the pool's own")
	}
}

// doScenario is one client of one backend making Do claims, with the
// classifier isBadConn ("" for the default) and a fault of kind on the
// backend from 10s to 15s.
func doScenario(isBadConn, kind string) string {
	return `name = "do"
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
is_bad_conn = "` + isBadConn + `"
[clients.workload]
rate = 20
hold = "10ms"
io_timeout = "700ms"
timeout = "2s"
do = true
[[faults]]
at = "10s"
kind = "` + kind + `"
backends = ["db"]
for = "5s"
`
}

// A Do claim discards its connection exactly when the policy's IsBadConn
// blames the request's error on it: after a reset or a timeout with the
// default, after an error answer only with any-error, never with never.
func TestDoClaims(t *testing.T) {
	for _, tc := range []struct {
		isBadConn, kind string
		failed          func(r Requests) uint64 // the failed requests, all of one kind
		discarded       bool
	}{
		{"default", "crash", func(r Requests) uint64 { return r.Reset }, true},
		{"default", "hang", func(r Requests) uint64 { return r.Timeout }, true},
		{"default", "check_fail", func(r Requests) uint64 { return r.Error }, false},
		{"any-error", "check_fail", func(r Requests) uint64 { return r.Error }, true},
		{"never", "crash", func(r Requests) uint64 { return r.Reset }, false},
	} {
		t.Run(tc.isBadConn+"/"+tc.kind, func(t *testing.T) {
			r, _ := runText(t, "do.toml", doScenario(tc.isBadConn, tc.kind))
			rq := r.Fleet.Requests
			n := tc.failed(rq)
			if n == 0 || n != rq.Failed() {
				t.Fatalf("requests %s: want failures of one kind", rq)
			}
			want := uint64(0)
			if tc.discarded {
				want = n
			}
			if r.Fleet.Discards != want {
				t.Fatalf("%d discards after %d failed requests; want %d", r.Fleet.Discards, n, want)
			}
		})
	}
}

// failover-do's expectation fails without its classifier: with the
// default IsBadConn a read-only answer is the request's, the old
// connections are released and serve errors to the end, exactly as with
// plain claims (the same trace).
func TestFailoverDoNeedsItsClassifier(t *testing.T) {
	sc := shipped(t)["failover-do"]
	if sc == nil {
		t.Fatal("no scenario failover-do")
	}
	run := func(do bool, isBadConn string) *Result {
		c := *sc
		c.Clients = slices.Clone(sc.Clients)
		c.Clients[0].Workload.Do, c.Clients[0].Policy.IsBadConn = do, isBadConn
		r, err := Run(&c, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	with, byDefault, plain := run(true, "read-only"), run(true, "default"), run(false, "")
	if with.Err() != nil {
		t.Fatal(with.Err())
	}
	if byDefault.Err() == nil || plain.Err() == nil {
		t.Fatalf("the expectations hold without the classifier: %d and %d failed requests",
			byDefault.Fleet.Requests.Failed(), plain.Fleet.Requests.Failed())
	}
	if byDefault.TraceHash != plain.TraceHash {
		t.Errorf("Do claims with the default IsBadConn ran otherwise than plain claims")
	}
}
