// Package prompool exports a qorb pool's state and timings to Prometheus: a
// [Collector] to register with a prometheus.Registerer.
//
// Two sources feed the metrics, and every figure comes from one of them:
// the pool's own counters, read from [pool.Pool.Stats] at each scrape (the
// connection gauges, the limits, the claim, connect and failure counters,
// the per-backend metrics), and the pool's tracer, which times every claim,
// release and connect (the three _seconds histograms and the timeouts
// counter). So a Collector is both a tracer, passed to [pool.WithTracer]
// when the pool is made, and a collector of the pools given to
// [Collector.Watch] once they exist:
//
//	c := prompool.New()
//	p, err := pool.New(r, conns, pool.Policy{}, pool.WithName("orders"), pool.WithTracer(c))
//	if err != nil { ... }
//	if err := c.Watch(p); err != nil { ... }
//	prometheus.MustRegister(c)
//
// One Collector may serve several pools with different names: the pool's
// name ([pool.WithName]) is the pool label of every metric.
// docs/prometheus.md lists every metric and its mapping.
package prompool

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/qorbgo/qorb/contrib/internal/byname"
	"github.com/qorbgo/qorb/pool"
)

// Source is a pool whose counters the Collector reads: a *pool.Pool of
// any connection type.
type Source interface {
	// Stats returns a snapshot of the pool's counters.
	Stats() pool.Stats
	// EffectivePolicy returns the policy the pool runs with, defaults
	// applied.
	EffectivePolicy() pool.Policy
}

// Option configures [New].
type Option func(*config)

type config struct {
	prefix  string
	buckets []float64
}

// WithPrefix sets the prefix of every metric name. Default: "qorb_pool".
func WithPrefix(prefix string) Option { return func(c *config) { c.prefix = prefix } }

// WithBuckets sets the upper bounds, in seconds, of the buckets of the
// create, wait and use histograms. Default: 100µs, 500µs, 1ms, 5ms, 10ms,
// 50ms, 100ms, 500ms, 1s, 5s, 10s, 30s, 60s.
func WithBuckets(bounds ...float64) Option {
	return func(c *config) { c.buckets = slices.Clone(bounds) }
}

var defaultBuckets = []float64{0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60}

// Collector is a prometheus.Collector of the pools given to
// [Collector.Watch] and the tracer to pass to [pool.WithTracer] (it
// implements [pool.ClaimTracer], [pool.ReleaseTracer] and
// [pool.ConnectTracer]).
//
// Concurrency contract: every method is safe for concurrent use. The trace
// methods are called by the pool from the claimers' and the connects'
// goroutines; each updates at most one metric, through a child looked up
// once per pool name, and takes no lock once that name was seen.
type Collector struct {
	createTime, waitTime, useTime *prometheus.HistogramVec
	timeouts                      *prometheus.CounterVec

	connections, connectionsMax, sparesWanted, pending *prometheus.Desc
	claims, claimErrors, connects, failures            *prometheus.Desc
	backendSlots, backendClaims, backendConnects       *prometheus.Desc
	backendFailures, backendDead                       *prometheus.Desc
	slots                                              *prometheus.Desc
	events                                             *prometheus.Desc
	resolverState, resolverQueries, resolverErrors     *prometheus.Desc
	resolverAnswerAge                                  *prometheus.Desc

	traces  byname.Map[poolTrace] // by pool name, read without a lock
	mu      sync.Mutex            // guards watched
	watched map[string]Source     // by pool name
}

// poolTrace is what the trace methods need of one pool name.
type poolTrace struct {
	createTime, wait, use prometheus.Observer
	timeouts              prometheus.Counter
}

