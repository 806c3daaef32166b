package dns

import (
	"cmp"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/qorbgo/qorb/resolver"
)

// TestRealServer resolves through a DNS server we did not write: NSD,
// started by .ci/dns-server.sh, authoritative for qorb.test. It runs when
// QORB_DNS_SERVER names the server (127.0.0.1:PORT) and is skipped
// otherwise. It changes the zone with the script's reload (QORB_DNS_SCRIPT,
// default ../../.ci/dns-server.sh) and puts the first zone back at the end.
func TestRealServer(t *testing.T) {
	addr := os.Getenv("QORB_DNS_SERVER")
	if addr == "" {
		t.Skip("QORB_DNS_SERVER is not set; run .ci/dns-server.sh install && .ci/dns-server.sh start")
	}
	server, err := netip.ParseAddrPort(addr)
	if err != nil {
		t.Fatalf("QORB_DNS_SERVER=%q: %v", addr, err)
	}
	script := cmp.Or(os.Getenv("QORB_DNS_SCRIPT"), filepath.Join("..", "..", ".ci", "dns-server.sh"))
	zones := filepath.Join("..", "..", "testdata", "zones")
	v1, v2 := filepath.Join(zones, "qorb.test.zone"), filepath.Join(zones, "qorb.test.v2.zone")
	reload := func(zone string) {
		t.Helper()
		if out, err := exec.Command("bash", script, "reload", zone).CombinedOutput(); err != nil {
			t.Fatalf("reload %s: %v\n%s", zone, err, out)
		}
		waitSerial(t, server, zoneSerial(t, zone))
	}
	reload(v1)
	t.Cleanup(func() { reload(v1) })

	t.Run("SRV, A, AAAA, CNAME, and a record change after a reload", func(t *testing.T) {
		h := newHost(t)
		r, err := New("_svc._tcp.qorb.test.", []netip.AddrPort{server}, Config{})
		if err != nil {
			t.Fatal(err)
		}
		h.start(r)
		wantState(t, h, r, resolver.Resolved)
		wantNames(t, h.last(),
			"a.qorb.test.@192.0.2.11:7001",
			"b.qorb.test.@[2001:db8::12]:7002",
			"c.qorb.test.@192.0.2.13:7003",
			"c.qorb.test.@[2001:db8::13]:7003")

		reload(v2)
		h.requery()
		wantState(t, h, r, resolver.Resolved)
		wantNames(t, h.last(),
			"a.qorb.test.@192.0.2.11:7001",
			"c.qorb.test.@192.0.2.23:7003",
			"c.qorb.test.@[2001:db8::13]:7003",
			"d.qorb.test.@192.0.2.14:7004")
		if len(h.updates) != 2 {
			t.Errorf("%d updates, want 2", len(h.updates))
		}
		h.stop(r)
	})

	t.Run("truncated answer retried over TCP", func(t *testing.T) {
		f := &fakeExchanger{inner: netExchanger{}}
		h := newHost(t)
		r, err := New("_big._tcp.qorb.test.", []netip.AddrPort{server}, Config{})
		if err != nil {
			t.Fatal(err)
		}
		r.tr = f
		h.start(r)
		wantState(t, h, r, resolver.Resolved)
		if n := len(h.last()); n != 60 {
			t.Fatalf("%d backends, want 60", n)
		}
		if f.count("tcp") == 0 {
			t.Fatal("no TCP retry: the server did not truncate?")
		}
		h.stop(r)
	})

	t.Run("plain host:port", func(t *testing.T) {
		h := newHost(t)
		r, err := New("web.qorb.test:8080", []netip.AddrPort{server}, Config{})
		if err != nil {
			t.Fatal(err)
		}
		h.start(r)
		wantNames(t, h.last(), "web.qorb.test.@192.0.2.80:8080", "web.qorb.test.@[2001:db8::80]:8080")
		h.stop(r)
	})

	t.Run("NXDOMAIN and REFUSED", func(t *testing.T) {
		for _, tc := range []struct {
			service string
			is      error
			text    string
		}{
			{"_none._tcp.qorb.test.", ErrNoBackends, "NXDOMAIN"},
			{"_db._tcp.not-served.example.", ErrServerFailure, "REFUSED"},
		} {
			h := newHost(t)
			r, err := New(tc.service, []netip.AddrPort{server}, Config{})
			if err != nil {
				t.Fatal(err)
			}
			h.start(r)
			st := wantState(t, h, r, resolver.Failed)
			if !errors.Is(r.lastErr, tc.is) || !strings.Contains(st.LastError, tc.text) {
				t.Errorf("%s: last error %q", tc.service, st.LastError)
			}
			h.stop(r)
		}
	})
}

// zoneSerial reads the SOA serial of a zone file.
func zoneSerial(t *testing.T, path string) uint32 {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zp := mdns.NewZoneParser(f, "", path)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		if soa, ok := rr.(*mdns.SOA); ok {
			return soa.Serial
		}
	}
	t.Fatalf("no SOA in %s: %v", path, zp.Err())
	return 0
}

// waitSerial waits until server serves qorb.test. with the given SOA serial:
// NSD switches to a reloaded zone a moment after reading it, and says so
// nowhere we can wait on. The wait is bounded (10s).
func waitSerial(t *testing.T, server netip.AddrPort, want uint32) {
	t.Helper()
	c := &mdns.Client{Timeout: 500 * time.Millisecond}
	var got []uint32
	for range 100 {
		q := new(mdns.Msg)
		q.SetQuestion("qorb.test.", mdns.TypeSOA)
		if m, _, err := c.Exchange(q, server.String()); err == nil {
			for _, rr := range m.Answer {
				if soa, ok := rr.(*mdns.SOA); ok {
					if soa.Serial == want {
						return
					}
					got = append(got, soa.Serial)
				}
			}
		}
		<-time.After(100 * time.Millisecond)
	}
	t.Fatalf("serial %d not served within 10s (saw %v)", want, slices.Compact(got))
}
