package sim

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/fsm"
	"github.com/qorbgo/qorb/internal/simhook"
	"github.com/qorbgo/qorb/pool"
	"github.com/qorbgo/qorb/resolver"
)

// Scenario is one simulation: the backends of a service, the DNS records
// that list them, the clients (pools) that use them and their workload,
// the faults, the duration, and what to expect. It is read from a TOML
// file with [Load] or [Parse]; see docs/sim.md for the format and
// testdata/scenarios/ for examples.
type Scenario struct {
	// Name names the scenario in summaries.
	Name string `toml:"name,omitempty"`
	// Description tells the story, for people.
	Description string `toml:"description,multiline,omitempty"`
	// Duration is how long the workload runs, in virtual time. Then the
	// claims still held are released, and every pool is closed.
	Duration Duration `toml:"duration,omitempty"`
	// Seed is the default seed (the -seed flag and Options.Seed override
	// it). Default 1.
	Seed uint64 `toml:"seed,omitempty"`

	// DNS is the DNS service every client's resolver asks.
	DNS DNSSpec `toml:"dns,omitempty"`
	// Backends are the service's backends.
	Backends []BackendSpec `toml:"backends,omitempty"`
	// Clients are the pools, each with its policy and workload.
	Clients []ClientSpec `toml:"clients,omitempty"`
	// Faults are scheduled in virtual time.
	Faults []Fault `toml:"faults,omitempty"`
	// Expect states what the run must show.
	Expect Expect `toml:"expect,omitempty"`

	file string
	pos  positions // where each field is written in the file; nil for a scenario built in Go
}

// DNSSpec is the simulated DNS service that every client's resolver asks.
//
// By default each client runs a stand-in for resolver/dns that asks the
// service for the listed backends in one query (see docs/sim.md). With
// Resolver set to "dns", each client runs the real resolver/dns against
// simulated DNS servers (Servers) that answer SRV, A and AAAA questions
// from records built from the backends (Records), changing over time
// (Changes); the durations above then configure that resolver.
type DNSSpec struct {
	// Resolver is "stand-in" (the default; also "") or "dns".
	Resolver string `toml:"resolver,omitempty"`
	// TTL of the records: how often resolvers ask again. Default 30s.
	// The durations of DNSSpec are positive when written in a file: zero
	// means the default only in a scenario built in Go. With the real
	// resolver it is the TTL the servers give, in whole seconds (rounded
	// down: "1ms" is a TTL of 0), and the resolver clamps it to
	// [MinInterval, MaxInterval]; a TTL of exactly 0 is written per
	// record, in Records.
	TTL Duration `toml:"ttl,omitempty"`
	// Latency of one answer. Default "1ms..3ms". With the real resolver,
	// the default latency of each server (a TCP exchange takes two).
	Latency Dist `toml:"latency,omitempty,omitzero"`
	// Timeout of one query when the DNS service does not answer (during a
	// dns_outage fault). Default 2s. With the real resolver, its
	// Config.Timeout: how long it waits for one server's answer.
	Timeout Duration `toml:"timeout,omitempty"`
	// RetryMin and RetryMax bound the resolver's backoff after a failed
	// query: RetryMin, doubling up to RetryMax. Defaults 1s and 30s. With
	// the real resolver, its Config.BackoffMin and BackoffMax.
	RetryMin Duration `toml:"retry_min,omitempty"`
	// RetryMax: see RetryMin.
	RetryMax Duration `toml:"retry_max,omitempty"`

	// The fields below are for the real resolver only (Resolver "dns");
	// zero fields take resolver/dns's defaults.

	// MinInterval is the resolver's Config.MinInterval: the floor of the
	// re-query interval whatever the TTL. Default 5s.
	MinInterval Duration `toml:"min_interval,omitempty"`
	// MaxInterval is the resolver's Config.MaxInterval. Default 60s.
	MaxInterval Duration `toml:"max_interval,omitempty"`
	// EmptyRetry is the resolver's Config.EmptyRetry: the first re-query
	// after an answer with no backends. Default 1s.
	EmptyRetry Duration `toml:"empty_retry,omitempty"`
	// Parallel is the resolver's Config.Parallel: servers asked the same
	// question at once. Default 2.
	Parallel int `toml:"parallel,omitempty"`
	// UDPSize is the resolver's Config.UDPSize: the EDNS0 buffer its
	// queries advertise, in bytes. Default 1232.
	UDPSize int `toml:"udp_size,omitempty"`
	// TrustNegative is the resolver's Config.TrustNegative: an answer
	// with no backends (NXDOMAIN, NODATA) empties the backend set instead
	// of keeping the last one.
	TrustNegative bool `toml:"trust_negative,omitempty"`
	// Servers are the DNS servers every resolver asks, in its order of
	// asking. Default one server, "ns1", that answers well.
	Servers []DNSServerSpec `toml:"servers,omitempty"`
	// Records say how the records of some backends look (TTL, CNAME,
	// additional section). Backends no group names take the defaults.
	Records []DNSRecordSpec `toml:"records,omitempty"`
	// Changes change servers and records over time.
	Changes []DNSChange `toml:"changes,omitempty"`
}

// BackendSpec describes one backend, or Count backends named Name-1 … Name-N.
type BackendSpec struct {
	// Name of the backend (or prefix, with Count). Letters, digits, '-',
	// '_' and '.'.
	Name string `toml:"name,omitempty"`
	// Count makes this many backends, Name-1 … Name-Count. Default 1
	// (named Name).
	Count int `toml:"count,omitempty"`
	// ConnectLatency is the time one connect takes. Default "1ms..3ms".
	ConnectLatency Dist `toml:"connect_latency,omitempty,omitzero"`
	// CheckLatency is the time one health check (validate) takes.
	// Default "200us..1ms".
	CheckLatency Dist `toml:"check_latency,omitempty,omitzero"`
	// ConnectErrorRate is the probability that a connect fails while the
	// backend is up. Default 0.
	ConnectErrorRate float64 `toml:"connect_error_rate,omitempty"`
	// MaxConns refuses connects beyond this many open connections (like a
	// database's max_connections). Default 0: no limit.
	MaxConns int `toml:"max_conns,omitempty"`
	// Overloaded marks the connects it refuses at MaxConns as the
	// server's refusal under load (backend.Overloaded, as PostgreSQL's
	// 53300 is in contrib/pg), with RetryAfter as the time it asks its
	// clients to stay away (0: none). Default false: a plain refusal.
	Overloaded bool     `toml:"overloaded,omitempty"`
	RetryAfter Duration `toml:"retry_after,omitempty"`
	// AcceptRate is how many connects per second the backend accepts;
	// beyond it connects queue and take longer. Default 0: no limit.
	AcceptRate float64 `toml:"accept_rate,omitempty"`
	// Down starts the backend stopped (a later start or replace fault
	// brings it up).
	Down bool `toml:"down,omitempty"`
	// Unlisted leaves the backend out of DNS at the start (a later
	// dns_add or replace fault lists it).
	Unlisted bool `toml:"unlisted,omitempty"`
}

