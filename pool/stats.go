package pool

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"

	"github.com/qorbgo/qorb/resolver"
	"github.com/qorbgo/qorb/slot"
	"github.com/qorbgo/qorb/slotset"
)

// Stats is a snapshot of a pool, serialisable to JSON.
type Stats struct {
	Name string `json:"name"`
	// At is when the snapshot was taken, on the pool's clock.
	At      time.Time  `json:"at"`
	State   string     `json:"state"`
	Slots   SlotCounts `json:"slots"`
	Waiters int        `json:"waiters"`
	// OldestClaim is how long the longest-held claimed connection has been
	// out at least, so that a claim that never ends shows. Claims are not
	// stamped with the clock (a read would cost more than the rest of a
	// claim): they are timed against the pool's own clock reads, made at
	// each Stats call, each claim that waited and each slot's health
	// interval. The figure therefore runs from the first of those reads
	// after the claim began, and falls short of the true age by at most
	// the time to that read: a claim seen by one Stats call shows in the
	// next.
	OldestClaim time.Duration `json:"oldest_claim"`

	Claims      uint64      `json:"claims"`
	ClaimErrors ClaimErrors `json:"claim_errors"`
	Waits       Histogram   `json:"waits"`
	Connects    uint64      `json:"connects"` // connects started, whatever their outcome
	Failures    uint64      `json:"failures"` // failed connects, checks, recycles, discards
	// Lost counts connections that were open and were lost: discarded,
	// or closed by a failed check or recycle hook. They are failures, but
	// not connect failures: they never make a backend dead.
	Lost uint64 `json:"lost"`
	// Refused counts connects that failed while their backend held other
	// connections: the backend is at its capacity (a connection cap), not
	// dead; the slots it refuses go to the other backends.
	Refused uint64 `json:"refused"`
	// Overloaded counts connects the backend refused under load (the
	// connector's error wraps backend.ErrOverloaded): never toward dead;
	// every connect to the backend is held for the retry-after it asked.
	Overloaded uint64 `json:"overloaded"`
	// Probes counts the slots kept on dead backends to find when they
	// come back (one per dead backend, see Policy.DeadAfter). They count
	// against Policy.MaxSlots, so that the cap holds even when a probe
	// connects: a pool of MaxSlots 6 with one backend down holds at most 5
	// connections to the others.
	Probes   int    `json:"probes"`
	Checks   uint64 `json:"checks"`
	Recycles uint64 `json:"recycles"`
	Discards uint64 `json:"discards"`
	Expired  uint64 `json:"expired"`
	Resets   uint64 `json:"resets"` // calls of Reset
	Closes   uint64 `json:"closes"`
	// ClosesRunning counts connector Close calls that have started and not
	// returned: after a Close whose context ended, the closes it forced
	// may still be running.
	ClosesRunning int `json:"closes_running"`
	// Misuse counts calls on a handle whose claim had already ended (a
	// second Release, a Release after Discard); each did nothing.
	Misuse uint64 `json:"misuse"`
	// SlowStarts counts the backends' slow starts (Policy.SlowStartWindow).
	SlowStarts uint64 `json:"slow_starts,omitempty"`
	// Breaks counts the times the circuit breaker opened: no connection
	// to any backend for Policy.CircuitBreakAfter.
	Breaks uint64 `json:"breaks,omitempty"`
	// Leaks counts the claims reported held longer than
	// Policy.LeakThreshold.
	Leaks uint64 `json:"leaks,omitempty"`
	// HeldByLabel counts the claims held now per label (WithClaimLabel),
	// with Policy.TrackHeld only; claims without a label count under "".
	HeldByLabel map[string]int `json:"held_by_label,omitempty"`
	BackoffMin  time.Duration  `json:"backoff_min"` // shortest backoff delay taken
	BackoffMax  time.Duration  `json:"backoff_max"` // longest backoff delay taken
	LastError   string         `json:"last_error,omitempty"`
	PolicyError string         `json:"policy_error,omitempty"`

	Backends []BackendStats `json:"backends"` // sorted by name
	Resolver resolver.Stats `json:"resolver"`
}

// SlotCounts counts slots by state.
type SlotCounts struct {
	Connecting int `json:"connecting"` // connects in flight, and slots waiting to connect
	Connected  int `json:"connected"`
	Claimed    int `json:"claimed"`
	Recycling  int `json:"recycling"`
	Checking   int `json:"checking"`
	Failed     int `json:"failed"`
	Total      int `json:"total"`
}

func (c *SlotCounts) add(s slot.State) {
	switch s {
	case slot.Connecting, slot.Waiting:
		c.Connecting++
	case slot.Connected:
		c.Connected++
	case slot.Claimed:
		c.Claimed++
	case slot.Recycling:
		c.Recycling++
	case slot.Checking:
		c.Checking++
	case slot.Failed:
		c.Failed++
	}
	c.Total++
}

