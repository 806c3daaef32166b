package pg_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/qorbgo/qorb/contrib/pg"
	"github.com/qorbgo/qorb/pool"
	"github.com/qorbgo/qorb/resolver"
)

// closeAtEnd closes p when the test ends.
func closeAtEnd(t *testing.T, p *pg.Pool) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
}

// Open takes pgxpool's pool_ settings out of the connection string into
// the policy, and uses the string's hosts as the backends.
func TestOpen(t *testing.T) {
	p, err := pg.Open("postgres://app@127.0.0.1:1,127.0.0.2:2/app?sslmode=disable&application_name=web" +
		"&pool_max_conns=24&pool_min_conns=2&pool_min_idle_conns=3&pool_max_conn_lifetime=1h" +
		"&pool_max_conn_lifetime_jitter=5m&pool_max_conn_idle_time=10m&pool_health_check_period=15s")
	if err != nil {
		t.Fatal(err)
	}
	closeAtEnd(t, p)
	pol := p.EffectivePolicy()
	if pol.MaxSlots != 24 || pol.MaxSlotsPerBackend != 24 || pol.MinSlots != 2 || pol.SparesWanted != 3 ||
		pol.MaxConnLifetime != time.Hour || pol.MaxConnLifetimeJitter != 5*time.Minute ||
		pol.MaxConnIdleTime != 10*time.Minute || pol.HealthInterval != 15*time.Second {
		t.Errorf("policy %+v does not follow the pool_ settings", pol)
	}
	cfg := p.Config()
	if cfg.ConnString != "" || cfg.ConnConfig == nil {
		t.Fatalf("Config: %+v, want the parsed ConnConfig only", cfg)
	}
	for k := range cfg.ConnConfig.RuntimeParams {
		if strings.HasPrefix(k, "pool_") {
			t.Errorf("%s left in the runtime parameters sent to the server", k)
		}
	}
	if got := cfg.ConnConfig.RuntimeParams["application_name"]; got != "web" {
		t.Errorf("application_name %q, want web", got)
	}
	if cfg.CloseTimeout != pg.DefaultCloseTimeout || cfg.ServerName == nil {
		t.Errorf("Config: CloseTimeout %v, ServerName set %v; want the defaults in use", cfg.CloseTimeout, cfg.ServerName != nil)
	}
	// The configuration in use makes a pool again; changing it changes
	// nothing in the first.
	cfg.ConnConfig.RuntimeParams["application_name"] = "changed"
	if got := p.Config().ConnConfig.RuntimeParams["application_name"]; got != "web" {
		t.Errorf("changing Config's result changed the pool's: %q", got)
	}
	again, err := pg.New(resolver.NewFixed(), cfg, pool.Policy{})
	if err != nil {
		t.Fatalf("New with Config's result: %v", err)
	}
	closeAtEnd(t, again)

	st := p.Stats()
	var got []string
	for _, b := range st.Resolver.Backends {
		got = append(got, string(b.Name))
	}
	if strings.Join(got, " ") != "127.0.0.1:1 127.0.0.2:2" {
		t.Errorf("backends %v, want the string's two hosts", got)
	}
}

// Bad pool_ settings, or pool_ settings given to New, are errors wrapping
// ErrConfig; so is a pool without a resolver whose string has no TCP host.
func TestOpenBad(t *testing.T) {
	for _, s := range []string{
		"host=127.0.0.1 pool_max_conns=0",
		"host=127.0.0.1 pool_max_conns=many",
		"host=127.0.0.1 pool_max_conn_lifetime=60",
		"host=127.0.0.1 pool_min_conns=-1",
		"host=127.0.0.1 pool_no_such_setting=1",
		"host=/var/run/postgresql",
		"port=notaport",
	} {
		if p, err := pg.Open(s); !errors.Is(err, pg.ErrConfig) || p != nil {
			t.Errorf("Open(%q): %v, want an error wrapping ErrConfig", s, err)
		}
	}
	_, err := pg.New(resolver.NewFixed(), pg.Config{ConnString: "host=127.0.0.1 pool_max_conns=4 pool_min_conns=1"}, pool.Policy{})
	if !errors.Is(err, pg.ErrConfig) || !strings.Contains(err.Error(), "pool_max_conns, pool_min_conns") {
		t.Errorf("New with pool_ settings: %v, want an ErrConfig naming them", err)
	}
	if _, err := pg.Open("host=127.0.0.1 pool_min_conns=5 pool_max_conns=4"); err == nil || errors.Is(err, pg.ErrConfig) {
		t.Errorf("MinSlots above MaxSlots: %v, want pool.New's error", err)
	}
}

