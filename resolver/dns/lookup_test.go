package dns

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/fsm"
	"github.com/qorbgo/qorb/pool"
	"github.com/qorbgo/qorb/resolver"
)

// fakeLookup stands in for the system resolver (Config.LookupNetIP): it
// answers from a table that tests change, and records what it was asked.
type fakeLookup struct {
	mu    sync.Mutex
	hosts map[string][]netip.Addr // a host missing is "no such host"
	err   error                   // when set, every lookup fails with it
	block bool                    // when set, a lookup waits for its context
	calls []string                // "network host"
}

func (f *fakeLookup) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	f.mu.Lock()
	f.calls = append(f.calls, network+" "+host)
	addrs, ok := f.hosts[host]
	err, block := f.err, f.block
	f.mu.Unlock()
	switch {
	case block:
		<-ctx.Done()
		return nil, &net.DNSError{Err: ctx.Err().Error(), Name: host}
	case err != nil:
		return nil, err
	case !ok:
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return addrs, nil
}

func (f *fakeLookup) set(host string, addrs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var as []netip.Addr
	for _, a := range addrs {
		as = append(as, netip.MustParseAddr(a))
	}
	f.hosts[host] = as
}

func (f *fakeLookup) remove(host string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.hosts, host)
}

func (f *fakeLookup) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func (f *fakeLookup) asked() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func newFakeLookup() *fakeLookup { return &fakeLookup{hosts: map[string][]netip.Addr{}} }