// ClientSpec describes one client (one pool), or Count clients named
// Name-001 … with the same policy and workload: a fleet.
type ClientSpec struct {
	// Name of the client (or prefix, with Count). Letters, digits, '-',
	// '_' and '.'.
	Name string `toml:"name,omitempty"`
	// Count makes this many clients. Default 1 (named Name).
	Count int `toml:"count,omitempty"`
	// Start is when the clients start (their pools are created).
	// Default 0.
	Start Duration `toml:"start,omitempty"`
	// Validate gives the connector a Validator: health checks of idle
	// connections, a first check of each new one, and a check of each
	// released one. Default true.
	Validate *bool `toml:"validate,omitempty"`
	// AcquireHook gives the connector an AcquireHook (a session reset
	// before each hand-out) that takes the backend's check latency and
	// fails on a connection the backend lost: a failed hook discards the
	// connection and the claimer waits again at the head of the queue.
	// Default false.
	AcquireHook bool `toml:"acquire_hook,omitempty"`
	// ConnSet makes each client a connection set of this target (package
	// connset: at most one connection per backend, no claims) instead of
	// a pool with claims: it makes no claims, and its workload must be
	// left out. Default 0: a pool.
	ConnSet int `toml:"connset,omitempty"`
	// Policy is the pool's policy; zero fields take the pool's defaults.
	Policy PolicySpec `toml:"policy,omitempty"`
	// Workload is the claims the client makes.
	Workload Workload `toml:"workload,omitempty"`
}

// PolicySpec is a [pool.Policy] in a scenario file. Zero fields take the
// pool's defaults. The pluggable Rebalancer, Picker and Backoff are Go
// values: [Options.Policy] sets them.
type PolicySpec struct {
	SparesWanted        int      `toml:"spares_wanted,omitempty"`         // pool.Policy.SparesWanted
	MaxSlots            int      `toml:"max_slots,omitempty"`             // pool.Policy.MaxSlots
	MaxSlotsPerBackend  int      `toml:"max_slots_per_backend,omitempty"` // pool.Policy.MaxSlotsPerBackend
	ClaimTimeout        Duration `toml:"claim_timeout,omitempty"`         // pool.Policy.ClaimTimeout
	RebalanceInterval   Duration `toml:"rebalance_interval,omitempty"`    // pool.Policy.RebalanceInterval
	DecoherenceInterval Duration `toml:"decoherence_interval,omitempty"`  // pool.Policy.DecoherenceInterval
	BackoffMin          Duration `toml:"backoff_min,omitempty"`           // pool.Policy.BackoffMin
	BackoffMax          Duration `toml:"backoff_max,omitempty"`           // pool.Policy.BackoffMax
	BackoffJitter       Duration `toml:"backoff_jitter,omitempty"`        // pool.Policy.BackoffJitter
	ConnectTimeout      Duration `toml:"connect_timeout,omitempty"`       // pool.Policy.ConnectTimeout
	HealthInterval      Duration `toml:"health_interval,omitempty"`       // pool.Policy.HealthInterval
	HealthTimeout       Duration `toml:"health_timeout,omitempty"`        // pool.Policy.HealthTimeout
	MaxConnLifetime     Duration `toml:"max_conn_lifetime,omitempty"`     // pool.Policy.MaxConnLifetime
	MaxConnIdleTime     Duration `toml:"max_conn_idle_time,omitempty"`    // pool.Policy.MaxConnIdleTime
	DeadAfter           int      `toml:"dead_after,omitempty"`            // pool.Policy.DeadAfter

	MinSlots                int      `toml:"min_slots,omitempty"`                  // pool.Policy.MinSlots
	ShrinkHalfLife          Duration `toml:"shrink_half_life,omitempty"`           // pool.Policy.ShrinkHalfLife
	TargetClaimDelay        Duration `toml:"target_claim_delay,omitempty"`         // pool.Policy.TargetClaimDelay
	ClaimDelayInterval      Duration `toml:"claim_delay_interval,omitempty"`       // pool.Policy.ClaimDelayInterval
	MaxConnectingPerBackend int      `toml:"max_connecting_per_backend,omitempty"` // pool.Policy.MaxConnectingPerBackend
	ConnectRatePerBackend   float64  `toml:"connect_rate_per_backend,omitempty"`   // pool.Policy.ConnectRatePerBackend
	CheckIdleAfter          Duration `toml:"check_idle_after,omitempty"`           // pool.Policy.CheckIdleAfter
	CheckOnRelease          bool     `toml:"check_on_release,omitempty"`           // pool.Policy.CheckOnRelease
	MaxConnLifetimeJitter   Duration `toml:"max_conn_lifetime_jitter,omitempty"`   // pool.Policy.MaxConnLifetimeJitter
	MaxWaiters              int      `toml:"max_waiters,omitempty"`                // pool.Policy.MaxWaiters
	SlowStartWindow         Duration `toml:"slow_start_window,omitempty"`          // pool.Policy.SlowStartWindow
	CircuitBreakAfter       Duration `toml:"circuit_break_after,omitempty"`        // pool.Policy.CircuitBreakAfter
	// Picker is "least-claimed" (the default) or "least-latency".
	Picker string `toml:"picker,omitempty"`
	// IsBadConn names pool.Policy.IsBadConn, which Do asks whether its
	// function's error is the connection's fault (only Do claims,
	// Workload.Do, ask it): "default" (pool.DefaultIsBadConn, also when
	// left out), "never", "any-error", or "read-only" (the default, and
	// an error answer saying the server is read-only: a demoted primary,
	// as pgx users check after a failover).
	IsBadConn string `toml:"is_bad_conn,omitempty"`
	// Outlier ejection (pool.Policy.Ejection): off unless
	// eject_consecutive_errors is set.
	EjectConsecutiveErrors int      `toml:"eject_consecutive_errors,omitempty"`
	EjectBaseTime          Duration `toml:"eject_base_time,omitempty"`
	EjectMaxTime           Duration `toml:"eject_max_time,omitempty"`
	EjectMaxPercent        int      `toml:"eject_max_percent,omitempty"`
}

