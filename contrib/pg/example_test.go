package pg_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/contrib/pg"
	"github.com/qorbgo/qorb/pool"
	"github.com/qorbgo/qorb/resolver"
	"github.com/qorbgo/qorb/resolver/dns"
)

// A pool over the PostgreSQL servers that DNS lists for a service, asking
// the DNS servers of /etc/resolv.conf. It needs those servers, so it is
// compiled but not run.
func Example() {
	r, err := dns.New("_postgresql._tcp.db.example.com.", nil, dns.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	p, err := pg.New(r, pg.Config{ConnString: "user=postgres dbname=postgres sslmode=disable application_name=example"},
		pool.Policy{MaxSlots: 12})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close(context.Background())
	ctx := context.Background()

	// One statement: the connection goes back when Exec returns.
	if _, err := p.Exec(ctx, "create temporary table if not exists t (n int)"); err != nil {
		fmt.Println(err)
	}

	// A row: the connection goes back when it is scanned.
	var port int
	if err := p.QueryRow(ctx, "select inet_server_port()").Scan(&port); err != nil {
		fmt.Println(err)
	}

	// A transaction: the connection goes back on Commit or Rollback.
	err = pgx.BeginFunc(ctx, p, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "select pg_advisory_xact_lock(1)")
		return err
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		fmt.Println("the server said:", pgErr.Code, pgErr.Message)
	}
	fmt.Println(p.Stats().Claims, "claims")
}

// ClaimFunc runs a function with a connection; the connection goes back
// when it returns, and is discarded when its error says the connection is
// broken. It needs a server, so it is compiled but not run.
func ExamplePool_ClaimFunc() {
	p, err := pg.Open("postgres://app@db.example.com:5432/app")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close(context.Background())
	ctx := context.Background()
	err = p.ClaimFunc(ctx, func(c *pgx.Conn) error {
		// Session state stays with the connection: set it and use it
		// within the claim.
		if _, err := c.Exec(ctx, "set statement_timeout = '1s'"); err != nil {
			return err
		}
		_, err := c.Exec(ctx, "select pg_sleep(0.1)")
		return err
	})
	fmt.Println(err)
}

// A bad configuration is an error from New, before any connection.
func ExampleNew_badConfig() {
	_, err := pg.New(resolver.NewFixed(), pg.Config{ConnString: "port=notaport"}, pool.Policy{})
	fmt.Println(errors.Is(err, pg.ErrConfig))
	// Output:
	// true
}

// When no server answers, a claim fails with the pool's error, which wraps
// pgx's connect error. The example runs without PostgreSQL: it points the
// pool at a loopback port where nothing listens.
func ExamplePool_Exec_noServer() {
	p, err := pg.New(resolver.NewFixed(unusedAddr()), pg.Config{ConnString: "user=app sslmode=disable"},
		pool.Policy{DeadAfter: 1, ClaimTimeout: 5 * time.Second})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close(context.Background())

	_, err = p.Exec(context.Background(), "select 1")
	var connectErr *pgconn.ConnectError
	fmt.Println("no backend online:", errors.Is(err, pool.ErrNoBackendsOnline))
	fmt.Println("pgx's connect error:", errors.As(err, &connectErr))
	// Output:
	// no backend online: true
	// pgx's connect error: true
}

// unusedAddr returns a loopback address where nothing listens: one the
// system gave a listener, closed at once.
func unusedAddr() netip.AddrPort {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

// Open makes a pool from a connection string, as pgxpool.New does: its
// hosts are the backends, and pgxpool's pool_ settings size the pool. It
// runs without PostgreSQL: nothing listens at the address, and the pool
// connects in the background.
func ExampleOpen() {
	p, err := pg.Open("postgres://app@" + unusedAddr().String() + "/app?sslmode=disable&pool_max_conns=8&pool_min_conns=2")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close(context.Background())
	pol := p.EffectivePolicy()
	fmt.Println("max", pol.MaxSlots, "min", pol.MinSlots, "spares", pol.SparesWanted)
	fmt.Println("pool_ settings sent to the server:", p.Config().ConnConfig.RuntimeParams["pool_max_conns"] != "")
	// Output:
	// max 8 min 2 spares 1
	// pool_ settings sent to the server: false
}

// AfterConnect registers the types a program uses on every new
// connection before the pool hands it out, as pgxpool's AfterConnect
// does. It needs a server, so it is compiled but not run.
func ExampleConfig_afterConnect() {
	cfg := pg.Config{
		ConnString: "postgres://app@db.example.com:5432/app",
		AfterConnect: func(ctx context.Context, c *pgx.Conn) error {
			for _, name := range []string{"mood", "_mood"} { // an enum and its array
				t, err := c.LoadType(ctx, name)
				if err != nil {
					return err
				}
				c.TypeMap().RegisterType(t)
			}
			return nil
		},
	}
	p, err := pg.New(nil, cfg, pool.Policy{}) // no resolver: the connection string's host
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close(context.Background())
	var moods []any
	err = p.QueryRow(context.Background(), "select enum_range(null::mood)").Scan(&moods)
	fmt.Println(moods, err)
}

// Stat gives the pool's figures under pgxpool's names, for dashboards
// written for pgxpool. It needs a server, so it is compiled but not run.
func ExamplePool_Stat() {
	p, err := pg.Open("postgres://app@db.example.com:5432/app")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close(context.Background())
	s := p.Stat()
	fmt.Printf("%d of %d connections claimed, %d idle; %d acquires, %d of which waited\n",
		s.AcquiredConns(), s.MaxConns(), s.IdleConns(), s.AcquireCount(), s.EmptyAcquireCount())
}

// SRVTarget names the SRV target of a backend found by resolver/dns, for
// verifying each server's TLS certificate by its own name.
func ExampleSRVTarget() {
	b := backend.Backend{Name: "db-1.example.com.@10.0.0.7:5432"}
	fmt.Println(pg.SRVTarget(b))
	// Output:
	// db-1.example.com
}