// newHostResolver makes a resolver of a host:port service with no DNS
// servers, through f.
func newHostResolver(t *testing.T, service string, f *fakeLookup, cfg Config) *Resolver {
	t.Helper()
	cfg.LookupNetIP = f.LookupNetIP
	r, err := New(service, nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// wantWithin checks that the next timer is due in [lo, lo × (1 + jitter)].
func wantWithin(t *testing.T, h *testHost, lo time.Duration) {
	t.Helper()
	if d := h.nextIn(); d < lo || d > lo+lo/10 {
		t.Fatalf("next query in %v, want %v plus at most 10%% jitter", d, lo)
	}
}

// TestHostLookup: a host:port service with no DNS servers is resolved by
// the lookup function (the system resolver by default), once per round,
// again every MinInterval, and the answer's addresses become the backends.
func TestHostLookup(t *testing.T) {
	f := newFakeLookup()
	// An IPv4 address given both ways, as net.Resolver may.
	f.set("db.test", "192.0.2.1", "::ffff:192.0.2.1", "2001:db8::1")
	h := newHost(t)
	r := newHostResolver(t, "DB.test:5432", f, Config{})
	h.start(r)
	st := wantState(t, h, r, resolver.Resolved)
	wantNames(t, h.last(), "db.test@192.0.2.1:5432", "db.test@[2001:db8::1]:5432")
	if st.Queries != 1 || st.Errors != 0 || st.LastError != "" {
		t.Errorf("stats %+v", st)
	}
	if got := f.asked(); len(got) != 1 || got[0] != "ip db.test" {
		t.Fatalf("lookups %q, want one of ip db.test", got)
	}
	// No TTL: asked again every MinInterval.
	wantWithin(t, h, DefaultMinInterval)

	f.set("db.test", "192.0.2.2")
	h.requery()
	wantState(t, h, r, resolver.Resolved)
	wantNames(t, h.last(), "db.test@192.0.2.2:5432")
	wantWithin(t, h, DefaultMinInterval)
	h.stop(r)

	for _, tc := range []struct {
		fam     Family
		network string
		want    string
	}{
		{IPv4Only, "ip4", "db.test@192.0.2.1:5432"},
		{IPv6Only, "ip6", "db.test@[2001:db8::1]:5432"},
	} {
		f := newFakeLookup()
		f.set("db.test", "192.0.2.1", "2001:db8::1") // the fake ignores the network
		h := newHost(t)
		r := newHostResolver(t, "db.test:5432", f, Config{Family: tc.fam})
		h.start(r)
		wantNames(t, h.last(), tc.want)
		if got := f.asked(); got[0] != tc.network+" db.test" {
			t.Errorf("%v: lookup %q", tc.fam, got[0])
		}
		h.stop(r)
	}
}

// TestHostNotFound: a name that does not exist is an empty answer whose
// error says so, names the service and wraps both ErrNoBackends and the
// resolver's *net.DNSError; it is asked again after EmptyRetry, doubling,
// and a set found before is kept.
func TestHostNotFound(t *testing.T) {
	f := newFakeLookup()
	h := newHost(t)
	r := newHostResolver(t, "nosuch.invalid:5432", f, Config{})
	h.start(r)
	st := wantState(t, h, r, resolver.Failed)
	if len(h.updates) != 0 {
		t.Errorf("updates %v, want none", h.updates)
	}
	if len(h.errs) != 1 {
		t.Fatalf("errors reported %v, want one", h.errs)
	}
	err := h.errs[0]
	var dnsErr *net.DNSError
	if !errors.Is(err, ErrNoBackends) || !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Errorf("error %v: want ErrNoBackends and a *net.DNSError with IsNotFound", err)
	}
	for _, want := range []string{"nosuch.invalid:5432", "no such host", "system resolver"} {
		if !strings.Contains(st.LastError, want) {
			t.Errorf("last error %q lacks %q", st.LastError, want)
		}
	}
	if st.LastError != err.Error() {
		t.Errorf("Stats' last error %q, reported %q", st.LastError, err)
	}
	wantWithin(t, h, DefaultEmptyRetry)
	h.requery()
	wantState(t, h, r, resolver.Failed)
	wantWithin(t, h, 2*DefaultEmptyRetry)

	// Found at last; then gone again: the set found is kept.
	f.set("nosuch.invalid", "192.0.2.9")
	h.requery()
	wantState(t, h, r, resolver.Resolved)
	wantNames(t, h.last(), "nosuch.invalid@192.0.2.9:5432")
	f.remove("nosuch.invalid")
	h.requery()
	wantState(t, h, r, resolver.Failed)
	wantNames(t, h.last(), "nosuch.invalid@192.0.2.9:5432")
	h.stop(r)

	// With TrustNegative the set empties.
	f = newFakeLookup()
	f.set("gone.test", "192.0.2.9")
	h = newHost(t)
	r = newHostResolver(t, "gone.test:5432", f, Config{TrustNegative: true})
	h.start(r)
	f.remove("gone.test")
	h.requery()
	wantState(t, h, r, resolver.Resolved)
	if got := h.last(); len(got) != 0 {
		t.Errorf("set %v, want empty", got)
	}
	h.stop(r)
}

// TestHostLookupFails: a lookup that fails (a timeout, a server failure)
// keeps the last set and is retried with backoff.
func TestHostLookupFails(t *testing.T) {
	f := newFakeLookup()
	f.set("db.test", "192.0.2.1")
	h := newHost(t)
	r := newHostResolver(t, "db.test:5432", f, Config{})
	h.start(r)
	f.fail(&net.DNSError{Err: "i/o timeout", Name: "db.test", IsTimeout: true})
	h.requery()
	st := wantState(t, h, r, resolver.Failed)
	wantNames(t, h.last(), "db.test@192.0.2.1:5432")
	if !strings.Contains(st.LastError, "db.test:5432: system resolver: lookup db.test: i/o timeout") || st.Errors != 1 {
		t.Errorf("stats %+v", st)
	}
	if errors.Is(r.lastErr, ErrNoBackends) {
		t.Errorf("a failed lookup is not an empty answer: %v", r.lastErr)
	}
	wantWithin(t, h, DefaultBackoffMin)
	h.requery()
	wantWithin(t, h, 2*DefaultBackoffMin)
	f.fail(nil)
	h.requery()
	wantState(t, h, r, resolver.Resolved)
	wantWithin(t, h, DefaultMinInterval)
	h.stop(r)
}

// TestHostLookupStop: Stop ends a lookup in flight through its context,
// and its late outcome is dropped.
func TestHostLookupStop(t *testing.T) {
	f := newFakeLookup()
	f.block = true
	h := newHost(t)
	r := newHostResolver(t, "db.test:5432", f, Config{})
	h.locked(func() { r.Start(h) })
	for len(f.asked()) == 0 {
		time.Sleep(time.Millisecond)
	}
	h.stop(r)
	if len(h.updates) != 0 || len(h.errs) != 0 || h.pending() {
		t.Fatalf("after Stop: updates %v, errors %v, timer pending %v", h.updates, h.errs, h.pending())
	}
}

// TestHostLookupOnlyWithoutServers: the system resolver is for a host:port
// service with no servers given; New then needs no /etc/resolv.conf. With
// servers, or for an SRV name, the DNS servers are asked as before.
func TestHostLookupOnlyWithoutServers(t *testing.T) {
	old := resolvConf
	t.Cleanup(func() { resolvConf = old })
	resolvConf = filepath.Join(t.TempDir(), "missing")

	r, err := New("LocalHost:80", nil, Config{})
	if err != nil {
		t.Fatalf("a host:port service with no servers read resolv.conf: %v", err)
	}
	if r.lookup == nil || r.hostname != "localhost" || r.port != 80 || len(r.servers) != 0 {
		t.Errorf("New(localhost:80, nil): lookup set %v, hostname %q, port %d, servers %v",
			r.lookup != nil, r.hostname, r.port, r.servers)
	}
	if _, err := New("_db._tcp.example.com", nil, Config{LookupNetIP: newFakeLookup().LookupNetIP}); !errors.Is(err, ErrNoServers) {
		t.Errorf("an SRV name with no servers and no resolv.conf: %v, want ErrNoServers", err)
	}

	z := startZoneServer(t, zonePath)
	f := newFakeLookup()
	h := newHost(t)
	r = newResolver(t, "plain.example.test:8080", Config{LookupNetIP: f.LookupNetIP}, z)
	h.start(r)
	wantNames(t, h.last(), "plain.example.test.@192.0.2.10:8080", "plain.example.test.@[2001:db8::10]:8080")
	if len(f.asked()) != 0 {
		t.Errorf("servers given, yet the lookup function was asked %q", f.asked())
	}
	h.stop(r)
}

// TestPoolReportsHostNotFound: through a pool, the resolver's error for a
// name that does not exist is in the pool's Stats.
func TestPoolReportsHostNotFound(t *testing.T) {
	f := newFakeLookup()
	r := newHostResolver(t, "nosuch.invalid:5432", f, Config{})
	failed := make(chan struct{}, 1)
	obs := fsm.ObserverFunc(func(tr fsm.Transition) {
		if st, ok := resolver.Kind.Step(tr); ok && st.To == resolver.Failed {
			select {
			case failed <- struct{}{}:
			default:
			}
		}
	})
	conn := &recordingConnector{connects: map[backend.Name]int{}, closes: map[backend.Name]int{}}
	p, err := pool.New(r, conn, pool.Policy{}, pool.WithClock(clock.NewMock()), pool.WithObserver(obs))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	select {
	case <-failed:
	case <-time.After(10 * time.Second):
		t.Fatalf("the resolver did not fail: %+v", p.Stats().Resolver)
	}
	st := p.Stats().Resolver
	if st.State != "failed" || !strings.Contains(st.LastError, "nosuch.invalid:5432: no such host") {
		t.Fatalf("pool's resolver stats %+v", st)
	}
	t.Logf("the pool's resolver: %s: %s", st.State, st.LastError)
}
