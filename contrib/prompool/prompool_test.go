package prompool_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/qorbgo/qorb/contrib/prompool"
	"github.com/qorbgo/qorb/pool"
)

// run takes a pool over a good and a failing backend through connects,
// claims that wait, a claim that times out and releases, on a mock clock
// so that every duration is exact:
//
//	t=0      the good backend's first connect starts, the failing one fails
//	t=250ms  the connect returns; claim 1 is served at once; claim 2 waits
//	         for a second connect
//	t=350ms  that connect returns and serves claim 2 (waited 100ms);
//	         claim 1 is released (held 100ms); claim 3 is served at once;
//	         claim 4 waits in a full pool
//	t=1.35s  claim 4 times out; claims 2 and 3 are released (held 1s)
func run(t *testing.T, tr pool.Tracer, watch func(*env)) *env {
	t.Helper()
	e := newEnv(t, tr)
	watch(e)
	e.ConnectHeld(1, 250*time.Millisecond)
	h1 := e.Claim()
	e.Conn.Hold()
	ch2 := e.ClaimAsync(1)
	e.ConnectHeld(1, 100*time.Millisecond)
	r2 := <-ch2
	if r2.Err != nil {
		t.Fatal(r2.Err)
	}
	h1.Release()
	h3 := e.Claim()
	ch4 := e.ClaimAsync(1)
	e.Advance(testPolicy.ClaimTimeout)
	if r4 := <-ch4; !errors.Is(r4.Err, pool.ErrAllClaimsUsed) {
		t.Fatalf("claim 4: %v, want ErrAllClaimsUsed", r4.Err)
	}
	r2.H.Release()
	h3.Release()
	return e
}

