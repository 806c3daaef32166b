package sim

import (
	"strings"
	"testing"
	"time"
)

// Regression tests of pool bugs the simulator found (all fixed in the
// pool): each scenario failed before its fix.

// TestPoolBugChurnWhenSparesBelowBackends: a client that wants fewer
// connections (claimed + spares) than there are backends tears down and
// reopens a connection to every backend beyond its share at each periodic
// rebalance, forever, with no fault and a steady load. The periodic
// shrink closes the last connection of a healthy backend (its want is 0);
// the backend goes offline; an offline backend gets a probe slot at once;
// the probe connects; the backend is online again with one connection the
// rebalancer does not want — until the next tick. Here one client, four
// backends, one spare: 3 connections reopened every 60s.
func TestPoolBugChurnWhenSparesBelowBackends(t *testing.T) {
	r, trace := runText(t, "churn.toml", `name = "churn"
duration = "10m"
[[backends]]
name = "db"
count = 4
[[clients]]
name = "c"
validate = false
[clients.policy]
spares_wanted = 1
[clients.workload]
rate = 1
hold = "1ms"
`)
	downs := strings.Count(trace, `"event":"down"`)
	t.Logf("%d connects in 10 minutes of steady load with 4 backends; sets went down %d times", r.Fleet.Connects, downs)
	if r.Fleet.Connects > 8 {
		t.Errorf("%d connects for a pool that needs at most 4 (one per backend): connections churn at each rebalance", r.Fleet.Connects)
	}
}

// TestPoolBugProbeBlockedByCap: a backend that (re)appears while the pool
// is at MaxSlots gets no probe slot until the next periodic rebalance, up
// to RebalanceInterval (60s) later, although the rebalancer wants one for
// it. Slots are added at once when demand grows, but fill() stops at
// MaxSlots, and the surplus idle slots of the other backend are only
// shed at the periodic tick. Here: four spares, MaxSlots 4, all on db-1;
// db-2 is listed at 10s and should be probed within its TTL (5s).
func TestPoolBugProbeBlockedByCap(t *testing.T) {
	_, trace := runText(t, "probe.toml", `name = "probe"
duration = "2m"
[dns]
ttl = "5s"
[[backends]]
name = "db-1"
[[backends]]
name = "db-2"
unlisted = true
[[clients]]
name = "c"
[clients.policy]
max_slots = 4
spares_wanted = 4
[clients.workload]
rate = 1
hold = "1ms"
[[faults]]
at = "10s"
kind = "dns_add"
backends = ["db-2"]
`)
	first := ""
	for _, l := range strings.Split(trace, "\n") {
		if strings.Contains(l, `"id":"c/db-2/`) && strings.Contains(l, `"event":"create"`) {
			first = l
			break
		}
	}
	if first == "" {
		t.Fatal("db-2 never got a slot")
	}
	s := strings.TrimPrefix(first, `{"at":`)
	at := mustFloat(t, s[:strings.IndexByte(s, ',')])
	t.Logf("db-2 listed at 10s; its first slot at %.3fs", at)
	if at > 16.5 {
		t.Errorf("db-2's first slot came %.1fs after it was listed; want within its TTL", at-10)
	}
}

// TestPoolBugWaiterStarvesBelowCap: a claimer waits out its timeout and
// fails with ErrAllClaimsUsed while the pool is below MaxSlots. The
// periodic rebalance (demand then 3) marked a claimed slot to retire at
// its release; a burst then raised demand to the cap (4 claimed, 1
// waiter), which needed no new slot while the retiring one still counted;
// when it was released and stopped, nothing compared the slots with the
// demand again, so no slot replaced it and the waiter starved. Found by
// TestPoolAgainstModel; this is its shrunk sequence.
func TestPoolBugWaiterStarvesBelowCap(t *testing.T) {
	m := newModel(t, 2, 4, 2, 1, false, 1) // 2 backends, MaxSlots 4, 2 per backend, 1 spare
	for range 4 {
		m.claim(t)
	}
	m.settle(time.Second)
	m.release(m.claims[2])
	m.release(m.claims[0])
	m.settle(58 * time.Second) // past the periodic rebalance at 60s
	for range 3 {
		m.claim(t)
	}
	m.settle(time.Second) // 4 held (the cap), 1 waiting
	m.check(t)
	m.release(m.claims[1])
	m.settle(time.Second) // the waiter should have the released capacity
	m.check(t)
}

