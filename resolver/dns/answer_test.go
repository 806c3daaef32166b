package dns

import (
	"errors"
	"math"
	"net/netip"
	"slices"
	"testing"

	mdns "github.com/miekg/dns"
)

var testLimits = limits{udpSize: 1232, maxCNAME: 8, maxTargets: 256}

// reply builds a packed answer to q with the given records.
func reply(q *mdns.Msg, answer, extra []string, edit func(*mdns.Msg)) []byte {
	m := new(mdns.Msg)
	m.SetReply(q)
	for _, s := range answer {
		m.Answer = append(m.Answer, mustRR(s))
	}
	for _, s := range extra {
		m.Extra = append(m.Extra, mustRR(s))
	}
	if edit != nil {
		edit(m)
	}
	raw, err := m.Pack()
	if err != nil {
		panic(err)
	}
	return raw
}

func TestHandleAnswer(t *testing.T) {
	srvQ := newQuery("_db._tcp.example.test.", mdns.TypeSRV, 1232)
	aQ := newQuery("host.example.test.", mdns.TypeA, 1232)
	srv := []string{"_db._tcp.example.test. 30 IN SRV 0 0 80 b.example.test.", "_db._tcp.example.test. 20 IN SRV 0 0 80 a.example.test."}

	a, err := handleAnswer(srvQ, reply(srvQ, srv, []string{"A.example.test. 10 IN A 192.0.2.1", "a.example.test. 10 IN AAAA 2001:db8::1", "other.example.test. 1 IN A 192.0.2.9"}, nil), "udp", testLimits)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.srvs) != 2 || a.srvs[0] != (srvTarget{"b.example.test.", 80}) || a.ttl != 20 {
		t.Fatalf("srvs %v ttl %d", a.srvs, a.ttl)
	}
	if e := a.extra["a.example.test."]; e == nil || len(e.addrs) != 2 || e.ttl != 10 || a.extra["other.example.test."] != nil {
		t.Fatalf("extra %v", a.extra)
	}

	// A CNAME chain inside the answer, with its TTLs.
	a, err = handleAnswer(aQ, reply(aQ, []string{"host.example.test. 5 IN CNAME mid.example.test.", "mid.example.test. 30 IN CNAME end.example.test.", "end.example.test. 60 IN A 192.0.2.2", "end.example.test. 60 IN A 192.0.2.2", "end.example.test. 60 IN A 0.0.0.0"}, nil, nil), "udp", testLimits)
	if err != nil || a.hops != 2 || a.ttl != 5 || !slices.Equal(a.addrs, []netip.Addr{netip.MustParseAddr("192.0.2.2")}) {
		t.Fatalf("chain: %+v %v", a, err)
	}
	// A chain leaving the answer: ask for its end.
	a, err = handleAnswer(aQ, reply(aQ, []string{"host.example.test. 5 IN CNAME far.example.org."}, nil, nil), "udp", testLimits)
	if err != nil || a.next != "far.example.org." || a.negative {
		t.Fatalf("open chain: %+v %v", a, err)
	}
	// NXDOMAIN at the end of a chain is negative.
	a, err = handleAnswer(aQ, reply(aQ, []string{"host.example.test. 5 IN CNAME far.example.org."}, nil, func(m *mdns.Msg) { m.Rcode = mdns.RcodeNameError }), "udp", testLimits)
	if err != nil || !a.negative || !a.nxdomain || a.next != "" || a.ttl != math.MaxUint32 {
		t.Fatalf("nxdomain: %+v %v", a, err)
	}
	// NODATA.
	a, err = handleAnswer(aQ, reply(aQ, nil, nil, nil), "udp", testLimits)
	if err != nil || !a.negative || a.nxdomain {
		t.Fatalf("nodata: %+v %v", a, err)
	}
	// "." target: the service is decidedly not available.
	a, err = handleAnswer(srvQ, reply(srvQ, []string{"_db._tcp.example.test. 30 IN SRV 0 0 0 ."}, nil, nil), "udp", testLimits)
	if err != nil || a.negative || len(a.srvs) != 0 {
		t.Fatalf("dot target: %+v %v", a, err)
	}
	// Truncated over UDP: retry over TCP; over TCP: malformed.
	tc := reply(srvQ, nil, nil, func(m *mdns.Msg) { m.Truncated = true })
	if a, err = handleAnswer(srvQ, tc, "udp", testLimits); err != nil || !a.truncated {
		t.Fatalf("truncated: %+v %v", a, err)
	}
	if _, err = handleAnswer(srvQ, tc, "tcp", testLimits); !errors.Is(err, ErrMalformed) {
		t.Fatalf("truncated over tcp: %v", err)
	}
	// A truncated UDP answer cut mid-record still leads to TCP.
	full := reply(srvQ, srv, nil, func(m *mdns.Msg) { m.Truncated = true })
	if a, err = handleAnswer(srvQ, full[:len(full)-4], "udp", testLimits); err != nil || !a.truncated {
		t.Fatalf("cut truncated: %+v %v", a, err)
	}

	good := reply(srvQ, srv, nil, nil)
	for _, tc := range []struct {
		name string
		raw  []byte
		net  string
		is   error
	}{
		{"empty", nil, "udp", ErrMalformed},
		{"short", []byte{1, 2, 3}, "udp", ErrMalformed},
		{"cut", good[:len(good)-4], "tcp", ErrMalformed},
		{"query, not response", func() []byte { raw, _ := srvQ.Pack(); return raw }(), "udp", ErrMismatch},
		{"wrong id", reply(srvQ, srv, nil, func(m *mdns.Msg) { m.Id++ }), "udp", ErrMismatch},
		{"wrong name", reply(srvQ, srv, nil, func(m *mdns.Msg) { m.Question[0].Name = "x.example.test." }), "udp", ErrMismatch},
		{"wrong type", reply(srvQ, srv, nil, func(m *mdns.Msg) { m.Question[0].Qtype = mdns.TypeA }), "udp", ErrMismatch},
		{"no question", reply(srvQ, srv, nil, func(m *mdns.Msg) { m.Question = nil }), "udp", ErrMismatch},
		{"opcode", reply(srvQ, srv, nil, func(m *mdns.Msg) { m.Opcode = mdns.OpcodeNotify }), "udp", ErrMismatch},
		{"servfail", reply(srvQ, nil, nil, func(m *mdns.Msg) { m.Rcode = mdns.RcodeServerFailure }), "udp", ErrServerFailure},
		{"refused, no question", reply(srvQ, nil, nil, func(m *mdns.Msg) { m.Rcode = mdns.RcodeRefused; m.Question = nil }), "udp", ErrServerFailure},
		{"oversized udp", reply(srvQ, srv, nil, func(m *mdns.Msg) {
			for i := range 100 {
				m.Extra = append(m.Extra, mustRR("pad.example.test. 1 IN TXT \""+string(rune('a'+i%26))+"xxxxxxxxxxxxxxxxxxxx\""))
			}
		}), "udp", ErrOversized},
		{"cname loop", reply(aQ, []string{"host.example.test. 5 IN CNAME loop.example.test.", "loop.example.test. 5 IN CNAME host.example.test."}, nil, nil), "udp", ErrCNAMEChain},
	} {
		q := srvQ
		if tc.is == ErrCNAMEChain {
			q = aQ
		}
		if _, err := handleAnswer(q, tc.raw, tc.net, testLimits); !errors.Is(err, tc.is) {
			t.Errorf("%s: error %v, want %v", tc.name, err, tc.is)
		}
	}
}

