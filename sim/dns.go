package sim

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/internal/dnshook"
	"github.com/qorbgo/qorb/resolver"
	"github.com/qorbgo/qorb/resolver/dns"
)

// dnsWorld is the simulated DNS of a run whose clients run the real
// resolver/dns ([DNSSpec] Resolver "dns"): servers that answer SRV, A and
// AAAA questions from records built, at each question, from the backends
// as they are listed then, with the records' settings and the servers'
// behaviour changing over time.
//
// Every exchange runs inside the I/O function the resolver spawns through
// its host (an fsm.Query action): the simulated exchanger answers at once
// and records the virtual time the exchange takes (the server's latency,
// or the resolver's timeout when no answer comes), so the resolver's
// completion runs at that virtual time, on the loop. A TCP retry of a
// truncated answer runs in the same I/O function and adds its own time.
// An exchange whose context is cancelled (another server answered first,
// the pool closed) completes at once.
type dnsWorld struct {
	s       *Sim
	cfg     dns.Config
	servers []*dnsServer
	addrs   []netip.AddrPort
	byAddr  map[netip.AddrPort]*dnsServer
	recs    []dnsRecord    // by backend index
	targets map[string]int // SRV target "<backend>.sim." → backend index
	hosts   map[string]int // CNAME target "<backend>.sim-hosts." → backend index
	at      map[netip.AddrPort]*simBackend
	active  []int // the changes in force, by index in DNSSpec.Changes
}

// dnsServer is one simulated DNS server.
type dnsServer struct {
	idx            int
	name           string
	addr           netip.AddrPort
	maxUDP         int
	base           dnsServerState // as the scenario describes it
	dnsServerState                // as it is now, changes applied
}

// dnsServerState is what changes can change of a server.
type dnsServerState struct {
	latency Dist
	loss    float64
	answer  string
}

// dnsRecord is how one backend's records look.
type dnsRecord struct {
	target     string // the SRV target
	host       string // the CNAME's target, when cname
	cname      bool
	additional bool
	baseTTL    uint32 // seconds, as the scenario says
	ttl        uint32 // now, changes applied
	addr       int    // the backend whose address the target resolves to now
}

// initDNS builds the simulated DNS when the clients run the real
// resolver, and schedules its changes.
func (s *Sim) initDNS() {
	d := &s.sc.DNS
	if !d.realDNS() {
		return
	}
	w := &dnsWorld{s: s, cfg: d.resolverConfig(), byAddr: map[netip.AddrPort]*dnsServer{},
		targets: map[string]int{}, hosts: map[string]int{}, at: map[netip.AddrPort]*simBackend{}}
	specs := d.Servers
	if len(specs) == 0 {
		specs = []DNSServerSpec{{Name: "ns1"}}
	}
	for i, sp := range specs {
		sv := &dnsServer{idx: i, name: sp.Name, addr: dnsServerAddr(i), maxUDP: sp.MaxUDP,
			base: dnsServerState{latency: sp.Latency, loss: sp.Loss, answer: sp.Answer}}
		if sv.base.latency.IsZero() {
			sv.base.latency = d.Latency
		}
		if sv.base.answer == "" {
			sv.base.answer = DNSAnswerOK
		}
		sv.dnsServerState = sv.base
		w.servers = append(w.servers, sv)
		w.addrs = append(w.addrs, sv.addr)
		w.byAddr[sv.addr] = sv
	}
	w.recs = make([]dnsRecord, len(s.backends))
	for _, b := range s.backends {
		r := &w.recs[b.idx]
		name := strings.ToLower(b.name)
		*r = dnsRecord{target: name + "." + dnsZone, host: name + "." + dnsHostZone, baseTTL: ttlSeconds(d.TTL),
			additional: true}
		for _, g := range d.Records {
			if !matches(g.Backends, b.name, false) {
				continue
			}
			r.baseTTL = ttlSeconds(d.TTL)
			if g.TTL != nil {
				r.baseTTL = ttlSeconds(*g.TTL)
			}
			r.cname = g.CNAME
			r.additional = g.Additional == nil || *g.Additional
		}
		r.ttl, r.addr = r.baseTTL, b.idx
		w.targets[r.target] = b.idx
		w.hosts[r.host] = b.idx
		w.at[b.b.Addr] = b
	}
	for i, c := range d.Changes {
		s.q.push(int64(c.At), handlerFunc(func(s *Sim) { s.dns.change(i, c) }))
	}
	s.dns = w
}

