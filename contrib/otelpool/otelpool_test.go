package otelpool_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/qorbgo/qorb/contrib/otelpool"
	"github.com/qorbgo/qorb/pool"
)

// instrument is one expected instrument: its name, unit and kind.
type instrument struct{ name, unit, kind string }

// wantInstruments is every instrument the package reports, once each
// has a measurement.
var wantInstruments = []instrument{
	{"db.client.connection.count", "{connection}", "updowncounter"},
	{"db.client.connection.idle.max", "{connection}", "updowncounter"},
	{"db.client.connection.max", "{connection}", "updowncounter"},
	{"db.client.connection.pending_requests", "{request}", "updowncounter"},
	{"db.client.connection.timeouts", "{timeout}", "counter"},
	{"db.client.connection.create_time", "s", "histogram"},
	{"db.client.connection.wait_time", "s", "histogram"},
	{"db.client.connection.use_time", "s", "histogram"},
	{"qorb.pool.spares_wanted", "{connection}", "updowncounter"},
	{"qorb.pool.claims", "{claim}", "counter"},
	{"qorb.pool.claim.errors", "{claim}", "counter"},
	{"qorb.pool.connects", "{connect}", "counter"},
	{"qorb.pool.failures", "{failure}", "counter"},
	{"qorb.pool.backend.slots", "{slot}", "updowncounter"},
	{"qorb.pool.backend.claims", "{claim}", "counter"},
	{"qorb.pool.backend.connects", "{connect}", "counter"},
	{"qorb.pool.backend.failures", "{failure}", "counter"},
	{"qorb.pool.backend.dead", "{backend}", "gauge"},
}

// collected is one collection, by instrument name.
type collected map[string]metricdata.Metrics

func collect(t *testing.T, r *sdkmetric.ManualReader) collected {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	c := collected{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != otelpool.ScopeName {
			t.Errorf("scope %q, want %q", sm.Scope.Name, otelpool.ScopeName)
		}
		for _, m := range sm.Metrics {
			if _, dup := c[m.Name]; dup {
				t.Errorf("instrument %s reported twice", m.Name)
			}
			c[m.Name] = m
		}
	}
	return c
}

func kind(m metricdata.Metrics) string {
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		if d.IsMonotonic {
			return "counter"
		}
		return "updowncounter"
	case metricdata.Gauge[int64]:
		return "gauge"
	case metricdata.Histogram[float64]:
		return "histogram"
	}
	return fmt.Sprintf("%T", m.Data)
}

// checkInstruments checks the collection against wantInstruments both
// ways: nothing missing, nothing extra, names, units and kinds exact.
func checkInstruments(t *testing.T, c collected) {
	t.Helper()
	seen := map[string]bool{}
	for _, w := range wantInstruments {
		seen[w.name] = true
		m, ok := c[w.name]
		if !ok {
			t.Errorf("missing instrument %s", w.name)
			continue
		}
		if m.Unit != w.unit || kind(m) != w.kind {
			t.Errorf("%s: unit %q kind %s, want unit %q kind %s", w.name, m.Unit, kind(m), w.unit, w.kind)
		}
		if m.Description == "" {
			t.Errorf("%s has no description", w.name)
		}
	}
	for name := range c {
		if !seen[name] {
			t.Errorf("unexpected instrument %s", name)
		}
	}
}

// matches reports whether set holds every attribute of want.
func matches(set attribute.Set, want []attribute.KeyValue) bool {
	for _, kv := range want {
		v, ok := set.Value(kv.Key)
		if !ok || v != kv.Value {
			return false
		}
	}
	return true
}

// int64Value is the one data point of the named int64 instrument whose
// attributes include attrs.
func (c collected) int64Value(t *testing.T, name string, attrs ...attribute.KeyValue) int64 {
	t.Helper()
	var found []int64
	switch d := c[name].Data.(type) {
	case metricdata.Sum[int64]:
		for _, dp := range d.DataPoints {
			if matches(dp.Attributes, attrs) {
				found = append(found, dp.Value)
			}
		}
	case metricdata.Gauge[int64]:
		for _, dp := range d.DataPoints {
			if matches(dp.Attributes, attrs) {
				found = append(found, dp.Value)
			}
		}
	default:
		t.Fatalf("%s: no int64 data (%T)", name, c[name].Data)
	}
	if len(found) != 1 {
		t.Fatalf("%s %v: %d data points, want 1", name, attrs, len(found))
	}
	return found[0]
}

// histogram is the one data point of the named histogram.
func (c collected) histogram(t *testing.T, name string) metricdata.HistogramDataPoint[float64] {
	t.Helper()
	d, ok := c[name].Data.(metricdata.Histogram[float64])
	if !ok || len(d.DataPoints) != 1 {
		t.Fatalf("%s: want one histogram data point, got %#v", name, c[name].Data)
	}
	if d.Temporality != metricdata.CumulativeTemporality {
		t.Errorf("%s: temporality %v", name, d.Temporality)
	}
	return d.DataPoints[0]
}

