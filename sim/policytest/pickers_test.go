package policytest

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/qorbgo/qorb/pool"
)

// TestLeastLatencyPasses checks the latency-aware picker against drawn
// schedules: whatever it picks, the pool keeps its promises (the
// simulator's invariants: caps, FIFO, no connection lost or leaked).
func TestLeastLatencyPasses(t *testing.T) {
	Check(t, quick(Config{Policy: func() pool.Policy { return pool.Policy{Picker: pool.LeastLatency{}} },
		Out: filepath.Join(t.TempDir(), "fail.toml")}))
}

// TestLimitsPass checks dial limits, load shedding and damped shrinking
// together against drawn schedules.
func TestLimitsPass(t *testing.T) {
	Check(t, quick(Config{Policy: func() pool.Policy {
		return pool.Policy{MaxConnectingPerBackend: 2, ConnectRatePerBackend: 20,
			TargetClaimDelay: 20 * time.Millisecond, ShrinkHalfLife: 5 * time.Minute, MinSlots: 2}
	}, Out: filepath.Join(t.TempDir(), "fail.toml")}))
}
