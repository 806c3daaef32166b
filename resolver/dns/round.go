package dns

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"slices"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/qorbgo/qorb/backend"
)

// A round is one resolution of the service: the SRV lookup, then the
// address lookups of its targets (or, in plain mode, the address lookups of
// the name, or the one lookup of the system resolver). It ends when every lookup has an answer or has failed on
// every server, and its outcome is the machine's answer or error event.
type round struct {
	open     int       // lookups not finished
	ttl      uint32    // smallest TTL of the records used, in seconds
	srvErr   error     // the SRV lookup failed on every server, or the system lookup failed
	negative string    // the SRV answer was negative ("NXDOMAIN", "NODATA"), or the system lookup gave no address
	notFound error     // the system resolver found no such host
	targets  []*target // from the SRV answer, or the one name in plain mode
	errs     []error   // failed address lookups
}

// target is one SRV target (or the name in plain mode) and what its
// address lookups found.
type target struct {
	name             string
	port             uint16
	v4, v6           []netip.Addr
	failed4, failed6 bool
}

// lookup is one question (SRV, A or AAAA) asked of the servers until one
// answers well, following CNAMEs to further questions.
type lookup struct {
	rd       *round
	tgt      *target // nil for the SRV lookup
	qtype    uint16
	name     string // the name asked now: moves along CNAME chains
	hops     int    // CNAME records followed so far
	ctx      context.Context
	cancel   context.CancelFunc
	order    []*server // servers in the order of asking
	next     int       // order[next] is the next server to ask
	inflight int       // exchanges queued or spawned for the current name
	done     bool
	errs     []error
	negative *answer // a negative answer not trusted while other servers are asked
}

// exchange is one question to one server.
type exchange struct {
	l *lookup
	s *server
}

func (r *Resolver) startRound() {
	rd := &round{ttl: math.MaxUint32}
	r.rd = rd
	switch {
	case r.lookup != nil:
		r.lookupHost(rd)
	case r.plain:
		r.resolveTargets(rd, []srvTarget{{r.name, r.port}}, nil)
	default:
		r.startLookup(rd, nil, mdns.TypeSRV, r.name)
	}
}

// lookupHost resolves the host of a host:port service through the system
// resolver (or Config.LookupNetIP), off the core: one lookup, the whole
// round.
func (r *Resolver) lookupHost(rd *round) {
	rd.open++
	r.queries++
	network := "ip"
	switch r.cfg.Family {
	case IPv4Only:
		network = "ip4"
	case IPv6Only:
		network = "ip6"
	}
	ctx, lookup, host := r.ctx, r.lookup, r.hostname
	r.host.Log(slog.LevelDebug, "dns: system lookup", "service", r.service, "host", host, "network", network)
	r.host.Go(func() func() {
		addrs, err := lookup(ctx, network, host)
		return func() { r.onLookup(rd, addrs, err) }
	})
}

// onLookup takes the outcome of the system lookup and ends the round. The
// system resolver gives no TTL: a good answer is asked again after
// MinInterval.
func (r *Resolver) onLookup(rd *round, addrs []netip.Addr, err error) {
	if r.stopped || r.rd != rd {
		return // a late answer after Stop
	}
	rd.open--
	var dnsErr *net.DNSError
	switch {
	case err == nil:
		t := &target{name: r.hostname, port: r.port}
		for _, a := range addrs {
			// net.Resolver may give an IPv4 address as ::ffff:a.b.c.d.
			switch a = a.Unmap(); {
			case a.Is4() && r.cfg.Family.wantA():
				t.v4 = append(t.v4, a)
			case a.Is6() && r.cfg.Family.wantAAAA():
				t.v6 = append(t.v6, a)
			}
		}
		rd.targets = []*target{t}
		rd.ttl = 0
		rd.negative = "the system resolver gave no address"
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		rd.notFound = fmt.Errorf("no such host, says the system resolver: %w", err)
	default:
		r.errs++
		rd.srvErr = fmt.Errorf("dns: %s: system resolver: %w", r.service, err)
		r.host.Log(slog.LevelDebug, "dns: system lookup failed", "service", r.service, "err", err)
	}
	r.finishRound(rd)
}

