package pg_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/qorbgo/qorb/contrib/pg"
	"github.com/qorbgo/qorb/pool"
	"github.com/qorbgo/qorb/resolver"
)

// onePool returns a pool over the first server with policy pol, closed
// when the test ends.
func onePool(t *testing.T, s *servers, cfg pg.Config, pol pool.Policy) *pg.Pool {
	t.Helper()
	p, err := pg.New(resolver.NewFixed(s.addrs[0]), cfg, pol, pool.WithName(t.Name()))
	if err != nil {
		t.Fatal(err)
	}
	closeAtEnd(t, p)
	return p
}

// gone reports whether server process id has left the first server.
func gone(t *testing.T, s *servers, id int32) bool {
	t.Helper()
	var n int
	if err := s.admin(t, 0).QueryRow(context.Background(), "select count(*) from pg_stat_activity where pid = $1", id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 0
}

// Reset closes the idle connections at once and a claimed one when it is
// released; the pool goes on serving from new connections, and no claim
// fails.
func TestReset(t *testing.T) {
	s := needServers(t)
	p := onePool(t, s, pg.Config{ConnString: connString("qorb-reset-all")},
		pool.Policy{MaxSlots: 2, SparesWanted: 1, ClaimTimeout: 10 * time.Second, HealthInterval: time.Minute})
	ctx := context.Background()

	held := claim(t, p)
	heldPID := pid(t, held.Conn())
	other := claim(t, p)
	idlePID := pid(t, other.Conn())
	pg.Release(other, nil) // idle now

	p.Reset()
	waitFor(t, 10*time.Second, "the idle connection closed by Reset", func() bool { return gone(t, s, idlePID) })
	if gone(t, s, heldPID) {
		t.Fatal("Reset closed a claimed connection")
	}
	if _, err := held.Conn().Exec(ctx, "select 1"); err != nil {
		t.Fatalf("the claimed connection after Reset: %v", err)
	}
	pg.Release(held, nil)
	waitFor(t, 10*time.Second, "the claimed connection closed on release", func() bool { return gone(t, s, heldPID) })

	for range 4 {
		var id int32
		if err := p.QueryRow(ctx, "select pg_backend_pid()").Scan(&id); err != nil {
			t.Fatalf("a statement after Reset: %v", err)
		}
		if id == heldPID || id == idlePID {
			t.Errorf("server process %d served after Reset", id)
		}
	}
	st := p.Stats()
	if st.Resets != 1 {
		t.Errorf("Stats.Resets %d, want 1", st.Resets)
	}
	noClaimErrors(t, st)
}

// Config.AfterConnect registers an enum type and its array on every new
// connection before it is handed out: pgx then decodes the array into Go
// values (Rows.Values, a Scan into any); without it, pgx gives the
// array's text. Its context has the connect's deadline.
func TestAfterConnectRegistersTypes(t *testing.T) {
	s := needServers(t)
	admin := s.admin(t, 0)
	ctx := context.Background()
	for _, sql := range []string{"drop type if exists qorb_mood", "create type qorb_mood as enum ('sad', 'ok', 'happy')"} {
		if _, err := admin.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _, _ = s.admin(t, 0).Exec(context.Background(), "drop type if exists qorb_mood") })

	const connectTimeout = 4 * time.Second
	var calls atomic.Int64
	var noDeadline, lateDeadline atomic.Bool
	register := func(ctx context.Context, c *pgx.Conn) error {
		calls.Add(1)
		if d, ok := ctx.Deadline(); !ok {
			noDeadline.Store(true)
		} else if time.Until(d) > connectTimeout {
			lateDeadline.Store(true)
		}
		for _, name := range []string{"qorb_mood", "_qorb_mood"} {
			typ, err := c.LoadType(ctx, name)
			if err != nil {
				return err
			}
			c.TypeMap().RegisterType(typ)
		}
		return nil
	}
	pol := pool.Policy{MaxSlots: 3, SparesWanted: 3, ClaimTimeout: 10 * time.Second, ConnectTimeout: connectTimeout}
	p := onePool(t, s, pg.Config{ConnString: connString("qorb-after-connect"), AfterConnect: register}, pol)

	// Three connections at once, each registered before its first claim.
	var hs []*pg.Handle
	for range 3 {
		hs = append(hs, claim(t, p))
	}
	seen := map[int32]bool{}
	for _, h := range hs {
		var moods any
		if err := h.Conn().QueryRow(ctx, "select enum_range(null::qorb_mood)").Scan(&moods); err != nil {
			t.Errorf("scan qorb_mood[]: %v", err)
		}
		if got := fmt.Sprintf("%#v", moods); got != `[]interface {}{"sad", "ok", "happy"}` {
			t.Errorf("enum_range decoded as %s, want the registered array's values", got)
		}
		var back []string
		if err := h.Conn().QueryRow(ctx, "select $1::qorb_mood[]", []string{"happy", "sad"}).Scan(&back); err != nil ||
			!slices.Equal(back, []string{"happy", "sad"}) {
			t.Errorf("qorb_mood[] as an argument: %q, %v", back, err)
		}
		seen[pid(t, h.Conn())] = true
	}
	for _, h := range hs {
		pg.Release(h, nil)
	}
	if len(seen) != 3 || calls.Load() < 3 {
		t.Errorf("%d connections, %d AfterConnect calls; want 3 and at least 3", len(seen), calls.Load())
	}
	if noDeadline.Load() || lateDeadline.Load() {
		t.Errorf("AfterConnect's context: without a deadline %v, deadline beyond ConnectTimeout %v", noDeadline.Load(), lateDeadline.Load())
	}

	// Without the hook, pgx does not know the array type.
	plain := onePool(t, s, pg.Config{ConnString: connString("qorb-after-connect-none")}, pool.Policy{MaxSlots: 1, ClaimTimeout: 10 * time.Second})
	var moods any
	if err := plain.QueryRow(ctx, "select enum_range(null::qorb_mood)").Scan(&moods); err != nil {
		t.Fatal(err)
	}
	if _, ok := moods.(string); !ok {
		t.Errorf("without AfterConnect, enum_range decoded as %#v, want its text: the test proves nothing", moods)
	}
}

