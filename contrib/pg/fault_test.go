package pg_test

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/qorbgo/qorb/contrib/pg"
	"github.com/qorbgo/qorb/pool"
)

// recoveryBound is how soon a restarted server must hold its share of the
// pool's connections again: the longest backoff (the server's slots may
// have backed off to BackoffMax), its jitter, two rebalances, and a second
// for connecting and checking on a busy machine.
var recoveryBound = fastPolicy.BackoffMax + fastPolicy.BackoffJitter + 2*fastPolicy.RebalanceInterval + time.Second

// share is how many slots a server has when the pool's slots are spread
// evenly over every server.
func share(s *servers) int { return fastPolicy.MaxSlots / len(s.addrs) }

// holding counts the slots of a backend that hold a connection.
func holding(b pool.BackendStats) int {
	return b.Slots.Connected + b.Slots.Claimed + b.Slots.Recycling + b.Slots.Checking
}

// faultPool returns a pool through DNS whose connections report failed
// statements to tr, and waits until every server serves claims.
func faultPool(t *testing.T, s *servers, app string, tr *errorTracer) *pg.Pool {
	t.Helper()
	cc, err := pgx.ParseConfig(connString(app))
	if err != nil {
		t.Fatal(err)
	}
	cc.Tracer = tr
	return newPool(t, s, pg.Config{ConnConfig: cc}, fastPolicy)
}

// killAndRestart kills server i under the load l, runs the load for a
// while without it, restarts it and waits until it has its share of slots
// again and serves claims. It checks that only statements in flight on the
// killed server's connections failed, and returns those failed statements
// and the recovery time.
func killAndRestart(t *testing.T, s *servers, p *pg.Pool, l *load, tr *errorTracer, i int) (failed int64, recovery time.Duration) {
	t.Helper()
	onlineAll(t, s, p)
	// Wait until the server holds its share, so that the bound below is
	// its steady number of connections.
	waitFor(t, 10*time.Second, "the server holds its share", func() bool {
		return backendStats(t, s, p.Stats(), i).Slots.Total >= share(s)
	})
	before := p.Stats()
	conns := backendStats(t, s, before, i).Slots.Total
	failedBefore := l.stmtFailed.Load()
	traced := tr.counts()

	killed := time.Now()
	s.kill(t, i)
	// The load runs on the other servers until the pool has dropped every
	// connection of the killed one.
	waitFor(t, 10*time.Second, "the killed server's connections dropped", func() bool {
		return holding(backendStats(t, s, p.Stats(), i)) == 0
	})
	dropped := time.Since(killed)
	// It stays down until the pool holds it dead and its probe slot has
	// failed six more times (20ms doubling six times passes BackoffMax), so
	// that the restart meets the longest retry delay.
	claimsWithout := p.Stats().Claims
	var deadAt uint64
	waitFor(t, 15*time.Second, "the killed server dead, its probe at the longest backoff", func() bool {
		b := backendStats(t, s, p.Stats(), i)
		if b.Dead && deadAt == 0 {
			deadAt = b.Failures
		}
		return deadAt > 0 && b.Failures >= deadAt+6
	})
	down := time.Since(killed)
	if served := p.Stats().Claims - claimsWithout; served < 100 {
		t.Errorf("the other servers served %d claims in the %v the server was down", served, down)
	}

	s.start(t, i)

	claimsAt := backendStats(t, s, p.Stats(), i).Claims
	recovery = waitFor(t, 2*recoveryBound, "the restarted server serves its share", func() bool {
		b := backendStats(t, s, p.Stats(), i)
		return b.State == "online" && holding(b) >= share(s) && b.Claims > claimsAt
	})
	failed = l.stmtFailed.Load() - failedBefore

	t.Logf("server %d (%v): %d connections before the kill; %d failed statements; connections dropped %v after the kill began; "+
		"down %v; spread back %v after the restart (bound %v)",
		i, s.addrs[i], conns, failed, dropped.Round(time.Millisecond), down.Round(time.Millisecond),
		recovery.Round(time.Millisecond), recoveryBound)
	if recovery > recoveryBound {
		t.Errorf("server %d took %v to get its share back, above the bound %v", i, recovery, recoveryBound)
	}
	if failed > int64(conns) {
		t.Errorf("%d statements failed, more than the %d connections the killed server had", failed, conns)
	}
	for port, n := range tr.counts() {
		if n != traced[port] && port != s.addrs[i].Port() {
			t.Errorf("%d statements failed on port %d, a server that was not killed", n-traced[port], port)
		}
	}
	return failed, recovery
}

// One server killed under load (pg_ctl stop -m immediate): no claim fails,
// the statements that fail are those in flight on its connections, and
// after its restart the pool spreads back to it within the backoff bound.
func TestKillUnderLoad(t *testing.T) {
	s := needDNS(t)
	s.restartAllAtEnd(t)
	newTable(t, s, "qorb_kill")
	tr := &errorTracer{}
	p := faultPool(t, s, "qorb-kill", tr)

	l := startLoad(p, "qorb_kill", 16, 400_000, 60*time.Second)
	failed, recovery := killAndRestart(t, s, p, l, tr, 1)
	l.stop()

	st := p.Stats()
	t.Logf("kill: %v; %d failed statements while the server was down; recovery %v; pool: %d claims, %d discards, %d failures",
		l, failed, recovery.Round(time.Millisecond), st.Claims, st.Discards, st.Failures)
	if n := l.claimFailed.Load(); n != 0 {
		t.Errorf("%d claims failed; first errors: %v", n, l.firstErrors())
	}
	noClaimErrors(t, st)
	if l.ok.Load() == 0 {
		t.Fatal("no operation succeeded")
	}
	checkRows(t, s, "qorb_kill", l)
}

// A rolling restart of every server, one at a time: no claim fails.
func TestRollingRestart(t *testing.T) {
	s := needDNS(t)
	s.restartAllAtEnd(t)
	newTable(t, s, "qorb_roll")
	tr := &errorTracer{}
	p := faultPool(t, s, "qorb-roll", tr)

	l := startLoad(p, "qorb_roll", 16, 1_000_000, 90*time.Second)
	var worst time.Duration
	for i := range s.addrs {
		_, rec := killAndRestart(t, s, p, l, tr, i)
		worst = max(worst, rec)
	}
	l.stop()

	st := p.Stats()
	t.Logf("rolling restart: %v; slowest recovery %v; pool: %d claims, %d discards, %d failures",
		l, worst.Round(time.Millisecond), st.Claims, st.Discards, st.Failures)
	if n := l.claimFailed.Load(); n != 0 {
		t.Errorf("%d claims failed; first errors: %v", n, l.firstErrors())
	}
	noClaimErrors(t, st)
	checkRows(t, s, "qorb_roll", l)
}

// checkRows checks that every acknowledged insert is on the servers, no
// more rows than those plus the ones whose operation failed, and none of
// the transactions left open.
func checkRows(t *testing.T, s *servers, table string, l *load) {
	t.Helper()
	got := s.sum(t, "select count(*) from "+table)
	lo, hi := l.inserted.Load(), l.inserted.Load()+l.maybe.Load()
	if got < lo || got > hi {
		t.Errorf("%d rows on the servers; want between %d (acknowledged) and %d (and those of failed operations)", got, lo, hi)
	}
	if got := s.sum(t, "select count(*) from "+table+" where worker < 0"); got != 0 {
		t.Errorf("%d rows of transactions left open at release were committed", got)
	}
}