// FuzzAnswer feeds arbitrary bytes to answer handling as the answer to an
// SRV query and to an A query: it must never panic, and must either fail
// with one of the package's errors or return a consistent answer.
func FuzzAnswer(f *testing.F) {
	srvQ := newQuery("_db._tcp.example.test.", mdns.TypeSRV, 1232)
	srvQ.Id = 4242
	aQ := newQuery("_db._tcp.example.test.", mdns.TypeA, 1232)
	aQ.Id = 4242
	f.Add(reply(srvQ, []string{"_db._tcp.example.test. 30 IN SRV 0 0 80 a.example.test."}, []string{"a.example.test. 10 IN A 192.0.2.1"}, nil))
	f.Add(reply(srvQ, []string{"_db._tcp.example.test. 5 IN CNAME b.example.test.", "b.example.test. 30 IN SRV 0 0 80 a.example.test."}, nil, nil))
	f.Add(reply(srvQ, nil, nil, func(m *mdns.Msg) { m.Rcode = mdns.RcodeNameError }))
	f.Add(reply(srvQ, nil, nil, func(m *mdns.Msg) { m.Truncated = true }))
	f.Add(reply(aQ, []string{"_db._tcp.example.test. 30 IN A 192.0.2.1"}, nil, nil))
	f.Add([]byte{})
	f.Add([]byte{0x10, 0x92, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0})
	sentinels := []error{ErrMalformed, ErrMismatch, ErrOversized, ErrServerFailure, ErrCNAMEChain}
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, q := range []*mdns.Msg{srvQ, aQ} {
			for _, network := range []string{"udp", "tcp"} {
				a, err := handleAnswer(q, raw, network, testLimits)
				if err != nil {
					if !slices.ContainsFunc(sentinels, func(s error) bool { return errors.Is(err, s) }) {
						t.Fatalf("error %v wraps none of the package's errors", err)
					}
					if a != nil {
						t.Fatal("an answer with an error")
					}
					continue
				}
				if a == nil {
					t.Fatal("no answer and no error")
				}
				if a.truncated && network == "tcp" {
					t.Fatal("truncated over TCP accepted")
				}
				if len(a.srvs) > testLimits.maxTargets || a.hops > testLimits.maxCNAME {
					t.Fatalf("limits passed: %d targets, %d hops", len(a.srvs), a.hops)
				}
				if q == aQ && len(a.srvs) > 0 || q == srvQ && len(a.addrs) > 0 {
					t.Fatal("records of another type taken")
				}
				for _, ad := range a.addrs {
					if !ad.IsValid() || ad.IsUnspecified() || !ad.Is4() {
						t.Fatalf("bad address %v", ad)
					}
				}
				for _, s := range a.srvs {
					if s.port == 0 || s.name == "." || !mdns.IsFqdn(s.name) {
						t.Fatalf("bad target %+v", s)
					}
				}
			}
		}
	})
}