// An AfterConnect that fails, or panics, closes its connection: no session
// stays on the server, and the claim's error carries the hook's.
func TestAfterConnectFails(t *testing.T) {
	s := needServers(t)
	hookErr := errors.New("no such extension")
	for _, tc := range []struct {
		name string
		hook func(context.Context, *pgx.Conn) error
		want func(error) bool
	}{
		{"error", func(context.Context, *pgx.Conn) error { return hookErr },
			func(err error) bool { return errors.Is(err, hookErr) }},
		{"panic", func(context.Context, *pgx.Conn) error { panic("boom") },
			func(err error) bool { var pe *pool.PanicError; return errors.As(err, &pe) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app := "qorb-after-connect-" + tc.name
			var calls atomic.Int64
			hook := func(ctx context.Context, c *pgx.Conn) error {
				calls.Add(1)
				return tc.hook(ctx, c)
			}
			p := onePool(t, s, pg.Config{ConnString: connString(app), AfterConnect: hook},
				pool.Policy{MaxSlots: 1, DeadAfter: 1, ClaimTimeout: 5 * time.Second, BackoffMin: time.Hour, BackoffMax: time.Hour})
			_, err := p.Exec(context.Background(), "select 1")
			if !errors.Is(err, pool.ErrNoBackendsOnline) || !tc.want(err) {
				t.Fatalf("Exec: %v, want pool.ErrNoBackendsOnline carrying the hook's failure", err)
			}
			if calls.Load() != 1 {
				t.Errorf("%d AfterConnect calls, want 1", calls.Load())
			}
			waitFor(t, 10*time.Second, "no session left", func() bool { return s.sessions(t, app) == 0 })
		})
	}
}