// resolveTargets takes the targets' addresses from the additional section
// when the server gave any, and asks for them otherwise.
func (r *Resolver) resolveTargets(rd *round, ts []srvTarget, extra map[string]*extraAddr) {
	for _, st := range ts {
		t := &target{name: st.name, port: st.port}
		rd.targets = append(rd.targets, t)
		if e := extra[st.name]; e != nil && len(e.addrs) > 0 {
			for _, a := range e.addrs {
				if a.Is4() {
					t.v4 = append(t.v4, a)
				} else {
					t.v6 = append(t.v6, a)
				}
			}
			rd.ttl = min(rd.ttl, e.ttl)
			continue
		}
		if r.cfg.Family.wantA() {
			r.startLookup(rd, t, mdns.TypeA, st.name)
		}
		if r.cfg.Family.wantAAAA() {
			r.startLookup(rd, t, mdns.TypeAAAA, st.name)
		}
	}
	if rd.open == 0 {
		r.finishRound(rd)
	}
}

func (r *Resolver) startLookup(rd *round, t *target, qtype uint16, name string) {
	rd.open++
	l := &lookup{rd: rd, tgt: t, qtype: qtype}
	r.ask(l, name)
}

// ask starts the lookup's question for name: the first Parallel servers in
// the order of asking, healthy ones first.
func (r *Resolver) ask(l *lookup, name string) {
	l.name = name
	l.ctx, l.cancel = context.WithCancel(r.ctx)
	l.order = slices.Clone(r.servers)
	slices.SortStableFunc(l.order, func(a, b *server) int { return cmp.Compare(a.fails, b.fails) })
	for range min(r.cfg.Parallel, len(l.order)) {
		r.send(l)
	}
}

// send queues the lookup's question for its next server.
func (r *Resolver) send(l *lookup) {
	x := &exchange{l: l, s: l.order[l.next]}
	l.next++
	l.inflight++
	r.queue = append(r.queue, x)
	r.pump()
}

// pump spawns queued exchanges while fewer than MaxInflight are in flight.
func (r *Resolver) pump() {
	for r.inflight < r.cfg.MaxInflight && len(r.queue) > 0 {
		x := r.queue[0]
		r.queue[0] = nil
		r.queue = r.queue[1:]
		if x.l.done {
			x.l.inflight--
			continue
		}
		r.spawn(x)
	}
}

// spawn runs one exchange off the loop.
func (r *Resolver) spawn(x *exchange) {
	r.inflight++
	r.queries++
	l := x.l
	q := newQuery(l.name, l.qtype, r.cfg.UDPSize)
	ctx, tr, addr, timeout := l.ctx, r.tr, x.s.addr, r.cfg.Timeout
	lim := r.lim
	lim.maxCNAME = r.cfg.MaxCNAME - l.hops
	r.host.Log(slog.LevelDebug, "dns: query", "service", r.service, "name", l.name, "type", mdns.Type(l.qtype).String(), "server", addr.String())
	r.host.Go(func() func() {
		a, err := query(ctx, tr, addr, q, timeout, lim)
		return func() { r.onReply(x, a, err) }
	})
}

// query asks q of server over UDP, and again over TCP when the answer is
// truncated. It runs off the loop.
func query(ctx context.Context, tr exchanger, server netip.AddrPort, q *mdns.Msg, timeout time.Duration, lim limits) (*answer, error) {
	a, err := queryOnce(ctx, tr, "udp", server, q, timeout, lim)
	if err == nil && a.truncated {
		a, err = queryOnce(ctx, tr, "tcp", server, q, timeout, lim)
	}
	return a, err
}