// Policy returns the pool policy.
func (p PolicySpec) Policy() pool.Policy {
	return pool.Policy{
		SparesWanted: p.SparesWanted, MaxSlots: p.MaxSlots, MaxSlotsPerBackend: p.MaxSlotsPerBackend,
		ClaimTimeout: p.ClaimTimeout.D(), RebalanceInterval: p.RebalanceInterval.D(),
		DecoherenceInterval: p.DecoherenceInterval.D(), BackoffMin: p.BackoffMin.D(), BackoffMax: p.BackoffMax.D(),
		BackoffJitter: p.BackoffJitter.D(), ConnectTimeout: p.ConnectTimeout.D(), HealthInterval: p.HealthInterval.D(),
		HealthTimeout: p.HealthTimeout.D(), MaxConnLifetime: p.MaxConnLifetime.D(), MaxConnIdleTime: p.MaxConnIdleTime.D(),
		DeadAfter: p.DeadAfter, MinSlots: p.MinSlots, ShrinkHalfLife: p.ShrinkHalfLife.D(),
		TargetClaimDelay: p.TargetClaimDelay.D(), ClaimDelayInterval: p.ClaimDelayInterval.D(),
		MaxConnectingPerBackend: p.MaxConnectingPerBackend, ConnectRatePerBackend: p.ConnectRatePerBackend,
		CheckIdleAfter: p.CheckIdleAfter.D(), CheckOnRelease: p.CheckOnRelease, MaxConnLifetimeJitter: p.MaxConnLifetimeJitter.D(),
		MaxWaiters: p.MaxWaiters, SlowStartWindow: p.SlowStartWindow.D(), CircuitBreakAfter: p.CircuitBreakAfter.D(),
		Picker: pickerNamed(p.Picker), IsBadConn: isBadConnNamed(p.IsBadConn),
		Ejection: pool.Ejection{ConsecutiveErrors: p.EjectConsecutiveErrors, BaseTime: p.EjectBaseTime.D(),
			MaxTime: p.EjectMaxTime.D(), MaxEjectedPercent: p.EjectMaxPercent},
	}
}

// pickerName returns the name PolicySpec gives picker ("" for the default
// or one it cannot name).
func pickerName(picker pool.Picker) string {
	if _, ok := picker.(pool.LeastLatency); ok {
		return "least-latency"
	}
	return ""
}

// pickerNamed returns the picker a PolicySpec names (nil: the default).
func pickerNamed(name string) pool.Picker {
	if name == "least-latency" {
		return pool.LeastLatency{}
	}
	return nil
}

// PolicySpecOf returns the numbers of p as a PolicySpec (its Rebalancer,
// Backoff and IsBadConn are Go values and are left out, and so is a
// Picker other than LeastLatency).
func PolicySpecOf(p pool.Policy) PolicySpec {
	return PolicySpec{
		SparesWanted: p.SparesWanted, MaxSlots: p.MaxSlots, MaxSlotsPerBackend: p.MaxSlotsPerBackend,
		ClaimTimeout: Duration(p.ClaimTimeout), RebalanceInterval: Duration(p.RebalanceInterval),
		DecoherenceInterval: Duration(p.DecoherenceInterval), BackoffMin: Duration(p.BackoffMin), BackoffMax: Duration(p.BackoffMax),
		BackoffJitter: Duration(p.BackoffJitter), ConnectTimeout: Duration(p.ConnectTimeout), HealthInterval: Duration(p.HealthInterval),
		HealthTimeout: Duration(p.HealthTimeout), MaxConnLifetime: Duration(p.MaxConnLifetime), MaxConnIdleTime: Duration(p.MaxConnIdleTime),
		DeadAfter: p.DeadAfter, MinSlots: p.MinSlots, ShrinkHalfLife: Duration(p.ShrinkHalfLife),
		TargetClaimDelay: Duration(p.TargetClaimDelay), ClaimDelayInterval: Duration(p.ClaimDelayInterval),
		MaxConnectingPerBackend: p.MaxConnectingPerBackend, ConnectRatePerBackend: p.ConnectRatePerBackend,
		CheckIdleAfter: Duration(p.CheckIdleAfter), CheckOnRelease: p.CheckOnRelease, MaxConnLifetimeJitter: Duration(p.MaxConnLifetimeJitter),
		MaxWaiters: p.MaxWaiters, SlowStartWindow: Duration(p.SlowStartWindow), CircuitBreakAfter: Duration(p.CircuitBreakAfter),
		Picker:                 pickerName(p.Picker),
		EjectConsecutiveErrors: p.Ejection.ConsecutiveErrors, EjectBaseTime: Duration(p.Ejection.BaseTime),
		EjectMaxTime: Duration(p.Ejection.MaxTime), EjectMaxPercent: p.Ejection.MaxEjectedPercent,
	}
}

// Workload is one client's claims: Poisson arrivals at Rate per second,
// each holding its connection for a time drawn from Hold.
type Workload struct {
	// Rate is claims per second (Poisson arrivals). 0: no claims.
	Rate float64 `toml:"rate,omitempty"`
	// Hold is how long a claim keeps its connection. Default "5ms".
	Hold Dist `toml:"hold,omitempty,omitzero"`
	// Timeout bounds each claim's wait. Default: the policy's ClaimTimeout.
	Timeout Duration `toml:"timeout,omitempty"`
	// DiscardRate is the probability that a claimer finds its connection
	// bad and discards it after a request that went well. Connections
	// whose request failed are always discarded. Default 0.
	DiscardRate float64 `toml:"discard_rate,omitempty"`
	// IOTimeout is the claimer's own I/O timeout: a request that gets no
	// answer (a hung or partitioned backend) or would take longer (a slow
	// one) fails after this long, and the claimer discards the
	// connection. Default 1s.
	IOTimeout Duration `toml:"io_timeout,omitempty"`
	// TryClaim makes each claim a TryClaim: served at once from an idle
	// connection, or failed at once (pool.ErrNoIdle, counted as no_idle),
	// never queued. Default false.
	TryClaim bool `toml:"try_claim,omitempty"`
	// Do makes each claim a pool.DoHandle: after the request, reported
	// as plain claims report theirs (Handle.Report), its outcome, as the
	// error a client library returns (a reset, a timeout, an error
	// answer; see request.go), goes to Do's own end of the claim, which
	// discards the connection when the policy's IsBadConn blames the
	// error on it and releases it otherwise. A claimer that finds a good
	// connection bad (DiscardRate) returns an error wrapping
	// pool.ErrBadConn. Not with TryClaim. Default false.
	Do bool `toml:"do,omitempty"`
}