// Open connects to the hosts of its connection string: a name (localhost,
// from /etc/hosts) and an address, two backends that both serve claims;
// its pool_ settings size the pool.
func TestOpenServers(t *testing.T) {
	s := needServers(t)
	a, b := s.addrs[0], s.addrs[1]
	p, err := pg.Open(fmt.Sprintf("postgres://postgres@localhost:%d,%s/postgres?sslmode=disable&connect_timeout=5"+
		"&application_name=qorb-open&pool_max_conns=4&pool_min_idle_conns=2", a.Port(), b), pool.WithName(t.Name()))
	if err != nil {
		t.Fatal(err)
	}
	closeAtEnd(t, p)
	if pol := p.EffectivePolicy(); pol.MaxSlots != 4 || pol.SparesWanted != 2 {
		t.Errorf("policy: MaxSlots %d, SparesWanted %d; want 4 and 2", pol.MaxSlots, pol.SparesWanted)
	}
	// Wait until a backend of each port holds a connection (localhost may
	// also resolve to ::1, where no server listens: a backend that stays
	// dead).
	online := func(st pool.Stats, port uint16) bool {
		for _, be := range st.Backends {
			if be.State == "online" && strings.HasSuffix(be.Name, fmt.Sprintf(":%d", port)) {
				return true
			}
		}
		return false
	}
	waitFor(t, 15*time.Second, "both hosts online", func() bool {
		st := p.Stats()
		return online(st, a.Port()) && online(st, b.Port())
	})
	names := []string{}
	for _, be := range p.Stats().Backends {
		names = append(names, be.Name)
	}
	if !slices.Contains(names, fmt.Sprintf("localhost@127.0.0.1:%d", a.Port())) || !slices.Contains(names, b.String()) {
		t.Errorf("backends %q, want localhost@127.0.0.1:%d and %v", names, a.Port(), b)
	}
	// Two claims at once go to both servers (the picker takes the backend
	// with the fewest claims).
	h1, h2 := claim(t, p), claim(t, p)
	ports := map[int32]bool{}
	for _, h := range []*pg.Handle{h1, h2} {
		var port int32
		if err := h.Conn().QueryRow(context.Background(), "select inet_server_port()").Scan(&port); err != nil {
			t.Fatal(err)
		}
		ports[port] = true
	}
	pg.Release(h1, nil)
	pg.Release(h2, nil)
	if !ports[int32(a.Port())] || !ports[int32(b.Port())] {
		t.Errorf("two claims at once answered by ports %v, want %d and %d", ports, a.Port(), b.Port())
	}
	if err := p.Ping(context.Background()); err != nil {
		t.Error(err)
	}
}

// With the defaults, a pool over one server holds one connection before
// any load (pool's defaults opened eight), and the Stat figures follow
// what the pool does.
func TestDefaultsOneServer(t *testing.T) {
	s := needServers(t)
	const app = "qorb-defaults"
	p, err := pg.Open(fmt.Sprintf("postgres://postgres@%s/postgres?sslmode=disable&application_name=%s", s.addrs[0], app),
		pool.WithName(t.Name()))
	if err != nil {
		t.Fatal(err)
	}
	closeAtEnd(t, p)
	waitFor(t, 10*time.Second, "the first connection", func() bool { return p.Stat().IdleConns() == 1 })
	st := p.Stat()
	if st.TotalConns() != 1 || st.MaxConns() != 16 || st.AcquireCount() != 0 {
		t.Errorf("before any claim: %d connections, max %d, %d acquires; want 1, 16, 0 (slots %+v)", st.TotalConns(),
			st.MaxConns(), st.AcquireCount(), st.Stats().Slots)
	}
	if n := s.sessions(t, app); n != 1 {
		t.Errorf("%d sessions on the server before any claim, want 1", n)
	}
	if err := p.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	st = p.Stat()
	if st.AcquireCount() != 1 || st.NewConnsCount() < 1 || st.EmptyAcquireCount() != 0 {
		t.Errorf("after a Ping served by the idle connection: %d acquires, %d new connections, %d empty acquires; want 1, ≥1, 0",
			st.AcquireCount(), st.NewConnsCount(), st.EmptyAcquireCount())
	}

	// Two claims at once: the second waits for a connection.
	h1 := claim(t, p)
	h2 := claim(t, p)
	st = p.Stat()
	if st.AcquiredConns() != 2 || st.AcquireCount() != 3 {
		t.Errorf("two claimed: %d acquired, %d acquires; want 2 and 3", st.AcquiredConns(), st.AcquireCount())
	}
	pg.Release(h1, nil)
	pg.Release(h2, nil)

	// A claim whose context ends while it waits is a canceled acquire.
	var held []*pg.Handle
	for range 16 {
		held = append(held, claim(t, p))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := p.Claim(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("claim beyond MaxConns: %v, want its context's deadline", err)
	}
	for _, h := range held {
		pg.Release(h, nil)
	}
	if st := p.Stat(); st.CanceledAcquireCount() != 1 || st.TotalConns() > 16 {
		t.Errorf("%d canceled acquires, %d connections; want 1 and at most 16", st.CanceledAcquireCount(), st.TotalConns())
	}
}
