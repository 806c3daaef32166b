package dns

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// zonePath is the zone every test server starts from.
var zonePath = filepath.Join("..", "..", "testdata", "zones", "example.test.zone")

// behavior is how a test server misbehaves.
type behavior int

const (
	answerWell    behavior = iota
	drop                   // never answer: the client times out
	servfail               // answer SERVFAIL
	refused                // answer REFUSED with no question
	malformed              // answer with the last bytes cut off
	wrongID                // answer with another ID
	wrongQuestion          // answer another question
	oversize               // ignore the client's EDNS0 buffer: never truncate
)

// zoneServer is an in-process authoritative DNS server on 127.0.0.1, UDP
// and TCP on one port, serving a zone whose records tests change while it
// runs.
type zoneServer struct {
	Addr netip.AddrPort

	mu      sync.Mutex
	rrs     []mdns.RR
	soa     *mdns.SOA
	behave  behavior
	noExtra bool // leave the additional section out of SRV answers
	noChase bool // answer a CNAME alone, without following it
	queries map[string]int

	udp, tcp *mdns.Server
}

// startZoneServer starts a server for the zone in path and stops it when
// the test ends.
func startZoneServer(t testing.TB, path string) *zoneServer {
	t.Helper()
	z := &zoneServer{queries: map[string]int{}}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zp := mdns.NewZoneParser(f, "", path)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		if soa, isSOA := rr.(*mdns.SOA); isSOA {
			z.soa = soa
		}
		z.rrs = append(z.rrs, rr)
	}
	if err := zp.Err(); err != nil {
		t.Fatal(err)
	}
	var pc net.PacketConn
	var ln net.Listener
	for try := 0; ; try++ {
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		ln, err = net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			z.Addr = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
			break
		}
		pc.Close()
		if try == 20 {
			t.Fatalf("no free port for UDP and TCP: %v", err)
		}
	}
	var started sync.WaitGroup
	started.Add(2)
	z.udp = &mdns.Server{PacketConn: pc, Handler: z, NotifyStartedFunc: started.Done}
	z.tcp = &mdns.Server{Listener: ln, Handler: z, NotifyStartedFunc: started.Done}
	var served sync.WaitGroup
	for _, s := range []*mdns.Server{z.udp, z.tcp} {
		served.Add(1)
		go func() {
			defer served.Done()
			s.ActivateAndServe()
		}()
	}
	started.Wait()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		z.udp.ShutdownContext(ctx)
		z.tcp.ShutdownContext(ctx)
		served.Wait()
	})
	return z
}

// set replaces the records of name and type with rrs, given in zone file
// syntax relative to example.test. ("v4 A 192.0.2.1").
func (z *zoneServer) set(name string, qtype uint16, rrs ...string) {
	var parsed []mdns.RR
	for _, s := range rrs {
		rr, err := mdns.NewRR("$ORIGIN example.test.\n$TTL 30\n" + s)
		if err != nil {
			panic(err)
		}
		parsed = append(parsed, rr)
	}
	name = mdns.CanonicalName(absName(name))
	z.mu.Lock()
	defer z.mu.Unlock()
	kept := z.rrs[:0]
	for _, rr := range z.rrs {
		h := rr.Header()
		if mdns.CanonicalName(h.Name) == name && h.Rrtype == qtype {
			continue
		}
		kept = append(kept, rr)
	}
	z.rrs = append(kept, parsed...)
}

func absName(name string) string {
	if strings.HasSuffix(name, ".") {
		return name
	}
	return name + ".example.test."
}

func (z *zoneServer) setBehavior(b behavior) {
	z.mu.Lock()
	z.behave = b
	z.mu.Unlock()
}

func (z *zoneServer) setNoExtra(v bool) {
	z.mu.Lock()
	z.noExtra = v
	z.mu.Unlock()
}

func (z *zoneServer) setNoChase(v bool) {
	z.mu.Lock()
	z.noChase = v
	z.mu.Unlock()
}

// count returns how many queries arrived over network ("udp", "tcp"), or in
// all with "".
func (z *zoneServer) count(network string) int {
	z.mu.Lock()
	defer z.mu.Unlock()
	if network == "" {
		return z.queries["udp"] + z.queries["tcp"]
	}
	return z.queries[network]
}

func (z *zoneServer) find(name string, qtype uint16) []mdns.RR {
	var out []mdns.RR
	for _, rr := range z.rrs {
		h := rr.Header()
		if h.Rrtype == qtype && mdns.CanonicalName(h.Name) == name {
			out = append(out, mdns.Copy(rr))
		}
	}
	return out
}

func (z *zoneServer) exists(name string) bool {
	for _, rr := range z.rrs {
		if mdns.CanonicalName(rr.Header().Name) == name {
			return true
		}
	}
	return false
}

// answer builds the authoritative answer to req.
func (z *zoneServer) answer(req *mdns.Msg) *mdns.Msg {
	m := new(mdns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	if len(req.Question) != 1 {
		m.Rcode = mdns.RcodeFormatError
		return m
	}
	q := req.Question[0]
	name := mdns.CanonicalName(q.Name)
	for hops := 0; ; hops++ {
		if rrs := z.find(name, q.Qtype); len(rrs) > 0 {
			m.Answer = append(m.Answer, rrs...)
			break
		}
		if c := z.find(name, mdns.TypeCNAME); len(c) > 0 && q.Qtype != mdns.TypeCNAME && hops < 16 {
			m.Answer = append(m.Answer, c[0])
			name = mdns.CanonicalName(c[0].(*mdns.CNAME).Target)
			if z.noChase {
				return m
			}
			continue
		}
		if !z.exists(name) {
			m.Rcode = mdns.RcodeNameError
		}
		m.Ns = []mdns.RR{mdns.Copy(z.soa)}
		break
	}
	if q.Qtype == mdns.TypeSRV && !z.noExtra {
		for _, rr := range m.Answer {
			if srv, ok := rr.(*mdns.SRV); ok {
				t := mdns.CanonicalName(srv.Target)
				m.Extra = append(m.Extra, z.find(t, mdns.TypeA)...)
				m.Extra = append(m.Extra, z.find(t, mdns.TypeAAAA)...)
			}
		}
	}
	return m
}

// ServeDNS implements mdns.Handler.
func (z *zoneServer) ServeDNS(w mdns.ResponseWriter, req *mdns.Msg) {
	z.mu.Lock()
	defer z.mu.Unlock()
	network := w.LocalAddr().Network()
	z.queries[network]++
	m := z.answer(req)
	size := mdns.MaxMsgSize
	if network == "udp" {
		size = mdns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
	}
	if req.IsEdns0() != nil {
		m.SetEdns0(uint16(min(size, 4096)), false)
	}
	switch z.behave {
	case drop:
		return
	case servfail:
		m = new(mdns.Msg)
		m.SetRcode(req, mdns.RcodeServerFailure)
	case refused:
		m = new(mdns.Msg)
		m.SetRcode(req, mdns.RcodeRefused)
		m.Question = nil
	case wrongID:
		m.Id++
	case wrongQuestion:
		m.Question[0].Name = "other.example.test."
	case malformed:
		raw, err := m.Pack()
		if err != nil {
			panic(err)
		}
		w.Write(raw[:len(raw)-3])
		return
	case oversize:
		w.WriteMsg(m)
		return
	}
	m.Truncate(size)
	w.WriteMsg(m)
}
