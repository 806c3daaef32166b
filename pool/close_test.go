package pool

import (
	"context"
	"testing"
	"time"

	"github.com/qorbgo/qorb/backend"
)

// TestCloseClosesTheLastIdleConnection: stopping the last slot used to let
// Close return before the close of its connection was under way.
func TestCloseClosesTheLastIdleConnection(t *testing.T) {
	for i := 0; i < 20; i++ {
		h := newHarness(t, Policy{MaxSlots: 1, MaxSlotsPerBackend: 4, SparesWanted: 4, DeadAfter: 2, MaxConnLifetime: 3 * time.Minute}, 1, func(f *fakeConnector) backend.Connector[*fakeConn] { return validating{f} })
		h.claim().Release()
		h.advance(2 * time.Minute)
		if err := h.p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := h.fake.openCount(); n != 0 {
			for _, tr := range h.trace {
				t.Log(tr)
			}
			t.Fatalf("iteration %d: %d open", i, n)
		}
	}
}
