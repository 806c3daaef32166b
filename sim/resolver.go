package sim

import (
	"context"
	"slices"
	"time"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/resolver"
)

// dnsResolver is the stand-in for resolver/dns, a client's resolver when
// the scenario does not ask for the real one ([ResolverStandIn]). It
// behaves roughly like resolver/dns: it runs the declared resolver
// machine on the pool's loop, asks again after the records' TTL, keeps
// the last good set when a query fails and retries with a doubling
// backoff, and retries soon after an empty answer. Its queries are
// spawned I/O, so they take virtual time and time out during a dns_outage
// fault. Unlike resolver/dns it asks again after exactly the TTL, however
// short (no floor: a TTL of 1ms asks hundreds of times a second), gets
// the whole set in one query, and knows no server errors, negative
// answers, truncation or CNAMEs.
type dnsResolver struct {
	s    *Sim
	inst *poolInst
	id   string

	host    resolver.Host
	timer   resolver.Timer
	stopped bool
	ctx     context.Context
	cancel  context.CancelFunc

	set        []backend.Backend
	delivered  bool
	lastErr    error
	lastAnswer time.Time
	queries    uint64
	errs       uint64
	failures   int
}

var _ resolver.Resolver = (*dnsResolver)(nil)

func newDNSResolver(s *Sim, inst *poolInst) *dnsResolver {
	return &dnsResolver{s: s, inst: inst, id: inst.name + "/dns"}
}

// Start implements resolver.Resolver: the first query starts at once.
func (r *dnsResolver) Start(h resolver.Host) {
	r.host = h
	r.timer = h.NewTimer(r.onTimer)
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.query()
}

// Stop implements resolver.Resolver.
func (r *dnsResolver) Stop() {
	if r.stopped {
		return
	}
	r.stopped = true
	r.timer.Stop()
	r.cancel()
}

// Stats implements resolver.Resolver.
func (r *dnsResolver) Stats() resolver.Stats {
	st := resolver.Stats{LastAnswer: r.lastAnswer, Backends: slices.Clone(r.set),
		Queries: r.queries, Errors: r.errs}
	if r.lastErr != nil {
		st.LastError = r.lastErr.Error()
	}
	return st
}

func (r *dnsResolver) onTimer() {
	r.host.Querying()
	r.query()
}

func (r *dnsResolver) query() {
	r.queries++
	ctx := r.ctx
	r.host.Go(func() func() {
		ans, err := r.s.dnsExchange(r.inst, ctx)
		return func() { r.answer(ans, err) }
	})
}

func (r *dnsResolver) answer(ans []backend.Backend, err error) {
	if r.stopped {
		return
	}
	dns := &r.s.sc.DNS
	if err != nil {
		r.errs++
		r.failures++
		r.lastErr = err
		r.host.ReportError(err)
		d := dns.RetryMin.D()
		for i := 1; i < r.failures && d < dns.RetryMax.D(); i++ {
			d *= 2
		}
		r.schedule(min(d, dns.RetryMax.D()))
		return
	}
	r.failures = 0
	r.lastErr = nil
	r.lastAnswer = r.host.Now()
	if !r.delivered || !slices.Equal(ans, r.set) {
		r.set = ans
		r.delivered = true
		r.inst.setListed(ans)
	}
	r.host.Update(ans)
	if len(ans) == 0 {
		r.schedule(time.Second)
		return
	}
	r.schedule(dns.TTL.D())
}

// schedule sets the next query d from now, plus up to 10% jitter.
func (r *dnsResolver) schedule(d time.Duration) {
	d += time.Duration(float64(d) * 0.1 * r.host.Rand().Float64())
	r.timer.Reset(d)
}

// dnsExchange is one query to the simulated DNS service, run inside a
// spawned I/O function: it answers the backends listed now, after the
// DNS latency, or times out during an outage.
func (s *Sim) dnsExchange(inst *poolInst, ctx context.Context) ([]backend.Backend, error) {
	s.io.inst = inst
	s.io.ctx = ctx
	acc := &inst.c.res.dns
	acc.Queries++
	if s.dnsOutage > 0 {
		acc.Lost++
		s.io.lat += int64(s.sc.DNS.Timeout)
		return nil, errDNS
	}
	acc.Answers++
	s.io.lat += int64(s.sc.DNS.Latency.Draw(s.dnsRng))
	var out []backend.Backend
	for _, b := range s.backends {
		if b.listed {
			out = append(out, b.b)
		}
	}
	return out, nil
}