// Fault kinds. A fault starts at At and, when For is set, ends For later.
const (
	// FaultCrash stops Backends: open connections break, connects are
	// refused. With For, the backends restart at the end.
	FaultCrash = "crash"
	// FaultStart starts Backends that were down.
	FaultStart = "start"
	// FaultHang makes connects to Backends hang until the pool gives up,
	// and requests until the claimer's I/O timeout. With Probability,
	// each connect and request hangs with that probability.
	FaultHang = "hang"
	// FaultPartition cuts Backends off: connects and health checks hang,
	// and requests hang until the claimer's I/O timeout. With Clients,
	// only those clients are cut off from Backends. Direction says which
	// way packets are lost: both ways (the default), only to the backends,
	// or only from them. The pools see the same either way; the servers
	// do not: while packets to a backend are lost, a connection a client
	// closes stays open on the server (its FIN is lost) until the
	// partition ends, and counts against the backend's max_conns.
	FaultPartition = "partition"
	// FaultSlow multiplies the connect, check and request latency of
	// Backends by Factor. With Ramp, the factor grows from 1 to Factor
	// over Ramp, in twenty steps.
	FaultSlow = "slow"
	// FaultCheckFail makes health checks of connections to Backends fail,
	// and requests answer with an error (the backend accepts connects but
	// serves errors). With Probability, each check and request fails with
	// that probability.
	FaultCheckFail = "check_fail"
	// FaultErrors makes Backends answer requests with errors while their
	// connects and health checks succeed (an overloaded or broken
	// application behind a healthy server): the pool's health checks see
	// nothing, and only its claimers' reports (Handle.Report) do. With
	// Probability, each request fails with that probability.
	FaultErrors = "errors"
	// FaultDemote fails over Backends behind their addresses (a primary
	// demoted behind a virtual IP or a proxy): the connections opened
	// before it answer every request with an error (read-only), those
	// opened after work. With For, the old connections work again after.
	FaultDemote = "demote"
	// FaultReset calls the pool's Reset on Clients (after a failover):
	// every connection is replaced, idle ones at once, claimed ones when
	// released. It is instant: it takes no for.
	FaultReset = "reset"
	// FaultKill kills Clients without closing their connections (a host
	// that vanished: no FIN reaches the servers): the client side is
	// gone at once, but each backend keeps counting the connections it
	// held, against its max_conns, for Linger (default 2h, TCP keepalive's
	// first probe), unless it restarts meanwhile. With Down, the client
	// starts a new pool Down later.
	FaultKill = "kill"
	// FaultDNSOutage makes every DNS query time out.
	FaultDNSOutage = "dns_outage"
	// FaultDNSAdd lists Backends in DNS.
	FaultDNSAdd = "dns_add"
	// FaultDNSRemove removes Backends from DNS.
	FaultDNSRemove = "dns_remove"
	// FaultReplace is one step of a deploy: the backends in With start and
	// are listed in DNS, the Backends are removed from DNS, and after
	// Drain they stop.
	FaultReplace = "replace"
	// FaultRestart restarts Clients: each pool is closed and, after Down,
	// created anew, spread at random over Spread.
	FaultRestart = "restart"
	// FaultLoad multiplies the claim rate of Clients by Factor.
	FaultLoad = "load"
	// FaultClose shuts Clients down gracefully, spread at random over
	// Spread: each client stops issuing claims and its pool's Close runs
	// as a service's shutdown calls it: waiting claims fail with
	// ErrClosed, idle connections close, claims in flight finish their
	// hold and release, and Close returns once the last connection is
	// closed, or forces what is left after Drain. With Down, the client
	// starts a new pool Down after its Close returned; without it, the
	// client stays down to the end.
	FaultClose = "close"
	// FaultPause pauses Clients for For (required), as a long GC pause or
	// a VM stall stops a process: nothing of the client runs — its pools'
	// timers do not fire, the completions of its I/O are not delivered,
	// its claims that arrive are not issued, the claims it holds are not
	// released — while the backends, DNS and the other clients go on. At
	// its resume everything that came due runs, in the order it came due:
	// claims are issued then with their arrival time (their waits count
	// from it), and a queued claim whose deadline passed fails then, late.
	// Faults that act on a paused client's pool (reset, restart, kill,
	// close) take effect at its resume.
	FaultPause = "pause"
)

var faultKinds = []string{FaultCrash, FaultStart, FaultHang, FaultPartition, FaultSlow, FaultCheckFail, FaultErrors, FaultDemote, FaultReset, FaultKill,
	FaultDNSOutage, FaultDNSAdd, FaultDNSRemove, FaultReplace, FaultRestart, FaultLoad, FaultClose, FaultPause}

// hasFault reports whether sc has a fault of the kind.
func (sc *Scenario) hasFault(kind string) bool {
	for _, f := range sc.Faults {
		if f.Kind == kind {
			return true
		}
	}
	return false
}

// Fault is one scheduled fault. Backends and Clients are names or glob
// patterns (path.Match: "db-*"); an empty Clients means every client.
// A fault ends within the run (its End, with the defaults, is at most
// the scenario's Duration), but for a close, whose closes begin within
// it and may be forced at the end.
type Fault struct {
	At       Duration `toml:"at,omitempty"`       // when the fault starts
	For      Duration `toml:"for,omitempty"`      // how long it lasts, at most to the end of the run; 0: to the end (or instant)
	Kind     string   `toml:"kind,omitempty"`     // one of the Fault… constants
	Backends []string `toml:"backends,omitempty"` // the backends it hits, names or globs
	Clients  []string `toml:"clients,omitempty"`  // the clients of restart, load, close, partition, reset, kill and pause; empty: all
	// Factor is the latency multiplier of slow, and the rate multiplier
	// of load.
	Factor float64 `toml:"factor,omitempty"`
	// With lists the new backends of replace, one for each of Backends.
	With []string `toml:"with,omitempty"`
	// Drain is how long replace keeps old backends running after
	// removing them from DNS, and how long close waits for the claims in
	// flight before it closes their connections under them. Default 30s.
	Drain Duration `toml:"drain,omitempty"`
	// Spread spreads the restarts of restart, and the closes of close,
	// over this window. Default 0: all at once.
	Spread Duration `toml:"spread,omitempty"`
	// Down is how long a restarted client stays down (default 1s); for
	// close, how long after its Close returned the client starts a new
	// pool (default 0: it stays down).
	Down Duration `toml:"down,omitempty"`
	// Linger is how long the servers keep a killed client's connections
	// (kill faults); default 2h.
	Linger Duration `toml:"linger,omitempty"`
	// Probability makes hang and check_fail hit each connect, check or
	// request with this probability (0 to 1) instead of all of them.
	// Default 0: all of them.
	Probability float64 `toml:"probability,omitempty"`
	// Ramp makes a slow fault's factor grow from 1 to Factor over this
	// long, in twenty equal steps; it then stays at Factor. At most For.
	Ramp Duration `toml:"ramp,omitempty"`
	// Direction is the way a partition loses packets: "both" (the
	// default), "to_backends" or "from_backends".
	Direction string `toml:"direction,omitempty"`
}

// Directions of a partition fault.
const (
	DirectionBoth         = "both"
	DirectionToBackends   = "to_backends"
	DirectionFromBackends = "from_backends"
)

// losesToBackends reports whether a partition fault loses the packets
// clients send to its backends.
func (f Fault) losesToBackends() bool { return f.Direction != DirectionFromBackends }

