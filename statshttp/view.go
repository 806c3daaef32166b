package statshttp

import (
	"cmp"
	"encoding/json"
	"fmt"
	"time"

	"github.com/qorbgo/qorb/pool"
)

// Duration is a time.Duration that encodes to JSON as the string a person
// reads, time.Duration.String ("1.5s", "250ms", "0s"), and decodes from the
// same form with time.ParseDuration.
type Duration time.Duration

// MarshalJSON encodes d as a string such as "1.5s".
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON decodes a string accepted by time.ParseDuration. Any other
// JSON value (a number, null) is an error.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("statshttp: a duration must be a string such as \"1.5s\": %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("statshttp: %w", err)
	}
	*d = Duration(v)
	return nil
}

// String returns the duration as time.Duration.String does.
func (d Duration) String() string { return time.Duration(d).String() }

// Index is the answer to GET / : the pools the handler serves, sorted by
// name.
type Index struct {
	// At is when the handler read the pools' states, by the handler's clock.
	At    time.Time    `json:"at"`
	Pools []IndexEntry `json:"pools"`
}

// IndexEntry names one served pool.
type IndexEntry struct {
	// Name is the name the pool is served under (see [Handler.Add]).
	Name string `json:"name"`
	// State is the pool machine's state: starting, running, failed,
	// stopping or stopped.
	State string `json:"state"`
	// Path is the pool's route relative to the handler's root, "pools/NAME",
	// with NAME escaped for a URL path.
	Path string `json:"path"`
}

// Pools is the answer to GET /pools: a snapshot of every served pool,
// sorted by name.
type Pools struct {
	// At is when the handler started taking the snapshots; each pool
	// carries its own stamp as well.
	At    time.Time `json:"at"`
	Pools []Pool    `json:"pools"`
}

// Pool is a snapshot of one pool: pool.Stats as the pool reports it, with
// the name it is served under and the time it was taken. The counters
// (Claims, Connects, Failures, ...) count from the pool's start and never
// go down, so a rate is the difference between two snapshots divided by
// the difference of their At stamps.
type Pool struct {
	// Name is the name the pool is served under (see [Handler.Add]).
	Name string `json:"name"`
	// PoolName is the pool's own name (pool.WithName); it may differ
	// from Name.
	PoolName string `json:"pool_name"`
	// At is when the snapshot was taken, on the pool's own clock
	// (pool.Stats.At); for a source that does not set it, the handler's
	// clock ([Config.Now]) right after its Stats method returned.
	At time.Time `json:"at"`
	// State is the pool machine's state: starting, running, failed (every
	// backend dead, claims fail fast), stopping or stopped.
	State string `json:"state"`
	// Slots counts the pool's slots by state, over all backends.
	Slots Slots `json:"slots"`
	// Waiters is the number of claims waiting in the queue.
	Waiters int `json:"waiters"`
	// OldestClaim is how long the longest-held claimed connection has been
	// out ("0s" when none is claimed).
	OldestClaim Duration `json:"oldest_claim"`

	// Claims counts claims served since the pool started.
	Claims uint64 `json:"claims"`
	// ClaimErrors counts failed claims by kind.
	ClaimErrors ClaimErrors `json:"claim_errors"`
	// Waits is the histogram of how long served claims waited.
	Waits Histogram `json:"waits"`
	// Connects counts connects started, whether they succeeded or not.
	Connects uint64 `json:"connects"`
	// Failures counts failed connects, health checks, recycles and
	// discarded connections.
	Failures uint64 `json:"failures"`
	// Checks counts health checks run.
	Checks uint64 `json:"checks"`
	// Recycles counts releases that ran the connector's OnRecycle hook.
	Recycles uint64 `json:"recycles"`
	// Discards counts connections the claimer discarded (Handle.Discard).
	Discards uint64 `json:"discards"`
	// Expired counts idle connections closed because they reached the
	// policy's maximum lifetime or idle time.
	Expired uint64 `json:"expired"`
	// Resets counts calls of the pool's Reset.
	Resets uint64 `json:"resets"`
	// Closes counts connections closed.
	Closes uint64 `json:"closes"`
	// ClosesRunning counts connector Close calls started and not returned.
	ClosesRunning int `json:"closes_running"`
	// Misuse counts calls on handles whose claim had already ended.
	Misuse uint64 `json:"misuse"`
	// BackoffMin is the shortest backoff delay taken ("0s" when none was).
	BackoffMin Duration `json:"backoff_min"`
	// BackoffMax is the longest backoff delay taken ("0s" when none was).
	BackoffMax Duration `json:"backoff_max"`
	// LastError is the last connect or check error, if any.
	LastError string `json:"last_error,omitempty"`
	// PolicyError is the last misbehaviour of a replaceable policy
	// (rebalancer, picker, backoff) that the pool caught and corrected,
	// if any.
	PolicyError string `json:"policy_error,omitempty"`

	// Backends describes each backend's slot set, sorted by name.
	Backends []Backend `json:"backends"`
	// Resolver describes the pool's resolver.
	Resolver Resolver `json:"resolver"`
}

