package otelpool_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/contrib/otelpool"
	"github.com/qorbgo/qorb/pool"
)

func newReader(t *testing.T) (*sdkmetric.ManualReader, *otelpool.Metrics) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	m, err := otelpool.New(otelpool.WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	return reader, m
}

// TestTimeoutsNoBackendsOnline: with its only backend failing, a claim
// that waits out the claim timeout counts as a timeout; once the backend
// is dead, claims fail at once with the same error and do not.
func TestTimeoutsNoBackendsOnline(t *testing.T) {
	reader, m := newReader(t)
	e := newEnvWith(t, m, pool.Policy{MaxSlots: 2, ClaimTimeout: time.Second, DeadAfter: 3, BackoffMin: time.Hour, BackoffMax: time.Hour}, bad)
	reg, err := m.Observe(e.P)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Unregister()
	e.Settle()

	ch := e.ClaimAsync(1)
	e.Advance(time.Second)
	if r := <-ch; !errors.Is(r.Err, pool.ErrNoBackendsOnline) {
		t.Fatalf("claim: %v, want ErrNoBackendsOnline", r.Err)
	}
	c := collect(t, reader)
	if got := c.int64Value(t, "db.client.connection.timeouts", poolAttr); got != 1 {
		t.Errorf("timeouts after a claim timed out = %d, want 1", got)
	}

	// Backoffs of an hour: two more hours give the backend its third
	// failure in a row, and it is dead; the pool is failed.
	e.Advance(2*time.Hour + time.Minute)
	st := e.P.Stats()
	if st.State != "failed" {
		t.Fatalf("pool %s, want failed; backends %+v", st.State, st.Backends)
	}
	if _, err := e.P.Claim(context.Background()); !errors.Is(err, pool.ErrNoBackendsOnline) {
		t.Fatalf("claim on a failed pool: %v", err)
	}
	c = collect(t, reader)
	if got := c.int64Value(t, "db.client.connection.timeouts", poolAttr); got != 1 {
		t.Errorf("timeouts after a claim failed fast = %d, want 1", got)
	}
	if got, want := c.int64Value(t, "qorb.pool.claim.errors", poolAttr, otelpool.ClaimErrorKey.String("no_backends_online")), int64(e.P.Stats().ClaimErrors.NoBackendsOnline); got != 2 || got != want {
		t.Errorf("no_backends_online claim errors = %d, pool counted %d, want 2", got, want)
	}
}

// TestObserveOnce: a pool name is observed once at a time; after
// Unregister its observable instruments are gone and it can be observed
// again.
func TestObserveOnce(t *testing.T) {
	reader, m := newReader(t)
	e := newEnv(t, m)
	reg, err := m.Observe(e.P)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Observe(e.P); err == nil {
		t.Fatal("a second Observe of the same pool succeeded")
	}
	if c := collect(t, reader); c.points("db.client.connection.count") != 2 {
		t.Fatalf("count has %d points, want 2", c.points("db.client.connection.count"))
	}
	if err := reg.Unregister(); err != nil {
		t.Fatal(err)
	}
	if err := reg.Unregister(); err != nil {
		t.Fatalf("second Unregister: %v", err)
	}
	if c := collect(t, reader); len(c) != 0 {
		t.Fatalf("after Unregister, %d instruments reported", len(c))
	}
	reg, err = m.Observe(e.P)
	if err != nil {
		t.Fatalf("Observe after Unregister: %v", err)
	}
	defer reg.Unregister()
	if c := collect(t, reader); c.points("db.client.connection.max") != 1 {
		t.Fatal("max not reported after observing again")
	}
}

// TestTracerConcurrent calls the trace methods from many goroutines for
// two pools (run with -race) and checks that nothing is lost.
func TestTracerConcurrent(t *testing.T) {
	reader, m := newReader(t)
	const goroutines, each = 8, 500
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := []string{"a", "b"}[g%2]
			b := backend.Backend{Name: "db1", Addr: good}
			for range each {
				ctx := m.TraceClaimStart(context.Background(), pool.ClaimStartData{Pool: name})
				m.TraceClaimEnd(ctx, pool.ClaimEndData{Pool: name, Backend: b, Wait: time.Millisecond})
				m.TraceRelease(pool.ReleaseData{Pool: name, Backend: b, Held: 2 * time.Millisecond})
				ctx = m.TraceConnectStart(context.Background(), pool.ConnectStartData{Pool: name, Backend: b})
				m.TraceConnectEnd(ctx, pool.ConnectEndData{Pool: name, Backend: b, Duration: 3 * time.Millisecond})
				m.TraceClaimEnd(context.Background(), pool.ClaimEndData{Pool: name, Wait: time.Second, Err: pool.ErrAllClaimsUsed, TimedOut: true})
			}
		}()
	}
	wg.Wait()
	c := collect(t, reader)
	const perPool = goroutines / 2 * each
	for _, pl := range []string{"a", "b"} {
		for name, unit := range map[string]time.Duration{"db.client.connection.wait_time": time.Millisecond,
			"db.client.connection.use_time": 2 * time.Millisecond, "db.client.connection.create_time": 3 * time.Millisecond} {
			dp := c.histogramOf(t, name, pl)
			if dp.Count != perPool || dp.Sum < float64(perPool)*unit.Seconds()*0.999 || dp.Sum > float64(perPool)*unit.Seconds()*1.001 {
				t.Errorf("%s of pool %s: count %d sum %v, want %d and %v", name, pl, dp.Count, dp.Sum, perPool, float64(perPool)*unit.Seconds())
			}
		}
		if got := c.int64Value(t, "db.client.connection.timeouts", poolAttrOf(pl)); got != perPool {
			t.Errorf("timeouts of pool %s = %d, want %d", pl, got, perPool)
		}
	}
}

// TestBuckets: the histograms have the default bucket boundaries, or
// those given with WithBuckets.
func TestBuckets(t *testing.T) {
	for _, tc := range []struct {
		opts []otelpool.Option
		want []float64
	}{
		{nil, []float64{0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60}},
		{[]otelpool.Option{otelpool.WithBuckets(0.1, 1)}, []float64{0.1, 1}},
	} {
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		m, err := otelpool.New(append(tc.opts, otelpool.WithMeterProvider(mp))...)
		if err != nil {
			t.Fatal(err)
		}
		m.TraceClaimEnd(context.Background(), pool.ClaimEndData{Pool: "orders", Wait: 50 * time.Millisecond})
		m.TraceRelease(pool.ReleaseData{Pool: "orders", Held: 2 * time.Second})
		m.TraceConnectEnd(context.Background(), pool.ConnectEndData{Pool: "orders", Duration: time.Second})
		c := collect(t, reader)
		for _, name := range []string{"db.client.connection.wait_time", "db.client.connection.use_time", "db.client.connection.create_time"} {
			if got := c.histogram(t, name).Bounds; !slices.Equal(got, tc.want) {
				t.Errorf("%s bounds %v, want %v", name, got, tc.want)
			}
		}
		_ = mp.Shutdown(context.Background())
	}
}
