package prompool_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/contrib/prompool"
	"github.com/qorbgo/qorb/pool"
)

// scrape fetches url and parses the text exposition.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

// sample is the value of the one sample of the family name whose labels
// include labels (name, value pairs).
func sample(t *testing.T, mfs map[string]*dto.MetricFamily, name string, labels ...string) *dto.Metric {
	t.Helper()
	mf, ok := mfs[name]
	if !ok {
		t.Fatalf("no family %s in the scrape", name)
	}
	var found []*dto.Metric
	for _, m := range mf.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		ok := true
		for i := 0; i+1 < len(labels); i += 2 {
			ok = ok && have[labels[i]] == labels[i+1]
		}
		if ok {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s %v: %d samples, want 1", name, labels, len(found))
	}
	return found[0]
}

// TestScrape serves the collector over HTTP on loopback, scrapes it as
// Prometheus would, and checks the values against the run.
func TestScrape(t *testing.T) {
	c := prompool.New()
	run(t, c, func(e *env) {
		if err := c.Watch(e.P); err != nil {
			t.Fatal(err)
		}
	})
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	defer http.DefaultClient.CloseIdleConnections()

	mfs := scrape(t, srv.URL+"/metrics")
	if len(mfs) != 23 {
		t.Errorf("%d families scraped, want 23", len(mfs))
	}
	for _, g := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"qorb_pool_connections", []string{"pool", "orders", "state", "idle"}, 2},
		{"qorb_pool_connections", []string{"pool", "orders", "state", "used"}, 0},
		{"qorb_pool_connections_max", []string{"pool", "orders"}, 3},
		{"qorb_pool_pending_requests", []string{"pool", "orders"}, 0},
		{"qorb_pool_backend_dead", []string{"backend", bad.String()}, 1},
		{"qorb_pool_backend_dead", []string{"backend", good.String()}, 0},
		{"qorb_pool_backend_slots", []string{"backend", good.String(), "state", "connected"}, 2},
	} {
		if got := sample(t, mfs, g.name, g.labels...).GetGauge().GetValue(); got != g.want {
			t.Errorf("%s %v = %v, want %v", g.name, g.labels, got, g.want)
		}
	}
	for _, k := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"qorb_pool_timeouts_total", []string{"pool", "orders"}, 1},
		{"qorb_pool_claims_total", []string{"pool", "orders"}, 3},
		{"qorb_pool_claim_errors_total", []string{"kind", "all_claims_used"}, 1},
		{"qorb_pool_backend_connects_total", []string{"backend", bad.String()}, 1},
		{"qorb_pool_backend_failures_total", []string{"backend", bad.String()}, 1},
	} {
		if got := sample(t, mfs, k.name, k.labels...).GetCounter().GetValue(); got != k.want {
			t.Errorf("%s %v = %v, want %v", k.name, k.labels, got, k.want)
		}
	}
	for _, h := range []struct {
		name  string
		count uint64
		sum   float64
	}{
		{"qorb_pool_connection_create_seconds", 2, 0.35},
		{"qorb_pool_connection_wait_seconds", 3, 0.1},
		{"qorb_pool_connection_use_seconds", 3, 2.1},
	} {
		hist := sample(t, mfs, h.name, "pool", "orders").GetHistogram()
		if hist.GetSampleCount() != h.count || hist.GetSampleSum() < h.sum-1e-9 || hist.GetSampleSum() > h.sum+1e-9 {
			t.Errorf("%s: count %d sum %v, want %d and %v", h.name, hist.GetSampleCount(), hist.GetSampleSum(), h.count, h.sum)
		}
		if n := len(hist.GetBucket()); n != 14 {
			t.Errorf("%s: %d buckets, want the 13 default bounds and +Inf", h.name, n)
		}
	}
}

// TestWatchForget: a pool name is watched once at a time; Forget removes
// its metrics, histograms included.
func TestWatchForget(t *testing.T) {
	c := prompool.New()
	e := newEnv(t, c)
	if err := c.Watch(e.P); err != nil {
		t.Fatal(err)
	}
	if err := c.Watch(e.P); err == nil {
		t.Fatal("a second Watch of the same pool succeeded")
	}
	e.ConnectHeld(1, 0)
	h := e.Claim()
	h.Release()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) != 23 {
		t.Errorf("%d families before Forget, want 23", len(mfs))
	}
	if !c.Forget("orders") || c.Forget("orders") {
		t.Fatal("Forget did not report the pool once")
	}
	if mfs, err = reg.Gather(); err != nil || len(mfs) != 0 {
		t.Fatalf("after Forget: %d families (%v), want none", len(mfs), err)
	}
	if err := c.Watch(e.P); err != nil {
		t.Fatalf("Watch after Forget: %v", err)
	}
}

