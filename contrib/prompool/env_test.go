package prompool_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/qorbgo/qorb/contrib/internal/pooltest"
	"github.com/qorbgo/qorb/pool"
)

// The test environment: a pool named "orders" on a mock clock over a good
// and a failing backend (see internal/pooltest).
type env = pooltest.Env

var (
	good = pooltest.Good
	bad  = pooltest.Bad
)

// testPolicy: three slots for two backends, so that the failing backend's
// probe slot and two slots of the good one fill the pool; a backend is
// dead after its first failure, and retries only after an hour, so that
// in a test's few seconds it connects exactly once.
var testPolicy = pool.Policy{MaxSlots: 3, SparesWanted: 1, ClaimTimeout: time.Second, DeadAfter: 1,
	BackoffMin: time.Hour, BackoffMax: time.Hour}

// newEnv makes the pool with the tracer tr; the good backend's first
// connect is held.
func newEnv(t *testing.T, tr pool.Tracer) *env {
	t.Helper()
	return pooltest.NewEnv(t, tr, testPolicy, good, bad)
}

// newEnvWith makes a pool with policy pol over the backends at addrs.
func newEnvWith(t *testing.T, tr pool.Tracer, pol pool.Policy, addrs ...netip.AddrPort) *env {
	t.Helper()
	return pooltest.NewEnv(t, tr, pol, addrs...)
}
