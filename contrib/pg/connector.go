package pg

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/qorbgo/qorb/backend"
)

// DefaultCloseTimeout is the bound on closing one connection used when
// [Config.CloseTimeout] is zero.
const DefaultCloseTimeout = 5 * time.Second

// ErrConfig is wrapped by the error NewConnector, New and Open return for
// a bad Config: an unparsable connection string, both ConnConfig and
// ConnString set, a ConnConfig not made by pgx.ParseConfig, a negative
// timeout, pgxpool's pool_ settings given to New (Open takes them) or a
// bad or unknown one given to Open, and, for a pool without a resolver, a
// connection string whose host is a Unix socket. Fix the configuration;
// retrying does not help.
var ErrConfig = errors.New("pg: invalid config")

// Config says how to connect to every backend of a PostgreSQL service. The
// backends' addresses come from the pool's resolver (or, for [New] without
// one and [Open], from the configuration's hosts): the host and port of
// the pgx configuration are replaced by each backend's address; everything
// else (user, database, password, TLS, runtime parameters such as
// application_name, pgx's hooks and tracer) applies to every connection.
type Config struct {
	// ConnConfig is the pgx configuration of every connection. It must be
	// made by pgx.ParseConfig (pgx refuses hand-built ones); it is copied
	// by NewConnector and not used afterwards, so the caller may keep
	// changing its own copy. Its Host and Port are replaced by each
	// backend's address, and so are those of its fallbacks (see
	// [Connector.Connect]).
	ConnConfig *pgx.ConnConfig

	// ConnString is parsed with pgx.ParseConfig when ConnConfig is nil,
	// for example "user=app dbname=app sslmode=disable
	// application_name=web" or "postgres://app@db.example.com/app".
	// Empty means pgx's defaults and the PG* environment variables. Only
	// one of ConnConfig and ConnString may be set.
	ConnString string

	// ServerName, when set, gives the TLS server name to verify for a
	// backend; [SRVTarget] gives the SRV target's name that the DNS
	// resolver puts in the backend's name. An empty answer keeps the
	// configuration's server name (by default pgx's: the connection
	// string's host). Unused without TLS.
	ServerName func(b backend.Backend) string

	// ResetQuery, when not empty, runs on every released connection after
	// any transaction left open is rolled back, for example "DISCARD ALL"
	// to drop session state (settings, temporary tables, prepared
	// statements, advisory locks). It is followed by pgx's DeallocateAll,
	// so that pgx's statement caches agree with the server. An error
	// closes the connection. Empty, the default, resets nothing.
	ResetQuery string

	// CloseTimeout bounds closing one connection (sending PostgreSQL's
	// Terminate message and closing the socket), in time.Duration. Zero
	// means DefaultCloseTimeout (5s); it must not be negative.
	CloseTimeout time.Duration

	// AfterConnect, when set, runs on every new connection once pgx has
	// connected (after ConnConfig's own AfterConnect, which sees only the
	// pgconn.PgConn), before the pool's first check of it and before it
	// is first handed out: pgxpool's AfterConnect. It may do I/O, for
	// example load and register types (conn.LoadType then
	// conn.TypeMap().RegisterType, for enums, domains and composite
	// types, or pgvector's RegisterTypes), prepare statements or set
	// session parameters. ctx ends at the connect's deadline,
	// Policy.ConnectTimeout, which bounds the connect, this hook and the
	// first check together (with [New], ctx carries that deadline; a bare
	// Connector in pool.New gets a context the pool cancels then, with
	// no deadline of its own).
	//
	// An error, or a panic, closes the connection; the connect counts as
	// failed (a failure of its backend, retried after the backoff, see
	// Policy.DeadAfter), and the error, wrapped, is the backend's last
	// error, which a claim that fails carries (errors.Is and errors.As
	// find it). It is called from several goroutines at once, one per
	// connect in flight.
	AfterConnect func(ctx context.Context, conn *pgx.Conn) error
}

