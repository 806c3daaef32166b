package policytest

import (
	"os"
	"testing"
	"time"

	"github.com/qorbgo/qorb/pool"
)

// TestExplore hunts for pool bugs with the default policies under three
// policies' numbers, with more backends, clients and faults than the
// other tests. It runs only with QORB_SIM_EXPLORE=1, 2 or 3, for example
//
//	QORB_SIM_EXPLORE=2 go test ./sim/policytest -run Explore -rapid.checks=2000
func TestExplore(t *testing.T) {
	var p pool.Policy
	switch os.Getenv("QORB_SIM_EXPLORE") {
	case "":
		t.Skip("set QORB_SIM_EXPLORE to 1, 2 or 3")
	case "2": // small caps, short timers, dead after one failure
		p = pool.Policy{MaxSlots: 5, MaxSlotsPerBackend: 2, SparesWanted: 4, DeadAfter: 1, RebalanceInterval: 3 * time.Second,
			DecoherenceInterval: 2 * time.Second, HealthInterval: 2 * time.Second, HealthTimeout: 50 * time.Millisecond,
			ConnectTimeout: 100 * time.Millisecond, MaxConnIdleTime: 3 * time.Second, BackoffMax: 2 * time.Second}
	case "3": // fewer slots than backends, short lifetimes, fast backoff
		p = pool.Policy{MaxSlots: 3, MaxSlotsPerBackend: 1, SparesWanted: 1, ClaimTimeout: 200 * time.Millisecond,
			MaxConnLifetime: 2 * time.Second, BackoffMin: time.Millisecond, BackoffMax: 5 * time.Millisecond, BackoffJitter: time.Millisecond}
	default:
		p = pool.Policy{MaxSlots: 8, SparesWanted: 3, HealthInterval: 5 * time.Second, HealthTimeout: 300 * time.Millisecond,
			ConnectTimeout: time.Second, MaxConnLifetime: 20 * time.Second}
	}
	Check(t, Config{Policy: func() pool.Policy { return p }, MaxBackends: 5, MaxClients: 4, MaxFaults: 8,
		Duration: 3 * time.Minute, Out: os.TempDir() + "/qorb-explore.toml"})
}
