package pool

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/qorbgo/qorb/backend"
)

// Policy says how many connections the pool keeps and how it treats them.
// A zero field takes its default (qorb's); an invalid field makes New fail.
type Policy struct {
	// SparesWanted is how many idle connections the pool tries to keep
	// beyond those claimed. Default 8. A value above MaxSlots is capped at
	// MaxSlots.
	SparesWanted int
	// MaxSlots caps the slots across all backends: a hard limit on open and
	// opening connections that is never exceeded. Default 16; at most
	// 1,048,576.
	MaxSlots int
	// MaxSlotsPerBackend caps the slots of any one backend. Default 16. A
	// value above MaxSlots is capped at MaxSlots.
	MaxSlotsPerBackend int

	// ClaimTimeout is how long Claim waits for a connection when its
	// context has no earlier deadline. Default 30s.
	ClaimTimeout time.Duration
	// TargetClaimDelay turns on load shedding of the claim queue
	// (cueball's targetClaimDelay, controlled delay): when every claim
	// served during a ClaimDelayInterval waited longer than this, the
	// queue is overloaded for the next interval, and meanwhile a claim
	// that has waited over twice this long fails at once with
	// ErrClaimShed, so that the claims served wait about the target
	// instead of the whole ClaimTimeout. Default 0: off. With it,
	// ClaimTimeout must exceed twice the target.
	TargetClaimDelay time.Duration
	// ClaimDelayInterval is the window over which TargetClaimDelay judges
	// the queue. Default 100ms.
	ClaimDelayInterval time.Duration
	// MaxWaiters bounds the claim queue: a claim that would wait while
	// MaxWaiters claims already wait fails at once with ErrQueueFull
	// (Stats.ClaimErrors.QueueFull), so that an overload ends in fast
	// errors rather than in a queue that holds every caller's goroutine
	// and memory until ClaimTimeout. A claim served at once is never
	// refused, and a claimer whose acquire hook or check on claim failed
	// keeps its place at the head of the queue whatever the bound.
	// Default 0: no bound (as database/sql, pgxpool and puddle).
	MaxWaiters int

	// SlowStartWindow gives a backend that comes back after its connects
	// failed (a restart, a crash) its share in doubling steps over this
	// window, 1, 2, 4 ... slots (Envoy's slow start), instead of at once,
	// so that the clients that all see it return do not open every
	// connection they had in the same moment; what its step's cap cuts
	// goes to the other backends meanwhile (with a single backend, the
	// pool holds fewer connections than it would for the window, and
	// claims beyond them wait). A backend that only lost its connections
	// and reconnects at once gets its share at once. Default 0: off.
	SlowStartWindow time.Duration

	// CircuitBreakAfter opens the circuit breaker when the pool has held
	// no connection to any backend for this long while it knows some
	// (postgres-nio's circuitBreakOpen): the claims waiting fail, and new
	// claims fail at once, with ErrCircuitOpen (which is also
	// ErrNoBackendsOnline) and the last connect error, rather than each
	// waiting out its ClaimTimeout; RetryAfter says when the next connect
	// is tried. The pool keeps connecting; its first connection closes the
	// breaker. It covers what DeadAfter does not: connects that hang until
	// their timeout, backends that refuse under load. Default 15s; a
	// negative value turns it off.
	CircuitBreakAfter time.Duration

	// TrackHeld keeps a registry of the claims held: the label each
	// claimer gave (WithClaimLabel) and, with HeldStacks, its stack, for
	// Held, Stats.HeldByLabel and leak reports. A claim then costs a
	// context lookup, and a map entry when it has a label. Default false:
	// Held still lists every claim with its backend and age, and
	// LeakThreshold still reports them, without labels or stacks, at no
	// cost to a claim.
	TrackHeld bool
	// HeldStacks, with TrackHeld, records each claimer's stack when it
	// claims (about a microsecond and 4 KiB per claim: to find a leak, not
	// for every day). Default false.
	HeldStacks bool
	// LeakThreshold reports every claim held longer than this, once per
	// claim (HikariCP's leakDetectionThreshold): a warning in the log and
	// the function given WithLeakHandler, with the claim's backend, age,
	// label and stack (Stats.Leaks counts them). Claims are scanned every
	// quarter of it, so a leak is reported at most about a quarter of the
	// threshold late. Default 0: off; at least 1ms.
	LeakThreshold time.Duration
	// RebalanceInterval is how often slots are redistributed and surplus
	// idle slots closed. Slots are added at once when demand grows.
	// Default 60s.
	RebalanceInterval time.Duration
	// ShrinkHalfLife damps the shrinking of the pool after demand falls
	// (cueball's low-pass filter on the slot count): a backend's slots
	// above what the rebalancer wants decay exponentially with this
	// half-life, one step at each RebalanceInterval (a step removes
	// 1 - 2^(-RebalanceInterval/ShrinkHalfLife) of the surplus, rounded to
	// whole slots, the rest carried to the next step), so that repeated
	// bursts reuse connections instead of opening and closing them. Slots are added at once whatever it is. Default:
	// RebalanceInterval (half the surplus at each step).
	ShrinkHalfLife time.Duration
	// DecoherenceInterval is how often the backend preference order is
	// perturbed (the last backend moves to a random place), so that a
	// fleet of clients does not pile onto one backend. Default 60s.
	DecoherenceInterval time.Duration

	// BackoffMin is the delay before the first reconnect after a failure;
	// each further consecutive failure of the slot doubles it, up to
	// BackoffMax. Defaults 20ms and 30s.
	BackoffMin, BackoffMax time.Duration
	// BackoffJitter is the upper bound of a random delay added on top of
	// each backoff delay. Default 20ms.
	BackoffJitter time.Duration

	// MaxConnectingPerBackend caps the connects (with their first check)
	// in flight to any one backend (go-redis's MaxConcurrentDials): slots
	// beyond wait, in the state waiting, in their backend's queue. A
	// connect abandoned on its timeout still counts until it returns.
	// Default 0: no cap.
	MaxConnectingPerBackend int
	// ConnectRatePerBackend caps the connects started to any one backend,
	// per second on average, with a burst of one second's worth (at least
	// one) (cueball's maxChurnRate): a restart of a fleet or a backend
	// does not become a connection storm. Default 0: no cap.
	ConnectRatePerBackend float64

	// ConnectTimeout bounds one connect, including the first health check.
	// Default 10s; at least 1ms.
	ConnectTimeout time.Duration
	// HealthInterval is how often an idle connection is validated (with a
	// Validator), counted from the end of its last check. Default 30s; at
	// least 1ms.
	HealthInterval time.Duration
	// HealthTimeout bounds one health check, one recycle hook and one
	// acquire hook. Default 3s; at least 1ms. It may be longer than
	// HealthInterval: a connection's next check is due one interval after
	// its last one ended, so the checks of one connection never overlap.
	HealthTimeout time.Duration
	// CheckIdleAfter: with a Validator, a connection idle for longer than
	// this is checked when it is claimed, in the claimer's goroutine and
	// within HealthTimeout, before Claim returns it (pgxpool's rule). One
	// that fails is discarded (a lost connection, see DeadAfter), and the
	// claimer served by another connection at the head of the queue.
	// Default 1s; a negative value turns the check on claim off.
	CheckIdleAfter time.Duration
	// CheckOnRelease, with a Validator and no RecycleHook, checks every
	// released connection before it serves another claim (qorb's
	// behaviour): each Release then starts a check off the claim path.
	// Default false: a released connection is checked only when it is
	// claimed after CheckIdleAfter, and by the periodic health check.
	CheckOnRelease bool
	// MaxConnLifetime closes and replaces a connection this long after it
	// was opened (less a random jitter up to MaxConnLifetimeJitter): at
	// once if it is idle then, else when it is released or its check
	// ends. A connection past its lifetime is never handed out: one whose
	// lifetime ends while its check on claim or AcquireHook runs is
	// replaced, and the claimer waits again at the head of the queue.
	// Zero means no limit.
	MaxConnLifetime time.Duration
	// MaxConnLifetimeJitter bounds the random part taken off each
	// connection's lifetime, so that connections opened together are not
	// replaced together. Default a tenth of MaxConnLifetime; at most
	// MaxConnLifetime.
	MaxConnLifetimeJitter time.Duration
	// MaxConnIdleTime closes and replaces a connection that stayed idle
	// this long, checked at each health interval. Zero means no limit.
	MaxConnIdleTime time.Duration

	// MinSlots is a floor on the pool's slots (open and opening
	// connections), kept however low demand falls, spread over the
	// backends like any slots (pgxpool's MinConns). Default 0; at most
	// MaxSlots. SparesWanted is the floor on idle ones beyond the claimed.
	MinSlots int

	// IsBadConn tells Do whether an error returned by its function is the
	// connection's fault (Do then discards it) or only the request's (Do
	// releases it). Default: [DefaultIsBadConn].
	IsBadConn func(error) bool

	// Ejection turns on outlier ejection from the claimers' reports
	// (Handle.Report): see [Ejection]. The zero value is off.
	Ejection Ejection

	// DeadAfter is the number of consecutive failed connects, while the
	// backend holds no connection, after which it is dead: it keeps one
	// probe slot, and when every backend is dead the pool is failed and
	// claims fail fast. Default 5.
	//
	// Only connects count. Connections that were open and are lost (a
	// Discard, a failed health check or recycle hook: a server ending
	// sessions, an idle timeout, a caller's cancelled query) are counted
	// in Stats.Lost and reconnected. A connect refused while the backend
	// holds other connections says it is at its capacity (a connection
	// cap, PostgreSQL's "too many clients"): it keeps what it holds, the
	// slots it refuses go to the other backends, and one more connect is
	// tried after a backoff (Stats.Refused, BackendStats.Capacity).
	DeadAfter int

	// Rebalancer decides how many slots each backend wants. Default:
	// [DefaultRebalancer].
	Rebalancer Rebalancer
	// Picker chooses the backend that serves a claim. Default:
	// [LeastClaimed].
	Picker Picker
	// Backoff computes reconnect delays. Default: [ExponentialBackoff]
	// with the Backoff fields above.
	Backoff Backoff
}

