package otelpool

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/semconv/v1.40.0/dbconv"

	"github.com/qorbgo/qorb/contrib/internal/byname"
	"github.com/qorbgo/qorb/pool"
)

// ScopeName is the instrumentation scope of the meter the instruments are
// made with.
const ScopeName = "github.com/qorbgo/qorb/contrib/otelpool"

// Attribute keys of this package's own instruments. The semantic
// conventions' keys (db.client.connection.pool.name,
// db.client.connection.state, server.address, server.port) come from the
// semconv package.
const (
	// BackendNameKey is the backend's name (backend.Backend.Name), on the
	// per-backend instruments.
	BackendNameKey = attribute.Key("qorb.backend.name")
	// SlotStateKey is a slot state (connecting, connected, claimed,
	// recycling, checking, failed), on qorb.pool.backend.slots.
	SlotStateKey = attribute.Key("qorb.slot.state")
	// ClaimErrorKey is the kind of a failed claim (no_backends,
	// no_backends_online, all_claims_used, closed, context, no_idle, shed,
	// queue_full, circuit_open), on
	// qorb.pool.claim.errors.
	ClaimErrorKey = attribute.Key("qorb.claim.error")
)

// Source is a pool whose counters [Metrics.Observe] reads: a *pool.Pool
// of any connection type.
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
	provider metric.MeterProvider
	buckets  []float64
}

// WithMeterProvider makes the instruments with mp. Default: the global
// provider (otel.GetMeterProvider) at the time New is called.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.provider = mp }
}

// WithBuckets sets the bucket boundaries, in seconds, advised for the
// create, wait and use time histograms. A View of the meter provider
// overrides them. Default: 100µs, 500µs, 1ms, 5ms, 10ms, 50ms, 100ms,
// 500ms, 1s, 5s, 10s, 30s, 60s.
func WithBuckets(bounds ...float64) Option {
	return func(c *config) { c.buckets = slices.Clone(bounds) }
}

var defaultBuckets = []float64{0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60}

// Metrics holds the instruments of one meter. It is the tracer to pass to
// [pool.WithTracer] (it implements [pool.ClaimTracer],
// [pool.ReleaseTracer] and [pool.ConnectTracer]) and it observes the
// pools given to [Metrics.Observe].
//
// Concurrency contract: every method is safe for concurrent use. The trace
// methods are called by the pool from the claimers' and the connects'
// goroutines; each records at most one measurement with an attribute set
// made once per pool name, and takes no lock once that name was seen.
type Metrics struct {
	meter metric.Meter

	createTime, waitTime, useTime metric.Float64Histogram
	timeouts                      metric.Int64Counter

	count, idleMax, max, pending, spares metric.Int64ObservableUpDownCounter
	claims, claimErrors                  metric.Int64ObservableCounter
	connects, failures                   metric.Int64ObservableCounter
	backendSlots                         metric.Int64ObservableUpDownCounter
	backendClaims, backendConnects       metric.Int64ObservableCounter
	backendFailures                      metric.Int64ObservableCounter
	backendDead                          metric.Int64ObservableGauge
	observables                          []metric.Observable

	pools byname.Map[poolAttrs] // by pool name, read without a lock
	mu    sync.Mutex            // guards poolAttrs.observed
}

// poolAttrs is what the trace methods need of one pool name.
type poolAttrs struct {
	opt metric.MeasurementOption // db.client.connection.pool.name
	// rec and add hold opt, made once: passing them spread costs no
	// allocation per measurement.
	rec      []metric.RecordOption
	add      []metric.AddOption
	observed bool // guarded by Metrics.mu
}

