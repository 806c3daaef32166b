// Package otelpool reports a qorb pool's state and timings as OpenTelemetry
// metrics, under the semantic conventions for database client connection
// pools (db.client.connection.*) plus per-backend instruments of its own
// (qorb.pool.*).
//
// Two sources feed the instruments, and every figure comes from one of
// them: the pool's own counters, read from [pool.Pool.Stats] when the
// reader collects (the connection counts, the limits, the waiting claims,
// the per-backend figures), and the pool's tracer, which times every claim,
// release and connect (the wait, use and create histograms and the
// timeouts counter). So a [Metrics] is both a tracer, passed to
// [pool.WithTracer] when the pool is made, and an observer of pools, told
// of each with [Metrics.Observe] once it exists:
//
//	m, err := otelpool.New(otelpool.WithMeterProvider(mp))
//	if err != nil { ... }
//	p, err := pool.New(r, conns, pool.Policy{}, pool.WithName("orders"), pool.WithTracer(m))
//	if err != nil { ... }
//	reg, err := m.Observe(p)
//	if err != nil { ... }
//	defer reg.Unregister()
//
// One Metrics may serve several pools with different names: the pool's name
// ([pool.WithName]) is the db.client.connection.pool.name attribute of every
// measurement. docs/otel.md lists every instrument and its mapping.
package otelpool