func (p Policy) withDefaults() Policy {
	setInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	setDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	setInt(&p.SparesWanted, 8)
	setInt(&p.MaxSlots, 16)
	setInt(&p.MaxSlotsPerBackend, 16)
	setInt(&p.DeadAfter, 5)
	setDur(&p.ClaimTimeout, 30*time.Second)
	setDur(&p.RebalanceInterval, 60*time.Second)
	setDur(&p.ShrinkHalfLife, p.RebalanceInterval)
	setDur(&p.DecoherenceInterval, 60*time.Second)
	setDur(&p.BackoffMin, 20*time.Millisecond)
	setDur(&p.BackoffMax, 30*time.Second)
	setDur(&p.BackoffJitter, 20*time.Millisecond)
	setDur(&p.ConnectTimeout, 10*time.Second)
	setDur(&p.HealthInterval, 30*time.Second)
	setDur(&p.HealthTimeout, 3*time.Second)
	setDur(&p.CheckIdleAfter, time.Second)
	setDur(&p.CircuitBreakAfter, 15*time.Second)
	setDur(&p.ClaimDelayInterval, 100*time.Millisecond)
	if p.MaxConnLifetimeJitter == 0 {
		p.MaxConnLifetimeJitter = p.MaxConnLifetime / 10
	}
	p.Ejection = p.Ejection.withDefaults()
	if p.IsBadConn == nil {
		p.IsBadConn = DefaultIsBadConn
	}
	if p.Rebalancer == nil {
		p.Rebalancer = DefaultRebalancer{}
	}
	if p.Picker == nil {
		p.Picker = LeastClaimed{}
	}
	if p.Backoff == nil {
		p.Backoff = ExponentialBackoff{Min: p.BackoffMin, Max: p.BackoffMax, Jitter: p.BackoffJitter}
	}
	return p
}