// New makes the instruments. The pools they describe are added with
// [Metrics.Observe]; the tracer part works as soon as the Metrics is
// passed to [pool.WithTracer].
func New(opts ...Option) (*Metrics, error) {
	c := config{buckets: defaultBuckets}
	for _, o := range opts {
		o(&c)
	}
	if c.provider == nil {
		c.provider = otel.GetMeterProvider()
	}
	m := &Metrics{meter: c.provider.Meter(ScopeName, metric.WithSchemaURL(semconv.SchemaURL))}
	var errs []error
	check := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	buckets := metric.WithExplicitBucketBoundaries(c.buckets...)

	create, err := dbconv.NewClientConnectionCreateTime(m.meter, buckets)
	check(err)
	wait, err := dbconv.NewClientConnectionWaitTime(m.meter, buckets)
	check(err)
	use, err := dbconv.NewClientConnectionUseTime(m.meter, buckets)
	check(err)
	timeouts, err := dbconv.NewClientConnectionTimeouts(m.meter)
	check(err)
	m.createTime, m.waitTime, m.useTime, m.timeouts = create.Inst(), wait.Inst(), use.Inst(), timeouts.Inst()

	upDown := func(name, unit, desc string) metric.Int64ObservableUpDownCounter {
		i, err := m.meter.Int64ObservableUpDownCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		check(err)
		m.observables = append(m.observables, i)
		return i
	}
	counter := func(name, unit, desc string) metric.Int64ObservableCounter {
		i, err := m.meter.Int64ObservableCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		check(err)
		m.observables = append(m.observables, i)
		return i
	}
	var (
		count   dbconv.ClientConnectionCount
		idleMax dbconv.ClientConnectionIdleMax
		max     dbconv.ClientConnectionMax
		pending dbconv.ClientConnectionPendingRequests
	)
	m.count = upDown(count.Name(), count.Unit(), count.Description())
	m.idleMax = upDown(idleMax.Name(), idleMax.Unit(), idleMax.Description())
	m.max = upDown(max.Name(), max.Unit(), max.Description())
	m.pending = upDown(pending.Name(), pending.Unit(), pending.Description())
	m.spares = upDown("qorb.pool.spares_wanted", "{connection}",
		"The number of idle connections the pool tries to keep beyond those claimed (Policy.SparesWanted).")
	m.claims = counter("qorb.pool.claims", "{claim}", "The number of claims served.")
	m.claimErrors = counter("qorb.pool.claim.errors", "{claim}", "The number of failed claims, by kind.")
	m.connects = counter("qorb.pool.connects", "{connect}", "The number of connects started.")
	m.failures = counter("qorb.pool.failures", "{failure}",
		"The number of failed connects, health checks and recycles, and of discarded connections.")
	m.backendSlots = upDown("qorb.pool.backend.slots", "{slot}", "The number of slots of one backend, by state.")
	m.backendClaims = counter("qorb.pool.backend.claims", "{claim}", "The number of claims served by one backend.")
	m.backendConnects = counter("qorb.pool.backend.connects", "{connect}", "The number of connects started to one backend.")
	m.backendFailures = counter("qorb.pool.backend.failures", "{failure}",
		"The number of failed connects, health checks and recycles, and of discarded connections, of one backend.")
	dead, err := m.meter.Int64ObservableGauge("qorb.pool.backend.dead", metric.WithUnit("{backend}"),
		metric.WithDescription("1 when the backend is dead (Policy.DeadAfter failures in a row), else 0."))
	check(err)
	m.backendDead = dead
	m.observables = append(m.observables, dead)
	if len(errs) > 0 {
		return nil, fmt.Errorf("otelpool: %w", errors.Join(errs...))
	}
	return m, nil
}

// attrsFor returns the attributes of the pool named name, made once.
func (m *Metrics) attrsFor(name string) *poolAttrs {
	return m.pools.Get(name, func() *poolAttrs {
		opt := metric.WithAttributeSet(attribute.NewSet(semconv.DBClientConnectionPoolName(name)))
		return &poolAttrs{opt: opt, rec: []metric.RecordOption{opt}, add: []metric.AddOption{opt}}
	})
}

// TraceClaimStart implements [pool.ClaimTracer]; it returns ctx.
func (m *Metrics) TraceClaimStart(ctx context.Context, _ pool.ClaimStartData) context.Context {
	return ctx
}

