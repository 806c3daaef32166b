package pg_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/qorbgo/qorb/contrib/pg"
	"github.com/qorbgo/qorb/pool"
	"github.com/qorbgo/qorb/resolver"
)

// A server that refuses sessions beyond a limit (here a role's CONNECTION
// LIMIT 2: "too many connections for role", SQLSTATE 53300) is at its
// capacity, not down: the pool keeps the two sessions it has, never marks
// the backend dead, counts the refusals as Overloaded, and serves every
// claim from the two.
func TestTooManyConnectionsIsOverloadNotDeath(t *testing.T) {
	s := needServers(t)
	const role = "qorb_limited"
	admin := s.admin(t, 0)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := admin.Exec(ctx, "drop role if exists "+role); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "create role "+role+" login connection limit 2"); err != nil {
		t.Fatal(err)
	}
	// Registered before the pool, so that it runs after the pool closed.
	t.Cleanup(func() {
		c := s.admin(t, 0)
		_, _ = c.Exec(context.Background(), "select pg_terminate_backend(pid) from pg_stat_activity where usename = $1", role)
		_, _ = c.Exec(context.Background(), "drop role if exists "+role)
	})
	cfg := pg.Config{ConnString: fmt.Sprintf("user=%s dbname=postgres sslmode=disable connect_timeout=5 application_name=qorb-limited", role)}
	pol := fastPolicy
	pol.MaxSlots, pol.MaxSlotsPerBackend, pol.SparesWanted, pol.DeadAfter = 6, 6, 6, 1
	p, err := pg.New(resolver.NewFixed(s.addrs[0]), cfg, pol, pool.WithName(t.Name()))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	waitFor(t, 15*time.Second, "three refusals under load", func() bool { return p.Stats().Overloaded >= 3 })
	for i := range 50 {
		if _, err := p.Exec(ctx, "select 1"); err != nil {
			t.Fatalf("statement %d: %v", i, err)
		}
	}
	st := p.Stats()
	b := st.Backends[0]
	if b.Dead || st.State != "running" || b.ConsecutiveFailures != 0 || st.Lost != 0 {
		t.Errorf("backend dead %v, pool %s, %d failures in a row, %d lost: want alive, running, 0, 0", b.Dead, st.State, b.ConsecutiveFailures, st.Lost)
	}
	if open := b.Slots.Connected + b.Slots.Claimed + b.Slots.Checking + b.Slots.Recycling; b.Capacity != 2 || open != 2 {
		t.Errorf("capacity %d, open %d: want the role's limit, 2", b.Capacity, open)
	}
	var sessions int64
	if err := admin.QueryRow(ctx, "select count(*) from pg_stat_activity where usename = $1", role).Scan(&sessions); err != nil {
		t.Fatal(err)
	}
	if sessions != 2 {
		t.Errorf("%d sessions of the role, want 2", sessions)
	}
	t.Logf("overloaded %d, refused %d, capacity %d, last error %s", b.Overloaded, b.Refused, b.Capacity, b.LastError)
}