// minPeriod is the shortest interval or I/O deadline a policy may set.
const minPeriod = time.Millisecond

// maxSlotsLimit bounds MaxSlots, so that sums of slot counts never
// overflow.
const maxSlotsLimit = 1 << 20

// capped returns a valid policy with SparesWanted and MaxSlotsPerBackend
// capped at MaxSlots, as their documentation says.
func (p Policy) capped() Policy {
	p.SparesWanted = min(p.SparesWanted, p.MaxSlots)
	p.MaxSlotsPerBackend = min(p.MaxSlotsPerBackend, p.MaxSlots)
	return p
}

// validate checks a policy after defaults are applied.
func (p Policy) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for _, f := range []struct {
		name string
		v    int
	}{{"SparesWanted", p.SparesWanted}, {"MaxSlots", p.MaxSlots}, {"MaxSlotsPerBackend", p.MaxSlotsPerBackend}, {"DeadAfter", p.DeadAfter}, {"MinSlots", p.MinSlots}, {"MaxConnectingPerBackend", p.MaxConnectingPerBackend}, {"MaxWaiters", p.MaxWaiters}} {
		if f.v < 0 {
			bad("%s is %d; it must be positive (zero takes the default)", f.name, f.v)
		}
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{
		{"ClaimTimeout", p.ClaimTimeout}, {"RebalanceInterval", p.RebalanceInterval}, {"ShrinkHalfLife", p.ShrinkHalfLife},
		{"DecoherenceInterval", p.DecoherenceInterval}, {"BackoffMin", p.BackoffMin},
		{"BackoffMax", p.BackoffMax}, {"BackoffJitter", p.BackoffJitter},
		{"ConnectTimeout", p.ConnectTimeout}, {"HealthInterval", p.HealthInterval},
		{"HealthTimeout", p.HealthTimeout}, {"MaxConnLifetime", p.MaxConnLifetime},
		{"MaxConnIdleTime", p.MaxConnIdleTime}, {"MaxConnLifetimeJitter", p.MaxConnLifetimeJitter},
		{"TargetClaimDelay", p.TargetClaimDelay}, {"ClaimDelayInterval", p.ClaimDelayInterval},
		{"LeakThreshold", p.LeakThreshold}, {"SlowStartWindow", p.SlowStartWindow},
	} {
		if f.v < 0 {
			bad("%s is %v; it must not be negative", f.name, f.v)
		}
	}
	// Periods so short that the loop would do nothing but run them, and
	// deadlines no real I/O can meet, are mistakes (a unit left out:
	// HealthInterval: 30 is 30ns), not policies.
	for _, f := range []struct {
		name string
		v    time.Duration
	}{
		{"HealthInterval", p.HealthInterval}, {"HealthTimeout", p.HealthTimeout}, {"ConnectTimeout", p.ConnectTimeout},
		{"RebalanceInterval", p.RebalanceInterval}, {"DecoherenceInterval", p.DecoherenceInterval}, {"ClaimDelayInterval", p.ClaimDelayInterval},
		{"LeakThreshold", p.LeakThreshold}, {"CircuitBreakAfter", p.CircuitBreakAfter}, {"SlowStartWindow", p.SlowStartWindow},
	} {
		if f.v > 0 && f.v < minPeriod {
			bad("%s is %v; it must be at least %v (was a unit left out?)", f.name, f.v, minPeriod)
		}
	}
	if p.MaxSlots > maxSlotsLimit {
		bad("MaxSlots is %d; it must be at most %d", p.MaxSlots, maxSlotsLimit)
	}
	if p.TargetClaimDelay > 0 && p.ClaimTimeout <= 2*p.TargetClaimDelay {
		bad("ClaimTimeout (%v) is not above twice TargetClaimDelay (%v): no claim could be shed before it timed out", p.ClaimTimeout, p.TargetClaimDelay)
	}
	if p.ConnectRatePerBackend < 0 || math.IsNaN(p.ConnectRatePerBackend) || math.IsInf(p.ConnectRatePerBackend, 0) {
		bad("ConnectRatePerBackend is %v; it must be a finite number, zero or positive", p.ConnectRatePerBackend)
	}
	if e := p.Ejection; e.ConsecutiveErrors < 0 || e.BaseTime < 0 || e.MaxTime < 0 || e.MaxEjectedPercent < 0 || e.MaxEjectedPercent > 100 {
		bad("Ejection %+v: counts and times must not be negative, and MaxEjectedPercent at most 100", e)
	}
	if p.MinSlots > p.MaxSlots {
		bad("MinSlots (%d) is above MaxSlots (%d)", p.MinSlots, p.MaxSlots)
	}
	if p.MaxConnLifetimeJitter > p.MaxConnLifetime {
		bad("MaxConnLifetimeJitter (%v) is above MaxConnLifetime (%v)", p.MaxConnLifetimeJitter, p.MaxConnLifetime)
	}
	if p.HeldStacks && !p.TrackHeld {
		bad("HeldStacks is set without TrackHeld: the stacks would be kept nowhere")
	}
	if p.BackoffMin > p.BackoffMax {
		bad("BackoffMin (%v) is above BackoffMax (%v)", p.BackoffMin, p.BackoffMax)
	}
	if len(errs) > 0 {
		return fmt.Errorf("pool: invalid policy: %w", errors.Join(errs...))
	}
	return nil
}