// newResolver returns the resolver of a new pool of inst: the stand-in,
// or the real resolver/dns asking the simulated servers.
func (s *Sim) newResolver(inst *poolInst) resolver.Resolver {
	if s.dns == nil {
		return newDNSResolver(s, inst)
	}
	r, err := dns.New(dnsService, s.dns.addrs, s.dns.cfg)
	if err != nil {
		panic(fmt.Sprintf("sim: dns.New: %v (the scenario check should have caught it)", err))
	}
	x := &dnsExchanger{w: s.dns, inst: inst, rngs: make([]*rand.Rand, len(s.dns.servers))}
	for i, sv := range s.dns.servers {
		x.rngs[i] = stream(s.seed, "dns/"+sv.name+"/"+inst.name)
	}
	dnshook.SetExchanger(r, x)
	return &realResolver{Resolver: r, w: s.dns, inst: inst}
}

// realResolver is resolver/dns in a simulation: it watches what the
// resolver delivers, so that the simulation knows which backends each
// pool may use, and the completions of its exchanges, after which an
// exchange it cancelled completes at once.
type realResolver struct {
	*dns.Resolver
	w    *dnsWorld
	inst *poolInst
}

// Start implements resolver.Resolver.
func (r *realResolver) Start(h resolver.Host) { r.Resolver.Start(dnsHost{Host: h, r: r}) }

// dnsHost is the pool's host as the real resolver sees it.
type dnsHost struct {
	resolver.Host
	r *realResolver
}

// Update records the set the resolver delivers, then delivers it.
func (h dnsHost) Update(bs []backend.Backend) {
	h.r.w.listed(h.r.inst, bs)
	h.Host.Update(bs)
}

// Go runs an exchange; once its completion ran, the pool's I/O is
// scanned for contexts it cancelled (the other servers asked, when this
// one answered).
func (h dnsHost) Go(query func() func()) {
	inst := h.r.inst
	h.Host.Go(func() func() {
		done := query()
		return func() {
			if done != nil {
				done()
			}
			inst.scanIO = true
			inst.s.chk.dirtyInst(inst)
		}
	})
}

// listed records the set a resolver delivered: each backend, named
// "target@addr:port" by resolver/dns, is the simulated backend at that
// address.
func (w *dnsWorld) listed(inst *poolInst, bs []backend.Backend) {
	s := w.s
	for _, b := range bs {
		if s.byName[b.Name] != nil {
			continue
		}
		if sb := w.at[b.Addr]; sb != nil {
			s.byName[b.Name] = sb
		}
	}
	inst.setListed(bs)
}

// dnsExchanger is one pool's network to the simulated servers: the
// resolver's exchanger (internal/dnshook).
type dnsExchanger struct {
	w    *dnsWorld
	inst *poolInst
	rngs []*rand.Rand // by server: latency and loss draws
}

var errNoServer = errors.New("connection refused: no DNS server at this address")

// Exchange implements dnshook.Exchanger. It runs inline in the spawner
// (see dnsWorld): it returns at once, and the exchange's completion runs
// after the virtual time it records.
func (x *dnsExchanger) Exchange(ctx context.Context, network string, server netip.AddrPort, q *mdns.Msg, timeout time.Duration) ([]byte, error) {
	s := x.w.s
	s.io.inst, s.io.ctx = x.inst, ctx
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	acc := &x.inst.c.res.dns
	acc.Queries++
	if network == "tcp" {
		acc.TCP++
	}
	sv := x.w.byAddr[server]
	if sv == nil || len(q.Question) != 1 {
		acc.Errors++
		return nil, errNoServer
	}
	rng := x.rngs[sv.idx]
	lat := sv.latency.Draw(rng)
	if network == "tcp" {
		lat += sv.latency.Draw(rng) // the connection's handshake first
	}
	lost := s.dnsOutage > 0 || sv.answer == DNSAnswerDrop ||
		network == "udp" && sv.loss > 0 && rng.Float64() < sv.loss
	if lost || lat > timeout {
		acc.Lost++
		s.io.lat += int64(timeout)
		x.trace(sv, network, q, "no answer")
		return nil, context.DeadlineExceeded
	}
	s.io.lat += int64(lat)
	m := x.w.answer(sv, network, q)
	if network == "udp" {
		size := mdns.MinMsgSize
		if o := q.IsEdns0(); o != nil {
			size = int(o.UDPSize())
			m.SetEdns0(o.UDPSize(), false)
		}
		if sv.maxUDP > 0 {
			size = min(size, sv.maxUDP)
		}
		m.Truncate(size)
	}
	raw, err := m.Pack()
	if err != nil {
		panic(fmt.Sprintf("sim: packing a DNS answer: %v", err))
	}
	var what string
	switch {
	case m.Truncated:
		acc.Truncated++
		what = "truncated (" + plural(len(m.Answer), "answer") + ")"
	case m.Rcode == mdns.RcodeNameError:
		acc.Negative++
		what = "NXDOMAIN"
	case m.Rcode != mdns.RcodeSuccess:
		acc.Errors++
		what = mdns.RcodeToString[m.Rcode]
	case len(m.Answer) == 0:
		acc.Negative++
		what = "NODATA"
	default:
		acc.Answers++
		what = plural(len(m.Answer), "answer")
		n := len(m.Extra)
		if m.IsEdns0() != nil {
			n-- // the OPT record
		}
		if n > 0 {
			what += ", " + plural(n, "additional")
		}
	}
	x.trace(sv, network, q, fmt.Sprintf("%s in %v", what, lat))
	return raw, nil
}