// histogramOf is the data point of the named histogram for one pool.
func (c collected) histogramOf(t *testing.T, name, poolName string) metricdata.HistogramDataPoint[float64] {
	t.Helper()
	d, ok := c[name].Data.(metricdata.Histogram[float64])
	if !ok {
		t.Fatalf("%s: no histogram (%T)", name, c[name].Data)
	}
	for _, dp := range d.DataPoints {
		if matches(dp.Attributes, []attribute.KeyValue{poolAttrOf(poolName)}) {
			return dp
		}
	}
	t.Fatalf("%s: no data point for pool %s", name, poolName)
	return metricdata.HistogramDataPoint[float64]{}
}

func poolAttrOf(name string) attribute.KeyValue {
	return attribute.String("db.client.connection.pool.name", name)
}

func checkHistogram(t *testing.T, c collected, name string, count uint64, sum float64) {
	t.Helper()
	dp := c.histogram(t, name)
	if dp.Count != count || math.Abs(dp.Sum-sum) > 1e-9 {
		t.Errorf("%s: count %d sum %v, want count %d sum %v", name, dp.Count, dp.Sum, count, sum)
	}
	if v, _ := dp.Attributes.Value("db.client.connection.pool.name"); v.AsString() != "orders" || dp.Attributes.Len() != 1 {
		t.Errorf("%s: attributes %v", name, dp.Attributes.ToSlice())
	}
}

var (
	poolAttr = attribute.String("db.client.connection.pool.name", "orders")
	idle     = attribute.String("db.client.connection.state", "idle")
	used     = attribute.String("db.client.connection.state", "used")
)

// checkPool checks the pool-wide observable instruments against the pool's
// own Stats, and the connection counts against what the test expects.
func checkPool(t *testing.T, c collected, st pool.Stats, wantIdle, wantUsed, wantWaiting int64) {
	t.Helper()
	if int64(st.Slots.Connected) != wantIdle || int64(st.Slots.Claimed) != wantUsed || int64(st.Waiters) != wantWaiting {
		t.Fatalf("pool: %d connected, %d claimed, %d waiting; the test expects %d, %d, %d",
			st.Slots.Connected, st.Slots.Claimed, st.Waiters, wantIdle, wantUsed, wantWaiting)
	}
	for _, v := range []struct {
		name  string
		attrs []attribute.KeyValue
		want  int64
	}{
		{"db.client.connection.count", []attribute.KeyValue{poolAttr, idle}, wantIdle},
		{"db.client.connection.count", []attribute.KeyValue{poolAttr, used}, wantUsed},
		{"db.client.connection.pending_requests", []attribute.KeyValue{poolAttr}, wantWaiting},
		{"db.client.connection.max", []attribute.KeyValue{poolAttr}, 3},
		{"db.client.connection.idle.max", []attribute.KeyValue{poolAttr}, 3},
		{"qorb.pool.spares_wanted", []attribute.KeyValue{poolAttr}, 1},
		{"qorb.pool.claims", []attribute.KeyValue{poolAttr}, int64(st.Claims)},
		{"qorb.pool.connects", []attribute.KeyValue{poolAttr}, int64(st.Connects)},
		{"qorb.pool.failures", []attribute.KeyValue{poolAttr}, int64(st.Failures)},
		{"qorb.pool.claim.errors", []attribute.KeyValue{poolAttr, otelpool.ClaimErrorKey.String("no_backends")}, int64(st.ClaimErrors.NoBackends)},
		{"qorb.pool.claim.errors", []attribute.KeyValue{poolAttr, otelpool.ClaimErrorKey.String("no_backends_online")}, int64(st.ClaimErrors.NoBackendsOnline)},
		{"qorb.pool.claim.errors", []attribute.KeyValue{poolAttr, otelpool.ClaimErrorKey.String("all_claims_used")}, int64(st.ClaimErrors.AllClaimsUsed)},
		{"qorb.pool.claim.errors", []attribute.KeyValue{poolAttr, otelpool.ClaimErrorKey.String("closed")}, int64(st.ClaimErrors.Closed)},
		{"qorb.pool.claim.errors", []attribute.KeyValue{poolAttr, otelpool.ClaimErrorKey.String("context")}, int64(st.ClaimErrors.Context)},
	} {
		if got := c.int64Value(t, v.name, v.attrs...); got != v.want {
			t.Errorf("%s %v = %d, want %d", v.name, v.attrs, got, v.want)
		}
	}
}