// SetInfo describes one backend's slot set to a [Rebalancer].
type SetInfo struct {
	Name   backend.Name
	Online bool // at least one slot holds a connection
	Dead   bool // Policy.DeadAfter consecutive failed connects
	// Failures counts the backend's consecutive failed connects while it
	// held no connection, reset when one of its slots connects or passes
	// a check. Lost connections (discards, failed checks and recycles)
	// and connects refused while it held others do not count.
	Failures int
	Claimed  int // slots claimed now
	Slots    int // slots now, in any state
	// Cap is the most slots the backend may have: Policy.MaxSlotsPerBackend,
	// or less while it refuses connects beyond what it holds (see
	// BackendStats.Capacity). The pool cuts a want above it, without
	// reporting a policy error for the capacity.
	Cap int
}

// RebalanceInput is what a [Rebalancer] decides from. Sets come in the
// pool's preference order (see Policy.DecoherenceInterval).
type RebalanceInput struct {
	Sets     []SetInfo
	Claimed  int // claimed slots across the pool
	Waiters  int // claimers waiting
	Spares   int // Policy.SparesWanted
	Min      int // Policy.MinSlots: the fewest slots to keep in all
	MaxSlots int // Policy.MaxSlots
}

// Rebalancer decides how many slots each backend wants. Rebalance writes
// want[i] for in.Sets[i]. It runs on the loop and must not block or keep
// the slices. The pool enforces the caps whatever it returns: a negative
// want counts as zero, a want above a backend's cap or a total above
// MaxSlots is cut (later sets first), and the violation is reported in
// Stats.PolicyError.
type Rebalancer interface {
	Rebalance(in RebalanceInput, want []int)
}

