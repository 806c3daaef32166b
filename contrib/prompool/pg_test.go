package prompool_test

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/qorbgo/qorb/contrib/internal/pooltest"
	"github.com/qorbgo/qorb/contrib/pg"
	"github.com/qorbgo/qorb/contrib/prompool"
	"github.com/qorbgo/qorb/pool"
	"github.com/qorbgo/qorb/resolver"
)

// A *pg.Pool is a Source: the Collector watches it directly.
var _ prompool.Source = (*pg.Pool)(nil)

// gather returns the families c collects, by name.
func gather(t *testing.T, c *prompool.Collector) map[string]*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		byName[mf.GetName()] = mf
	}
	return byName
}

// pgPool returns a pg.Pool named "pg" over addr, traced and watched by c.
func pgPool(t *testing.T, c *prompool.Collector, addr netip.AddrPort, conn string, pol pool.Policy) *pg.Pool {
	t.Helper()
	p, err := pg.New(resolver.NewFixed(addr), pg.Config{ConnString: conn}, pol, pool.WithName("pg"), pool.WithTracer(c))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c.Forget("pg")
		if err := p.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if err := c.Watch(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// A pg.Pool wired to a Collector, against a port where nothing listens:
// its limits, connects and failed claims are scraped.
func TestPGPool(t *testing.T) {
	addr := pooltest.ClosedPort(t)

	c := prompool.New()
	p := pgPool(t, c, addr, "user=app sslmode=disable",
		pool.Policy{MaxSlots: 5, DeadAfter: 1, ClaimTimeout: 5 * time.Second, BackoffMin: time.Hour, BackoffMax: time.Hour})
	if _, err := p.Exec(context.Background(), "select 1"); !errors.Is(err, pool.ErrNoBackendsOnline) {
		t.Fatalf("Exec: %v, want pool.ErrNoBackendsOnline", err)
	}
	mfs := gather(t, c)
	if got := sample(t, mfs, "qorb_pool_connections_max", "pool", "pg").GetGauge().GetValue(); got != 5 {
		t.Errorf("connections_max = %v, want the policy's 5", got)
	}
	if got := sample(t, mfs, "qorb_pool_connects_total", "pool", "pg").GetCounter().GetValue(); got != 1 {
		t.Errorf("connects_total = %v, want 1", got)
	}
	if got := sample(t, mfs, "qorb_pool_claim_errors_total", "pool", "pg", "kind", "no_backends_online").GetCounter().GetValue(); got != 1 {
		t.Errorf("claim_errors_total{kind=no_backends_online} = %v, want 1", got)
	}
}

// Against a real server (QORB_PG_SERVERS, as contrib/pg's tests): served
// claims and their waits are scraped.
func TestPGPoolServer(t *testing.T) {
	addr := pooltest.PGServer(t)
	c := prompool.New()
	p := pgPool(t, c, addr, "user=postgres dbname=postgres sslmode=disable application_name=qorb-prompool",
		pool.Policy{MaxSlots: 2, ClaimTimeout: 10 * time.Second})
	for range 3 {
		if _, err := p.Exec(context.Background(), "select 1"); err != nil {
			t.Fatal(err)
		}
	}
	mfs := gather(t, c)
	if got := sample(t, mfs, "qorb_pool_claims_total", "pool", "pg").GetCounter().GetValue(); got != 3 {
		t.Errorf("claims_total = %v, want 3", got)
	}
	if got := sample(t, mfs, "qorb_pool_connection_wait_seconds", "pool", "pg").GetHistogram().GetSampleCount(); got != 3 {
		t.Errorf("connection_wait_seconds observed %d claims, want 3", got)
	}
}