// validate checks a Config and returns the pgx configuration to copy for
// every connection.
func (c Config) validate() (*pgx.ConnConfig, error) {
	if c.CloseTimeout < 0 {
		return nil, fmt.Errorf("%w: CloseTimeout is %v; it must not be negative (zero takes the default %v)",
			ErrConfig, c.CloseTimeout, DefaultCloseTimeout)
	}
	if c.ConnConfig != nil && c.ConnString != "" {
		return nil, fmt.Errorf("%w: both ConnConfig and ConnString are set; set one", ErrConfig)
	}
	var cc *pgx.ConnConfig
	if c.ConnConfig != nil {
		cc = c.ConnConfig.Copy()
		if err := checkParsed(cc); err != nil {
			return nil, err
		}
	} else {
		var err error
		if cc, err = pgx.ParseConfig(c.ConnString); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	var pgxpoolKeys []string
	for k := range cc.RuntimeParams {
		if strings.HasPrefix(k, "pool_") {
			pgxpoolKeys = append(pgxpoolKeys, k)
		}
	}
	if len(pgxpoolKeys) > 0 {
		// pgx would send them to the server as settings, which the
		// server refuses on every connect.
		slices.Sort(pgxpoolKeys)
		return nil, fmt.Errorf("%w: %s: pgxpool settings, not PostgreSQL ones: give the connection string to "+
			"pg.Open, or set the pool.Policy fields they stand for (docs/pg.md)", ErrConfig, strings.Join(pgxpoolKeys, ", "))
	}
	return cc, nil
}

// errProbe ends checkParsed's connect attempt before any I/O.
var errProbe = errors.New("pg: probe")

// checkParsed reports a ConnConfig that pgx.ParseConfig did not make: pgx
// panics when it connects with one, and the pool would count every connect
// as a failure. It runs pgx's connect with a lookup that fails at once, so
// nothing is resolved, dialled or traced.
func checkParsed(cc *pgx.ConnConfig) (err error) {
	probe := cc.Copy()
	probe.Tracer = nil
	probe.Host, probe.Fallbacks = "probe", nil
	probe.LookupFunc = func(context.Context, string) ([]string, error) { return nil, errProbe }
	probe.DialFunc = func(context.Context, string, string) (net.Conn, error) { return nil, errProbe }
	probe.AfterConnect, probe.ValidateConnect = nil, nil
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: ConnConfig must be made by pgx.ParseConfig (pgx: %v)", ErrConfig, r)
		}
	}()
	conn, cerr := pgx.ConnectConfig(context.Background(), probe)
	if cerr == nil {
		_ = conn.Close(context.Background())
	}
	return nil
}

// SRVTarget returns the name of the SRV target in the name the DNS resolver
// gives a backend ("db-1.example.com.@10.0.0.7:5432" gives
// "db-1.example.com"), for [Config.ServerName]; "" for a backend named
// otherwise.
func SRVTarget(b backend.Backend) string {
	target, _, ok := strings.Cut(string(b.Name), "@")
	if !ok {
		return ""
	}
	return strings.TrimSuffix(target, ".")
}

// Connector opens *pgx.Conn connections to the backends of one PostgreSQL
// service: a [backend.Connector] that is also a [backend.Validator] (a
// ping) and a [backend.RecycleHook] (no connection goes back to the pool
// inside a transaction). Use it with pool.New for the bare pool of
// connections, or use [New] for a [Pool] with pgx's query methods.
//
// It is safe for concurrent use.
type Connector struct {
	base         *pgx.ConnConfig
	serverName   func(backend.Backend) string
	reset        string
	closeTimeout time.Duration
	afterConnect func(context.Context, *pgx.Conn) error
	// connectTimeout, when positive, is the deadline Connect puts on its
	// context: New sets the pool's Policy.ConnectTimeout, whose timer
	// cancels the context at the same time, so that the connect and
	// AfterConnect see the deadline too.
	connectTimeout time.Duration
}

// Connector implements the connector interfaces the pool looks for.
var (
	_ backend.Connector[*pgx.Conn]   = (*Connector)(nil)
	_ backend.Validator[*pgx.Conn]   = (*Connector)(nil)
	_ backend.RecycleHook[*pgx.Conn] = (*Connector)(nil)
)

// NewConnector returns a connector for cfg, or an error wrapping ErrConfig
// when cfg is invalid. It does no I/O.
func NewConnector(cfg Config) (*Connector, error) {
	base, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	c := &Connector{base: base, serverName: cfg.ServerName, reset: cfg.ResetQuery, closeTimeout: cfg.CloseTimeout,
		afterConnect: cfg.AfterConnect}
	if c.closeTimeout == 0 {
		c.closeTimeout = DefaultCloseTimeout
	}
	return c, nil
}

// Connect opens a connection to b: the configuration's host and port are
// replaced by b's address (no name is looked up), and so are those of its
// fallbacks, of which one with TLS and one without are kept, in their
// order, so that sslmode=prefer or allow still falls back between TLS and
// plain. ctx bounds the connect together with the configuration's
// connect_timeout (with [New], ctx has the deadline of the pool's
// Policy.ConnectTimeout). Then Config.AfterConnect runs, when set, within
// ctx;
// when it fails or panics the connection is closed. Errors are pgx's (a
// *pgconn.ConnectError), or AfterConnect's wrapped in an error that names
// it.
func (c *Connector) Connect(ctx context.Context, b backend.Backend) (*pgx.Conn, error) {
	if !b.Addr.IsValid() {
		return nil, fmt.Errorf("pg: backend %q has no address", b.Name)
	}
	if c.connectTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.connectTimeout)
		defer cancel()
	}
	conn, err := pgx.ConnectConfig(ctx, c.configFor(b))
	if err != nil {
		return nil, overloaded(err)
	}
	if c.afterConnect == nil {
		return conn, nil
	}
	kept := false
	defer func() {
		if !kept { // the hook failed or panicked: the pool never sees conn
			_ = c.Close(conn)
		}
	}()
	if err := c.afterConnect(ctx, conn); err != nil {
		return nil, fmt.Errorf("pg: AfterConnect on %s: %w", b.Name, err)
	}
	kept = true
	return conn, nil
}

