package pg_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/qorbgo/qorb/contrib/pg"
	"github.com/qorbgo/qorb/pool"
	"github.com/qorbgo/qorb/resolver"
)

// newPool returns a pool over the servers found through DNS, closed when
// the test ends.
func newPool(t *testing.T, s *servers, cfg pg.Config, p pool.Policy) *pg.Pool {
	t.Helper()
	pl, err := pg.New(s.resolver(t), cfg, p, pool.WithName(t.Name()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := pl.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return pl
}

// newTable makes an empty table on every server.
func newTable(t *testing.T, s *servers, name string) {
	t.Helper()
	s.exec(t, "drop table if exists "+name)
	s.exec(t, "create table "+name+" (id bigserial primary key, worker int not null)")
	t.Cleanup(func() {
		for i := range s.addrs {
			if s.running(i) {
				_, _ = s.admin(t, i).Exec(context.Background(), "drop table if exists "+name)
			}
		}
	})
}

// onlineAll waits until every server's backend is online.
func onlineAll(t *testing.T, s *servers, p *pg.Pool) {
	t.Helper()
	waitFor(t, 15*time.Second, "every backend online", func() bool {
		st := p.Stats()
		if len(st.Backends) != len(s.addrs) {
			return false
		}
		for _, b := range st.Backends {
			if b.State != "online" || b.Slots.Connected+b.Slots.Claimed == 0 {
				return false
			}
		}
		return true
	})
}

func noClaimErrors(t *testing.T, st pool.Stats) {
	t.Helper()
	if st.ClaimErrors != (pool.ClaimErrors{}) {
		t.Errorf("pool counted failed claims: %+v", st.ClaimErrors)
	}
}

// The servers are found through DNS, and statements of every kind from
// many goroutines all succeed, spread over every server, and every
// acknowledged insert is there.
func TestLoad(t *testing.T) {
	s := needDNS(t)
	newTable(t, s, "qorb_load")
	p := newPool(t, s, pg.Config{ConnString: connString("qorb-load")}, fastPolicy)

	l := startLoad(p, "qorb_load", 16, 3000, 30*time.Second)
	l.wait()
	t.Logf("load: %v, %d rows inserted", l, l.inserted.Load())
	if l.total() != 3000 {
		t.Errorf("the workload ran %d operations, want 3000 (first errors: %v)", l.total(), l.firstErrors())
	}
	if l.claimFailed.Load() != 0 || l.stmtFailed.Load() != 0 {
		t.Errorf("%v; first errors: %v", l, l.firstErrors())
	}
	if got := s.sum(t, "select count(*) from qorb_load"); got != l.inserted.Load() {
		t.Errorf("%d rows on the servers, %d inserts acknowledged", got, l.inserted.Load())
	}
	if got := s.sum(t, "select count(*) from qorb_load where worker < 0"); got != 0 {
		t.Errorf("%d rows of transactions left open at release were committed", got)
	}

	st := p.Stats()
	noClaimErrors(t, st)
	var want []string
	for _, a := range s.addrs {
		want = append(want, a.String())
	}
	var got []string
	for _, b := range st.Backends {
		got = append(got, s.addrs[s.index(t, b.Name)].String())
		if b.Claims == 0 {
			t.Errorf("backend %s served no claim", b.Name)
		}
		t.Logf("backend %s: %d claims, %d connects, %d failures", b.Name, b.Claims, b.Connects, b.Failures)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("backends from DNS at %v, want the servers %v", got, want)
	}
	if st.Slots.Total > fastPolicy.MaxSlots {
		t.Errorf("%d slots, above MaxSlots %d", st.Slots.Total, fastPolicy.MaxSlots)
	}
}

// fixedPool returns a pool of at most one connection to the first server.
func fixedPool(t *testing.T, s *servers, cfg pg.Config) *pg.Pool {
	t.Helper()
	p, err := pg.New(resolver.NewFixed(s.addrs[0]), cfg, pool.Policy{
		SparesWanted: 1, MaxSlots: 1, ClaimTimeout: 10 * time.Second,
		BackoffMax: time.Second, HealthInterval: time.Minute,
	}, pool.WithName(t.Name()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p
}

// pid returns the server process of the connection.
func pid(t *testing.T, c *pgx.Conn) int32 {
	t.Helper()
	var id int32
	if err := c.QueryRow(context.Background(), "select pg_backend_pid()").Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// terminate ends the session of server process id on the first server
// (pg_terminate_backend) and waits until it is gone.
func terminate(t *testing.T, s *servers, id int32) {
	t.Helper()
	admin := s.admin(t, 0)
	var ok bool
	if err := admin.QueryRow(context.Background(), "select pg_terminate_backend($1)", id).Scan(&ok); err != nil || !ok {
		t.Fatalf("pg_terminate_backend(%d): %v %v", id, ok, err)
	}
	waitFor(t, 5*time.Second, "the terminated session gone", func() bool {
		var n int
		err := admin.QueryRow(context.Background(), "select count(*) from pg_stat_activity where pid = $1", id).Scan(&n)
		return err == nil && n == 0
	})
}

// claim claims a connection and checks that it is idle, not in a
// transaction.
func claim(t *testing.T, p *pg.Pool) *pg.Handle {
	t.Helper()
	h, err := p.Claim(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s := h.Conn().PgConn().TxStatus(); s != 'I' {
		t.Errorf("claimed a connection in transaction status %q, want 'I'", s)
	}
	return h
}

// A connection given back inside a transaction, or a failed one, is rolled
// back before the next claimer gets it; when the rollback fails the
// connection is closed instead.
func TestReleasedInTransaction(t *testing.T) {
	s := needServers(t)
	newTable(t, s, "qorb_tx")
	p := fixedPool(t, s, pg.Config{ConnString: connString("qorb-tx")})
	ctx := context.Background()

	t.Run("open transaction", func(t *testing.T) {
		h := claim(t, p)
		first := pid(t, h.Conn())
		if _, err := h.Conn().Exec(ctx, "begin"); err != nil {
			t.Fatal(err)
		}
		if _, err := h.Conn().Exec(ctx, "insert into qorb_tx (worker) values (1)"); err != nil {
			t.Fatal(err)
		}
		pg.Release(h, nil)

		h = claim(t, p) // the pool's one connection
		defer pg.Release(h, nil)
		if got := pid(t, h.Conn()); got != first {
			t.Fatalf("claimed server process %d, want the same connection (%d)", got, first)
		}
		var n int
		if err := h.Conn().QueryRow(ctx, "select count(*) from qorb_tx").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%d rows of the uncommitted transaction are visible, want 0", n)
		}
	})

	t.Run("failed transaction", func(t *testing.T) {
		h := claim(t, p)
		first := pid(t, h.Conn())
		if _, err := h.Conn().Exec(ctx, "begin"); err != nil {
			t.Fatal(err)
		}
		_, err := h.Conn().Exec(ctx, "select 1/0")
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "22012" {
			t.Fatalf("select 1/0: %v, want a PgError 22012", err)
		}
		if s := h.Conn().PgConn().TxStatus(); s != 'E' {
			t.Fatalf("status %q after the error, want 'E'", s)
		}
		pg.Release(h, err)

		h = claim(t, p)
		defer pg.Release(h, nil)
		if got := pid(t, h.Conn()); got != first {
			t.Errorf("claimed server process %d, want the same connection (%d)", got, first)
		}
	})

	t.Run("ClaimFunc returns inside a transaction", func(t *testing.T) {
		err := p.ClaimFunc(ctx, func(c *pgx.Conn) error {
			_, err := c.Exec(ctx, "begin; insert into qorb_tx (worker) values (2)")
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := p.QueryRow(ctx, "select count(*) from qorb_tx").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%d rows of the uncommitted transaction are visible, want 0", n)
		}
	})

	t.Run("rollback fails: the connection is closed", func(t *testing.T) {
		before := p.Stats()
		h := claim(t, p)
		first := pid(t, h.Conn())
		if _, err := h.Conn().Exec(ctx, "begin"); err != nil {
			t.Fatal(err)
		}
		// The server ends the session; the client does not know yet.
		terminate(t, s, first)
		pg.Release(h, nil)

		h = claim(t, p)
		defer pg.Release(h, nil)
		if got := pid(t, h.Conn()); got == first {
			t.Errorf("claimed the terminated session %d again", got)
		}
		after := p.Stats()
		if after.Failures <= before.Failures || after.Connects <= before.Connects {
			t.Errorf("failures %d → %d, connects %d → %d: want the failed recycle counted and a new connection",
				before.Failures, after.Failures, before.Connects, after.Connects)
		}
	})
}

// Config.ResetQuery drops session state on release, and pgx's statement
// cache still works after it; without it, session state stays.
func TestResetQuery(t *testing.T) {
	s := needServers(t)
	ctx := context.Background()
	mark := func(p *pg.Pool) string {
		t.Helper()
		h := claim(t, p)
		if _, err := h.Conn().Exec(ctx, "select set_config('qorb.mark', 'set', false)"); err != nil {
			t.Fatal(err)
		}
		// A statement with arguments: pgx prepares and caches it.
		var n int
		if err := h.Conn().QueryRow(ctx, "select $1::int + 1", 1).Scan(&n); err != nil {
			t.Fatal(err)
		}
		pg.Release(h, nil)

		h = claim(t, p)
		defer pg.Release(h, nil)
		if err := h.Conn().QueryRow(ctx, "select $1::int + 1", 2).Scan(&n); err != nil || n != 3 {
			t.Fatalf("cached statement after release: %d, %v", n, err)
		}
		var got string
		if err := h.Conn().QueryRow(ctx, "select coalesce(current_setting('qorb.mark', true), '')").Scan(&got); err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := mark(fixedPool(t, s, pg.Config{ConnString: connString("qorb-reset"), ResetQuery: "DISCARD ALL"})); got != "" {
		t.Errorf("with DISCARD ALL, the next claimer sees qorb.mark = %q, want it reset", got)
	}
	if got := mark(fixedPool(t, s, pg.Config{ConnString: connString("qorb-noreset")})); got != "set" {
		t.Errorf("without a reset query, the next claimer sees qorb.mark = %q, want \"set\"", got)
	}
}

// Errors are pgx's values; a server's error keeps the connection, a
// connection-level error discards it.
func TestErrors(t *testing.T) {
	s := needServers(t)
	newTable(t, s, "qorb_err")
	s.exec(t, "create unique index on qorb_err (worker)")
	p := fixedPool(t, s, pg.Config{ConnString: connString("qorb-err")})
	ctx := context.Background()

	if _, err := p.Exec(ctx, "insert into qorb_err (worker) values (1)"); err != nil {
		t.Fatal(err)
	}
	var first int32
	if err := p.QueryRow(ctx, "select pg_backend_pid()").Scan(&first); err != nil {
		t.Fatal(err)
	}
	_, err := p.Exec(ctx, "insert into qorb_err (worker) values (1)")
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23505" {
		t.Fatalf("duplicate insert: %v, want a PgError 23505 (unique_violation)", err)
	}
	rows, err := p.Query(ctx, "select nosuchcolumn from qorb_err")
	if !errors.As(err, &pgErr) || pgErr.Code != "42703" {
		t.Fatalf("bad query: %v, want a PgError 42703 (undefined_column)", err)
	}
	rows.Close() // closed already; must be harmless
	var n int
	if err := p.QueryRow(ctx, "select worker from qorb_err where worker = 2").Scan(&n); !errors.Is(err, pgx.ErrNoRows) {
		t.Fatalf("no row: %v, want pgx.ErrNoRows", err)
	}
	tx, err := p.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "insert into qorb_err (worker) values (1)"); !errors.As(err, &pgErr) {
		t.Fatalf("duplicate insert in a transaction: %v, want a PgError", err)
	}
	if err := tx.Commit(ctx); !errors.Is(err, pgx.ErrTxCommitRollback) {
		t.Fatalf("commit of a failed transaction: %v, want pgx.ErrTxCommitRollback", err)
	}
	if err := tx.Rollback(ctx); !errors.Is(err, pgx.ErrTxClosed) {
		t.Fatalf("rollback after commit: %v, want pgx.ErrTxClosed", err)
	}
	var again int32
	if err := p.QueryRow(ctx, "select pg_backend_pid()").Scan(&again); err != nil {
		t.Fatal(err)
	}
	if again != first {
		t.Errorf("server errors replaced the connection (process %d, then %d)", first, again)
	}
	if st := p.Stats(); st.Discards != 0 {
		t.Errorf("%d discards after server errors, want 0", st.Discards)
	}

	// The server ends the session: the next statement fails at the
	// connection level and the connection is discarded.
	terminate(t, s, first)
	if _, err := p.Exec(ctx, "select 1"); err == nil {
		t.Fatal("a statement on a terminated session succeeded")
	}
	if st := p.Stats(); st.Discards != 1 {
		t.Errorf("%d discards after a terminated session, want 1", st.Discards)
	}
	if err := p.QueryRow(ctx, "select pg_backend_pid()").Scan(&again); err != nil {
		t.Fatal(err)
	}
	if again == first {
		t.Errorf("the terminated session %d served again", first)
	}
}

// Close leaves no session on any server, also when a claim is still held.
func TestClose(t *testing.T) {
	s := needDNS(t)
	const app = "qorb-close"
	if n := s.sessions(t, app); n != 0 {
		t.Fatalf("%d sessions named %s before the test", n, app)
	}
	p, err := pg.New(s.resolver(t), pg.Config{ConnString: connString(app)}, fastPolicy, pool.WithName(t.Name()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	onlineAll(t, s, p)
	held, err := p.Claim(ctx)
	if err != nil {
		t.Fatal(err)
	}
	open := s.sessions(t, app)
	if open < int64(len(s.addrs)) {
		t.Fatalf("%d sessions named %s with every backend online, want at least %d", open, app, len(s.addrs))
	}

	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := p.Close(cctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close with a claim held: %v, want its context's deadline", err)
	}
	if _, err := p.Exec(ctx, "select 1"); !errors.Is(err, pool.ErrClosed) {
		t.Errorf("Exec after Close: %v, want pool.ErrClosed", err)
	}
	took := waitFor(t, 5*time.Second, "no session left", func() bool { return s.sessions(t, app) == 0 })
	t.Logf("close: %d sessions before, none %v after Close returned", open, took.Round(time.Millisecond))
	held.Release() // after Close forced it shut: does nothing
}

// CopyFrom and SendBatch give their connection back: with a pool of one
// connection, the next statement would otherwise wait out the claim
// timeout. A batch that begins a transaction holds it until the
// transaction ends.
func TestCopyFromAndBatch(t *testing.T) {
	s := needServers(t)
	newTable(t, s, "qorb_copy")
	p := fixedPool(t, s, pg.Config{ConnString: connString("qorb-copy")})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second) // below the claim timeout
	defer cancel()
	count := func() int {
		t.Helper()
		var n int
		if err := p.QueryRow(ctx, "select count(*) from qorb_copy").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	n, err := p.CopyFrom(ctx, pgx.Identifier{"qorb_copy"}, []string{"worker"},
		pgx.CopyFromSlice(100, func(i int) ([]any, error) { return []any{i}, nil }))
	if err != nil || n != 100 {
		t.Fatalf("CopyFrom: %d rows, %v", n, err)
	}
	if got := count(); got != 100 {
		t.Fatalf("%d rows after copying 100", got)
	}

	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	b.Queue("insert into qorb_copy (worker) values (1000)")
	br := p.SendBatch(ctx, b)
	tx := br.Tx()
	if err := br.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := count(); got != 101 {
		t.Fatalf("%d rows after a batch's transaction committed one more, want 101", got)
	}

	b = &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	b.Queue("insert into qorb_copy (worker) values (1001)")
	b.Queue("select 1/0")
	br = p.SendBatch(ctx, b)
	tx = br.Tx()
	var pgErr *pgconn.PgError
	if err := br.Close(); !errors.As(err, &pgErr) || pgErr.Code != "22012" {
		t.Fatalf("batch with 1/0: %v, want a PgError 22012", err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if got := count(); got != 101 {
		t.Fatalf("%d rows after a failed batch's transaction rolled back, want 101", got)
	}
}

// A panic in ClaimFunc's function goes on to the caller, and the
// connection, in an unknown state, is discarded.
func TestClaimFuncPanic(t *testing.T) {
	s := needServers(t)
	p := fixedPool(t, s, pg.Config{ConnString: connString("qorb-panic")})
	ctx := context.Background()
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Errorf("recovered %v, want the function's panic", r)
			}
		}()
		_ = p.ClaimFunc(ctx, func(c *pgx.Conn) error {
			if _, err := c.Exec(ctx, "begin"); err != nil {
				return err
			}
			panic("boom")
		})
	}()
	if st := p.Stats(); st.Discards != 1 {
		t.Errorf("%d discards after a panic, want 1", st.Discards)
	}
	if err := p.Ping(ctx); err != nil {
		t.Errorf("Ping after the discard: %v", err)
	}
}