// Slots counts slots by state. Total counts every slot, including states
// without a field of their own.
type Slots struct {
	// Connecting counts slots opening a connection.
	Connecting int `json:"connecting"`
	// Connected counts idle slots: connected and claimable.
	Connected int `json:"connected"`
	// Claimed counts slots whose connection a caller holds.
	Claimed int `json:"claimed"`
	// Recycling counts slots being made ready again after a release.
	Recycling int `json:"recycling"`
	// Checking counts slots under a health check.
	Checking int `json:"checking"`
	// Failed counts slots backing off after a failure.
	Failed int `json:"failed"`
	// Total counts all slots.
	Total int `json:"total"`
}

// ClaimErrors counts failed claims by kind, since the pool started.
type ClaimErrors struct {
	// NoBackends counts claims failed with pool.ErrNoBackends: the
	// resolver listed no backend.
	NoBackends uint64 `json:"no_backends"`
	// NoBackendsOnline counts claims failed with pool.ErrNoBackendsOnline:
	// every backend was dead.
	NoBackendsOnline uint64 `json:"no_backends_online"`
	// AllClaimsUsed counts claims failed with pool.ErrAllClaimsUsed: the
	// claim timeout ended with every slot claimed.
	AllClaimsUsed uint64 `json:"all_claims_used"`
	// Closed counts claims failed with pool.ErrClosed.
	Closed uint64 `json:"closed"`
	// NoIdle counts TryClaim calls that found no idle connection
	// (pool.ErrNoIdle).
	NoIdle uint64 `json:"no_idle"`
	// Shed counts claims shed from an overloaded queue
	// (pool.ErrClaimShed, Policy.TargetClaimDelay).
	Shed uint64 `json:"shed"`
	// QueueFull counts claims refused because the queue was full
	// (pool.ErrQueueFull, Policy.MaxWaiters).
	QueueFull uint64 `json:"queue_full"`
	// CircuitOpen counts claims failed at once while the circuit breaker
	// was open (pool.ErrCircuitOpen, Policy.CircuitBreakAfter).
	CircuitOpen uint64 `json:"circuit_open"`
	// Context counts claims whose own context ended first.
	Context uint64 `json:"context"`
	// Timeouts counts the claims whose deadline passed, whatever their
	// kind above.
	Timeouts uint64 `json:"timeouts"`
}

// Histogram counts durations in fixed buckets: Counts[i] counts values up
// to and including Bounds[i] (and above Bounds[i-1]); the last count, at
// index len(Bounds), counts values above every bound. Bounds are strings
// such as "10ms".
type Histogram struct {
	// Bounds are the buckets' upper bounds, ascending.
	Bounds []Duration `json:"bounds"`
	// Counts has one more element than Bounds.
	Counts []uint64 `json:"counts"`
}

