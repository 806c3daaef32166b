package policytest

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/qorbgo/qorb/pool"
	"github.com/qorbgo/qorb/sim"
)

// growingBackoff doubles from 20ms with every failure and forgets the
// policy's BackoffMax: after the twelfth failure in a row it waits 41s,
// past the default maximum of 30s, and so on.
type growingBackoff struct{}

func (growingBackoff) Delay(n int, _ *rand.Rand) time.Duration {
	return 20 * time.Millisecond << min(n-1, 30)
}

// TestLongFaultReachesTheMaximum: the length of the long faults follows
// the policy's backoff.
func TestLongFaultReachesTheMaximum(t *testing.T) {
	for _, tc := range []struct {
		p    pool.Policy
		want time.Duration
	}{
		{pool.Policy{}, 101 * time.Second}, // 20ms doubling to 30s: 40.94s, then 2×30s
		{pool.Policy{BackoffMin: time.Second, BackoffMax: 4 * time.Second}, 11 * time.Second},
		{pool.Policy{BackoffMax: time.Hour}, maxLongFault},
	} {
		if got := LongFault(tc.p); got != tc.want {
			t.Errorf("LongFault(min %v, max %v) = %v, want %v", tc.p.BackoffMin, tc.p.BackoffMax, got, tc.want)
		}
	}
}

// TestGrowingBackoffIsCaught: a backoff that grows past the policy's
// BackoffMax is caught by default (no BackoffBounds given) once a
// backend stays down for LongFault, while the default backoff, which
// stops at its maximum, passes the same schedule.
func TestGrowingBackoffIsCaught(t *testing.T) {
	growing := quick(Config{Policy: func() pool.Policy { return pool.Policy{Backoff: growingBackoff{}} }}).withDefaults(t.Name())
	s := Schedule{Seed: 1, Backends: []Backend{{}, {}}, Clients: []Client{{Rate: 5, Hold: sim.Const(time.Millisecond)}},
		Faults: []Fault{{Kind: sim.FaultCrash, Backend: 1, At: 10 * time.Second, For: LongFault(pool.Policy{})}}}
	_, err := growing.run(s.Scenario(t.Name(), growing.Policy(), growing.Duration, growing.RecoverWithin))
	if err == nil || !strings.Contains(err.Error(), "backoff-bounds") || !strings.Contains(err.Error(), "waited 40.96") {
		t.Fatalf("a backoff past its maximum against a long crash: %v; want the backoff bounds' failure after 40.96s", err)
	}
	t.Log(err)
	def := quick(Config{Policy: func() pool.Policy { return pool.Policy{} }}).withDefaults(t.Name())
	if _, err := def.run(s.Scenario(t.Name(), def.Policy(), def.Duration, def.RecoverWithin)); err != nil {
		t.Fatalf("the default policy fails the same schedule: %v", err)
	}
	// Shorter than the time the backoff takes to reach its maximum, the
	// crash does not show it.
	s.Faults[0].For = 30 * time.Second
	if _, err := growing.run(s.Scenario(t.Name(), growing.Policy(), growing.Duration, growing.RecoverWithin)); err != nil {
		t.Fatalf("a crash of 30s shows the growing backoff already: %v", err)
	}
}

// TestDrawnSchedulesFindGrowingBackoff: some drawn schedules keep a
// backend down long enough to show the growing backoff. (Check would
// find it too, but its shrinking takes many runs: the drawn schedules
// are run here one by one until one fails.)
func TestDrawnSchedulesFindGrowingBackoff(t *testing.T) {
	cfg := quick(Config{Policy: func() pool.Policy { return pool.Policy{Backoff: growingBackoff{}} }}).withDefaults(t.Name())
	gen := generator(cfg, cfg.Policy())
	for i := range 100 {
		s := gen.Example(i)
		_, err := cfg.run(s.Scenario(t.Name(), cfg.Policy(), cfg.Duration, cfg.RecoverWithin))
		if err == nil {
			continue
		}
		if !strings.Contains(err.Error(), "backoff-bounds") {
			t.Fatalf("schedule %d: %v; want the backoff bounds' failure", i, err)
		}
		t.Logf("schedule %d of the draws fails: %v", i, err)
		return
	}
	t.Fatal("no drawn schedule of 100 caught the growing backoff")
}