// TraceClaimEnd implements [pool.ClaimTracer]: a served claim's wait goes
// to db.client.connection.wait_time; a claim that failed because its
// deadline passed counts in db.client.connection.timeouts.
func (m *Metrics) TraceClaimEnd(ctx context.Context, d pool.ClaimEndData) {
	a := m.attrsFor(d.Pool)
	if d.Err == nil {
		m.waitTime.Record(ctx, d.Wait.Seconds(), a.rec...)
		return
	}
	// The pool's own timeouts, and the caller's own deadline.
	if d.TimedOut || errors.Is(d.Err, context.DeadlineExceeded) {
		m.timeouts.Add(ctx, 1, a.add...)
	}
}

// TraceRelease implements [pool.ReleaseTracer]: how long the claim held
// its connection goes to db.client.connection.use_time, for Release and
// Discard alike.
func (m *Metrics) TraceRelease(d pool.ReleaseData) {
	m.useTime.Record(context.Background(), d.Held.Seconds(), m.attrsFor(d.Pool).rec...)
}

// TraceConnectStart implements [pool.ConnectTracer]; it returns ctx.
func (m *Metrics) TraceConnectStart(ctx context.Context, _ pool.ConnectStartData) context.Context {
	return ctx
}

// TraceConnectEnd implements [pool.ConnectTracer]: a successful connect's
// duration (the connector's Connect and, with a Validator, the first check)
// goes to db.client.connection.create_time. Failed connects are counted by
// the pool (qorb.pool.failures).
func (m *Metrics) TraceConnectEnd(ctx context.Context, d pool.ConnectEndData) {
	if d.Err != nil {
		return
	}
	m.createTime.Record(ctx, d.Duration.Seconds(), m.attrsFor(d.Pool).rec...)
}

// Registration is the observation of one pool, made by [Metrics.Observe].
type Registration struct {
	m    *Metrics
	a    *poolAttrs
	reg  metric.Registration
	once sync.Once
	err  error
}

// Unregister stops observing the pool: its observable instruments are no
// longer reported, and claims of a pool of its name that fail with
// ErrNoBackendsOnline no longer count as timeouts. The tracer part goes on
// recording. Calling it again returns the first call's error.
func (r *Registration) Unregister() error {
	r.once.Do(func() {
		r.err = r.reg.Unregister()
		r.m.mu.Lock()
		r.a.observed = false
		r.m.mu.Unlock()
	})
	return r.err
}

// observed is one pool under observation.
type observed struct {
	src        Source
	pol        pool.Policy
	name       string
	pool       metric.MeasurementOption
	idle, used metric.MeasurementOption
	errKinds   [len(claimErrorKinds)]metric.MeasurementOption
}

// Observe starts reporting p's counters through the observable
// instruments, read from p.Stats() at each collection, and lets the tracer
// tell p's timeouts (it needs p's ClaimTimeout). Pools observed by one
// Metrics must have different names. Unregister the returned registration
// before closing p or when done with it.
func (m *Metrics) Observe(p Source) (*Registration, error) {
	name := p.Stats().Name
	a := m.attrsFor(name)
	m.mu.Lock()
	if a.observed {
		m.mu.Unlock()
		return nil, fmt.Errorf("otelpool: a pool named %q is already observed", name)
	}
	a.observed = true
	m.mu.Unlock()

	o := &observed{src: p, pol: p.EffectivePolicy(), name: name, pool: a.opt}
	poolAttr := semconv.DBClientConnectionPoolName(name)
	o.idle = metric.WithAttributeSet(attribute.NewSet(poolAttr, semconv.DBClientConnectionStateIdle))
	o.used = metric.WithAttributeSet(attribute.NewSet(poolAttr, semconv.DBClientConnectionStateUsed))
	for i, kind := range claimErrorKinds {
		o.errKinds[i] = metric.WithAttributeSet(attribute.NewSet(poolAttr, ClaimErrorKey.String(kind)))
	}
	reg, err := m.meter.RegisterCallback(func(_ context.Context, ob metric.Observer) error {
		m.observe(o, ob)
		return nil
	}, m.observables...)
	if err != nil {
		m.mu.Lock()
		a.observed = false
		m.mu.Unlock()
		return nil, fmt.Errorf("otelpool: %w", err)
	}
	return &Registration{m: m, a: a, reg: reg}, nil
}