// Backend describes one backend's slot set.
type Backend struct {
	// Name is the backend's name (for a fixed resolver, its address).
	Name string `json:"name"`
	// Addr is the backend's address, host:port.
	Addr string `json:"addr"`
	// State is the slot set machine's state: offline, online, failing
	// (connects to it fail), draining or stopped.
	State string `json:"state"`
	// Dead is true while the backend is considered dead: it keeps one
	// probe slot and takes no claims until a connect succeeds.
	Dead bool `json:"dead"`
	// Wanted is the number of slots the rebalancer wants for it.
	Wanted int `json:"wanted"`
	// Slots counts its slots by state.
	Slots Slots `json:"slots"`
	// Claims counts claims it served.
	Claims uint64 `json:"claims"`
	// Connects counts connects to it started, whether they succeeded or
	// not.
	Connects uint64 `json:"connects"`
	// Failures counts its failed connects, checks, recycles and discards.
	Failures uint64 `json:"failures"`
	// ConsecutiveFailures counts failures since its last success.
	ConsecutiveFailures int `json:"consecutive_failures"`
	// LastError is its last connect or check error, if any; it is cleared
	// when the backend gets its first connection after having none.
	LastError string `json:"last_error,omitempty"`
	// LastErrorAge is how long before the snapshot LastError came.
	LastErrorAge time.Duration `json:"last_error_age,omitempty"`
}

// Resolver describes the pool's resolver.
type Resolver struct {
	// State is the resolver machine's state: resolving, resolved, failed
	// or stopped.
	State string `json:"state"`
	// LastError is its last error, if any.
	LastError string `json:"last_error,omitempty"`
	// LastAnswer is when it last delivered a backend set, by the pool's
	// clock; absent when it never did.
	LastAnswer *time.Time `json:"last_answer,omitempty"`
	// Backends is the last backend set it delivered.
	Backends []ResolvedBackend `json:"backends"`
	// Queries counts its queries (for a fixed resolver, the sets given).
	Queries uint64 `json:"queries"`
	// Errors counts its failed queries.
	Errors uint64 `json:"errors"`
}

// ResolvedBackend is one backend as the resolver listed it.
type ResolvedBackend struct {
	// Name is the backend's name.
	Name string `json:"name"`
	// Addr is its address, host:port.
	Addr string `json:"addr"`
}

// FromStats returns the view of st for a pool served under name, stamped
// with st.At, or with at when st.At is zero.
func FromStats(name string, at time.Time, st pool.Stats) Pool {
	p := Pool{
		Name: name, PoolName: st.Name, At: cmp.Or(st.At, at), State: st.State,
		Slots: slots(st.Slots), Waiters: st.Waiters, OldestClaim: Duration(st.OldestClaim),
		Claims: st.Claims, ClaimErrors: ClaimErrors(st.ClaimErrors),
		Waits:    Histogram{Bounds: make([]Duration, len(st.Waits.Bounds)), Counts: append([]uint64{}, st.Waits.Counts...)},
		Connects: st.Connects, Failures: st.Failures, Checks: st.Checks, Recycles: st.Recycles,
		Discards: st.Discards, Expired: st.Expired, Resets: st.Resets, Closes: st.Closes, ClosesRunning: st.ClosesRunning, Misuse: st.Misuse,
		BackoffMin: Duration(st.BackoffMin), BackoffMax: Duration(st.BackoffMax),
		LastError: st.LastError, PolicyError: st.PolicyError,
		Backends: make([]Backend, 0, len(st.Backends)),
		Resolver: Resolver{
			State: st.Resolver.State, LastError: st.Resolver.LastError,
			Backends: make([]ResolvedBackend, 0, len(st.Resolver.Backends)),
			Queries:  st.Resolver.Queries, Errors: st.Resolver.Errors,
		},
	}
	for i, b := range st.Waits.Bounds {
		p.Waits.Bounds[i] = Duration(b)
	}
	for _, b := range st.Backends {
		p.Backends = append(p.Backends, Backend{
			Name: b.Name, Addr: b.Addr, State: b.State, Dead: b.Dead, Wanted: b.Wanted,
			Slots: slots(b.Slots), Claims: b.Claims, Connects: b.Connects, Failures: b.Failures,
			ConsecutiveFailures: b.ConsecutiveFailures, LastError: b.LastError, LastErrorAge: b.LastErrorAge,
		})
	}
	if t := st.Resolver.LastAnswer; !t.IsZero() {
		t = t.Round(0) // wall clock only: it is compared with other machines' stamps
		p.Resolver.LastAnswer = &t
	}
	for _, b := range st.Resolver.Backends {
		p.Resolver.Backends = append(p.Resolver.Backends, ResolvedBackend{Name: string(b.Name), Addr: b.Addr.String()})
	}
	return p
}

func slots(c pool.SlotCounts) Slots { return Slots(c) }
