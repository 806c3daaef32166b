package dns

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/qorbgo/qorb/resolver"
)

func TestStopCancelsQueriesAndDropsLateAnswers(t *testing.T) {
	z := startZoneServer(t, zonePath)
	f := &fakeExchanger{inner: netExchanger{}, hold: make(chan struct{}), started: make(chan struct{}, 16)}
	h := newHost(t)
	r := newResolver(t, "_one._tcp.example.test.", Config{Timeout: time.Minute}, z)
	r.tr = f
	h.locked(func() { r.Start(h) })
	<-f.started // the query is in flight, held
	h.locked(func() { h.stopResolver(r) })
	start := time.Now()
	h.loop.WaitIdle() // Stop cancelled the query: it ends now, not in a minute
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("in-flight query outlived Stop by %v", d)
	}
	if _, _, canceled := f.stats(); canceled != 1 {
		t.Fatalf("%d exchanges cancelled, want 1", canceled)
	}
	if len(h.updates) != 0 || h.pending() {
		t.Fatalf("after Stop: %d updates, timer pending %v", len(h.updates), h.pending())
	}
	wantState(t, h, r, resolver.Stopped)
	if got := strings.Join(h.trace, "; "); got != "resolving --stop--> stopped" {
		t.Fatalf("trace: %s", got)
	}
}

func TestLateAnswerAfterStopIsDropped(t *testing.T) {
	// An exchange that ignores cancellation and answers after Stop.
	z := startZoneServer(t, zonePath)
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	f := &fakeExchanger{answer: func(q *mdns.Msg) []byte {
		started <- struct{}{}
		<-release
		m := new(mdns.Msg)
		m.SetReply(q)
		m.Answer = append(m.Answer, mustRR("_one._tcp.example.test. 30 IN SRV 0 0 1 v4.example.test."),
			mustRR("v4.example.test. 30 IN A 192.0.2.1"))
		raw, _ := m.Pack()
		return raw
	}}
	h := newHost(t)
	r := newResolver(t, "_one._tcp.example.test.", Config{}, z)
	r.tr = f
	h.locked(func() { r.Start(h) })
	<-started
	h.locked(func() { h.stopResolver(r) })
	close(release)
	h.loop.WaitIdle()
	if len(h.updates) != 0 || h.pending() {
		t.Fatalf("late answer after Stop: %d updates, timer pending %v", len(h.updates), h.pending())
	}
	wantState(t, h, r, resolver.Stopped)
}

func TestStopWhileWaiting(t *testing.T) {
	z := startZoneServer(t, zonePath)
	h := newHost(t)
	r := newResolver(t, "_one._tcp.example.test.", Config{}, z)
	h.start(r)
	if !h.pending() {
		t.Fatal("no re-query timer")
	}
	h.stop(r)
	h.stop(r) // twice is harmless
	if h.pending() {
		t.Fatal("timer pending after Stop")
	}
	h.advance(time.Hour)
	if z.count("") != 1 {
		t.Fatalf("%d queries after Stop", z.count("")-1)
	}
	// Stop before Start.
	r2 := newResolver(t, "_one._tcp.example.test.", Config{}, z)
	h.locked(func() { h.stopResolver(r2) })
	h.locked(func() { r2.Start(h) })
	h.loop.WaitIdle()
	if z.count("") != 1 || len(h.updates) != 1 {
		t.Fatal("a resolver stopped before Start queried")
	}
}