// ClaimErrors counts failed claims by kind.
type ClaimErrors struct {
	NoBackends       uint64 `json:"no_backends"`
	NoBackendsOnline uint64 `json:"no_backends_online"`
	AllClaimsUsed    uint64 `json:"all_claims_used"`
	Closed           uint64 `json:"closed"`
	NoIdle           uint64 `json:"no_idle"`    // TryClaim found nothing idle
	Shed             uint64 `json:"shed"`       // failed with ErrClaimShed (Policy.TargetClaimDelay)
	QueueFull        uint64 `json:"queue_full"` // failed with ErrQueueFull (Policy.MaxWaiters)
	// CircuitOpen counts the claims failed with ErrCircuitOpen, fast,
	// while the circuit breaker was open (Policy.CircuitBreakAfter).
	CircuitOpen uint64 `json:"circuit_open"`
	Context     uint64 `json:"context"` // the claimer's context ended
	// Timeouts counts the claims whose deadline (Policy.ClaimTimeout)
	// passed, whatever their kind above: ErrNoBackends and ErrAllClaimsUsed
	// always are, ErrNoBackendsOnline is when it did not fail fast.
	Timeouts uint64 `json:"timeouts"`
}

// BackendStats describes one backend's slot set.
type BackendStats struct {
	Name                string     `json:"name"`
	Addr                string     `json:"addr"`
	State               string     `json:"state"`
	Dead                bool       `json:"dead"`
	Wanted              int        `json:"wanted"`
	Slots               SlotCounts `json:"slots"`
	Claims              uint64     `json:"claims"`
	Connects            uint64     `json:"connects"`
	Failures            uint64     `json:"failures"`
	ConsecutiveFailures int        `json:"consecutive_failures"`
	Lost                uint64     `json:"lost"`    // open connections lost (see Stats.Lost)
	Refused             uint64     `json:"refused"` // connects refused while it held others
	// Overloaded counts its connects refused under load (see
	// Stats.Overloaded); HeldFor is how long from now no connect to it
	// starts, for the retry-after it asked (0: none in force).
	Overloaded uint64        `json:"overloaded"`
	HeldFor    time.Duration `json:"held_for,omitempty"`
	// SlowStart is the most slots its slow start allows now, while one
	// runs (Policy.SlowStartWindow); 0 otherwise.
	SlowStart int `json:"slow_start,omitempty"`
	// Capacity is the number of connections the backend held when it last
	// refused one more, and so the most it is given now, until it accepts
	// more or goes offline; 0 when it has refused none.
	Capacity int `json:"capacity,omitempty"`
	// Probe is set when the backend is dead and keeps a slot only to find
	// when it comes back (see Stats.Probes).
	Probe bool `json:"probe,omitempty"`
	// LastError is the backend's last failure since it came back: it is
	// cleared when the backend gets its first connection after having
	// none. LastErrorAge is how long ago it came, on the pool's clock.
	LastError    string        `json:"last_error,omitempty"`
	LastErrorAge time.Duration `json:"last_error_age,omitempty"`
	// From the claimers' reports (Handle.Report): how many, the decaying
	// average latency, the backend errors, and outlier ejection.
	Reports       uint64        `json:"reports"`
	Latency       time.Duration `json:"latency"`
	BackendErrors uint64        `json:"backend_errors"`
	Ejected       bool          `json:"ejected"`
	Ejections     uint64        `json:"ejections"`
}

// Histogram counts durations in fixed buckets: Counts[i] counts values up
// to Bounds[i]; the last count is for values above every bound.
type Histogram struct {
	Bounds []time.Duration `json:"bounds"`
	Counts []uint64        `json:"counts"`
}

var waitBounds = []time.Duration{0, 100 * time.Microsecond, time.Millisecond, 10 * time.Millisecond,
	100 * time.Millisecond, time.Second, 10 * time.Second}

type histogram [8]uint64

func (h *histogram) observe(d time.Duration) {
	for i, b := range waitBounds {
		if d <= b {
			h[i]++
			return
		}
	}
	h[len(waitBounds)]++
}

type counters struct {
	claims, connects, failures, lost, refused, overloaded, checks, recycles, discards, expired, closes, misuse, resets, shed, ejections, leaks, breaks, slowStarts uint64
	claimErrors                                                                                                                                                    ClaimErrors
	waits                                                                                                                                                          histogram
	backoffMin, backoffMax                                                                                                                                         time.Duration
	policyErr                                                                                                                                                      error
}

type setCounters struct {
	claims, connects, failures, lost, refused, overloaded uint64
}