// claimErrorKinds names the fields of pool.ClaimErrors, in the order
// claimErrorCounts returns them.
var claimErrorKinds = [9]string{"no_backends", "no_backends_online", "all_claims_used", "closed", "context",
	"no_idle", "shed", "queue_full", "circuit_open"}

func claimErrorCounts(e pool.ClaimErrors) [9]uint64 {
	return [9]uint64{e.NoBackends, e.NoBackendsOnline, e.AllClaimsUsed, e.Closed, e.Context,
		e.NoIdle, e.Shed, e.QueueFull, e.CircuitOpen}
}

// slotStates names the fields of pool.SlotCounts reported per backend, in
// the order slotCounts returns them.
var slotStates = [6]string{"connecting", "connected", "claimed", "recycling", "checking", "failed"}

func slotCounts(c pool.SlotCounts) [6]int {
	return [6]int{c.Connecting, c.Connected, c.Claimed, c.Recycling, c.Checking, c.Failed}
}

// observe reports one snapshot of the pool; it runs at each collection.
func (m *Metrics) observe(o *observed, ob metric.Observer) {
	st := o.src.Stats()
	ob.ObserveInt64(m.count, int64(st.Slots.Connected), o.idle)
	ob.ObserveInt64(m.count, int64(st.Slots.Claimed), o.used)
	ob.ObserveInt64(m.idleMax, int64(o.pol.MaxSlots), o.pool)
	ob.ObserveInt64(m.max, int64(o.pol.MaxSlots), o.pool)
	ob.ObserveInt64(m.pending, int64(st.Waiters), o.pool)
	ob.ObserveInt64(m.spares, int64(o.pol.SparesWanted), o.pool)
	ob.ObserveInt64(m.claims, int64(st.Claims), o.pool)
	for i, n := range claimErrorCounts(st.ClaimErrors) {
		ob.ObserveInt64(m.claimErrors, int64(n), o.errKinds[i])
	}
	ob.ObserveInt64(m.connects, int64(st.Connects), o.pool)
	ob.ObserveInt64(m.failures, int64(st.Failures), o.pool)
	for _, b := range st.Backends {
		attrs := backendAttrs(o.name, b)
		// attribute.NewSet sorts its argument in place: give each set a
		// slice of its own.
		withState := make([]attribute.KeyValue, len(attrs)+1)
		for i, n := range slotCounts(b.Slots) {
			copy(withState, attrs)
			withState[len(attrs)] = SlotStateKey.String(slotStates[i])
			ob.ObserveInt64(m.backendSlots, int64(n), metric.WithAttributeSet(attribute.NewSet(withState...)))
		}
		set := metric.WithAttributeSet(attribute.NewSet(attrs...))
		ob.ObserveInt64(m.backendClaims, int64(b.Claims), set)
		ob.ObserveInt64(m.backendConnects, int64(b.Connects), set)
		ob.ObserveInt64(m.backendFailures, int64(b.Failures), set)
		dead := int64(0)
		if b.Dead {
			dead = 1
		}
		ob.ObserveInt64(m.backendDead, dead, set)
	}
}

// backendAttrs are the attributes of one backend: the pool's name, the
// backend's name, and server.address and server.port from its address.
func backendAttrs(poolName string, b pool.BackendStats) []attribute.KeyValue {
	attrs := make([]attribute.KeyValue, 0, 5)
	attrs = append(attrs, semconv.DBClientConnectionPoolName(poolName), BackendNameKey.String(b.Name))
	if ap, err := netip.ParseAddrPort(b.Addr); err == nil {
		attrs = append(attrs, semconv.ServerAddress(ap.Addr().String()), semconv.ServerPort(int(ap.Port())))
	} else if b.Addr != "" {
		attrs = append(attrs, semconv.ServerAddress(b.Addr))
	}
	return attrs
}
