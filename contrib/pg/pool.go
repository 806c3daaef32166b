package pg

import (
	"context"
	"errors"
	"io"
	"net"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/qorbgo/qorb/pool"
	"github.com/qorbgo/qorb/resolver"
)

// Handle is a claimed connection of a [Pool]; end it with [Release].
type Handle = pool.Handle[*pgx.Conn]

// Pool is a qorb pool of *pgx.Conn connections to the backends of one
// PostgreSQL service, with the query methods of pgx's own pool (pgxpool):
// each claims a connection, runs the statement and gives the connection
// back when the statement's results are done with.
//
// Every error a statement returns is pgx's own value: errors.As finds a
// *pgconn.PgError for an error the server sent. A claim that fails returns
// the pool's error (pool.ErrNoBackendsOnline, pool.ErrAllClaimsUsed, ...,
// or the context's). A connection whose statement failed at the connection
// level (it is closed or busy, or the error is a network error or an end
// of stream rather than a PgError) is discarded, so the pool closes it and
// reconnects (a lost connection, not a failed connect: it never makes the
// backend dead); any other is released, and
// the [Connector]'s recycle hook rolls back a transaction left open before
// another claimer sees it.
//
// All methods are safe for concurrent use; the Rows, Row, Tx and
// BatchResults they return are not, as in pgx. A Pool must be closed with
// Close.
type Pool struct {
	p *pool.Pool[*pgx.Conn]
	c *Connector
}

// New returns a pool over the backends r finds (for example a
// resolver/dns.Resolver for "_postgresql._tcp.example.com"), connecting
// with a [Connector] for cfg, with the pool policy p and options opts
// (pool.WithName, pool.WithLogger, pool.WithTracer, ...). A bad cfg is an
// error wrapping ErrConfig; a bad policy is pool.New's error. New does no
// I/O: the pool connects in the background and the first claim waits for a
// connection.
//
// With r nil, the backends are the hosts of cfg's connection string (see
// [Open]): each address as it is, each name looked up (with
// ConnConfig.LookupFunc, pgx's default being the system's resolver) again
// every HostRequery, one backend per address; a list of hosts gives
// several backends. Config.ServerName then defaults to each backend's own
// host, so that sslmode=verify-full checks each server by its name.
//
// Zero fields of p take pool.Policy's defaults, but for two that pg sets
// for a database: SparesWanted 1 (pool's default, 8, opens eight idle
// connections per pool before any load; pgxpool's MinIdleConns is 0, see
// docs/pg.md) and MaxSlotsPerBackend equal to MaxSlots (so that
// pool_max_conns, or MaxSlots, is what one server gets). EffectivePolicy
// returns the result.
func New(r resolver.Resolver, cfg Config, p pool.Policy, opts ...pool.Option) (*Pool, error) {
	c, err := NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	if r == nil {
		hr, err := newHostResolver(c.base)
		if err != nil {
			return nil, err
		}
		r = hr
		if c.serverName == nil {
			c.serverName = hostServerName
		}
	}
	p = withDefaults(p)
	c.connectTimeout = p.ConnectTimeout
	if c.connectTimeout == 0 {
		c.connectTimeout = defaultConnectTimeout
	}
	qp, err := pool.New[*pgx.Conn](r, c, p, opts...)
	if err != nil {
		return nil, err
	}
	return &Pool{p: qp, c: c}, nil
}

// DefaultSpares is the SparesWanted that [New] and [Open] give a policy
// that leaves it zero: one idle connection ready beyond those claimed.
const DefaultSpares = 1

// defaultConnectTimeout is pool.Policy's default ConnectTimeout, which the
// connector puts on its connects' contexts as their deadline
// (TestConnectDeadline checks that the two agree).
const defaultConnectTimeout = 10 * time.Second

// withDefaults sets pg's own defaults of a policy's zero fields.
func withDefaults(p pool.Policy) pool.Policy {
	if p.SparesWanted == 0 {
		p.SparesWanted = DefaultSpares
	}
	if p.MaxSlotsPerBackend == 0 {
		p.MaxSlotsPerBackend = p.MaxSlots // zero stays zero: both take pool's default, 16
	}
	return p
}

