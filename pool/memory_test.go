package pool

import (
	"context"
	"runtime"
	"testing"

	"github.com/qorbgo/qorb/backend"
)

// idleHeap returns the heap a pool of n idle slots over one backend holds
// once connected (connections excluded: the connector's are empty
// structs), the least of tries tries.
func idleHeap(t testing.TB, n, tries int) uint64 {
	t.Helper()
	best := ^uint64(0)
	for range tries {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		p, err := New(resolverFor(1), backend.Connector[*benchConn](benchConnector{}),
			Policy{MaxSlots: n, MaxSlotsPerBackend: n, SparesWanted: n})
		if err != nil {
			t.Fatal(err)
		}
		p.loop.WaitIdle()
		runtime.GC()
		runtime.ReadMemStats(&after)
		if st := p.Stats(); st.Slots.Connected != n {
			t.Fatalf("%d idle slots, want %d", st.Slots.Connected, n)
		}
		best = min(best, after.HeapAlloc-before.HeapAlloc)
		_ = p.Close(context.Background())
		p.loop.WaitIdle()
	}
	return best
}

// TestIdleSlotHeap measures the heap of pools of 16, 256 and 4096 idle
// slots. What one more idle slot costs (the growth from 256 and from 16
// to 4096 slots, per slot) stays within 200 bytes; the growth from 16 to
// 256, over few slots, is more at the mercy of slice growth and is
// reported with the pool's own fixed cost, not bounded.
func TestIdleSlotHeap(t *testing.T) {
	if raceOn {
		t.Skip("the race detector changes what the heap holds")
	}
	h16, h256, h4096 := idleHeap(t, 16, 3), idleHeap(t, 256, 3), idleHeap(t, 4096, 3)
	per16to256 := float64(h256-h16) / (256 - 16)
	per256to4096 := float64(h4096-h256) / (4096 - 256)
	per16to4096 := float64(h4096-h16) / (4096 - 16)
	t.Logf("heap: 16 slots %d B (%.0f B/slot), 256 slots %d B (%.0f B/slot), 4096 slots %d B (%.0f B/slot)",
		h16, float64(h16)/16, h256, float64(h256)/256, h4096, float64(h4096)/4096)
	t.Logf("per added idle slot: %.0f B (16→256), %.0f B (256→4096), %.0f B (16→4096)", per16to256, per256to4096, per16to4096)
	for _, per := range []float64{per256to4096, per16to4096} {
		if per > 200 {
			t.Errorf("an idle slot costs %.0f B of heap; want at most 200", per)
		}
	}
}