// New returns a Collector. Pools are added with [Collector.Watch]; the
// tracer part works as soon as the Collector is passed to
// [pool.WithTracer].
func New(opts ...Option) *Collector {
	cfg := config{prefix: "qorb_pool", buckets: defaultBuckets}
	for _, o := range opts {
		o(&cfg)
	}
	name := func(s string) string { return cfg.prefix + "_" + s }
	hist := func(n, help string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name(n), Help: help, Buckets: cfg.buckets}, []string{"pool"})
	}
	desc := func(n, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name(n), help, append([]string{"pool"}, labels...), nil)
	}
	c := &Collector{
		createTime: hist("connection_create_seconds", "Time to open a connection (connect and first check), of successful connects."),
		waitTime:   hist("connection_wait_seconds", "Time from the start of a claim to its connection, of served claims."),
		useTime:    hist("connection_use_seconds", "Time a claim held its connection, until Release or Discard."),
		timeouts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: name("timeouts_total"),
			Help: "Claims that failed because their deadline passed."}, []string{"pool"}),

		connections:     desc("connections", "Connections by state: idle (connected, claimable) or used (claimed).", "state"),
		connectionsMax:  desc("connections_max", "The most slots (open and opening connections) the pool holds: Policy.MaxSlots."),
		sparesWanted:    desc("spares_wanted", "Idle connections the pool tries to keep beyond those claimed: Policy.SparesWanted."),
		pending:         desc("pending_requests", "Claims waiting for a connection."),
		claims:          desc("claims_total", "Claims served."),
		claimErrors:     desc("claim_errors_total", "Failed claims, by kind.", "kind"),
		connects:        desc("connects_total", "Connects started."),
		failures:        desc("failures_total", "Failed connects, health checks and recycles, and discarded connections."),
		backendSlots:    desc("backend_slots", "Slots of one backend, by state.", "backend", "state"),
		backendClaims:   desc("backend_claims_total", "Claims served by one backend.", "backend"),
		backendConnects: desc("backend_connects_total", "Connects started to one backend.", "backend"),
		backendFailures: desc("backend_failures_total", "Failed connects, health checks and recycles, and discarded connections, of one backend.", "backend"),
		backendDead:     desc("backend_dead", "1 when the backend is dead (Policy.DeadAfter failures in a row), else 0.", "backend"),
		slots:           desc("slots", "Slots (open and opening connections) by state, and their total: Stats.Slots.", "state"),
		events:          desc("events_total", "What happened to the pool's connections and claims, by kind: the counters of Stats.", "kind"),
		resolverState:   desc("resolver_state", "1 for the resolver machine's state (resolving, resolved, failed, stopped), 0 for the others.", "state"),
		resolverQueries: desc("resolver_queries_total", "Queries the resolver made."),
		resolverErrors:  desc("resolver_errors_total", "Queries of the resolver that failed."),
		resolverAnswerAge: desc("resolver_last_answer_age_seconds",
			"Seconds since the resolver's last answer, at the scrape; absent before the first."),

		watched: map[string]Source{},
	}
	return c
}

// Watch adds p to the pools collected at each scrape. Pools watched by
// one Collector must have different names.
func (c *Collector) Watch(p Source) error {
	name := p.Stats().Name
	c.traceFor(name)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.watched[name]; ok {
		return fmt.Errorf("prompool: a pool named %q is already watched", name)
	}
	c.watched[name] = p
	return nil
}

// Forget removes the pool named name from the pools collected, with its
// histograms and timeouts, and reports whether it was watched. Call it
// once the pool is closed: the tracer part would record again for a pool
// of that name that goes on running.
func (c *Collector) Forget(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.watched[name]; !ok {
		return false
	}
	delete(c.watched, name)
	c.traces.Delete(name)
	for _, v := range []interface{ DeleteLabelValues(...string) bool }{c.createTime, c.waitTime, c.useTime, c.timeouts} {
		v.DeleteLabelValues(name)
	}
	return true
}

// traceFor returns the trace children of the pool named name, made once.
func (c *Collector) traceFor(name string) *poolTrace {
	return c.traces.Get(name, func() *poolTrace {
		return &poolTrace{createTime: c.createTime.WithLabelValues(name), wait: c.waitTime.WithLabelValues(name),
			use: c.useTime.WithLabelValues(name), timeouts: c.timeouts.WithLabelValues(name)}
	})
}

// TraceClaimStart implements [pool.ClaimTracer]; it returns ctx.
func (c *Collector) TraceClaimStart(ctx context.Context, _ pool.ClaimStartData) context.Context {
	return ctx
}

// TraceClaimEnd implements [pool.ClaimTracer]: a served claim's wait goes
// to connection_wait_seconds; a claim that failed because its deadline
// passed counts in timeouts_total.
func (c *Collector) TraceClaimEnd(_ context.Context, d pool.ClaimEndData) {
	t := c.traceFor(d.Pool)
	if d.Err == nil {
		t.wait.Observe(d.Wait.Seconds())
		return
	}
	// The pool's own timeouts, and the caller's own deadline.
	if d.TimedOut || errors.Is(d.Err, context.DeadlineExceeded) {
		t.timeouts.Inc()
	}
}

// TraceRelease implements [pool.ReleaseTracer]: how long the claim held
// its connection goes to connection_use_seconds, for Release and Discard
// alike.
func (c *Collector) TraceRelease(d pool.ReleaseData) {
	c.traceFor(d.Pool).use.Observe(d.Held.Seconds())
}

// TraceConnectStart implements [pool.ConnectTracer]; it returns ctx.
func (c *Collector) TraceConnectStart(ctx context.Context, _ pool.ConnectStartData) context.Context {
	return ctx
}

// TraceConnectEnd implements [pool.ConnectTracer]: a successful connect's
// duration (the connector's Connect and, with a Validator, the first check)
// goes to connection_create_seconds. Failed connects are counted by the
// pool (failures_total).
func (c *Collector) TraceConnectEnd(_ context.Context, d pool.ConnectEndData) {
	if d.Err != nil {
		return
	}
	c.traceFor(d.Pool).createTime.Observe(d.Duration.Seconds())
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.connections, c.connectionsMax, c.sparesWanted, c.pending, c.claims,
		c.claimErrors, c.connects, c.failures, c.backendSlots, c.backendClaims, c.backendConnects,
		c.backendFailures, c.backendDead, c.slots, c.events, c.resolverState, c.resolverQueries,
		c.resolverErrors, c.resolverAnswerAge} {
		ch <- d
	}
	c.createTime.Describe(ch)
	c.waitTime.Describe(ch)
	c.useTime.Describe(ch)
	c.timeouts.Describe(ch)
}