// plural formats "1 answer", "2 answers".
func plural(n int, what string) string {
	if n != 1 && what != "additional" {
		what += "s"
	}
	return fmt.Sprintf("%d %s", n, what)
}

// trace records one exchange: the server, the network and the question,
// and what came back.
func (x *dnsExchanger) trace(sv *dnsServer, network string, q *mdns.Msg, what string) {
	qn := q.Question[0]
	x.w.s.tr.record(x.w.s.now, "dns", x.inst.name, "", "query",
		sv.name+" "+network+" "+mdns.Type(qn.Qtype).String()+" "+qn.Name+": "+what, false)
}

// answer is the server's answer to q, before truncation.
func (w *dnsWorld) answer(sv *dnsServer, network string, q *mdns.Msg) *mdns.Msg {
	m := new(mdns.Msg)
	m.SetReply(q)
	m.RecursionAvailable = true
	switch sv.answer {
	case DNSAnswerServFail:
		m.Rcode = mdns.RcodeServerFailure
		return m
	case DNSAnswerRefused:
		m.Rcode = mdns.RcodeRefused
		return m
	case DNSAnswerNXDomain:
		m.Rcode = mdns.RcodeNameError
		return m
	case DNSAnswerNoData:
		return m
	case DNSAnswerTruncate:
		if network == "udp" {
			m.Truncated = true
			return m
		}
	}
	qn := q.Question[0]
	name := strings.ToLower(qn.Name)
	if name == dnsService {
		listed := 0
		for _, b := range w.s.backends {
			if !b.listed {
				continue
			}
			listed++
			if qn.Qtype != mdns.TypeSRV {
				continue
			}
			r := &w.recs[b.idx]
			m.Answer = append(m.Answer, &mdns.SRV{Hdr: header(dnsService, mdns.TypeSRV, r.ttl),
				Weight: 1, Port: b.b.Addr.Port(), Target: r.target})
			if r.additional && !r.cname {
				m.Extra = append(m.Extra, w.a(r.target, r))
			}
		}
		if listed == 0 {
			m.Rcode = mdns.RcodeNameError // no SRV record left: the name is gone
		}
		return m
	}
	if i, ok := w.targets[name]; ok {
		r := &w.recs[i]
		if r.cname {
			m.Answer = append(m.Answer, &mdns.CNAME{Hdr: header(name, mdns.TypeCNAME, r.ttl), Target: r.host})
			name = r.host
		}
		if qn.Qtype == mdns.TypeA {
			m.Answer = append(m.Answer, w.a(name, r))
		}
		return m
	}
	if i, ok := w.hosts[name]; ok && w.recs[i].cname {
		if qn.Qtype == mdns.TypeA {
			m.Answer = append(m.Answer, w.a(name, &w.recs[i]))
		}
		return m
	}
	m.Rcode = mdns.RcodeNameError
	return m
}

// a is the A record of name, for the backend whose record r is.
func (w *dnsWorld) a(name string, r *dnsRecord) *mdns.A {
	ip := w.s.backends[r.addr].b.Addr.Addr().As4()
	return &mdns.A{Hdr: header(name, mdns.TypeA, r.ttl), A: ip[:]}
}

func header(name string, rrtype uint16, ttl uint32) mdns.RR_Header {
	return mdns.RR_Header{Name: name, Rrtype: rrtype, Class: mdns.ClassINET, Ttl: ttl}
}

