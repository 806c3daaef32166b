package otelpool_test

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/qorbgo/qorb/contrib/internal/pooltest"
	"github.com/qorbgo/qorb/contrib/otelpool"
	"github.com/qorbgo/qorb/contrib/pg"
	"github.com/qorbgo/qorb/pool"
	"github.com/qorbgo/qorb/resolver"
)

// A *pg.Pool is a Source: Metrics observes it directly.
var _ otelpool.Source = (*pg.Pool)(nil)

// pgPool returns a pg.Pool named "pg" over addr, traced and observed by m.
func pgPool(t *testing.T, m *otelpool.Metrics, addr netip.AddrPort, conn string, pol pool.Policy) *pg.Pool {
	t.Helper()
	p, err := pg.New(resolver.NewFixed(addr), pg.Config{ConnString: conn}, pol, pool.WithName("pg"), pool.WithTracer(m))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := m.Observe(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := reg.Unregister(); err != nil {
			t.Error(err)
		}
		if err := p.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p
}

// A pg.Pool wired to Metrics, against a port where nothing listens: its
// limit and its failed claims are collected.
func TestPGPool(t *testing.T) {
	addr := pooltest.ClosedPort(t)

	reader, m := newReader(t)
	p := pgPool(t, m, addr, "user=app sslmode=disable",
		pool.Policy{MaxSlots: 5, DeadAfter: 1, ClaimTimeout: 5 * time.Second, BackoffMin: time.Hour, BackoffMax: time.Hour})
	if _, err := p.Exec(context.Background(), "select 1"); !errors.Is(err, pool.ErrNoBackendsOnline) {
		t.Fatalf("Exec: %v, want pool.ErrNoBackendsOnline", err)
	}
	c := collect(t, reader)
	pgAttr := poolAttrOf("pg")
	if got := c.int64Value(t, "db.client.connection.max", pgAttr); got != 5 {
		t.Errorf("db.client.connection.max = %d, want the policy's 5", got)
	}
	if got := c.int64Value(t, "qorb.pool.claim.errors", pgAttr, otelpool.ClaimErrorKey.String("no_backends_online")); got != 1 {
		t.Errorf("qorb.pool.claim.errors{no_backends_online} = %d, want 1", got)
	}
}

// Against a real server (QORB_PG_SERVERS, as contrib/pg's tests): the
// waits of served claims are recorded.
func TestPGPoolServer(t *testing.T) {
	addr := pooltest.PGServer(t)
	reader, m := newReader(t)
	p := pgPool(t, m, addr, "user=postgres dbname=postgres sslmode=disable application_name=qorb-otelpool",
		pool.Policy{MaxSlots: 2, ClaimTimeout: 10 * time.Second})
	for range 3 {
		if _, err := p.Exec(context.Background(), "select 1"); err != nil {
			t.Fatal(err)
		}
	}
	c := collect(t, reader)
	if got := c.histogramOf(t, "db.client.connection.wait_time", "pg").Count; got != 3 {
		t.Errorf("db.client.connection.wait_time recorded %d claims, want 3", got)
	}
}