// End is when the fault stops acting: At+For, or At for a fault without
// a duration (and At+Drain for replace, At+Spread+Down for restart, At+Down
// for kill: when its clients are back). For close it is the latest end,
// At+Spread+Drain+Down: a run records when the last of its clients is
// back (or its Close returned, without Down).
func (f Fault) End() time.Duration {
	switch f.Kind {
	case FaultKill:
		return f.At.D() + f.Down.D()
	case FaultReplace:
		return f.At.D() + f.Drain.D()
	case FaultRestart:
		return f.At.D() + f.Spread.D() + f.Down.D()
	case FaultClose:
		return f.At.D() + f.Spread.D() + f.Drain.D() + f.Down.D()
	}
	return f.At.D() + f.For.D()
}

// Expect states what a run must show. Unset fields are not checked.
type Expect struct {
	// RecoverWithin: after the last fault ends, every client is back to
	// its target (running; every healthy listed backend online; at least
	// min(spares, max slots) connections) within this bound.
	RecoverWithin Duration `toml:"recover_within,omitempty"`
	// MaxClaimErrors bounds failed claims, of every kind except closed
	// (claims cut short by a restart or the end of the run).
	MaxClaimErrors *int `toml:"max_claim_errors,omitempty"`
	// MaxErrorRatio bounds failed claims (as for MaxClaimErrors) over all
	// claims.
	MaxErrorRatio *float64 `toml:"max_error_ratio,omitempty"`
	// MaxWaitP99 bounds the 99th percentile of claim waits.
	MaxWaitP99 Duration `toml:"max_wait_p99,omitempty"`
	// MaxWait bounds the longest claim wait.
	MaxWait Duration `toml:"max_wait,omitempty"`
	// MaxFailWait bounds how long a failed claim waited before it failed
	// (fail fast: a claim that cannot be served should not wait out its
	// timeout when every backend is down).
	MaxFailWait Duration `toml:"max_fail_wait,omitempty"`
	// MinClaims is the least number of served claims.
	MinClaims int `toml:"min_claims,omitempty"`
	// MaxConnects bounds the connects attempted by all clients together.
	MaxConnects int `toml:"max_connects,omitempty"`
	// MaxConnectRate bounds the connects any one backend sees in one
	// second of the virtual clock, from all clients together.
	MaxConnectRate int `toml:"max_connect_rate,omitempty"`
	// MaxUpConnectRate bounds the connects any one backend sees in one
	// second while it is up, from all clients together, from the first
	// fault's start on (without faults, from the start): the sessions a
	// fault makes it set up again (a connect to a crashed backend's
	// closed port is refused by its host at little cost; one to a
	// backend that is up, and perhaps just back, costs it a session).
	MaxUpConnectRate int `toml:"max_up_connect_rate,omitempty"`
	// MaxCutClaims bounds the claims whose connection a pool's Close
	// closed while they held it (a close forced at its drain deadline, a
	// restart, the end of the run).
	MaxCutClaims *int `toml:"max_cut_claims,omitempty"`
	// MaxForcedCloses bounds the closes (close faults) that reached their
	// drain deadline, or the end of the run, before the pool was quiet.
	MaxForcedCloses *int `toml:"max_forced_closes,omitempty"`
	// MaxCloseTime bounds how long each close (close fault) took, from
	// the call of Close to its return.
	MaxCloseTime Duration `toml:"max_close_time,omitempty"`
	// MaxDNSRate bounds the DNS exchanges each client sent per second,
	// over the run's duration (the busiest client's).
	MaxDNSRate *float64 `toml:"max_dns_rate,omitempty"`
	// MaxFailedRequests bounds the requests that failed on a served
	// claim: reset by a backend that went down, timed out (see
	// Workload.IOTimeout), or answered with an error.
	MaxFailedRequests *int `toml:"max_failed_requests,omitempty"`
	// MaxDiscards bounds the connections claimers discarded (after a
	// failed request, or by Workload.DiscardRate).
	MaxDiscards *int `toml:"max_discards,omitempty"`
	// MaxClaimShare bounds the share of the fleet's served claims that
	// went to some backends.
	MaxClaimShare *ClaimShare `toml:"max_claim_share,omitempty"`
}

// ClaimShare is a share of the served claims: those served from the
// backends Backend names (a name or a glob), over all.
type ClaimShare struct {
	Backend string  `toml:"backend,omitempty"` // a backend's name, or a glob ("db-*")
	Share   float64 `toml:"share"`             // 0 to 1
}

// Load reads and checks a scenario file.
func Load(file string) (*Scenario, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return Parse(file, data)
}

// Parse reads and checks a scenario; file names it in errors.
func Parse(file string, data []byte) (*Scenario, error) {
	sc := &Scenario{}
	pos, err := decodeScenario(file, data, sc)
	if err != nil {
		return nil, err
	}
	sc.file, sc.pos = file, pos
	if err := sc.check(); err != nil {
		return nil, err
	}
	return sc, nil
}

// Marshal writes the scenario in the file format, leaving out zero
// fields; [Parse] reads it back to an equal scenario.
func (sc *Scenario) Marshal() ([]byte, error) { return marshalScenario(sc) }

// errAt is a checking error at the line of field path.
func (sc *Scenario) errAt(path, format string, a ...any) error {
	return &fieldError{file: sc.fileName(), line: sc.pos.line(path), field: path, msg: fmt.Sprintf(format, a...)}
}

