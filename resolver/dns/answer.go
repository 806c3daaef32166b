package dns

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"strings"

	mdns "github.com/miekg/dns"
)

// limits are the parts of the Config that answer handling needs.
type limits struct {
	udpSize    int // the EDNS0 buffer advertised, in bytes
	maxCNAME   int // CNAME records followed within one answer
	maxTargets int // SRV records accepted in one answer
	family     Family
}

// srvTarget is one SRV record: a target name (lower case, fully
// qualified) and its port.
type srvTarget struct {
	name string
	port uint16
}

// answer is what the resolver takes from one good DNS answer.
type answer struct {
	// truncated: the UDP answer had the TC bit; nothing else is set and
	// the query is to be retried over TCP.
	truncated bool
	// negative: no record of the asked type at the end of the CNAME chain
	// (NODATA, or NXDOMAIN when nxdomain is set).
	negative bool
	nxdomain bool
	// next: the CNAME chain ends at this name, which has no record of the
	// asked type in this answer: ask again for it.
	next string
	// hops: CNAME records followed in this answer.
	hops int
	// ttl: the smallest TTL of the records used, in seconds; math.MaxUint32
	// when none was.
	ttl uint32

	srvs  []srvTarget           // SRV answers: the targets, in answer order
	addrs []netip.Addr          // A and AAAA answers: the addresses
	extra map[string]*extraAddr // SRV answers: addresses of targets found in the additional section
}

// extraAddr are the addresses of one SRV target given along with the SRV
// records, and their smallest TTL.
type extraAddr struct {
	addrs []netip.Addr
	ttl   uint32
}

// newQuery builds the query for name and type, advertising an EDNS0 buffer
// of udpSize bytes.
func newQuery(name string, qtype uint16, udpSize uint16) *mdns.Msg {
	q := new(mdns.Msg)
	q.Id = mdns.Id()
	q.RecursionDesired = true
	q.Question = []mdns.Question{{Name: name, Qtype: qtype, Qclass: mdns.ClassINET}}
	q.SetEdns0(udpSize, false)
	return q
}

// handleAnswer checks raw, received over network ("udp" or "tcp"), as the
// answer to q and interprets it. It is the whole of answer handling: every
// byte from a server goes through it, and every way an answer can be wrong
// is an error wrapping ErrMalformed, ErrMismatch, ErrOversized,
// ErrServerFailure or ErrCNAMEChain.
func handleAnswer(q *mdns.Msg, raw []byte, network string, lim limits) (*answer, error) {
	m, err := checkAnswer(q, raw, network, lim.udpSize)
	if err != nil {
		return nil, err
	}
	if m.Truncated {
		if network == "tcp" {
			return nil, fmt.Errorf("%w: truncated answer over TCP", ErrMalformed)
		}
		return &answer{truncated: true}, nil
	}
	return interpret(m, q.Question[0], lim)
}

// checkAnswer parses raw and checks that it answers q: size, syntax,
// response bit, ID, opcode, question and response code.
func checkAnswer(q *mdns.Msg, raw []byte, network string, udpSize int) (*mdns.Msg, error) {
	limit := mdns.MaxMsgSize
	if network == "udp" {
		limit = udpSize
	}
	if len(raw) > limit {
		return nil, fmt.Errorf("%w: %d bytes over %s, the limit is %d", ErrOversized, len(raw), network, limit)
	}
	m := new(mdns.Msg)
	perr := m.Unpack(raw)
	if len(raw) < 12 {
		return nil, fmt.Errorf("%w: %d bytes, shorter than a header", ErrMalformed, len(raw))
	}
	// The header is set even when the rest fails to parse.
	if !m.Response {
		return nil, fmt.Errorf("%w: not a response (QR bit clear)", ErrMismatch)
	}
	if m.Id != q.Id {
		return nil, fmt.Errorf("%w: ID %d, the query's is %d", ErrMismatch, m.Id, q.Id)
	}
	if perr != nil {
		if m.Truncated && network == "udp" {
			// Some servers cut a long UDP answer mid-record; TCP
			// gets the whole of it.
			return &mdns.Msg{MsgHdr: m.MsgHdr}, nil
		}
		return nil, fmt.Errorf("%w: %v", ErrMalformed, perr)
	}
	if m.Opcode != mdns.OpcodeQuery {
		return nil, fmt.Errorf("%w: opcode %s", ErrMismatch, opcodeName(m.Opcode))
	}
	good := m.Rcode == mdns.RcodeSuccess || m.Rcode == mdns.RcodeNameError
	if !good && len(m.Question) == 0 {
		// Servers may leave the question out of an error answer.
		return nil, fmt.Errorf("%w: %s", ErrServerFailure, rcodeName(m.Rcode))
	}
	want := q.Question[0]
	if len(m.Question) != 1 {
		return nil, fmt.Errorf("%w: %d questions in the answer", ErrMismatch, len(m.Question))
	}
	got := m.Question[0]
	if !strings.EqualFold(got.Name, want.Name) || got.Qtype != want.Qtype || got.Qclass != want.Qclass {
		return nil, fmt.Errorf("%w: question %s %s, the query asked %s %s", ErrMismatch,
			got.Name, mdns.Type(got.Qtype), want.Name, mdns.Type(want.Qtype))
	}
	if !good {
		return nil, fmt.Errorf("%w: %s", ErrServerFailure, rcodeName(m.Rcode))
	}
	return m, nil
}

