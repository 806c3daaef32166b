package policytest

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/qorbgo/qorb/pool"
)

// A connect done in the world while its client is paused, whose first
// check fails, is closed inside the connect: it was never the pool's, and
// the simulator must not count it as a connection the pool has yet to get
// (it did, and a restart at the resume then saw -1 connections left open).
func TestPausedConnectWithAFailedFirstCheck(t *testing.T) {
	file := filepath.Join(t.TempDir(), "pause.toml")
	err := os.WriteFile(file, []byte(`name = "paused-first-check"
duration = "2m30s"
seed = 1

[dns]
ttl = "5s"

[[backends]]
name = "db-1"
accept_rate = 8.0

[[clients]]
name = "client-1"
[clients.workload]
rate = 1.0
hold = "pareto(100µs, 2)"

[[faults]]
at = "1s"
for = "1s"
kind = "pause"

[[faults]]
at = "1s"
for = "1s"
kind = "check_fail"
backends = ["db-1"]

[[faults]]
at = "1s"
kind = "restart"
down = "1s"

[expect]
recover_within = "1m15s"
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Policy: func() pool.Policy {
		return pool.Policy{MaxConnectingPerBackend: 2, ConnectRatePerBackend: 20,
			TargetClaimDelay: 20 * time.Millisecond, ShrinkHalfLife: 5 * time.Minute, MinSlots: 2}
	}}.withDefaults(t.Name())
	if _, err := Replay(file, cfg); err != nil {
		t.Fatal(err)
	}
}
