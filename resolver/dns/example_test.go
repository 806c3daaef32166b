package dns_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	mdns "github.com/miekg/dns"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/pool"
	"github.com/qorbgo/qorb/resolver/dns"
)

// A pool over a service found through DNS SRV records. The example runs its
// own little DNS server on 127.0.0.1, and a connector that opens nothing.
func Example() {
	server, stop := serveDNS(`
_echo._tcp.example.test. 30 IN SRV 0 0 7007 echo1.example.test.
_echo._tcp.example.test. 30 IN SRV 0 0 7007 echo2.example.test.
echo1.example.test.      30 IN A    127.0.0.11
echo2.example.test.      30 IN A    127.0.0.12
echo2.example.test.      30 IN AAAA ::1
`)
	defer stop()

	r, err := dns.New("_echo._tcp.example.test", []netip.AddrPort{server}, dns.Config{})
	if err != nil {
		panic(err)
	}
	p, err := pool.New(r, nopConnector{}, pool.Policy{})
	if err != nil {
		panic(err)
	}
	defer p.Close(context.Background())

	h, err := p.Claim(context.Background())
	if err != nil {
		panic(err)
	}
	st := p.Stats().Resolver
	fmt.Println("resolver:", st.State)
	for _, b := range st.Backends {
		fmt.Println(b.Name)
	}
	fmt.Println("claimed a listed backend:", slices.Contains(st.Backends, h.Backend()))
	h.Release()
	// Output:
	// resolver: resolved
	// echo1.example.test.@127.0.0.11:7007
	// echo2.example.test.@127.0.0.12:7007
	// echo2.example.test.@[::1]:7007
	// claimed a listed backend: true
}

// nopConnector "connects" to a backend without any I/O.
type nopConnector struct{}

func (nopConnector) Connect(ctx context.Context, b backend.Backend) (backend.Backend, error) {
	return b, nil
}
func (nopConnector) Close(backend.Backend) error { return nil }

// serveDNS answers UDP queries on 127.0.0.1 from the records in zone.
func serveDNS(zone string) (netip.AddrPort, func()) {
	var rrs []mdns.RR
	zp := mdns.NewZoneParser(strings.NewReader(zone), "", "")
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	started, done := make(chan struct{}), make(chan struct{})
	srv := &mdns.Server{PacketConn: pc, NotifyStartedFunc: func() { close(started) },
		Handler: mdns.HandlerFunc(func(w mdns.ResponseWriter, req *mdns.Msg) {
			m := new(mdns.Msg)
			m.SetReply(req)
			q := req.Question[0]
			for _, rr := range rrs {
				if strings.EqualFold(rr.Header().Name, q.Name) && rr.Header().Rrtype == q.Qtype {
					m.Answer = append(m.Answer, rr)
				}
			}
			w.WriteMsg(m)
		})}
	go func() {
		defer close(done)
		srv.ActivateAndServe()
	}()
	<-started
	return netip.MustParseAddrPort(pc.LocalAddr().String()), func() {
		srv.Shutdown()
		<-done
	}
}