// Claim returns a connection for the caller's exclusive use, as
// pool.Pool.Claim does (first in, first out, bounded by ctx and
// Policy.ClaimTimeout). The caller must end the claim with [Release],
// which discards the connection when the last error says it is broken.
// [Pool.ClaimFunc] does both.
func (p *Pool) Claim(ctx context.Context) (*Handle, error) {
	return p.p.Claim(ctx)
}

// Release ends the claim of h: it discards the connection (Handle.Discard)
// when it is closed or busy, or when err, the last error seen on it, is a
// connection-level error (a network error or an unexpected end of stream,
// not a *pgconn.PgError); otherwise it releases it (Handle.Release) and the
// recycle hook rolls back any transaction left open. Pass nil when the
// connection's last statement succeeded.
//
// Like Handle.Release, a call on a handle whose claim already ended (a
// second Release) does nothing to any connection: it is counted in the
// pool's Stats.Misuse and logged. A nil handle, as a failed Claim returns,
// does nothing, so that a deferred Release after a failed Claim is safe.
func Release(h *Handle, err error) {
	if h == nil {
		return
	}
	c := h.Conn()
	if broken(c, err) {
		if err == nil {
			err = errClosedConn
		}
		h.Discard(err)
		return
	}
	h.Release()
}

// broken reports whether c must not be used again after err.
func broken(c *pgx.Conn, err error) bool {
	if c == nil || c.IsClosed() || c.PgConn().IsBusy() {
		return true
	}
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return false
	}
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// errPanicked is the discard reason of a connection whose user panicked.
var errPanicked = errors.New("pg: panic while the connection was claimed")

// ClaimFunc claims a connection, calls f with it, and releases it with
// [Release] and f's error (pgxpool's AcquireFunc). It returns the claim's
// error or f's. When f panics, the connection is discarded and the panic
// goes on. f must not keep the connection, nor rows or a transaction on
// it, after it returns.
func (p *Pool) ClaimFunc(ctx context.Context, f func(*pgx.Conn) error) (err error) {
	h, err := p.p.Claim(ctx)
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done { // f panicked: the connection's state is unknown
			h.Discard(errPanicked)
		}
	}()
	err = f(h.Conn())
	done = true
	Release(h, err)
	return err
}

// Exec claims a connection, runs sql with args on it (pgx.Conn.Exec) and
// releases it.
func (p *Pool) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	h, err := p.p.Claim(ctx)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	tag, err := h.Conn().Exec(ctx, sql, args...)
	Release(h, err)
	return tag, err
}

// Query claims a connection and runs sql with args on it (pgx.Conn.Query).
// The connection goes back to the pool when the rows are closed, read to
// the end, or fail a Scan or Values; the caller must close them (defer
// rows.Close()). On error the returned rows are closed and report the
// error, and the connection is already back.
func (p *Pool) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	h, err := p.p.Claim(ctx)
	if err != nil {
		return errRows{err: err}, err
	}
	rows, err := h.Conn().Query(ctx, sql, args...)
	if err != nil {
		Release(h, err)
		return errRows{err: err}, err
	}
	return &poolRows{r: rows, h: h}, nil
}

// QueryRow claims a connection and runs sql with args on it
// (pgx.Conn.QueryRow). The connection goes back to the pool when the row is
// scanned; the row must be scanned. A claim error is returned by Scan.
func (p *Pool) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	h, err := p.p.Claim(ctx)
	if err != nil {
		return errRow{err: err}
	}
	return &poolRow{r: h.Conn().QueryRow(ctx, sql, args...), h: h}
}

// Begin claims a connection and begins a transaction on it, as BeginTx with
// the default options.
func (p *Pool) Begin(ctx context.Context) (pgx.Tx, error) {
	return p.BeginTx(ctx, pgx.TxOptions{})
}