// checkBackends checks every per-backend instrument against the pool's
// BackendStats, and that each reports exactly the pool's backends.
func checkBackends(t *testing.T, c collected, st pool.Stats) {
	t.Helper()
	if len(st.Backends) != 2 {
		t.Fatalf("%d backends in Stats, want 2", len(st.Backends))
	}
	for _, b := range st.Backends {
		ap := good
		if b.Addr == bad.String() {
			ap = bad
		}
		attrs := []attribute.KeyValue{poolAttr, otelpool.BackendNameKey.String(b.Name),
			attribute.String("server.address", ap.Addr().String()), attribute.Int("server.port", int(ap.Port()))}
		dead := int64(0)
		if b.Dead {
			dead = 1
		}
		for _, v := range []struct {
			name string
			want int64
		}{{"qorb.pool.backend.claims", int64(b.Claims)}, {"qorb.pool.backend.connects", int64(b.Connects)},
			{"qorb.pool.backend.failures", int64(b.Failures)}, {"qorb.pool.backend.dead", dead}} {
			if got := c.int64Value(t, v.name, attrs...); got != v.want {
				t.Errorf("%s %s = %d, want %d", v.name, b.Name, got, v.want)
			}
		}
		for state, want := range map[string]int{"connecting": b.Slots.Connecting, "connected": b.Slots.Connected,
			"claimed": b.Slots.Claimed, "recycling": b.Slots.Recycling, "checking": b.Slots.Checking, "failed": b.Slots.Failed} {
			if got := c.int64Value(t, "qorb.pool.backend.slots", append(attrs, otelpool.SlotStateKey.String(state))...); got != int64(want) {
				t.Errorf("qorb.pool.backend.slots %s %s = %d, want %d", b.Name, state, got, want)
			}
		}
	}
	for name, want := range map[string]int{"qorb.pool.backend.claims": 2, "qorb.pool.backend.connects": 2,
		"qorb.pool.backend.failures": 2, "qorb.pool.backend.dead": 2, "qorb.pool.backend.slots": 12} {
		if n := c.points(name); n != want {
			t.Errorf("%s: %d data points, want %d", name, n, want)
		}
	}
}

// points is the number of data points of the named int64 instrument.
func (c collected) points(name string) int {
	switch d := c[name].Data.(type) {
	case metricdata.Sum[int64]:
		return len(d.DataPoints)
	case metricdata.Gauge[int64]:
		return len(d.DataPoints)
	}
	return -1
}

// TestInstruments runs a pool over a good and a failing backend through
// connects, claims that wait, a claim that times out, releases and a
// discard, on a mock clock so that every duration is exact, and checks
// every instrument after each step.
func TestInstruments(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	m, err := otelpool.New(otelpool.WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, m)
	reg, err := m.Observe(e.P)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Unregister()

	// The good backend's first connect takes 250ms; the failing backend
	// fails and, after one failure, is dead.
	e.ConnectHeld(1, 250*time.Millisecond)
	c := collect(t, reader)
	st := e.P.Stats()
	checkPool(t, c, st, 1, 0, 0)
	checkBackends(t, c, st)
	checkHistogram(t, c, "db.client.connection.create_time", 1, 0.25)

	// One claim served at once; a second waits 100ms for a new connection.
	h1 := e.Claim()
	e.Conn.Hold()
	ch2 := e.ClaimAsync(1)
	c = collect(t, reader)
	st = e.P.Stats()
	checkPool(t, c, st, 0, 1, 1)
	checkBackends(t, c, st)
	e.ConnectHeld(1, 100*time.Millisecond)
	r2 := <-ch2
	if r2.Err != nil {
		t.Fatal(r2.Err)
	}
	h1.Release() // held 100ms

	// The pool is full (two slots of the good backend, the dead one's
	// probe): a third claim is served at once, a fourth times out.
	h3 := e.Claim()
	ch4 := e.ClaimAsync(1)
	c = collect(t, reader)
	st = e.P.Stats()
	checkPool(t, c, st, 0, 2, 1)
	checkBackends(t, c, st)
	e.Advance(testPolicy.ClaimTimeout)
	if r4 := <-ch4; !errors.Is(r4.Err, pool.ErrAllClaimsUsed) {
		t.Fatalf("fourth claim: %v, want ErrAllClaimsUsed", r4.Err)
	}
	r2.H.Release()                        // held 1s
	h3.Discard(errors.New("broken pipe")) // held 1s

	c = collect(t, reader)
	checkInstruments(t, c)
	st = e.P.Stats()
	checkPool(t, c, st, 1, 0, 0)
	checkBackends(t, c, st)
	checkHistogram(t, c, "db.client.connection.create_time", 2, 0.35)
	checkHistogram(t, c, "db.client.connection.wait_time", 3, 0.1)
	checkHistogram(t, c, "db.client.connection.use_time", 3, 2.1)
	if got := c.int64Value(t, "db.client.connection.timeouts", poolAttr); got != 1 {
		t.Errorf("timeouts = %d, want 1", got)
	}
	if st.Claims != 3 || st.ClaimErrors.AllClaimsUsed != 1 {
		t.Errorf("pool counted %d claims and %d all-claims-used errors, want 3 and 1", st.Claims, st.ClaimErrors.AllClaimsUsed)
	}
	for _, b := range st.Backends {
		switch b.Addr {
		case good.String():
			if b.Connects != 2 || b.Failures != 1 || b.Claims != 3 || b.Dead || b.Slots.Connected != 1 || b.Slots.Failed != 1 {
				t.Errorf("good backend: %+v", b)
			}
		case bad.String():
			if b.Connects == 0 || b.Failures != b.Connects || b.Claims != 0 || !b.Dead {
				t.Errorf("failing backend: %+v", b)
			}
		}
	}
}