func queryOnce(ctx context.Context, tr exchanger, network string, server netip.AddrPort, q *mdns.Msg, timeout time.Duration, lim limits) (*answer, error) {
	raw, err := tr.Exchange(ctx, network, server, q, timeout)
	if err == nil {
		var a *answer
		if a, err = handleAnswer(q, raw, network, lim); err == nil {
			return a, nil
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("no answer within %v: %w", timeout, err)
	}
	return nil, fmt.Errorf("over %s: %w", network, err)
}

// onReply runs with the loop held when an exchange completes.
func (r *Resolver) onReply(x *exchange, a *answer, err error) {
	r.inflight--
	if r.stopped {
		return // a late answer after Stop
	}
	defer r.pump()
	l := x.l
	l.inflight--
	if l.done {
		return // another server answered first
	}
	if err == nil && a.negative && !r.cfg.TrustNegative && r.contradicts(l) {
		// A negative answer where the last set has records is not
		// trusted while another server may have them (a server that
		// lost the zone, or lags behind the others): as for a failure,
		// the server goes to the back of the order and the next one is
		// asked. When none has better, the negative answer stands.
		why := "NODATA"
		if a.nxdomain {
			why = "NXDOMAIN"
		}
		err = fmt.Errorf("dns: %s %s from %v: %w: %s, where the last answer had records", l.name, mdns.Type(l.qtype), x.s.addr, ErrNoBackends, why)
		l.negative = a
	} else if err != nil {
		err = fmt.Errorf("dns: %s %s from %v %w", l.name, mdns.Type(l.qtype), x.s.addr, err)
		l.errs = append(l.errs, err)
	}
	if err != nil {
		r.errs++
		r.lastErr = err
		x.s.fails++
		r.host.Log(slog.LevelDebug, "dns: query failed", "service", r.service, "err", err)
		switch {
		case l.next < len(l.order):
			r.send(l)
		case l.inflight > 0:
		case l.negative != nil:
			r.settle(l, l.negative)
		default:
			r.lookupFailed(l)
		}
		return
	}
	x.s.fails = 0
	r.settle(l, a)
}

// settle ends a lookup with an answer.
func (r *Resolver) settle(l *lookup, a *answer) {
	l.done = true
	l.cancel()
	r.answered(l, a)
}

// contradicts reports whether a negative answer to l would contradict
// the last set: the SRV records it was built from, or the addresses of
// l's family it has for l's target.
func (r *Resolver) contradicts(l *lookup) bool {
	if l.tgt == nil {
		return r.fromSRV && len(r.set) > 0
	}
	return r.hadAddrs(l.tgt.name, l.qtype)
}

// answered takes a lookup's good answer.
func (r *Resolver) answered(l *lookup, a *answer) {
	rd := l.rd
	rd.ttl = min(rd.ttl, a.ttl)
	l.hops += a.hops
	if a.next != "" {
		// The chain goes on past this answer: the lookup continues
		// as a new one, so that late answers to the old name, still
		// in flight, are told apart and dropped.
		r.ask(&lookup{rd: rd, tgt: l.tgt, qtype: l.qtype, hops: l.hops}, a.next)
		return
	}
	rd.open--
	if l.tgt == nil {
		switch {
		case a.negative && r.cfg.Port != 0:
			// No SRV records: plain mode by fallback.
			r.fromSRV = false
			r.resolveTargets(rd, []srvTarget{{r.name, r.cfg.Port}}, nil)
			return
		case !a.negative:
			r.fromSRV = !r.plain
		case a.nxdomain:
			rd.negative = "NXDOMAIN"
		case a.negative:
			rd.negative = "NODATA"
		}
		r.resolveTargets(rd, a.srvs, a.extra)
		return
	}
	switch {
	case a.negative && !r.cfg.TrustNegative && r.hadAddrs(l.tgt.name, l.qtype):
		// A target the last set had addresses for, now without: as for
		// an empty answer, the negative answer is not trusted (a zone
		// being reloaded answers empty for a moment, and one server may
		// lag behind the others). The target keeps those addresses
		// and the round is partial.
		why := "NODATA"
		if a.nxdomain {
			why = "NXDOMAIN"
		}
		if l.qtype == mdns.TypeA {
			l.tgt.failed4 = true
		} else {
			l.tgt.failed6 = true
		}
		rd.errs = append(rd.errs, fmt.Errorf("%w: %s %s: %s", ErrNoBackends, l.name, mdns.Type(l.qtype), why))
	case l.qtype == mdns.TypeA:
		l.tgt.v4 = a.addrs
	default:
		l.tgt.v6 = a.addrs
	}
	if rd.open == 0 {
		r.finishRound(rd)
	}
}

// hadAddrs reports whether the last set has addresses of target of the
// family of qtype (A or AAAA).
func (r *Resolver) hadAddrs(target string, qtype uint16) bool {
	k := r.known[target]
	if qtype == mdns.TypeA {
		return len(k.v4) > 0
	}
	return len(k.v6) > 0
}

// lookupFailed ends a lookup that no server answered well.
func (r *Resolver) lookupFailed(l *lookup) {
	l.done = true
	l.cancel()
	rd := l.rd
	rd.open--
	err := errors.Join(l.errs...)
	switch {
	case l.tgt == nil:
		rd.srvErr = err
	case l.qtype == mdns.TypeA:
		l.tgt.failed4 = true
		rd.errs = append(rd.errs, err)
	default:
		l.tgt.failed6 = true
		rd.errs = append(rd.errs, err)
	}
	if rd.open == 0 {
		r.finishRound(rd)
	}
}

// finishRound turns the round's outcome into the machine's event, the new
// set and the next query's time.
func (r *Resolver) finishRound(rd *round) {
	r.rd = nil
	if rd.srvErr != nil {
		r.failures++
		r.lastErr = rd.srvErr
		r.host.ReportError(rd.srvErr)
		d := doubling(r.cfg.BackoffMin, r.cfg.BackoffMax, r.failures)
		r.host.Log(slog.LevelWarn, "dns: resolution failed; keeping the last set", "service", r.service, "retry", d, "err", rd.srvErr)
		r.schedule(d)
		return
	}
	r.lastAnswer = r.host.Now()
	set, known := r.buildSet(rd)
	var partial error
	if len(rd.errs) > 0 {
		partial = fmt.Errorf("dns: %s: partial answer, targets whose lookup failed keep their last addresses: %w", r.service, errors.Join(rd.errs...))
		r.lastErr = partial
	}
	if len(set) == 0 {
		r.empties++
		why := rd.negative
		if why == "" {
			why = "no target has an address"
		}
		err := fmt.Errorf("%w: %s: %s", ErrNoBackends, r.service, why)
		if rd.notFound != nil {
			err = fmt.Errorf("%w: %s: %w", ErrNoBackends, r.service, rd.notFound)
		}
		if partial != nil {
			err = errors.Join(err, partial)
		}
		r.lastErr = err
		d := doubling(r.cfg.EmptyRetry, r.cfg.MaxInterval, r.empties)
		if r.cfg.TrustNegative && partial == nil {
			r.failures = 0
			r.deliver(set, known)
		} else {
			if r.cfg.TrustNegative {
				r.deliver(set, known)
			}
			r.host.ReportError(err)
			r.host.Log(slog.LevelWarn, "dns: empty answer", "service", r.service, "retry", d, "err", err)
		}
		r.schedule(d)
		return
	}
	r.empties = 0
	if partial != nil {
		r.failures++
		r.deliver(set, known)
		r.host.ReportError(partial)
		d := doubling(r.cfg.BackoffMin, r.cfg.BackoffMax, r.failures)
		r.host.Log(slog.LevelWarn, "dns: partial answer", "service", r.service, "retry", d, "err", partial)
		r.schedule(d)
		return
	}
	r.failures = 0
	r.deliver(set, known)
	r.schedule(r.ttlInterval(rd.ttl))
}

// buildSet makes the backend set of a round: one backend per address per
// target, sorted by name, and what each target resolved to. A target whose
// lookup of one family failed keeps that family's addresses from the last
// set delivered.
func (r *Resolver) buildSet(rd *round) ([]backend.Backend, map[string]known) {
	ts := slices.Clone(rd.targets)
	slices.SortFunc(ts, func(a, b *target) int {
		return cmp.Or(cmp.Compare(a.name, b.name), cmp.Compare(a.port, b.port))
	})
	next := make(map[string]known, len(ts))
	seen := make(map[netip.AddrPort]bool)
	var set []backend.Backend
	for _, t := range ts {
		k := known{t.v4, t.v6}
		old := r.known[t.name]
		if t.failed4 {
			k.v4 = old.v4
		}
		if t.failed6 {
			k.v6 = old.v6
		}
		if prev, dup := next[t.name]; dup { // the same target on two ports
			k = prev
		}
		next[t.name] = k
		addrs := append(slices.Clone(k.v4), k.v6...)
		slices.SortFunc(addrs, netip.Addr.Compare)
		for _, a := range addrs {
			ap := netip.AddrPortFrom(a, t.port)
			if seen[ap] {
				continue
			}
			seen[ap] = true
			set = append(set, backend.Backend{Name: backendName(t.name, ap), Addr: ap})
		}
	}
	slices.SortFunc(set, func(a, b backend.Backend) int { return cmp.Compare(a.Name, b.Name) })
	return set, next
}

// backendName names the backend at ap found through target.
func backendName(target string, ap netip.AddrPort) backend.Name {
	return backend.Name(target + "@" + ap.String())
}