func (sc *Scenario) fileName() string {
	if sc.file == "" {
		return "scenario"
	}
	return sc.file
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// BackendNames lists the backends' names, Count expanded, in file order.
func (sc *Scenario) BackendNames() []string {
	var out []string
	for _, b := range sc.Backends {
		out = append(out, expand(b.Name, b.Count, "%s-%d")...)
	}
	return out
}

// ClientNames lists the clients' names, Count expanded, in file order.
func (sc *Scenario) ClientNames() []string {
	var out []string
	for _, c := range sc.Clients {
		out = append(out, expand(c.Name, c.Count, "%s-%03d")...)
	}
	return out
}

func expand(name string, count int, format string) []string {
	if count <= 1 {
		return []string{name}
	}
	out := make([]string, count)
	for i := range out {
		out[i] = fmt.Sprintf(format, name, i+1)
	}
	return out
}

// check validates the scenario and reports the first problem with its
// file, line and field.
func (sc *Scenario) check() error {
	var errs []error
	bad := func(path, format string, a ...any) { errs = append(errs, sc.errAt(path, format, a...)) }
	// finite reports whether v is a number, and says so when it is not
	// (nan and inf are TOML floats).
	finite := func(path string, v float64) bool {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			bad(path, "%v: want a finite number", v)
			return false
		}
		return true
	}
	if sc.Duration <= 0 {
		bad("duration", "must be set and positive, such as \"10m\"")
	}
	// Zero durations of the DNS service mean "the default" in a scenario
	// built in Go; written in a file, zero is a mistake (a TTL of 0s
	// would have meant 30s).
	for _, d := range []struct {
		key string
		v   Duration
		def time.Duration
	}{{"ttl", sc.DNS.TTL, defaultTTL}, {"timeout", sc.DNS.Timeout, defaultDNSTimeout},
		{"retry_min", sc.DNS.RetryMin, defaultRetryMin}, {"retry_max", sc.DNS.RetryMax, defaultRetryMax}} {
		if d.v == 0 && sc.pos.written("dns."+d.key) {
			bad("dns."+d.key, "%v: want a positive duration (leave %s out for the default, %v)%s", d.v, d.key, d.def, sc.DNS.zeroHint(d.key))
		}
	}
	if len(sc.Backends) == 0 {
		bad("backends", "at least one [[backends]] is needed")
	}
	if len(sc.Clients) == 0 {
		bad("clients", "at least one [[clients]] is needed")
	}
	if !sc.checkSizes(bad) {
		return errors.Join(errs...) // too many to expand their names
	}
	backends := map[string]bool{}
	for i, b := range sc.Backends {
		p := fmt.Sprintf("backends[%d]", i)
		if !validName(b.Name) {
			bad(p+".name", "%q: want letters, digits, '-', '_' or '.'", b.Name)
		}
		if b.Count < 0 {
			bad(p+".count", "%d: want 1 or more (leave count out for one backend)", b.Count)
		}
		if finite(p+".connect_error_rate", b.ConnectErrorRate) && (b.ConnectErrorRate < 0 || b.ConnectErrorRate > 1) {
			bad(p+".connect_error_rate", "%v: want a probability, 0 to 1", b.ConnectErrorRate)
		}
		if b.MaxConns < 0 {
			bad(p+".max_conns", "must not be negative")
		}
		if finite(p+".accept_rate", b.AcceptRate) && b.AcceptRate < 0 {
			bad(p+".accept_rate", "must not be negative")
		}
		for _, n := range expand(b.Name, b.Count, "%s-%d") {
			if backends[n] {
				bad(p+".name", "backend %s defined twice", n)
			}
			backends[n] = true
		}
	}
	clients := map[string]bool{}
	for i, c := range sc.Clients {
		p := fmt.Sprintf("clients[%d]", i)
		if !validName(c.Name) {
			bad(p+".name", "%q: want letters, digits, '-', '_' or '.'", c.Name)
		}
		if c.Count < 0 {
			bad(p+".count", "%d: want 1 or more (leave count out for one client)", c.Count)
		}
		if finite(p+".workload.rate", c.Workload.Rate) && c.Workload.Rate < 0 {
			bad(p+".workload.rate", "must not be negative")
		}
		if c.Workload.IOTimeout < 0 || c.Workload.IOTimeout == 0 && sc.pos.written(p+".workload.io_timeout") {
			bad(p+".workload.io_timeout", "%v: want a positive duration (leave io_timeout out for the default, %v)", c.Workload.IOTimeout, defaultIOTimeout)
		}
		if finite(p+".workload.discard_rate", c.Workload.DiscardRate) && (c.Workload.DiscardRate < 0 || c.Workload.DiscardRate > 1) {
			bad(p+".workload.discard_rate", "%v: want a probability, 0 to 1", c.Workload.DiscardRate)
		}
		if c.ConnSet < 0 || c.ConnSet > 1000 {
			bad(p+".connset", "%d: want a target of 1 to 1000 connections", c.ConnSet)
		}
		if c.ConnSet > 0 && (c.Workload.Rate != 0 || c.Workload.Do || c.AcquireHook) {
			bad(p+".connset", "a connection set makes no claims: leave out its workload and acquire_hook")
		}
		switch c.Policy.Picker {
		case "", "least-claimed", "least-latency":
		default:
			bad(p+".policy.picker", "%q: want least-claimed or least-latency", c.Policy.Picker)
		}
		switch {
		case !containsStr(isBadConnNames, c.Policy.IsBadConn):
			bad(p+".policy.is_bad_conn", "%q: want %s", c.Policy.IsBadConn, strings.Join(isBadConnNames[1:], ", "))
		case c.Policy.IsBadConn != "" && !c.Workload.Do:
			bad(p+".policy.is_bad_conn", "only Do asks it: set workload.do = true")
		}
		if c.Workload.Do && c.Workload.TryClaim {
			bad(p+".workload.do", "Do claims with Claim: not with try_claim")
		}
		pol := c.Policy.Policy()
		if _, err := validatePolicy(pol); err != nil {
			bad(p+".policy", "%v", err)
		}
		for _, n := range expand(c.Name, c.Count, "%s-%03d") {
			if clients[n] {
				bad(p+".name", "client %s defined twice", n)
			}
			clients[n] = true
		}
	}
	for i, f := range sc.Faults {
		p := fmt.Sprintf("faults[%d]", i)
		if !containsStr(faultKinds, f.Kind) {
			bad(p+".kind", "%q: want one of %s", f.Kind, strings.Join(faultKinds, ", "))
			continue
		}
		if f.At > sc.Duration {
			bad(p+".at", "%v is after the end of the run (%v)", f.At, sc.Duration)
		} else if field, msg := f.pastEnd(sc.Duration); field != "" {
			bad(p+"."+field, "%s", msg)
		}
		finite(p+".factor", f.Factor)
		takesClients := f.Kind == FaultRestart || f.Kind == FaultLoad || f.Kind == FaultClose || f.Kind == FaultPartition || f.Kind == FaultReset || f.Kind == FaultKill || f.Kind == FaultPause
		if f.Kind == FaultPause && f.For <= 0 {
			bad(p+".for", "a pause needs for: how long the clients stay paused, such as \"2s\"")
		}
		needBackends := f.Kind != FaultDNSOutage && (!takesClients || f.Kind == FaultPartition)
		if f.Kind == FaultReset && f.For > 0 {
			bad(p+".for", "a reset is instant: it takes no for")
		}
		if needBackends && len(f.Backends) == 0 {
			bad(p+".backends", "a %s fault needs backends", f.Kind)
		}
		if !needBackends && len(f.Backends) > 0 {
			bad(p+".backends", "a %s fault takes no backends", f.Kind)
		}
		for j, pat := range f.Backends {
			if n := matchCount(pat, backends); n == 0 {
				bad(fmt.Sprintf("%s.backends[%d]", p, j), "%q matches no backend", pat)
			}
		}
		if !takesClients && len(f.Clients) > 0 {
			bad(p+".clients", "a %s fault takes no clients", f.Kind)
		}
		for j, pat := range f.Clients {
			if n := matchCount(pat, clients); n == 0 {
				bad(fmt.Sprintf("%s.clients[%d]", p, j), "%q matches no client", pat)
			}
		}
		switch f.Kind {
		case FaultSlow, FaultLoad:
			if f.Factor <= 0 {
				bad(p+".factor", "a %s fault needs a positive factor", f.Kind)
			}
		case FaultReplace:
			if len(f.With) != len(f.Backends) {
				bad(p+".with", "replace needs one new backend in with for each of backends (%d)", len(f.Backends))
			}
			for j, n := range f.With {
				if !backends[n] {
					bad(fmt.Sprintf("%s.with[%d]", p, j), "%q is no backend", n)
				}
			}
		}
		if f.Factor != 0 && f.Kind != FaultSlow && f.Kind != FaultLoad {
			bad(p+".factor", "only slow and load faults take a factor")
		}
		if len(f.With) > 0 && f.Kind != FaultReplace {
			bad(p+".with", "only replace faults take with")
		}
		if f.For > 0 && (f.Kind == FaultStart || f.Kind == FaultDNSAdd || f.Kind == FaultDNSRemove || f.Kind == FaultReplace || f.Kind == FaultRestart) {
			bad(p+".for", "a %s fault has no duration", f.Kind)
		}
		if f.For > 0 && f.Kind == FaultClose {
			bad(p+".for", "a close fault has no duration: down starts a new pool after Close returned")
		}
		if f.Kind != FaultRestart && f.Kind != FaultClose && f.Spread > 0 {
			bad(p+".spread", "only restart and close faults take spread")
		}
		if f.Kind != FaultKill && f.Linger > 0 {
			bad(p+".linger", "only kill faults take linger")
		}
		if f.Kind == FaultKill && f.For > 0 {
			bad(p+".for", "a kill is instant: it takes no for (down says when the client comes back)")
		}
		if f.Kind != FaultRestart && f.Kind != FaultClose && f.Kind != FaultKill && f.Down > 0 {
			bad(p+".down", "only restart, close and kill faults take down")
		}
		if f.Kind != FaultReplace && f.Kind != FaultClose && f.Drain > 0 {
			bad(p+".drain", "only replace and close faults take drain")
		}
		if f.Probability != 0 || sc.pos.written(p+".probability") {
			switch {
			case f.Kind != FaultHang && f.Kind != FaultCheckFail && f.Kind != FaultErrors:
				bad(p+".probability", "only hang, check_fail and errors faults take a probability")
			case !finite(p+".probability", f.Probability):
			case f.Probability <= 0 || f.Probability > 1:
				bad(p+".probability", "%v: want a probability above 0, at most 1 (leave probability out for every call)", f.Probability)
			}
		}
		switch f.Direction {
		case "", DirectionBoth, DirectionToBackends, DirectionFromBackends:
			if f.Direction != "" && f.Kind != FaultPartition {
				bad(p+".direction", "only partition faults take a direction")
			}
		default:
			bad(p+".direction", "%q: want both, to_backends or from_backends", f.Direction)
		}
		if f.Ramp > 0 {
			switch {
			case f.Kind != FaultSlow:
				bad(p+".ramp", "only slow faults take a ramp")
			case f.For > 0 && f.Ramp > f.For:
				bad(p+".ramp", "the ramp (%v) is longer than the fault (for %v)", f.Ramp, f.For)
			case f.For == 0 && f.At+f.Ramp > sc.Duration:
				bad(p+".ramp", "the ramp lasts past the end of the run: at %v + ramp %v ends at %v, after %v", f.At, f.Ramp, f.At+f.Ramp, sc.Duration)
			}
		}
	}
	sc.checkDNS(bad, finite, backends)
	sc.checkWrittenZeros(bad)
	sc.checkBounds(bad)
	if r := sc.Expect.MaxErrorRatio; r != nil && finite("expect.max_error_ratio", *r) && (*r < 0 || *r > 1) {
		bad("expect.max_error_ratio", "%v: want 0 to 1", *r)
	}
	if n := sc.Expect.MaxClaimErrors; n != nil && *n < 0 {
		bad("expect.max_claim_errors", "must not be negative")
	}
	if n := sc.Expect.MaxCutClaims; n != nil && *n < 0 {
		bad("expect.max_cut_claims", "must not be negative")
	}
	if n := sc.Expect.MaxForcedCloses; n != nil && *n < 0 {
		bad("expect.max_forced_closes", "must not be negative")
	}
	if r := sc.Expect.MaxDNSRate; r != nil && finite("expect.max_dns_rate", *r) && *r < 0 {
		bad("expect.max_dns_rate", "must not be negative")
	}
	if n := sc.Expect.MaxFailedRequests; n != nil && *n < 0 {
		bad("expect.max_failed_requests", "must not be negative")
	}
	if n := sc.Expect.MaxDiscards; n != nil && *n < 0 {
		bad("expect.max_discards", "must not be negative")
	}
	if cs := sc.Expect.MaxClaimShare; cs != nil {
		if cs.Backend == "" {
			bad("expect.max_claim_share.backend", "want a backend's name or a glob")
		} else if matchCount(cs.Backend, backends) == 0 {
			bad("expect.max_claim_share.backend", "%q matches no backend", cs.Backend)
		}
		if finite("expect.max_claim_share.share", cs.Share) && (cs.Share < 0 || cs.Share > 1) {
			bad("expect.max_claim_share.share", "%v: want 0 to 1", cs.Share)
		}
	}
	return errors.Join(errs...)
}

