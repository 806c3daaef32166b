package pg

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/pool"
	"github.com/qorbgo/qorb/resolver"
)

// Each connection's configuration has the backend's address for every
// host, keeps the configured TLS server name (or takes Config.ServerName's),
// keeps one TLS and one plain fallback for sslmode=prefer, and never looks
// a name up.
func TestConfigFor(t *testing.T) {
	b := backend.Backend{Name: "pg2.db.example.com.@127.0.0.2:6433", Addr: netip.MustParseAddrPort("127.0.0.2:6433")}
	for _, tc := range []struct {
		name, conn string
		serverName func(backend.Backend) string
		wantTLS    []bool   // primary, then fallbacks: TLS or plain
		wantName   []string // their TLS server names ("" for plain)
	}{
		{"no TLS", "host=db.example.com port=5432 user=app sslmode=disable", nil, []bool{false}, []string{""}},
		{"sslmode=prefer", "host=db.example.com user=app sslmode=prefer", nil,
			[]bool{true, false}, []string{"db.example.com", ""}},
		{"several hosts, sslmode=prefer", "host=a.example.com,b.example.com port=5432,5433 user=app sslmode=prefer", nil,
			[]bool{true, false}, []string{"a.example.com", ""}},
		{"verify-full with the SRV target's name", "host=db.example.com user=app sslmode=verify-full", SRVTarget,
			[]bool{true}, []string{"pg2.db.example.com"}},
		{"sslmode=allow", "host=db.example.com user=app sslmode=allow", SRVTarget,
			[]bool{false, true}, []string{"", "pg2.db.example.com"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewConnector(Config{ConnString: tc.conn, ServerName: tc.serverName})
			if err != nil {
				t.Fatal(err)
			}
			cc := c.configFor(b)
			hosts := []string{cc.Host}
			ports := []uint16{cc.Port}
			tls := []bool{cc.TLSConfig != nil}
			var names []string
			if cc.TLSConfig != nil {
				names = append(names, cc.TLSConfig.ServerName)
			} else {
				names = append(names, "")
			}
			for _, fb := range cc.Fallbacks {
				hosts, ports = append(hosts, fb.Host), append(ports, fb.Port)
				tls = append(tls, fb.TLSConfig != nil)
				if fb.TLSConfig != nil {
					names = append(names, fb.TLSConfig.ServerName)
				} else {
					names = append(names, "")
				}
			}
			for i := range hosts {
				if hosts[i] != "127.0.0.2" || ports[i] != 6433 {
					t.Errorf("host %d is %s:%d, want the backend's 127.0.0.2:6433", i, hosts[i], ports[i])
				}
			}
			if !slices.Equal(tls, tc.wantTLS) || !slices.Equal(names, tc.wantName) {
				t.Errorf("TLS %v with server names %q, want %v and %q", tls, names, tc.wantTLS, tc.wantName)
			}
			got, err := cc.LookupFunc(context.Background(), cc.Host)
			if err != nil || !slices.Equal(got, []string{"127.0.0.2"}) {
				t.Errorf("lookup of %s: %v %v, want the address itself", cc.Host, got, err)
			}
			if c.base.Host == cc.Host {
				t.Error("the connector's own configuration was changed")
			}
		})
	}
}

// An IPv4-mapped IPv6 address is dialled as IPv4; an IPv6 one as itself.
func TestConfigForIPv6(t *testing.T) {
	c, err := NewConnector(Config{ConnString: "user=app sslmode=disable"})
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]string{"[::ffff:127.0.0.1]:5432": "127.0.0.1", "[::1]:5432": "::1"} {
		cc := c.configFor(backend.FromAddr(netip.MustParseAddrPort(addr)))
		if cc.Host != want {
			t.Errorf("%s: host %q, want %q", addr, cc.Host, want)
		}
	}
}

// New puts the pool's ConnectTimeout on the connector, its default
// included.
func TestConnectDeadline(t *testing.T) {
	for _, pol := range []pool.Policy{{}, {ConnectTimeout: 3 * time.Second}} {
		p, err := New(resolver.NewFixed(), Config{}, pol)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := p.c.connectTimeout, p.EffectivePolicy().ConnectTimeout; got != want {
			t.Errorf("policy %v: the connector's deadline is %v, the pool's ConnectTimeout %v", pol.ConnectTimeout, got, want)
		}
		if err := p.Close(context.Background()); err != nil {
			t.Error(err)
		}
	}
}

// A server that is up and refuses a session for now (53300, 57P03) is
// overloaded, not down; any other connect error stays as it is.
func TestOverloadedCodes(t *testing.T) {
	for code, want := range map[string]bool{"53300": true, "57P03": true, "28P01": false, "3D000": false} {
		err := fmt.Errorf("failed to connect: %w", &pgconn.PgError{Code: code, Message: "refused"})
		got := overloaded(err)
		_, ok := backend.IsOverloaded(got)
		if ok != want {
			t.Errorf("code %s: overloaded %v, want %v", code, ok, want)
		}
		if !errors.Is(got, err) && got != err {
			t.Errorf("code %s: the error %v no longer wraps %v", code, got, err)
		}
	}
	if _, ok := backend.IsOverloaded(overloaded(errors.New("dial tcp: connection refused"))); ok {
		t.Error("a refused dial is overloaded")
	}
}