// expected is the exposition after run, with buckets of 0.1s and 1s.
const expected = `
# HELP qorb_pool_backend_claims_total Claims served by one backend.
# TYPE qorb_pool_backend_claims_total counter
qorb_pool_backend_claims_total{backend="127.0.0.1:5432",pool="orders"} 3
qorb_pool_backend_claims_total{backend="127.0.0.1:5433",pool="orders"} 0
# HELP qorb_pool_backend_connects_total Connects started to one backend.
# TYPE qorb_pool_backend_connects_total counter
qorb_pool_backend_connects_total{backend="127.0.0.1:5432",pool="orders"} 2
qorb_pool_backend_connects_total{backend="127.0.0.1:5433",pool="orders"} 1
# HELP qorb_pool_backend_dead 1 when the backend is dead (Policy.DeadAfter failures in a row), else 0.
# TYPE qorb_pool_backend_dead gauge
qorb_pool_backend_dead{backend="127.0.0.1:5432",pool="orders"} 0
qorb_pool_backend_dead{backend="127.0.0.1:5433",pool="orders"} 1
# HELP qorb_pool_backend_failures_total Failed connects, health checks and recycles, and discarded connections, of one backend.
# TYPE qorb_pool_backend_failures_total counter
qorb_pool_backend_failures_total{backend="127.0.0.1:5432",pool="orders"} 0
qorb_pool_backend_failures_total{backend="127.0.0.1:5433",pool="orders"} 1
# HELP qorb_pool_backend_slots Slots of one backend, by state.
# TYPE qorb_pool_backend_slots gauge
qorb_pool_backend_slots{backend="127.0.0.1:5432",pool="orders",state="checking"} 0
qorb_pool_backend_slots{backend="127.0.0.1:5432",pool="orders",state="claimed"} 0
qorb_pool_backend_slots{backend="127.0.0.1:5432",pool="orders",state="connected"} 2
qorb_pool_backend_slots{backend="127.0.0.1:5432",pool="orders",state="connecting"} 0
qorb_pool_backend_slots{backend="127.0.0.1:5432",pool="orders",state="failed"} 0
qorb_pool_backend_slots{backend="127.0.0.1:5432",pool="orders",state="recycling"} 0
qorb_pool_backend_slots{backend="127.0.0.1:5433",pool="orders",state="checking"} 0
qorb_pool_backend_slots{backend="127.0.0.1:5433",pool="orders",state="claimed"} 0
qorb_pool_backend_slots{backend="127.0.0.1:5433",pool="orders",state="connected"} 0
qorb_pool_backend_slots{backend="127.0.0.1:5433",pool="orders",state="connecting"} 0
qorb_pool_backend_slots{backend="127.0.0.1:5433",pool="orders",state="failed"} 1
qorb_pool_backend_slots{backend="127.0.0.1:5433",pool="orders",state="recycling"} 0
# HELP qorb_pool_claim_errors_total Failed claims, by kind.
# TYPE qorb_pool_claim_errors_total counter
qorb_pool_claim_errors_total{kind="all_claims_used",pool="orders"} 1
qorb_pool_claim_errors_total{kind="circuit_open",pool="orders"} 0
qorb_pool_claim_errors_total{kind="closed",pool="orders"} 0
qorb_pool_claim_errors_total{kind="context",pool="orders"} 0
qorb_pool_claim_errors_total{kind="no_backends",pool="orders"} 0
qorb_pool_claim_errors_total{kind="no_backends_online",pool="orders"} 0
qorb_pool_claim_errors_total{kind="no_idle",pool="orders"} 0
qorb_pool_claim_errors_total{kind="queue_full",pool="orders"} 0
qorb_pool_claim_errors_total{kind="shed",pool="orders"} 0
# HELP qorb_pool_claims_total Claims served.
# TYPE qorb_pool_claims_total counter
qorb_pool_claims_total{pool="orders"} 3
# HELP qorb_pool_connection_create_seconds Time to open a connection (connect and first check), of successful connects.
# TYPE qorb_pool_connection_create_seconds histogram
qorb_pool_connection_create_seconds_bucket{pool="orders",le="0.1"} 1
qorb_pool_connection_create_seconds_bucket{pool="orders",le="1"} 2
qorb_pool_connection_create_seconds_bucket{pool="orders",le="+Inf"} 2
qorb_pool_connection_create_seconds_sum{pool="orders"} 0.35
qorb_pool_connection_create_seconds_count{pool="orders"} 2
# HELP qorb_pool_connection_use_seconds Time a claim held its connection, until Release or Discard.
# TYPE qorb_pool_connection_use_seconds histogram
qorb_pool_connection_use_seconds_bucket{pool="orders",le="0.1"} 1
qorb_pool_connection_use_seconds_bucket{pool="orders",le="1"} 3
qorb_pool_connection_use_seconds_bucket{pool="orders",le="+Inf"} 3
qorb_pool_connection_use_seconds_sum{pool="orders"} 2.1
qorb_pool_connection_use_seconds_count{pool="orders"} 3
# HELP qorb_pool_connection_wait_seconds Time from the start of a claim to its connection, of served claims.
# TYPE qorb_pool_connection_wait_seconds histogram
qorb_pool_connection_wait_seconds_bucket{pool="orders",le="0.1"} 3
qorb_pool_connection_wait_seconds_bucket{pool="orders",le="1"} 3
qorb_pool_connection_wait_seconds_bucket{pool="orders",le="+Inf"} 3
qorb_pool_connection_wait_seconds_sum{pool="orders"} 0.1
qorb_pool_connection_wait_seconds_count{pool="orders"} 3
# HELP qorb_pool_connections Connections by state: idle (connected, claimable) or used (claimed).
# TYPE qorb_pool_connections gauge
qorb_pool_connections{pool="orders",state="idle"} 2
qorb_pool_connections{pool="orders",state="used"} 0
# HELP qorb_pool_connections_max The most slots (open and opening connections) the pool holds: Policy.MaxSlots.
# TYPE qorb_pool_connections_max gauge
qorb_pool_connections_max{pool="orders"} 3
# HELP qorb_pool_connects_total Connects started.
# TYPE qorb_pool_connects_total counter
qorb_pool_connects_total{pool="orders"} 3
# HELP qorb_pool_failures_total Failed connects, health checks and recycles, and discarded connections.
# TYPE qorb_pool_failures_total counter
qorb_pool_failures_total{pool="orders"} 1
# HELP qorb_pool_pending_requests Claims waiting for a connection.
# TYPE qorb_pool_pending_requests gauge
qorb_pool_pending_requests{pool="orders"} 0
# HELP qorb_pool_spares_wanted Idle connections the pool tries to keep beyond those claimed: Policy.SparesWanted.
# TYPE qorb_pool_spares_wanted gauge
qorb_pool_spares_wanted{pool="orders"} 1
# HELP qorb_pool_timeouts_total Claims that failed because their deadline passed.
# TYPE qorb_pool_timeouts_total counter
qorb_pool_timeouts_total{pool="orders"} 1
# HELP qorb_pool_events_total What happened to the pool's connections and claims, by kind: the counters of Stats.
# TYPE qorb_pool_events_total counter
qorb_pool_events_total{kind="breaks",pool="orders"} 0
qorb_pool_events_total{kind="checks",pool="orders"} 0
qorb_pool_events_total{kind="closes",pool="orders"} 0
qorb_pool_events_total{kind="discards",pool="orders"} 0
qorb_pool_events_total{kind="expired",pool="orders"} 0
qorb_pool_events_total{kind="leaks",pool="orders"} 0
qorb_pool_events_total{kind="lost",pool="orders"} 0
qorb_pool_events_total{kind="misuse",pool="orders"} 0
qorb_pool_events_total{kind="overloaded",pool="orders"} 0
qorb_pool_events_total{kind="recycles",pool="orders"} 0
qorb_pool_events_total{kind="refused",pool="orders"} 0
qorb_pool_events_total{kind="resets",pool="orders"} 0
# HELP qorb_pool_resolver_errors_total Queries of the resolver that failed.
# TYPE qorb_pool_resolver_errors_total counter
qorb_pool_resolver_errors_total{pool="orders"} 0
# HELP qorb_pool_resolver_last_answer_age_seconds Seconds since the resolver's last answer, at the scrape; absent before the first.
# TYPE qorb_pool_resolver_last_answer_age_seconds gauge
qorb_pool_resolver_last_answer_age_seconds{pool="orders"} 1.35
# HELP qorb_pool_resolver_queries_total Queries the resolver made.
# TYPE qorb_pool_resolver_queries_total counter
qorb_pool_resolver_queries_total{pool="orders"} 1
# HELP qorb_pool_resolver_state 1 for the resolver machine's state (resolving, resolved, failed, stopped), 0 for the others.
# TYPE qorb_pool_resolver_state gauge
qorb_pool_resolver_state{pool="orders",state="failed"} 0
qorb_pool_resolver_state{pool="orders",state="resolved"} 1
qorb_pool_resolver_state{pool="orders",state="resolving"} 0
qorb_pool_resolver_state{pool="orders",state="stopped"} 0
# HELP qorb_pool_slots Slots (open and opening connections) by state, and their total: Stats.Slots.
# TYPE qorb_pool_slots gauge
qorb_pool_slots{pool="orders",state="checking"} 0
qorb_pool_slots{pool="orders",state="claimed"} 0
qorb_pool_slots{pool="orders",state="connected"} 2
qorb_pool_slots{pool="orders",state="connecting"} 0
qorb_pool_slots{pool="orders",state="failed"} 1
qorb_pool_slots{pool="orders",state="recycling"} 0
qorb_pool_slots{pool="orders",state="total"} 3
`