// TestTracerConcurrent calls the trace methods from many goroutines for
// two pools (run with -race) and checks that nothing is lost.
func TestTracerConcurrent(t *testing.T) {
	c := prompool.New()
	const goroutines, each = 8, 500
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := []string{"a", "b"}[g%2]
			b := backend.Backend{Name: "db1", Addr: good}
			for range each {
				ctx := c.TraceClaimStart(context.Background(), pool.ClaimStartData{Pool: name})
				c.TraceClaimEnd(ctx, pool.ClaimEndData{Pool: name, Backend: b, Wait: time.Millisecond})
				c.TraceRelease(pool.ReleaseData{Pool: name, Backend: b, Held: 2 * time.Millisecond})
				ctx = c.TraceConnectStart(context.Background(), pool.ConnectStartData{Pool: name, Backend: b})
				c.TraceConnectEnd(ctx, pool.ConnectEndData{Pool: name, Backend: b, Duration: 3 * time.Millisecond})
				c.TraceClaimEnd(context.Background(), pool.ClaimEndData{Pool: name, Wait: time.Second, Err: pool.ErrAllClaimsUsed, TimedOut: true})
			}
		}()
	}
	wg.Wait()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		byName[mf.GetName()] = mf
	}
	const perPool = goroutines / 2 * each
	for _, pl := range []string{"a", "b"} {
		for name, d := range map[string]time.Duration{"qorb_pool_connection_wait_seconds": time.Millisecond,
			"qorb_pool_connection_use_seconds": 2 * time.Millisecond, "qorb_pool_connection_create_seconds": 3 * time.Millisecond} {
			h := sample(t, byName, name, "pool", pl).GetHistogram()
			want := float64(perPool) * d.Seconds()
			if h.GetSampleCount() != perPool || h.GetSampleSum() < want*0.999 || h.GetSampleSum() > want*1.001 {
				t.Errorf("%s of pool %s: count %d sum %v, want %d and %v", name, pl, h.GetSampleCount(), h.GetSampleSum(), perPool, want)
			}
		}
		if got := sample(t, byName, "qorb_pool_timeouts_total", "pool", pl).GetCounter().GetValue(); got != perPool {
			t.Errorf("timeouts of pool %s = %v, want %d", pl, got, perPool)
		}
	}
}

// TestTimeoutsNoBackendsOnline: with its only backend failing, a claim
// that waits out the claim timeout counts as a timeout; once the backend
// is dead, claims fail at once with the same error and do not.
func TestTimeoutsNoBackendsOnline(t *testing.T) {
	c := prompool.New()
	e := newEnvWith(t, c, pool.Policy{MaxSlots: 2, ClaimTimeout: time.Second, DeadAfter: 3, BackoffMin: time.Hour, BackoffMax: time.Hour}, bad)
	if err := c.Watch(e.P); err != nil {
		t.Fatal(err)
	}
	e.Settle()
	ch := e.ClaimAsync(1)
	e.Advance(time.Second)
	if r := <-ch; !errors.Is(r.Err, pool.ErrNoBackendsOnline) {
		t.Fatalf("claim: %v, want ErrNoBackendsOnline", r.Err)
	}
	timeouts := func() float64 {
		reg := prometheus.NewRegistry()
		reg.MustRegister(c)
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		byName := map[string]*dto.MetricFamily{}
		for _, mf := range mfs {
			byName[mf.GetName()] = mf
		}
		return sample(t, byName, "qorb_pool_timeouts_total", "pool", "orders").GetCounter().GetValue()
	}
	if got := timeouts(); got != 1 {
		t.Errorf("timeouts after a claim timed out = %v, want 1", got)
	}
	// Two more hourly backoffs make three failures in a row: the backend
	// is dead and the pool failed; claims fail at once.
	e.Advance(2*time.Hour + time.Minute)
	if st := e.P.Stats(); st.State != "failed" {
		t.Fatalf("pool %s, want failed", st.State)
	}
	if _, err := e.P.Claim(context.Background()); !errors.Is(err, pool.ErrNoBackendsOnline) {
		t.Fatalf("claim on a failed pool: %v", err)
	}
	if got := timeouts(); got != 1 {
		t.Errorf("timeouts after a claim failed fast = %v, want 1", got)
	}
}