func TestPartialFailureKeepsTargetAddresses(t *testing.T) {
	z := startZoneServer(t, zonePath)
	z.setNoExtra(true)
	failing := map[string]bool{}
	f := &fakeExchanger{inner: netExchanger{}, fail: func(q mdns.Question) error {
		if failing[q.Name+mdns.Type(q.Qtype).String()] {
			return errors.New("injected failure")
		}
		return nil
	}}
	h := newHost(t)
	r := newResolver(t, "_many._tcp.example.test.", Config{}, z)
	r.tr = f
	h.start(r)
	wantNames(t, h.last(), manySet...)

	// dual's A lookup fails, and a new target's lookups fail: dual keeps
	// its IPv4 address, the new target is left out until it resolves, and
	// a change to a healthy target goes through.
	failing["dual.example.test.A"] = true
	failing["new.example.test.A"] = true
	failing["new.example.test.AAAA"] = true
	z.set("_many._tcp", typeSRV,
		"_many._tcp SRV 0 0 5001 v4", "_many._tcp SRV 0 0 5002 v6",
		"_many._tcp SRV 0 0 5003 dual", "_many._tcp SRV 0 0 5009 new")
	z.set("new", typeA, "new A 192.0.2.9")
	z.set("v6", typeAAAA, "v6 AAAA 2001:db8::66")
	h.requery()
	st := wantState(t, h, r, resolver.Failed)
	wantNames(t, h.last(),
		"dual.example.test.@192.0.2.3:5003",
		"dual.example.test.@[2001:db8::3]:5003",
		"v4.example.test.@192.0.2.1:5001",
		"v6.example.test.@[2001:db8::66]:5002")
	if !strings.Contains(st.LastError, "partial answer") || !strings.Contains(st.LastError, "injected failure") {
		t.Fatalf("last error %q", st.LastError)
	}
	if d := h.nextIn(); d >= 2*time.Second {
		t.Fatalf("partial answer: retry in %v, want the backoff", d)
	}
	clear(failing)
	h.requery()
	wantState(t, h, r, resolver.Resolved)
	if names := names(h.last()); len(names) != 5 || names[2] != "new.example.test.@192.0.2.9:5009" {
		t.Fatalf("after recovery: %v", names)
	}
	h.stop(r)
}

// An empty answer that is not trusted keeps the last set, and so must
// keep what each target resolved to in it: a lookup that fails in a later
// round keeps those addresses. (Before, the empty round forgot them, and
// the next partial answer dropped the target.)
func TestEmptyAnswerKeepsTargetAddressesForLaterFailures(t *testing.T) {
	z := startZoneServer(t, zonePath)
	z.setNoExtra(true)
	failing := map[string]bool{}
	f := &fakeExchanger{inner: netExchanger{}, fail: func(q mdns.Question) error {
		if failing[q.Name+mdns.Type(q.Qtype).String()] {
			return errors.New("injected failure")
		}
		return nil
	}}
	h := newHost(t)
	r := newResolver(t, "_many._tcp.example.test.", Config{}, z)
	r.tr = f
	h.start(r)
	wantNames(t, h.last(), manySet...)

	z.set("_many._tcp", typeSRV) // a zone being reloaded: NXDOMAIN, not trusted
	h.requery()
	wantState(t, h, r, resolver.Failed)
	wantNames(t, h.stats(r).Backends, manySet...)

	z.set("_many._tcp", typeSRV, "_many._tcp SRV 0 0 5001 v4", "_many._tcp SRV 0 0 5002 v6", "_many._tcp SRV 0 0 5003 dual")
	failing["dual.example.test.A"] = true
	h.requery()
	st := wantState(t, h, r, resolver.Failed)
	wantNames(t, h.last(), manySet...)
	if !strings.Contains(st.LastError, "partial answer") {
		t.Fatalf("last error %q", st.LastError)
	}
	h.stop(r)
}

func TestBoundedConcurrency(t *testing.T) {
	z := startZoneServer(t, zonePath)
	z.setNoExtra(true)
	bigService(z, 30)
	f := &fakeExchanger{inner: netExchanger{}}
	h := newHost(t)
	r := newResolver(t, "_big._tcp.example.test.", Config{MaxInflight: 3}, z)
	r.tr = f
	h.start(r)
	wantState(t, h, r, resolver.Resolved)
	if n := len(h.last()); n != 60 {
		t.Fatalf("%d backends", n)
	}
	calls, maxRunning, _ := f.stats()
	if calls != 61 || maxRunning > 3 {
		t.Fatalf("%d exchanges, at most %d at once; want 61, at most 3", calls, maxRunning)
	}
	h.stop(r)
}

func TestTooManyTargets(t *testing.T) {
	z := startZoneServer(t, zonePath)
	bigService(z, 10)
	h := newHost(t)
	r := newResolver(t, "_big._tcp.example.test.", Config{MaxTargets: 9}, z)
	h.start(r)
	st := wantState(t, h, r, resolver.Failed)
	if !errors.Is(r.lastErr, ErrOversized) || !strings.Contains(st.LastError, "10 SRV records, the limit is 9") {
		t.Fatalf("last error %q", st.LastError)
	}
	h.stop(r)
}