// change starts the i-th change of [dns] and, with For, schedules its
// end.
func (w *dnsWorld) change(i int, c DNSChange) {
	s := w.s
	id := fmt.Sprint(i)
	s.tr.record(s.now, "dns_change", id, "", "start", c.describe(), false)
	w.active = append(w.active, i)
	w.apply()
	if c.For > 0 {
		s.q.push(s.now+int64(c.For), handlerFunc(func(s *Sim) {
			s.tr.record(s.now, "dns_change", id, "", "end", c.describe(), false)
			w.active = slices.DeleteFunc(w.active, func(j int) bool { return j == i })
			w.apply()
		}))
	}
}

// apply sets the servers and records to what the scenario says, then
// applies the changes in force in the order they began (in file order
// when at the same moment): a change that ends leaves things as if it
// had never been made, whatever began or ended meanwhile.
func (w *dnsWorld) apply() {
	s := w.s
	s.worldChanged()
	for _, sv := range w.servers {
		sv.dnsServerState = sv.base
	}
	for i := range w.recs {
		w.recs[i].ttl, w.recs[i].addr = w.recs[i].baseTTL, i
	}
	changes := s.sc.DNS.Changes
	slices.SortFunc(w.active, func(a, b int) int { return cmp.Or(cmp.Compare(changes[a].At, changes[b].At), cmp.Compare(a, b)) })
	for _, i := range w.active {
		c := &changes[i]
		for _, sv := range w.servers {
			if !matches(c.Servers, sv.name, false) {
				continue
			}
			if c.Answer != "" {
				sv.answer = c.Answer
			}
			if c.Loss != nil {
				sv.loss = *c.Loss
			}
			if !c.Latency.IsZero() {
				sv.latency = c.Latency
			}
		}
		for _, b := range s.backends {
			if !matches(c.Backends, b.name, false) {
				continue
			}
			r := &w.recs[b.idx]
			if c.TTL != nil {
				r.ttl = ttlSeconds(*c.TTL)
			}
			if c.Address != "" {
				r.addr = s.byName[backendName(c.Address)].idx
			}
		}
	}
}

// DNSStats counts a client's DNS exchanges and what came of them.
type DNSStats struct {
	// Queries counts the exchanges sent to a server: over UDP, and again
	// over TCP after a truncated answer. (The stand-in sends one per
	// query.)
	Queries uint64 `json:"queries"`
	// TCP counts the exchanges over TCP, among Queries.
	TCP uint64 `json:"tcp"`
	// Answers counts the answers with records (NOERROR).
	Answers uint64 `json:"answers"`
	// Negative counts the answers with no records: NXDOMAIN and NODATA.
	Negative uint64 `json:"negative"`
	// Errors counts the error answers: SERVFAIL, REFUSED.
	Errors uint64 `json:"errors"`
	// Truncated counts the UDP answers with the TC bit set.
	Truncated uint64 `json:"truncated"`
	// Lost counts the exchanges that got no answer: the resolver waited
	// out its timeout (a lost query, a server down, a dns_outage).
	Lost uint64 `json:"lost"`
}

func (d *DNSStats) add(o *DNSStats) {
	d.Queries += o.Queries
	d.TCP += o.TCP
	d.Answers += o.Answers
	d.Negative += o.Negative
	d.Errors += o.Errors
	d.Truncated += o.Truncated
	d.Lost += o.Lost
}

// summary describes the counts, with the rate of queries per client over
// a run of the given duration.
func (d DNSStats) summary(clients int, virtual time.Duration) string {
	var b strings.Builder
	rate := 0.0
	if clients > 0 && virtual > 0 {
		rate = float64(d.Queries) / float64(clients) / virtual.Seconds()
	}
	fmt.Fprintf(&b, "dns %d queries (%.3g/s", d.Queries, rate)
	if clients > 1 {
		b.WriteString(" per client")
	}
	b.WriteString(")")
	if d.TCP > 0 {
		fmt.Fprintf(&b, ", %d over tcp", d.TCP)
	}
	fmt.Fprintf(&b, ", %d answers", d.Answers)
	for _, p := range []struct {
		n string
		v uint64
	}{{"negative", d.Negative}, {"errors", d.Errors}, {"truncated", d.Truncated}, {"lost", d.Lost}} {
		if p.v > 0 {
			fmt.Fprintf(&b, ", %d %s", p.v, p.n)
		}
	}
	return b.String()
}