// interpret takes from a checked answer the records of the asked type at
// the end of the name's CNAME chain, and for SRV the addresses of the
// targets given in the additional section.
func interpret(m *mdns.Msg, qn mdns.Question, lim limits) (*answer, error) {
	a := &answer{ttl: math.MaxUint32}
	name := strings.ToLower(qn.Name)
	for {
		found := false
		var cname *mdns.CNAME
		for _, rr := range m.Answer {
			h := rr.Header()
			if h.Class != mdns.ClassINET || !strings.EqualFold(h.Name, name) {
				continue
			}
			switch r := rr.(type) {
			case *mdns.CNAME:
				if qn.Qtype != mdns.TypeCNAME && cname == nil {
					cname = r
				}
			case *mdns.SRV:
				if qn.Qtype == mdns.TypeSRV {
					found = true
					a.useTTL(h.Ttl)
					if r.Target == "." || r.Port == 0 {
						continue // "decidedly not available" (RFC 2782)
					}
					a.srvs = appendTarget(a.srvs, srvTarget{strings.ToLower(mdns.Fqdn(r.Target)), r.Port})
				}
			case *mdns.A:
				if qn.Qtype == mdns.TypeA {
					found = true
					a.useTTL(h.Ttl)
					a.addrs = appendAddr(a.addrs, addr4(r.A))
				}
			case *mdns.AAAA:
				if qn.Qtype == mdns.TypeAAAA {
					found = true
					a.useTTL(h.Ttl)
					a.addrs = appendAddr(a.addrs, addr6(r.AAAA))
				}
			}
		}
		if found {
			break
		}
		if cname == nil {
			a.negative = true
			a.nxdomain = m.Rcode == mdns.RcodeNameError
			if name != strings.ToLower(qn.Name) && !a.nxdomain {
				// The chain leaves what this server gave: ask for
				// its end.
				a.negative = false
				a.next = name
			}
			break
		}
		a.hops++
		if a.hops > lim.maxCNAME {
			return nil, fmt.Errorf("%w: more than %d CNAME records from %s", ErrCNAMEChain, lim.maxCNAME, qn.Name)
		}
		a.useTTL(cname.Hdr.Ttl)
		name = strings.ToLower(mdns.Fqdn(cname.Target))
	}
	if len(a.srvs) > lim.maxTargets {
		return nil, fmt.Errorf("%w: %d SRV records, the limit is %d (Config.MaxTargets)", ErrOversized, len(a.srvs), lim.maxTargets)
	}
	if qn.Qtype == mdns.TypeSRV && len(a.srvs) > 0 {
		a.extra = extraAddrs(m, a.srvs, lim.family)
	}
	if a.negative {
		a.ttl = math.MaxUint32
	}
	return a, nil
}

// extraAddrs collects the A and AAAA records of the SRV targets that the
// server put in the additional (or answer) section.
func extraAddrs(m *mdns.Msg, srvs []srvTarget, fam Family) map[string]*extraAddr {
	var extra map[string]*extraAddr
	targets := make(map[string]bool, len(srvs))
	for _, s := range srvs {
		targets[s.name] = true
	}
	for _, sec := range [][]mdns.RR{m.Answer, m.Extra} {
		for _, rr := range sec {
			h := rr.Header()
			var ip netip.Addr
			switch r := rr.(type) {
			case *mdns.A:
				if fam.wantA() {
					ip = addr4(r.A)
				}
			case *mdns.AAAA:
				if fam.wantAAAA() {
					ip = addr6(r.AAAA)
				}
			}
			name := strings.ToLower(h.Name)
			if !ip.IsValid() || h.Class != mdns.ClassINET || !targets[name] {
				continue
			}
			if extra == nil {
				extra = make(map[string]*extraAddr)
			}
			e := extra[name]
			if e == nil {
				e = &extraAddr{ttl: math.MaxUint32}
				extra[name] = e
			}
			n := len(e.addrs)
			e.addrs = appendAddr(e.addrs, ip)
			if len(e.addrs) > n {
				e.ttl = min(e.ttl, h.Ttl)
			}
		}
	}
	return extra
}

func (a *answer) useTTL(ttl uint32) { a.ttl = min(a.ttl, ttl) }

// appendTarget appends t unless it is already listed.
func appendTarget(ts []srvTarget, t srvTarget) []srvTarget {
	for _, u := range ts {
		if u == t {
			return ts
		}
	}
	return append(ts, t)
}

// appendAddr appends addr unless it is invalid, unspecified (0.0.0.0, ::)
// or already listed.
func appendAddr(as []netip.Addr, addr netip.Addr) []netip.Addr {
	if !addr.IsValid() || addr.IsUnspecified() {
		return as
	}
	for _, b := range as {
		if b == addr {
			return as
		}
	}
	return append(as, addr)
}

// addr4 converts an A record's address; miekg/dns may hold it in 4 or in
// 16 (v4-mapped) bytes.
func addr4(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip.To4())
	return a
}

// addr6 converts an AAAA record's address, keeping a v4-mapped one as is.
func addr6(ip net.IP) netip.Addr {
	if len(ip) != net.IPv6len {
		return netip.Addr{}
	}
	a, _ := netip.AddrFromSlice(ip)
	return a
}

func rcodeName(rc int) string {
	if s, ok := mdns.RcodeToString[rc]; ok {
		return s
	}
	return fmt.Sprintf("RCODE%d", rc)
}

func opcodeName(op int) string {
	if s, ok := mdns.OpcodeToString[op]; ok {
		return s
	}
	return fmt.Sprintf("OPCODE%d", op)
}