// checkWrittenZeros refuses a zero written in the file where the
// simulator or the pool reads zero as "the default": written, it would
// silently mean something else than it says (a drain of "0s" would
// have meant 30s, max_slots = 0 sixteen slots).
func (sc *Scenario) checkWrittenZeros(bad func(path, format string, a ...any)) {
	zero := func(path string, isZero bool, hint string, a ...any) {
		if isZero && sc.pos.written(path) {
			bad(path, "zero here would mean "+hint, a...)
		}
	}
	zero("seed", sc.Seed == 0, "the default seed, 1: leave seed out, or write a positive seed")
	zero("dns.latency", sc.DNS.Latency.IsZero(), "the default latency, 1ms..3ms: leave latency out for it, or write \"1ns\" for answers at once")
	for i, b := range sc.Backends {
		p := fmt.Sprintf("backends[%d].", i)
		zero(p+"connect_latency", b.ConnectLatency.IsZero(), "the default, 1ms..3ms: leave connect_latency out for it, or write \"1ns\" for connects at once")
		zero(p+"check_latency", b.CheckLatency.IsZero(), "the default, 200µs..1ms: leave check_latency out for it, or write \"1ns\" for checks at once")
	}
	for i, c := range sc.Clients {
		p := fmt.Sprintf("clients[%d].", i)
		zero(p+"workload.hold", c.Workload.Hold.IsZero(), "the default hold, 5ms: leave hold out for it, or write \"1ns\" for a release at once")
		zero(p+"workload.timeout", c.Workload.Timeout == 0, "the policy's claim_timeout: leave timeout out for it")
		sc.checkPolicyZeros(p+"policy.", c.Policy, bad)
	}
	for i, f := range sc.Faults {
		p := fmt.Sprintf("faults[%d].", i)
		switch f.Kind {
		case FaultStart, FaultDNSAdd, FaultDNSRemove, FaultReplace, FaultRestart, FaultClose, FaultReset, FaultKill:
		default:
			zero(p+"for", f.For == 0, "a fault that lasts to the end of the run: leave for out for that")
		}
		if f.Kind == FaultReplace || f.Kind == FaultClose {
			zero(p+"drain", f.Drain == 0, "the default drain, %v: leave drain out for it, or write \"1ns\" to force at once", defaultDrain)
		}
		switch f.Kind {
		case FaultRestart:
			zero(p+"down", f.Down == 0, "the default down, %v: leave down out for it, or write \"1ns\" for a new pool at once", defaultRestartDown)
		case FaultClose, FaultKill:
			zero(p+"down", f.Down == 0, "a client that does not come back: leave down out for that, or write \"1ns\" for a new pool at once")
		}
		if f.Kind == FaultKill {
			zero(p+"linger", f.Linger == 0, "the default linger, %v: leave linger out for it, or write \"1ns\" for servers that close at once", defaultLinger)
		}
	}
}