// TestCollect compares every metric, by name, against the exposition the
// run must give: nothing missing, nothing extra, every value exact.
func TestCollect(t *testing.T) {
	c := prompool.New(prompool.WithBuckets(0.1, 1))
	run(t, c, func(e *env) {
		if err := c.Watch(e.P); err != nil {
			t.Fatal(err)
		}
	})
	if err := testutil.CollectAndCompare(c, strings.NewReader(expected)); err != nil {
		t.Fatal(err)
	}
	// 20 per-backend metrics (2 backends × 10) and 47 of the pool (9 of
	// them the claim errors by kind, 7 slot counts, 12 events, 4
	// resolver states and 3 more of the resolver).
	if n := testutil.CollectAndCount(c); n != 67 {
		t.Errorf("%d metrics collected, want 67", n)
	}
}

// TestLint: the metrics pass promlint, with the default buckets and a
// prefix of the user's.
func TestLint(t *testing.T) {
	for prefix, opts := range map[string][]prompool.Option{"qorb_pool_": nil, "app_db_pool_": {prompool.WithPrefix("app_db_pool")}} {
		c := prompool.New(opts...)
		run(t, c, func(e *env) {
			if err := c.Watch(e.P); err != nil {
				t.Fatal(err)
			}
		})
		reg := prometheus.NewPedanticRegistry()
		if err := reg.Register(c); err != nil {
			t.Fatal(err)
		}
		problems, err := testutil.GatherAndLint(reg)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("lint: %s: %s", p.Metric, p.Text)
		}
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		if len(mfs) != 23 {
			t.Errorf("%d metric families gathered, want 23", len(mfs))
		}
		for _, mf := range mfs {
			if !strings.HasPrefix(mf.GetName(), prefix) {
				t.Errorf("%s lacks the prefix %s", mf.GetName(), prefix)
			}
		}
	}
}