// claimErrorKinds names the fields of pool.ClaimErrors, in the order
// claimErrorCounts returns them.
var claimErrorKinds = [9]string{"no_backends", "no_backends_online", "all_claims_used", "closed", "context",
	"no_idle", "shed", "queue_full", "circuit_open"}

func claimErrorCounts(e pool.ClaimErrors) [9]uint64 {
	return [9]uint64{e.NoBackends, e.NoBackendsOnline, e.AllClaimsUsed, e.Closed, e.Context,
		e.NoIdle, e.Shed, e.QueueFull, e.CircuitOpen}
}

// slotTotalStates names the pool's slot counts reported by the slots
// gauge: those of slotStates, then their total, in the order slotTotals
// returns them.
var slotTotalStates = append(slotStates[:], "total")

func slotTotals(s pool.SlotCounts) []int {
	c := slotCounts(s)
	return append(c[:], s.Total)
}

// eventKinds names the counters of pool.Stats reported by events_total, in
// the order eventCounts returns them.
var eventKinds = [12]string{"checks", "recycles", "discards", "expired", "closes", "resets", "misuse",
	"lost", "refused", "overloaded", "breaks", "leaks"}

func eventCounts(st pool.Stats) [12]uint64 {
	return [12]uint64{st.Checks, st.Recycles, st.Discards, st.Expired, st.Closes, st.Resets, st.Misuse,
		st.Lost, st.Refused, st.Overloaded, st.Breaks, st.Leaks}
}

// resolverStates are the resolver machine's states, as resolver_state
// reports them.
var resolverStates = [4]string{"resolving", "resolved", "failed", "stopped"}

// slotStates names the fields of pool.SlotCounts reported per backend, in
// the order slotCounts returns them.
var slotStates = [6]string{"connecting", "connected", "claimed", "recycling", "checking", "failed"}

func slotCounts(s pool.SlotCounts) [6]int {
	return [6]int{s.Connecting, s.Connected, s.Claimed, s.Recycling, s.Checking, s.Failed}
}

// Collect implements prometheus.Collector: it reads Stats of every
// watched pool, then reports the histograms and timeouts.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	pools := make([]Source, 0, len(c.watched))
	for _, p := range c.watched {
		pools = append(pools, p)
	}
	c.mu.Unlock()
	for _, p := range pools {
		c.collect(ch, p.Stats(), p.EffectivePolicy())
	}
	c.createTime.Collect(ch)
	c.waitTime.Collect(ch)
	c.useTime.Collect(ch)
	c.timeouts.Collect(ch)
}

func (c *Collector) collect(ch chan<- prometheus.Metric, st pool.Stats, pol pool.Policy) {
	gauge := func(d *prometheus.Desc, v int, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), append([]string{st.Name}, labels...)...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), append([]string{st.Name}, labels...)...)
	}
	gauge(c.connections, st.Slots.Connected, "idle")
	gauge(c.connections, st.Slots.Claimed, "used")
	gauge(c.connectionsMax, pol.MaxSlots)
	gauge(c.sparesWanted, pol.SparesWanted)
	gauge(c.pending, st.Waiters)
	counter(c.claims, st.Claims)
	for i, n := range claimErrorCounts(st.ClaimErrors) {
		counter(c.claimErrors, n, claimErrorKinds[i])
	}
	counter(c.connects, st.Connects)
	counter(c.failures, st.Failures)
	for i, n := range slotTotals(st.Slots) {
		gauge(c.slots, n, slotTotalStates[i])
	}
	for i, n := range eventCounts(st) {
		counter(c.events, n, eventKinds[i])
	}
	for _, s := range resolverStates {
		v := 0
		if s == st.Resolver.State {
			v = 1
		}
		gauge(c.resolverState, v, s)
	}
	counter(c.resolverQueries, st.Resolver.Queries)
	counter(c.resolverErrors, st.Resolver.Errors)
	if !st.Resolver.LastAnswer.IsZero() {
		ch <- prometheus.MustNewConstMetric(c.resolverAnswerAge, prometheus.GaugeValue, st.At.Sub(st.Resolver.LastAnswer).Seconds(), st.Name)
	}
	for _, b := range st.Backends {
		for i, n := range slotCounts(b.Slots) {
			gauge(c.backendSlots, n, b.Name, slotStates[i])
		}
		counter(c.backendClaims, b.Claims, b.Name)
		counter(c.backendConnects, b.Connects, b.Name)
		counter(c.backendFailures, b.Failures, b.Name)
		dead := 0
		if b.Dead {
			dead = 1
		}
		gauge(c.backendDead, dead, b.Name)
	}
}