// BeginTx claims a connection and begins a transaction with opts on it
// (pgx.Conn.BeginTx). The connection goes back to the pool on the
// transaction's Commit or Rollback (both may be called, as in pgx: defer
// tx.Rollback(ctx) is safe after a Commit); one of them must be. As in
// pgx, ctx bounds the BEGIN statement only.
func (p *Pool) BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error) {
	h, err := p.p.Claim(ctx)
	if err != nil {
		return nil, err
	}
	tx, err := h.Conn().BeginTx(ctx, opts)
	if err != nil {
		Release(h, err)
		return nil, err
	}
	return &poolTx{t: tx, h: h}, nil
}

// SendBatch claims a connection and sends b on it (pgx.Conn.SendBatch).
// The connection goes back to the pool when the results are closed, which
// the caller must do; if b begins a transaction (pgx.Batch.BeginTx), when
// that transaction ends instead. A claim error is returned by every method
// of the results.
func (p *Pool) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	h, err := p.p.Claim(ctx)
	if err != nil {
		return pgx.FailedBatchResults(b, err)
	}
	br := h.Conn().SendBatch(ctx, b)
	if tx := br.Tx(); tx != nil {
		return &poolBatchResults{br: br, tx: &poolTx{t: tx, h: h}}
	}
	return &poolBatchResults{br: br, h: h}
}

// CopyFrom claims a connection, copies the rows of src into table's
// columns on it with PostgreSQL's COPY protocol (pgx.Conn.CopyFrom) and
// releases it. It returns the number of rows copied.
func (p *Pool) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	h, err := p.p.Claim(ctx)
	if err != nil {
		return 0, err
	}
	n, err := h.Conn().CopyFrom(ctx, table, columns, src)
	Release(h, err)
	return n, err
}

// Ping claims a connection, pings the server on it and releases it.
func (p *Pool) Ping(ctx context.Context) error {
	return p.ClaimFunc(ctx, func(c *pgx.Conn) error { return c.Ping(ctx) })
}

// Stats returns a snapshot of the pool (pool.Pool.Stats). [Pool.Stat]
// gives the same figures under pgxpool's names.
func (p *Pool) Stats() pool.Stats {
	return p.p.Stats()
}

// EffectivePolicy returns the policy the pool runs with: the one given to
// New (or made by Open) with every zero field replaced by its default
// (pool.Pool.EffectivePolicy). With it and Stats, a *Pool is what prompool
// and otelpool read (their Source).
func (p *Pool) EffectivePolicy() pool.Policy {
	return p.p.EffectivePolicy()
}

// Config returns the configuration the pool's connections use
// (pgxpool.Pool.Config): ConnConfig is a copy of the parsed pgx
// configuration (of Config.ConnString when that was given, which is then
// empty; without pgxpool's pool_ settings, which Open took out), so that
// changing it changes nothing in the pool; CloseTimeout has its default
// when it was zero; ServerName is [New]'s default when the pool was made
// without a resolver. The result may be given to New again. The pool's
// sizes and timeouts are in [Pool.EffectivePolicy].
func (p *Pool) Config() Config {
	return p.c.config()
}

// Reset closes every connection of the pool (pgxpool.Pool.Reset): the idle
// ones now, the claimed ones (and those being checked or opened) when
// they come back, and the pool opens new ones in their place; the pool
// keeps working and no claim fails because of it (pool.Pool.Reset). Use it
// after a failover or a change on the servers that every session must see
// (a changed type, search_path or role). It does nothing after Close.
func (p *Pool) Reset() {
	p.p.Reset()
}

// Close closes the pool (pool.Pool.Close): it stops the resolver, fails
// waiting claims with pool.ErrClosed, closes idle connections, waits for
// claimed ones until ctx ends, then closes the rest, each bounded by
// Config.CloseTimeout, and returns ctx's error if it ended. Every
// connection is closed with PostgreSQL's Terminate message, so no session
// stays on the servers.
func (p *Pool) Close(ctx context.Context) error {
	return p.p.Close(ctx)
}
