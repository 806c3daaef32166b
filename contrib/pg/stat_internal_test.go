package pg

import (
	"testing"
	"time"

	"github.com/qorbgo/qorb/pool"
)

// Each of Stat's methods reads the field of pool.Stats its doc names.
func TestStatMapping(t *testing.T) {
	st := pool.Stats{
		Slots:       pool.SlotCounts{Connecting: 2, Connected: 3, Claimed: 4, Recycling: 1, Checking: 1, Failed: 5, Total: 16},
		Claims:      100,
		ClaimErrors: pool.ClaimErrors{Context: 7, Timeouts: 9, AllClaimsUsed: 9},
		Waits: pool.Histogram{
			Bounds: []time.Duration{0, time.Millisecond, time.Second},
			Counts: []uint64{60, 30, 8, 2},
		},
		Connects: 40,
		Expired:  6,
	}
	s := &Stat{st: st, max: 20}
	for _, c := range []struct {
		name      string
		got, want int64
	}{
		{"AcquireCount", s.AcquireCount(), 100},
		{"AcquiredConns", int64(s.AcquiredConns()), 4},
		{"CanceledAcquireCount", s.CanceledAcquireCount(), 7},
		{"ConstructingConns", int64(s.ConstructingConns()), 2},
		{"EmptyAcquireCount", s.EmptyAcquireCount(), 40},
		{"IdleConns", int64(s.IdleConns()), 3},
		{"MaxConns", int64(s.MaxConns()), 20},
		{"TotalConns", int64(s.TotalConns()), 11},
		{"NewConnsCount", s.NewConnsCount(), 40},
		{"ExpiredDestroyCount", s.ExpiredDestroyCount(), 6},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	if s.Stats().Claims != 100 {
		t.Error("Stats is not the snapshot")
	}
}