func (c *counters) failed(err error) {
	if timedOut(err) {
		c.claimErrors.Timeouts++
	}
	switch {
	case errors.Is(err, ErrClosed):
		c.claimErrors.Closed++
	case errors.Is(err, ErrCircuitOpen):
		c.claimErrors.CircuitOpen++
	case errors.Is(err, ErrNoBackendsOnline):
		c.claimErrors.NoBackendsOnline++
	case errors.Is(err, ErrNoBackends):
		c.claimErrors.NoBackends++
	case errors.Is(err, ErrAllClaimsUsed):
		c.claimErrors.AllClaimsUsed++
	case errors.Is(err, ErrNoIdle):
		c.claimErrors.NoIdle++
	case errors.Is(err, ErrClaimShed):
		c.claimErrors.Shed++
	case errors.Is(err, ErrQueueFull):
		c.claimErrors.QueueFull++
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		c.claimErrors.Context++
	}
}

func (c *counters) observeBackoff(d time.Duration) {
	if c.backoffMax == 0 || d < c.backoffMin {
		c.backoffMin = d
	}
	c.backoffMax = max(c.backoffMax, d)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func (p *Pool[C]) stats() Stats {
	st := Stats{
		Name: p.name, State: p.state.Get().String(), Waiters: p.waiters.n,
		Claims: p.st.claims, ClaimErrors: p.st.claimErrors,
		Connects: p.st.connects, Failures: p.st.failures, Lost: p.st.lost, Refused: p.st.refused, Overloaded: p.st.overloaded, Checks: p.st.checks,
		Recycles: p.st.recycles, Discards: p.st.discards, Expired: p.st.expired, Resets: p.st.resets, Closes: p.st.closes, Misuse: p.st.misuse, Leaks: p.st.leaks, Breaks: p.st.breaks, SlowStarts: p.st.slowStarts, HeldByLabel: p.heldByLabel(), ClosesRunning: int(p.closesRunning.Load()),
		BackoffMin: p.st.backoffMin, BackoffMax: p.st.backoffMax,
		LastError: errString(p.lastErr), PolicyError: errString(p.st.policyErr),
		Waits:    Histogram{Bounds: slices.Clone(waitBounds), Counts: slices.Clone(p.st.waits[:])},
		Resolver: p.resolverStats(),
	}
	now := p.now()
	st.At = now
	oldest := int64(-1) // the oldest claim held: its number, or with a release tracer its stamp
	// By name: the sets sorted, not their stats (a sort that moves whole
	// BackendStats values costs more than building them).
	sets := slices.SortedFunc(slices.Values(p.order), func(a, b *set[C]) int { return cmp.Compare(a.b.Name, b.b.Name) })
	if len(sets) > 0 {
		st.Backends = make([]BackendStats, 0, len(sets))
	}
	for _, s := range sets {
		bs := BackendStats{Name: string(s.b.Name), Addr: s.b.Addr.String(), State: s.State().String(), Dead: s.Dead(),
			Wanted: s.Wanted, Claims: s.st.claims, Connects: s.st.connects, Failures: s.st.failures,
			ConsecutiveFailures: s.Failures(), Lost: s.st.lost, Refused: s.st.refused, Overloaded: s.st.overloaded, Capacity: s.Capacity(), LastError: errString(s.LastErr()),
			Reports: s.fb.reports, Latency: s.fb.decayed(p.reports, len(p.order)), BackendErrors: s.fb.errors, Ejected: s.fb.ejected, Ejections: s.fb.ejections}
		if s.slowSince != 0 {
			bs.SlowStart = p.slowStartCap(s)
		}
		if n := p.loop.Nanos(); s.dial.Held(n) {
			bs.HeldFor = time.Duration(s.dial.HeldUntil() - n)
		}
		if s.LastErr() != nil {
			bs.LastErrorAge = now.Sub(p.loop.Time(s.LastErrAt()))
		}
		if s.Dead() && s.State() == slotset.Failing && len(s.slots) > 0 {
			bs.Probe = true
			st.Probes++
		}
		for _, sl := range s.slots {
			bs.Slots.add(sl.State())
			st.Slots.add(sl.State())
			if sl.State() == slot.Claimed && (oldest < 0 || sl.claimed < oldest) {
				oldest = sl.claimed
			}
		}
		st.Backends = append(st.Backends, bs)
	}
	if oldest >= 0 {
		st.OldestClaim = p.claimAge(oldest, now)
	}
	p.cclock.Mark(now)
	return st
}

// resolverStats is the resolver's Stats with the state of the machine the
// pool runs for it.
func (p *Pool[C]) resolverStats() resolver.Stats {
	st := p.res.Stats()
	st.State = p.resTr.State().String()
	return st
}