// pg's defaults: one spare, not pool's eight, and one server may take
// every slot.
func TestDefaultPolicy(t *testing.T) {
	p, err := pg.New(resolver.NewFixed(), pg.Config{}, pool.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	closeAtEnd(t, p)
	pol := p.EffectivePolicy()
	if pol.SparesWanted != pg.DefaultSpares || pol.MaxSlots != 16 || pol.MaxSlotsPerBackend != 16 {
		t.Errorf("spares %d, max %d, per backend %d; want %d, 16, 16", pol.SparesWanted, pol.MaxSlots,
			pol.MaxSlotsPerBackend, pg.DefaultSpares)
	}
	p, err = pg.New(resolver.NewFixed(), pg.Config{}, pool.Policy{MaxSlots: 40, SparesWanted: 5})
	if err != nil {
		t.Fatal(err)
	}
	closeAtEnd(t, p)
	if pol := p.EffectivePolicy(); pol.SparesWanted != 5 || pol.MaxSlotsPerBackend != 40 {
		t.Errorf("spares %d, per backend %d; want the 5 given, and MaxSlots 40", pol.SparesWanted, pol.MaxSlotsPerBackend)
	}
}

// noServerPool is a pool over a port where nothing listens, dead after its
// first failed connect, retrying every backoff.
func noServerPool(t *testing.T, backoff time.Duration) *pg.Pool {
	t.Helper()
	p, err := pg.New(resolver.NewFixed(freeAddr(t)), pg.Config{ConnString: "user=app sslmode=disable connect_timeout=5"}, pool.Policy{
		DeadAfter: 1, BackoffMin: backoff, BackoffMax: backoff, BackoffJitter: time.Millisecond, ClaimTimeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	closeAtEnd(t, p)
	return p
}

// During an outage of the only server, every method's error is the
// pool's, with pgx's connect error and pool.RetryAfter's delay.
func TestRetryAfterThroughEveryMethod(t *testing.T) {
	p := noServerPool(t, time.Hour) // the next connect is an hour away: RetryAfter is always set
	ctx := context.Background()
	// The first claim waits for the first connect, which fails.
	if _, err := p.Exec(ctx, "select 1"); !errors.Is(err, pool.ErrNoBackendsOnline) {
		t.Fatalf("first Exec: %v, want pool.ErrNoBackendsOnline", err)
	}
	check := func(what string, err error) {
		t.Helper()
		var ce *pgconn.ConnectError
		d, ok := pool.RetryAfter(err)
		if !errors.Is(err, pool.ErrNoBackendsOnline) || !errors.As(err, &ce) || !ok || d <= 0 || d > time.Hour+time.Second {
			t.Errorf("%s: %v (RetryAfter %v %v), want pool.ErrNoBackendsOnline with a *pgconn.ConnectError and a delay of at most 1h",
				what, err, d, ok)
		}
	}
	_, err := p.Exec(ctx, "select 1")
	check("Exec", err)
	rows, err := p.Query(ctx, "select 1")
	check("Query", err)
	check("Query's rows", rows.Err())
	check("QueryRow", p.QueryRow(ctx, "select 1").Scan())
	_, err = p.Begin(ctx)
	check("Begin", err)
	check("SendBatch", p.SendBatch(ctx, &pgx.Batch{}).Close())
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	b.Queue("select 1")
	check("SendBatch with a transaction", p.SendBatch(ctx, b).Close())
	_, err = p.CopyFrom(ctx, pgx.Identifier{"t"}, []string{"n"}, pgx.CopyFromRows(nil))
	check("CopyFrom", err)
	check("ClaimFunc", p.ClaimFunc(ctx, func(*pgx.Conn) error { return nil }))
	check("Ping", p.Ping(ctx))
	_, err = p.Claim(ctx)
	check("Claim", err)
}

// minRetry is the shortest wait of the retry loop docs/pg.md describes:
// pool.RetryAfter says 1ns while the pool's next connect is due but has
// not started yet (its timer fires up to a millisecond or so late).
const minRetry = 10 * time.Millisecond

// retryExec runs Exec until it succeeds, ctx ends or attempts run out,
// waiting between attempts as docs/pg.md says: pool.RetryAfter's delay
// when the error has one, at least minRetry, else a fixed pause. It
// returns the attempts made and how many errors had a delay.
func retryExec(ctx context.Context, p *pg.Pool, attempts int) (made, withDelay int, err error) {
	for made < attempts {
		made++
		if _, err = p.Exec(ctx, "select 1"); err == nil {
			return made, withDelay, nil
		}
		d, ok := pool.RetryAfter(err)
		if ok {
			withDelay++
			d = max(d, minRetry)
		} else if errors.Is(err, pool.ErrNoBackendsOnline) {
			d = 50 * time.Millisecond // a connect is under way: its outcome comes soon
		} else {
			return made, withDelay, err // not an outage: retrying does not help
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return made, withDelay, err
		}
	}
	return made, withDelay, err
}

// A caller that retries in a loop during an outage of the only server,
// waiting as pool.RetryAfter says, makes a few attempts a second, not
// thousands: each failure says when the pool tries the server next.
func TestRetryLoopDuringOutage(t *testing.T) {
	const backoff = 200 * time.Millisecond
	const span = time.Second
	p := noServerPool(t, backoff)
	ctx, cancel := context.WithTimeout(context.Background(), span)
	defer cancel()
	start := time.Now()
	made, withDelay, err := retryExec(ctx, p, 10_000)
	took := time.Since(start)
	t.Logf("%d attempts in %v, %d with a RetryAfter delay; last error: %v", made, took.Round(time.Millisecond), withDelay, err)
	if !errors.Is(err, pool.ErrNoBackendsOnline) {
		t.Fatalf("last error %v, want pool.ErrNoBackendsOnline", err)
	}
	if withDelay == 0 {
		t.Errorf("no error had a RetryAfter delay")
	}
	// One attempt per connect of the pool at most, and one more for each
	// connect in flight when an attempt failed (the 50ms pause).
	if limit := int(span/backoff)*2 + int(span/(50*time.Millisecond)) + 2; made > limit {
		t.Errorf("%d attempts in %v, want at most %d", made, took, limit)
	}
	if st := p.Stats(); st.Connects > uint64(span/backoff)+2 {
		t.Errorf("%d connects in %v with a backoff of %v", st.Connects, took, backoff)
	}
}

// ExamplePool_Exec_retry is the retry loop docs/pg.md describes: during an
// outage, each failed claim says, through pool.RetryAfter, when the pool
// will next try the server. It runs without PostgreSQL, against a port
// where nothing listens.
func ExamplePool_Exec_retry() {
	p, err := pg.New(resolver.NewFixed(unusedAddr()), pg.Config{ConnString: "user=app sslmode=disable"},
		pool.Policy{DeadAfter: 1, BackoffMin: 100 * time.Millisecond, BackoffMax: 100 * time.Millisecond})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()

	for attempt := 1; attempt <= 100 && ctx.Err() == nil; attempt++ {
		if _, err = p.Exec(ctx, "select 1"); err == nil {
			break
		}
		delay, ok := pool.RetryAfter(err)
		if !ok {
			if !errors.Is(err, pool.ErrNoBackendsOnline) {
				break // not an outage (a statement's error, the pool closed): retrying does not help
			}
			delay = 50 * time.Millisecond // a connect is under way: its outcome comes soon
		}
		delay = max(delay, 10*time.Millisecond) // the next connect may be due but not yet started
		select {
		case <-time.After(delay):
		case <-ctx.Done():
		}
	}
	fmt.Println("gave up:", errors.Is(err, pool.ErrNoBackendsOnline))
	// Output:
	// gave up: true
}

// Without a resolver, a host name that does not resolve is the claim's
// error: the lookup's error is the resolver's last error, which the
// claim's carries. (The lookup is the configuration's LookupFunc, here one
// that fails without asking any server.)
func TestHostLookupFails(t *testing.T) {
	cc, err := pgx.ParseConfig("postgres://app@db.example.com:5432/app?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	noSuchHost := errors.New("no such host")
	cc.LookupFunc = func(context.Context, string) ([]string, error) { return nil, noSuchHost }
	// The claim's deadline comes before the lookup's retry, a second on.
	p, err := pg.New(nil, pg.Config{ConnConfig: cc}, pool.Policy{ClaimTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	closeAtEnd(t, p)
	_, err = p.Exec(context.Background(), "select 1")
	if !errors.Is(err, pool.ErrNoBackends) || !strings.Contains(err.Error(), `look up host "db.example.com": no such host`) {
		t.Errorf("Exec: %v, want pool.ErrNoBackends with the lookup's error", err)
	}
	if st := p.Stats().Resolver; st.Errors == 0 || !strings.Contains(st.LastError, "no such host") || len(st.Backends) != 0 {
		t.Errorf("resolver stats %+v, want the lookup's error and no backend", st)
	}
}