// checkPolicyZeros refuses a policy field written as zero where the pool
// reads zero as a default that is not zero.
func (sc *Scenario) checkPolicyZeros(prefix string, spec PolicySpec, bad func(path, format string, a ...any)) {
	eff, err := validatePolicy(spec.Policy())
	if err != nil {
		return // reported already
	}
	effective := reflect.ValueOf(PolicySpecOf(eff))
	v := reflect.ValueOf(spec)
	t := v.Type()
	for i := range t.NumField() {
		key, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ",")
		if key == "" || !v.Field(i).IsZero() || !sc.pos.written(prefix+key) {
			continue
		}
		if d := effective.Field(i); !d.IsZero() {
			bad(prefix+key, "zero here would mean the pool's default, %v: leave %s out for it", d.Interface(), key)
		}
	}
}

// pastEnd says which field makes f last past the end of a run of the
// given duration, and how, or returns "". A close fault ends when its
// clients are back, which no field bounds: its closes must begin within
// the run (its drain is a deadline, and a close still running at the end
// is forced then).
func (f Fault) pastEnd(end Duration) (field, msg string) {
	type part struct {
		key string
		d   Duration
		def bool // the default, not written
	}
	var parts []part
	switch f.Kind {
	case FaultReplace:
		parts = []part{{"drain", f.Drain, false}}
		if f.Drain == 0 {
			parts[0] = part{"drain", Duration(defaultDrain), true}
		}
	case FaultRestart:
		parts = []part{{"spread", f.Spread, false}, {"down", f.Down, false}}
		if f.Down == 0 {
			parts[1] = part{"down", Duration(defaultRestartDown), true}
		}
	case FaultClose:
		parts = []part{{"spread", f.Spread, false}}
	case FaultKill:
		parts = []part{{"down", f.Down, false}}
	default:
		parts = []part{{"for", f.For, false}}
	}
	at := f.At
	var b strings.Builder
	fmt.Fprintf(&b, "at %v", f.At)
	for _, pt := range parts {
		at += pt.d
		fmt.Fprintf(&b, " + %s %v", pt.key, pt.d)
		if pt.def {
			b.WriteString(" (the default)")
		}
		if at > end {
			msg := fmt.Sprintf("the fault lasts past the end of the run: %s ends at %v, after %v", b.String(), at, end)
			if pt.key == "for" && f.Kind != FaultPause {
				msg += "; without for, it lasts to the end"
			}
			return pt.key, msg
		}
	}
	return "", ""
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func matchCount(pattern string, names map[string]bool) int {
	n := 0
	for name := range names {
		if ok, _ := path.Match(pattern, name); ok {
			n++
		}
	}
	return n
}

// matches reports whether name matches any of patterns; an empty list
// matches when all is set.
func matches(patterns []string, name string, all bool) bool {
	if len(patterns) == 0 {
		return all
	}
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// validatePolicy checks a policy the way pool.New does, by creating a
// pool on a halted loop with no backends and closing it at once.
func validatePolicy(p pool.Policy) (pool.Policy, error) {
	l := fsm.NewLoop(fsm.Config{Clock: &vclock{now: epoch}, Strict: true})
	l.Halt()
	pl, err := pool.New[struct{}](resolver.NewFixed(), nopConnector{}, p, simhook.WithLoop(l).(pool.Option))
	if err != nil {
		return p, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = pl.Close(ctx)
	return pl.EffectivePolicy(), nil
}

type nopConnector struct{}

func (nopConnector) Connect(context.Context, backend.Backend) (struct{}, error) {
	return struct{}{}, errors.New("no connects here")
}
func (nopConnector) Close(struct{}) error { return nil }

// Defaults of unset fields.
const (
	defaultTTL         = 30 * time.Second
	defaultDNSTimeout  = 2 * time.Second
	defaultRetryMin    = time.Second
	defaultRetryMax    = 30 * time.Second
	defaultDrain       = 30 * time.Second // replace and close faults
	defaultRestartDown = time.Second
	defaultIOTimeout   = time.Second   // Workload.IOTimeout
	defaultLinger      = 2 * time.Hour // kill faults
)

// withDefaults returns a copy of sc with the defaults of unset fields.
func (sc *Scenario) withDefaults() *Scenario {
	c := *sc
	if c.Seed == 0 {
		c.Seed = 1
	}
	setDur := func(v *Duration, d time.Duration) {
		if *v == 0 {
			*v = Duration(d)
		}
	}
	setDur(&c.DNS.TTL, defaultTTL)
	setDur(&c.DNS.Timeout, defaultDNSTimeout)
	setDur(&c.DNS.RetryMin, defaultRetryMin)
	setDur(&c.DNS.RetryMax, defaultRetryMax)
	if c.DNS.Latency.IsZero() {
		c.DNS.Latency = Uniform(time.Millisecond, 3*time.Millisecond)
	}
	c.Backends = slices.Clone(sc.Backends)
	for i := range c.Backends {
		b := &c.Backends[i]
		if b.ConnectLatency.IsZero() {
			b.ConnectLatency = Uniform(time.Millisecond, 3*time.Millisecond)
		}
		if b.CheckLatency.IsZero() {
			b.CheckLatency = Uniform(200*time.Microsecond, time.Millisecond)
		}
	}
	c.Faults = slices.Clone(sc.Faults)
	for i := range c.Faults {
		f := &c.Faults[i]
		if (f.Kind == FaultReplace || f.Kind == FaultClose) && f.Drain == 0 {
			f.Drain = Duration(defaultDrain)
		}
		if f.Kind == FaultRestart && f.Down == 0 {
			f.Down = Duration(defaultRestartDown)
		}
	}
	c.Clients = slices.Clone(sc.Clients)
	for i := range c.Clients {
		w := &c.Clients[i].Workload
		if w.Hold.IsZero() {
			w.Hold = Const(5 * time.Millisecond)
		}
		if w.IOTimeout == 0 {
			w.IOTimeout = Duration(defaultIOTimeout)
		}
	}
	return &c
}