// TestPoolBugCheckOnClaimPastDeadline: a check on claim (a Validator, a
// connection idle for over a second) was bounded by HealthTimeout only, so
// a check slower than the claim's timeout handed the connection over
// after the claim's deadline (the waiter-deadline invariant). Now the
// check ends at the deadline and the claim fails with its timeout.
func TestPoolBugCheckOnClaimPastDeadline(t *testing.T) {
	r, _ := runText(t, "check-deadline.toml", `name = "check-deadline"
duration = "1m"
[[backends]]
name = "db"
check_latency = "300ms"
[[clients]]
name = "c"
[clients.workload]
rate = 0.5
hold = "1ms"
timeout = "200ms"
`)
	t.Logf("claims %d ok, errors %+v", r.Fleet.Claims, r.Fleet.Errors)
	if r.Fleet.Errors.Failed() == 0 {
		t.Error("no claim failed: the checks on claim never outlasted the claims' deadline; the scenario tests nothing")
	}
}

// TestPoolBugCheckOnClaimRemovedBackend: a backend removed from DNS while
// a claim's check on claim ran still served that claim (the
// removed-backend invariant). Now the connection goes back unused and
// the claimer waits again at the head of the queue.
func TestPoolBugCheckOnClaimRemovedBackend(t *testing.T) {
	for _, seed := range []uint64{5, 18, 19} {
		sc, err := Parse("check-removed.toml", []byte(`name = "check-removed"
duration = "3m"
[dns]
ttl = "1s"
[[backends]]
name = "db"
count = 2
check_latency = "100ms"
[[clients]]
name = "api"
count = 4
[clients.policy]
max_slots = 4
spares_wanted = 4
[clients.workload]
rate = 4
hold = "1ms"
timeout = "2s"
[[faults]]
at = "1m"
kind = "dns_remove"
backends = ["db-2"]
`))
		if err != nil {
			t.Fatal(err)
		}
		sc.Seed = seed
		r, err := Run(sc, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if r.Violation != nil {
			t.Errorf("seed %d: %v", seed, r.Violation)
		}
	}
}

// TestPoolBugLifetimeEndsDuringAHealthCheck: a health check that was
// still running when its connection's lifetime ended took the lifetime's
// timer with it: the check's completion scheduled the next health check
// only, so the connection stayed in the pool, handed out past its
// lifetime, until the next health check (5s here). Found by policytest
// (QORB_SIM_EXPLORE=1) with a backend whose checks take 8.4ms.
func TestPoolBugLifetimeEndsDuringAHealthCheck(t *testing.T) {
	r, _ := runText(t, "lifetime-check.toml", `name = "lifetime-check"
duration = "3m"
seed = 4
[dns]
ttl = "5s"
[[backends]]
name = "db-1"
[[backends]]
name = "db-2"
check_latency = "8.4ms"
[[clients]]
name = "client-1"
[clients.policy]
spares_wanted = 3
max_slots = 8
connect_timeout = "1s"
health_interval = "5s"
health_timeout = "300ms"
max_conn_lifetime = "20s"
[clients.workload]
rate = 2
hold = "1ms"
`)
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
}

// TestPoolBugLifetimeEndsDuringACheckOnClaim: a connection whose lifetime
// ended while its check on claim ran was handed to the claimer, past its
// lifetime. Now it goes back to be replaced, and the claimer waits again
// at the head of the queue. Found by policytest (QORB_SIM_EXPLORE=3) with
// checks of 100ms and a lifetime of 2s.
func TestPoolBugLifetimeEndsDuringACheckOnClaim(t *testing.T) {
	r, _ := runText(t, "lifetime-claim.toml", `name = "lifetime-claim"
duration = "3m"
[[backends]]
name = "db-1"
check_latency = "100ms"
[[clients]]
name = "client-1"
[clients.policy]
spares_wanted = 1
max_slots = 3
max_slots_per_backend = 1
claim_timeout = "200ms"
backoff_min = "1ms"
backoff_max = "5ms"
backoff_jitter = "1ms"
max_conn_lifetime = "2s"
[clients.workload]
rate = 1
hold = "1ms"
`)
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
}
