package pg_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/contrib/pg"
	"github.com/qorbgo/qorb/pool"
	"github.com/qorbgo/qorb/resolver"
)

// A bad configuration is an error wrapping ErrConfig from NewConnector and
// New, before any I/O.
func TestBadConfig(t *testing.T) {
	parsed, err := pgx.ParseConfig("user=app")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  pg.Config
	}{
		{"unparsable connection string", pg.Config{ConnString: "host=a port=notaport"}},
		{"both ConnConfig and ConnString", pg.Config{ConnConfig: parsed, ConnString: "user=app"}},
		{"hand-built ConnConfig", pg.Config{ConnConfig: &pgx.ConnConfig{}}},
		{"negative CloseTimeout", pg.Config{CloseTimeout: -time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := pg.NewConnector(tc.cfg); !errors.Is(err, pg.ErrConfig) {
				t.Errorf("NewConnector: %v, want an error wrapping ErrConfig", err)
			}
			p, err := pg.New(resolver.NewFixed(), tc.cfg, pool.Policy{})
			if !errors.Is(err, pg.ErrConfig) {
				t.Errorf("New: %v, want an error wrapping ErrConfig", err)
			}
			if p != nil {
				t.Errorf("New returned a pool with its error")
			}
		})
	}
	if _, err := pg.NewConnector(pg.Config{ConnConfig: parsed}); err != nil {
		t.Errorf("a parsed ConnConfig: %v", err)
	}
	if _, err := pg.New(resolver.NewFixed(), pg.Config{}, pool.Policy{MaxSlots: -1}); err == nil || errors.Is(err, pg.ErrConfig) {
		t.Errorf("a bad policy: %v, want pool.New's error", err)
	}
}

func TestSRVTarget(t *testing.T) {
	for name, want := range map[backend.Name]string{
		"db-1.example.com.@10.0.0.7:5432":      "db-1.example.com",
		"db-1.example.com.@[2001:db8::7]:5432": "db-1.example.com",
		"127.0.0.1:5432":                       "",
	} {
		if got := pg.SRVTarget(backend.Backend{Name: name}); got != want {
			t.Errorf("SRVTarget(%q) = %q, want %q", name, got, want)
		}
	}
}

// freeAddr returns a loopback address where nothing listens.
func freeAddr(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr).AddrPort()
	ln.Close()
	return addr
}

// A server that is not there: claims fail with pool.ErrNoBackendsOnline
// and pgx's connect error, from every method.
func TestNoServer(t *testing.T) {
	addr := freeAddr(t)
	p, err := pg.New(resolver.NewFixed(addr), pg.Config{ConnString: "user=app sslmode=disable"}, pool.Policy{
		ClaimTimeout: 2 * time.Second, DeadAfter: 1, BackoffMax: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	ctx := context.Background()
	check := func(what string, err error) {
		t.Helper()
		var ce *pgconn.ConnectError
		if !errors.Is(err, pool.ErrNoBackendsOnline) || !errors.As(err, &ce) {
			t.Errorf("%s: %v, want pool.ErrNoBackendsOnline with a *pgconn.ConnectError", what, err)
		}
	}
	_, err = p.Exec(ctx, "select 1")
	check("Exec", err)
	rows, err := p.Query(ctx, "select 1")
	check("Query", err)
	check("Query's rows", rows.Err())
	rows.Close()
	check("QueryRow", p.QueryRow(ctx, "select 1").Scan())
	_, err = p.Begin(ctx)
	check("Begin", err)
	check("SendBatch", p.SendBatch(ctx, &pgx.Batch{}).Close())
	called := false
	check("ClaimFunc", p.ClaimFunc(ctx, func(*pgx.Conn) error { called = true; return nil }))
	if called {
		t.Error("ClaimFunc called its function without a connection")
	}
	check("Ping", p.Ping(ctx))
	if st := p.Stats(); st.Slots.Connected+st.Slots.Claimed != 0 || st.Failures == 0 || st.LastError == "" {
		t.Errorf("stats: %+v slots, %d failures, last error %q; want no connection and the failures", st.Slots, st.Failures, st.LastError)
	}
}

// Release of a nil handle, as a failed Claim returns, does nothing: a
// deferred Release after a failed Claim must not panic.
func TestReleaseNilHandle(t *testing.T) {
	pg.Release(nil, nil)
	pg.Release(nil, errors.New("statement failed"))
}
