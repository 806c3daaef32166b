package pg

import (
	"github.com/qorbgo/qorb/pool"
)

// Stat is a snapshot of a pool under the names of pgxpool's Stat, for code
// and dashboards written for pgxpool. Each method says which field of
// pool.Stats (or of the effective policy) it comes from; [Stat.Stats] is
// the whole snapshot, with per-backend figures pgxpool has not.
//
// Three of pgxpool's figures have no honest equivalent and are left out
// rather than made up: AcquireDuration and EmptyAcquireWaitTime (totals of
// wait time: pool.Stats keeps waits as a histogram, Stats.Waits, without
// their sum; prompool's and otelpool's wait histograms have it), and the
// split of expired connections into MaxLifetimeDestroyCount and
// MaxIdleDestroyCount (pool.Stats counts both in one figure,
// [Stat.ExpiredDestroyCount]).
type Stat struct {
	st  pool.Stats
	max int
}

// Stat returns a snapshot of the pool under pgxpool's names
// (pgxpool.Pool.Stat).
func (p *Pool) Stat() *Stat {
	return &Stat{st: p.p.Stats(), max: p.p.EffectivePolicy().MaxSlots}
}

// Stats returns the snapshot itself.
func (s *Stat) Stats() pool.Stats { return s.st }

// AcquireCount is the number of claims served since the pool was made:
// Stats.Claims.
func (s *Stat) AcquireCount() int64 { return int64(s.st.Claims) }

// AcquiredConns is the number of connections claimed now:
// Stats.Slots.Claimed.
func (s *Stat) AcquiredConns() int32 { return int32(s.st.Slots.Claimed) }

// CanceledAcquireCount is the number of claims that failed because the
// claimer's context ended (cancelled, or its deadline passed) while they
// waited: Stats.ClaimErrors.Context. Claims that failed at the pool's own
// deadline (Policy.ClaimTimeout, which pgxpool has not) are in
// Stats.ClaimErrors.Timeouts instead.
func (s *Stat) CanceledAcquireCount() int64 { return int64(s.st.ClaimErrors.Context) }

// ConstructingConns is the number of connections being opened, with their
// first check, and of slots waiting to open one: Stats.Slots.Connecting.
func (s *Stat) ConstructingConns() int32 { return int32(s.st.Slots.Connecting) }

// EmptyAcquireCount is the number of claims served after they waited for a
// connection to be opened or released: the counts of Stats.Waits above its
// first bound (0); claims served from an idle connection at once are in
// the first count.
func (s *Stat) EmptyAcquireCount() int64 {
	var n uint64
	for i, c := range s.st.Waits.Counts {
		if i < len(s.st.Waits.Bounds) && s.st.Waits.Bounds[i] <= 0 {
			continue
		}
		n += c
	}
	return int64(n)
}

// IdleConns is the number of connections idle now, ready to be claimed:
// Stats.Slots.Connected. Connections being checked or recycled are in
// neither IdleConns nor AcquiredConns (Stats.Slots.Checking and
// Recycling), but are in TotalConns.
func (s *Stat) IdleConns() int32 { return int32(s.st.Slots.Connected) }

// MaxConns is the most connections the pool holds, across every backend:
// the effective Policy.MaxSlots.
func (s *Stat) MaxConns() int32 { return int32(s.max) }

// TotalConns is the number of connections open or being opened: every slot
// but those backing off after a failure (Stats.Slots.Total -
// Stats.Slots.Failed), that is ConstructingConns + AcquiredConns +
// IdleConns + the slots checking or recycling.
func (s *Stat) TotalConns() int32 { return int32(s.st.Slots.Total - s.st.Slots.Failed) }

// NewConnsCount is the number of connects started, whatever their outcome
// (as pgxpool counts them): Stats.Connects.
func (s *Stat) NewConnsCount() int64 { return int64(s.st.Connects) }

// ExpiredDestroyCount is the number of connections closed because they
// reached Policy.MaxConnLifetime or Policy.MaxConnIdleTime: Stats.Expired,
// which is pgxpool's MaxLifetimeDestroyCount and MaxIdleDestroyCount
// together.
func (s *Stat) ExpiredDestroyCount() int64 { return int64(s.st.Expired) }