// DefaultRebalancer gives every backend one slot (a probe for an offline
// one, so that no healthy backend is ever left without a connection to be
// torn down and reopened), then spreads the rest of claimed + waiters +
// spares, at most MaxSlots in all, over the online backends in preference
// order, up to each backend's cap.
//
// When MaxSlots is below the number of backends, the one-slot round goes
// to online backends first, then to offline ones with the fewest
// consecutive failures (dead ones last), each group in preference order;
// so probes move from backends that keep failing to backends tried less.
type DefaultRebalancer struct{}

// Rebalance implements [Rebalancer].
func (DefaultRebalancer) Rebalance(in RebalanceInput, want []int) {
	target := min(max(in.Claimed+in.Waiters+in.Spares, in.Min), in.MaxSlots)
	budget := in.MaxSlots
	given := 0
	for i := range in.Sets {
		want[i] = 0
	}
	give := func(i int) {
		if budget > 0 && in.Sets[i].Cap > 0 {
			want[i] = 1
			budget--
			given++
		}
	}
	if budget >= len(in.Sets) {
		for i := range in.Sets {
			give(i)
		}
	} else {
		// The first budget backends by probe rank, in preference order
		// among equals: each key is the rank above the index.
		keys := make([]uint64, 0, len(in.Sets))
		for i := range in.Sets {
			if in.Sets[i].Cap > 0 {
				keys = append(keys, uint64(probeRank(in.Sets[i]))<<32|uint64(i))
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			give(int(uint32(k)))
		}
	}
	share := min(max(target-given, 0), budget)
	// Hand out the share one slot at a time, round robin in preference
	// order, over online backends below their cap.
	for share > 0 {
		gave := false
		for i, s := range in.Sets {
			if share == 0 {
				break
			}
			if s.Online && want[i] < s.Cap {
				want[i]++
				share--
				gave = true
			}
		}
		if !gave {
			break
		}
	}
}

// probeRank orders backends for a short one-slot round: online first,
// then offline by consecutive failures, dead last.
func probeRank(s SetInfo) int {
	switch {
	case s.Online:
		return 0
	case s.Dead:
		return 1 + maxSlotsLimit + min(s.Failures, maxSlotsLimit)
	}
	return 1 + min(s.Failures, maxSlotsLimit)
}

// Candidate is a backend that can serve a claim now.
type Candidate struct {
	Name    backend.Name
	Claimed int // slots of this backend claimed now
	Idle    int // idle connected slots (at least one)
	Slots   int // slots in any state
	Rank    int // place in the preference order, 0 first
	// Latency is the decaying average of the latencies its claimers
	// reported (Handle.Report), decaying further while the other backends
	// are reported on; zero before the first report.
	Latency time.Duration
}

// Picker chooses which backend serves a claim: Pick returns an index into
// cands, which are in preference order. It runs on the loop, on the claim
// path: it must be fast, must not block and must not keep the slice. An
// out-of-range answer is reported in Stats.PolicyError and the first
// candidate is used.
type Picker interface {
	Pick(cands []Candidate, r *rand.Rand) int
}

// LeastClaimed picks the backend with the fewest claimed slots, the
// earliest in preference order among equals.
type LeastClaimed struct{}

// Pick implements [Picker].
func (LeastClaimed) Pick(cands []Candidate, _ *rand.Rand) int {
	best := 0
	for i := 1; i < len(cands); i++ {
		if cands[i].Claimed < cands[best].Claimed {
			best = i
		}
	}
	return best
}

// Backoff computes the delay before a slot reconnects after its n-th
// consecutive failure (n ≥ 1). r is a math/rand/v2 source: the slot's own
// stream, derived from the pool's seed (WithSeed), so that a run can be
// replayed; draw jitter from it, never from the global source. Delay runs
// on the loop and must not block or keep r. A negative answer is reported
// in Stats.PolicyError and replaced by Policy.BackoffMin; a panic is
// reported and replaced by Policy.BackoffMax.
type Backoff interface {
	Delay(n int, r *rand.Rand) time.Duration
}

// ExponentialBackoff waits Min after the first failure, doubling with each
// further one up to Max, plus a random jitter in [0, Jitter).
type ExponentialBackoff struct {
	Min, Max, Jitter time.Duration
}

// Delay implements [Backoff].
func (b ExponentialBackoff) Delay(n int, r *rand.Rand) time.Duration {
	d := b.Min
	for i := 1; i < n && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	if b.Jitter > 0 {
		d += time.Duration(r.Int64N(int64(b.Jitter)))
	}
	return d
}