func TestNew(t *testing.T) {
	srv := []netip.AddrPort{ap("127.0.0.1:53")}
	for _, bad := range []string{"", ".", "bad name with spaces", "host:0", "host:99999", "10.0.0.1:80", "::1", "a..b"} {
		if _, err := New(bad, srv, Config{}); err == nil {
			t.Errorf("New(%q) accepted", bad)
		}
	}
	for _, tc := range []struct {
		service, name string
		plain         bool
		port          uint16
	}{
		{"_db._tcp.Example.COM", "_db._tcp.example.com.", false, 0},
		{"_db._tcp.example.com.", "_db._tcp.example.com.", false, 0},
		{"db.example.com:5432", "db.example.com.", true, 5432},
		{"localhost:80", "localhost.", true, 80},
	} {
		r, err := New(tc.service, srv, Config{})
		if err != nil {
			t.Fatal(err)
		}
		if r.name != tc.name || r.plain != tc.plain || r.port != tc.port {
			t.Errorf("New(%q): name %q plain %v port %d", tc.service, r.name, r.plain, r.port)
		}
	}
	r, err := New("x.test:1", []netip.AddrPort{netip.MustParseAddrPort("[::1]:0")}, Config{})
	if err != nil || r.servers[0].addr.String() != "[::1]:53" {
		t.Fatalf("port 0 should mean 53: %v %v", err, r.servers[0].addr)
	}
	if _, err := New("x.test:1", []netip.AddrPort{{}}, Config{}); err == nil {
		t.Error("an invalid server address was accepted")
	}
}

func TestServersFromResolvConf(t *testing.T) {
	// A file of our own: this test never sends a query.
	dir := t.TempDir()
	path := filepath.Join(dir, "resolv.conf")
	os.WriteFile(path, []byte("search example.com\nnameserver 127.0.0.53\nnameserver ::1\nnameserver fe80::1%lo\noptions ndots:2\n"), 0o644)
	old := resolvConf
	t.Cleanup(func() { resolvConf = old })
	resolvConf = path
	r, err := New("_db._tcp.example.com", nil, Config{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range r.servers {
		got = append(got, s.addr.String())
	}
	if strings.Join(got, " ") != "127.0.0.53:53 [::1]:53 [fe80::1%lo]:53" {
		t.Fatalf("servers %v", got)
	}
	os.WriteFile(path, []byte("search example.com\n"), 0o644)
	if _, err := New("_db._tcp.example.com", nil, Config{}); !errors.Is(err, ErrNoServers) {
		t.Fatalf("no servers: %v", err)
	}
	resolvConf = filepath.Join(dir, "missing")
	if _, err := New("_db._tcp.example.com", nil, Config{}); !errors.Is(err, ErrNoServers) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestConfig(t *testing.T) {
	c := Config{}.withDefaults()
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	if c.Timeout != DefaultTimeout || c.Parallel != 2 || c.MaxInflight != 16 || c.MinInterval != 5*time.Second ||
		c.MaxInterval != time.Minute || c.EmptyRetry != time.Second || c.BackoffMin != time.Second ||
		c.BackoffMax != 30*time.Second || c.Jitter != 0.1 || c.UDPSize != 1232 || c.MaxCNAME != 8 || c.MaxTargets != 256 {
		t.Fatalf("defaults: %+v", c)
	}
	for _, tc := range []struct {
		cfg  Config
		text string
	}{
		{Config{Timeout: -1}, "Timeout is negative"},
		{Config{MinInterval: time.Hour}, "MinInterval 1h0m0s is above MaxInterval"},
		{Config{BackoffMin: time.Hour}, "BackoffMin 1h0m0s is above BackoffMax"},
		{Config{Parallel: -1}, "Parallel is -1"},
		{Config{MaxInflight: -2}, "MaxInflight is -2"},
		{Config{Jitter: 1.5}, "Jitter is 1.5"},
		{Config{Jitter: -0.1}, "Jitter is -0.1"},
		{Config{UDPSize: 100}, "UDPSize is 100 bytes"},
		{Config{MaxCNAME: -1}, "MaxCNAME is -1"},
		{Config{MaxTargets: -1}, "MaxTargets is -1"},
		{Config{Family: 7}, "unknown Family family(7)"},
	} {
		_, err := New("_x._tcp.example.com", []netip.AddrPort{ap("127.0.0.1:53")}, tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.text) || !strings.HasPrefix(err.Error(), "dns: config: ") {
			t.Errorf("%+v: error %v, want %q", tc.cfg, err, tc.text)
		}
	}
}

func mustRR(s string) mdns.RR {
	rr, err := mdns.NewRR(s)
	if err != nil {
		panic(err)
	}
	return rr
}
