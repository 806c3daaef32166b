// Package pg connects qorb pools to PostgreSQL with pgx
// (github.com/jackc/pgx/v5): a [Connector] of *pgx.Conn for any qorb pool,
// and [Pool], a pool over the backends of one service with the query
// methods of pgx's own pool.
//
// A pool over the servers that DNS lists for a service:
//
//	r, err := dns.New("_postgresql._tcp.db.example.com", nil, dns.Config{})
//	if err != nil { ... }
//	p, err := pg.New(r, pg.Config{ConnString: "user=app dbname=app application_name=web"}, pool.Policy{MaxSlots: 32})
//	if err != nil { ... }
//	defer p.Close(context.Background())
//
//	var n int
//	err = p.QueryRow(ctx, "select count(*) from users").Scan(&n)
//
// Or from a connection string alone, as pgxpool.New does, its hosts being
// the backends and pgxpool's pool_ settings the policy ([Open]):
//
//	p, err := pg.Open("postgres://app@db.example.com:5432/app?pool_max_conns=16")
//
// For a pgxpool user: [Config.AfterConnect] prepares every new connection
// (register types), [Pool.Reset] replaces every connection, [Pool.Config]
// and [Pool.EffectivePolicy] give the configuration in use, [Pool.Stat]
// gives the figures under pgxpool's names, and a *Pool is the Source that
// contrib/prompool and contrib/otelpool read. pg's policy defaults keep one
// spare connection, not pool's eight (see [New]). docs/pg.md maps pgxpool's
// API and settings to pg's.
//
// # Connections
//
// Every connection uses one pgx configuration (Config.ConnConfig, or
// Config.ConnString parsed by pgx.ParseConfig) with its host and port
// replaced by the address of the backend the pool chose; TLS settings,
// credentials, runtime parameters and pgx's hooks apply to all. A new
// connection is pinged before the pool hands it out, and idle ones every
// Policy.HealthInterval.
//
// # Giving connections back
//
// A released connection is checked before anyone else can claim it (the
// connector's recycle hook): one that is closed or still busy is closed by
// the pool; one left inside a transaction, or a failed one, is rolled
// back, and closed if the rollback fails; then Config.ResetQuery (for
// example "DISCARD ALL") runs when set. A claimer never gets a connection
// in a transaction it did not begin.
//
// The methods of [Pool] give connections back by themselves: Exec when it
// returns, Query's rows when they are closed or read to the end,
// QueryRow's row when it is scanned, a transaction on Commit or Rollback,
// a batch on Close. [Pool.ClaimFunc] runs a function with a connection, and
// [Pool.Claim] with [Release] gives the bare claim.
//
// # Errors
//
// Statements return pgx's errors unchanged (errors.As finds
// *pgconn.PgError); claims return the pool's (errors.Is finds
// pool.ErrNoBackendsOnline, with the last connect error, and the others).
// A connection whose statement failed at the connection level (the server
// went away, the network failed, a context ended mid-statement) is
// discarded: the pool closes it and reconnects, and counts it as a lost
// connection, which never makes the backend dead (only failed connects
// do); a server's error (a PgError) leaves the connection in use.
//
// During an outage of every server, claims fail at once, and
// pool.RetryAfter(err) says when the pool next tries a connect: a caller
// that retries should wait that long (docs/pg.md has the loop).
package pg