// configFor returns the pgx configuration of a connection to b.
func (c *Connector) configFor(b backend.Backend) *pgx.ConnConfig {
	cc := c.base.Copy()
	host, port := b.Addr.Addr().Unmap().String(), b.Addr.Port()
	name := ""
	if c.serverName != nil {
		name = c.serverName(b)
	}
	withName := func(t *tls.Config) *tls.Config {
		if t == nil || name == "" {
			return t
		}
		t = t.Clone()
		t.ServerName = name
		return t
	}
	cc.Host, cc.Port, cc.TLSConfig = host, port, withName(cc.TLSConfig)
	tlsSeen, plainSeen := cc.TLSConfig != nil, cc.TLSConfig == nil
	var fallbacks []*pgconn.FallbackConfig
	for _, fb := range cc.Fallbacks {
		if fb.TLSConfig != nil && !tlsSeen || fb.TLSConfig == nil && !plainSeen {
			fallbacks = append(fallbacks, &pgconn.FallbackConfig{Host: host, Port: port, TLSConfig: withName(fb.TLSConfig)})
			tlsSeen = tlsSeen || fb.TLSConfig != nil
			plainSeen = plainSeen || fb.TLSConfig == nil
		}
	}
	cc.Fallbacks = fallbacks
	// The address is a literal: never ask the configuration's resolver.
	cc.LookupFunc = func(_ context.Context, h string) ([]string, error) { return []string{h}, nil }
	return cc
}

// config returns the configuration in use (see Pool.Config).
func (c *Connector) config() Config {
	return Config{ConnConfig: c.base.Copy(), ServerName: c.serverName, ResetQuery: c.reset,
		CloseTimeout: c.closeTimeout, AfterConnect: c.afterConnect}
}

// Close closes conn (PostgreSQL's Terminate message, then the socket),
// bounded by Config.CloseTimeout.
func (c *Connector) Close(conn *pgx.Conn) error {
	if conn == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.closeTimeout)
	defer cancel()
	return conn.Close(ctx)
}

// Validate implements [backend.Validator]: it pings the server (an empty
// statement and its answer). The pool runs it on every new connection and
// on idle ones every Policy.HealthInterval.
func (c *Connector) Validate(ctx context.Context, conn *pgx.Conn) error {
	if conn.IsClosed() {
		return errClosedConn
	}
	return conn.Ping(ctx)
}

var errClosedConn = errors.New("pg: connection closed")

// OnRecycle implements [backend.RecycleHook]; the pool runs it on every
// released connection before the connection serves another claim. A
// connection that is closed, or busy (rows or a batch not closed), is
// refused. A connection inside a transaction, or inside a failed one
// (TxStatus 'T' or 'E'), is rolled back; then Config.ResetQuery runs, if
// set. Any error makes the pool close the connection and open another,
// so a claimer never gets a connection in a transaction it did not begin.
func (c *Connector) OnRecycle(ctx context.Context, conn *pgx.Conn) error {
	if conn.IsClosed() {
		return errClosedConn
	}
	pc := conn.PgConn()
	if pc.IsBusy() {
		return errors.New("pg: connection released busy (rows or a batch not closed)")
	}
	switch s := pc.TxStatus(); s {
	case 'I':
	case 'T', 'E':
		if _, err := pc.Exec(ctx, "ROLLBACK").ReadAll(); err != nil {
			return fmt.Errorf("pg: roll back the transaction left open on release: %w", err)
		}
		if s := pc.TxStatus(); s != 'I' {
			return fmt.Errorf("pg: transaction status %q after rolling back", s)
		}
	default:
		return fmt.Errorf("pg: connection in unknown transaction status %q", s)
	}
	if c.reset == "" {
		return nil
	}
	if _, err := pc.Exec(ctx, c.reset).ReadAll(); err != nil {
		return fmt.Errorf("pg: reset query %q: %w", c.reset, err)
	}
	if err := conn.DeallocateAll(ctx); err != nil {
		return fmt.Errorf("pg: reset: deallocate prepared statements: %w", err)
	}
	if s := pc.TxStatus(); s != 'I' {
		return fmt.Errorf("pg: transaction status %q after the reset query %q", s, c.reset)
	}
	return nil
}

// The SQLSTATE codes of a server that is up and refuses a session for now:
// too many connections already (53300), and not accepting connections
// yet or any more (57P03: starting up, shutting down, in recovery).
const (
	codeTooManyConnections = "53300"
	codeCannotConnectNow   = "57P03"
)

// overloaded marks a connect error as the server's refusal under load
// (backend.Overloaded) when the server answered 53300 or 57P03: the pool
// then never counts it toward the backend's death and keeps its open
// connections. PostgreSQL gives no retry-after: the pool's backoff
// applies.
func overloaded(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && (pe.Code == codeTooManyConnections || pe.Code == codeCannotConnectNow) {
		return backend.Overloaded(err, 0)
	}
	return err
}
