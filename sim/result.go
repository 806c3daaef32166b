package sim

import (
	"fmt"
	"io"
	"math/bits"
	"slices"
	"strings"
	"time"

	"github.com/qorbgo/qorb/pool"
)

// hist is a log-linear histogram of durations: exact zero, then 16
// buckets per power of two (about 4% wide), enough for percentiles.
type hist struct {
	counts []uint64
	n      uint64
	max    int64
	sum    int64
}

const histSub = 16

func histIndex(v int64) int {
	if v <= 0 {
		return 0
	}
	e := 63 - bits.LeadingZeros64(uint64(v))
	if e < 4 {
		return 1 + int(v)
	}
	sub := int((v >> (e - 4)) & (histSub - 1))
	return 1 + histSub + (e-4)*histSub + sub
}

// histUpper is the largest value of bucket i.
func histUpper(i int) int64 {
	if i == 0 {
		return 0
	}
	if i <= histSub {
		return int64(i - 1)
	}
	j := i - 1 - histSub
	e := j/histSub + 4
	sub := int64(j % histSub)
	return (int64(histSub)+sub+1)<<(e-4) - 1
}

func (h *hist) add(v int64) {
	i := histIndex(v)
	if i >= len(h.counts) {
		h.counts = append(h.counts, make([]uint64, i+1-len(h.counts))...)
	}
	h.counts[i]++
	h.n++
	h.max = max(h.max, v)
	h.sum += v
}

func (h *hist) merge(o *hist) {
	if len(o.counts) > len(h.counts) {
		h.counts = append(h.counts, make([]uint64, len(o.counts)-len(h.counts))...)
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
	h.sum += o.sum
}

// quantile returns an upper bound of the q-th quantile (0 < q ≤ 1), at
// most the largest value seen.
func (h *hist) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.5)
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(histUpper(i), h.max))
		}
	}
	return time.Duration(h.max)
}

func (h *hist) summary() Waits {
	w := Waits{P50: Duration(h.quantile(0.5)), P90: Duration(h.quantile(0.9)), P99: Duration(h.quantile(0.99)), Max: Duration(h.max)}
	if h.n > 0 {
		w.Mean = Duration(h.sum / int64(h.n))
	}
	return w
}

// clientAcc accumulates one client's outcomes over all its pools.
type clientAcc struct {
	ok        uint64
	errs      [numErrKinds]uint64
	waits     hist
	failWaits hist // how long failed claims (not closed) waited
	discards  uint64
	dropped   uint64
	restarts  uint64
	closes    uint64
	cut       uint64
	pauses    uint64 // pauses begun (pause faults)
	paused    int64  // time spent paused
	connects  uint64
	failures  uint64
	checks    uint64
	peakConns int
	dns       DNSStats
	requests  [numReqOutcomes]uint64 // the requests of served claims, by outcome
	reqTimes  hist                   // how long good requests took
}

func (a *clientAcc) addStats(st *pool.Stats) {
	a.connects += st.Connects
	a.failures += st.Failures
	a.checks += st.Checks
}

// Errors counts failed claims by kind.
type Errors struct {
	NoBackends       uint64 `json:"no_backends"`        // pool.ErrNoBackends
	NoBackendsOnline uint64 `json:"no_backends_online"` // pool.ErrNoBackendsOnline
	AllClaimsUsed    uint64 `json:"all_claims_used"`    // pool.ErrAllClaimsUsed
	Closed           uint64 `json:"closed"`             // cut short by a restart, a close or the end of the run
	Shed             uint64 `json:"shed"`               // pool.ErrClaimShed (Policy.TargetClaimDelay)
	NoIdle           uint64 `json:"no_idle"`            // pool.ErrNoIdle (workload.try_claim)
	QueueFull        uint64 `json:"queue_full"`         // pool.ErrQueueFull (Policy.MaxWaiters)
	CircuitOpen      uint64 `json:"circuit_open"`       // pool.ErrCircuitOpen (Policy.CircuitBreakAfter)
	Other            uint64 `json:"other"`              // any other error
}

// Failed counts the failed claims of every kind but closed.
func (e Errors) Failed() uint64 {
	return e.NoBackends + e.NoBackendsOnline + e.AllClaimsUsed + e.Shed + e.NoIdle + e.QueueFull + e.CircuitOpen + e.Other
}

// String lists the non-zero counts, or "none".
func (e Errors) String() string {
	var parts []string
	for _, p := range []struct {
		n string
		v uint64
	}{{"no_backends", e.NoBackends}, {"no_backends_online", e.NoBackendsOnline}, {"all_claims_used", e.AllClaimsUsed}, {"closed", e.Closed}, {"shed", e.Shed}, {"no_idle", e.NoIdle}, {"queue_full", e.QueueFull}, {"circuit_open", e.CircuitOpen}, {"other", e.Other}} {
		if p.v > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", p.n, p.v))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// Requests counts the requests made on served claims' connections, by
// outcome (see Workload.IOTimeout).
type Requests struct {
	OK      uint64 `json:"ok"`      // answered well
	Reset   uint64 `json:"reset"`   // the backend had lost the connection (it went down)
	Timeout uint64 `json:"timeout"` // no answer within the I/O timeout (hung, partitioned or too slow)
	Error   uint64 `json:"error"`   // the backend answered with an error (check_fail)
	// Times summarises how long the good requests took.
	Times Waits `json:"times"`
}

// Failed counts the failed requests.
func (r Requests) Failed() uint64 { return r.Reset + r.Timeout + r.Error }

// String lists the outcomes.
func (r Requests) String() string {
	s := fmt.Sprintf("%d ok", r.OK)
	for _, p := range []struct {
		n string
		v uint64
	}{{"reset", r.Reset}, {"timeout", r.Timeout}, {"error", r.Error}} {
		if p.v > 0 {
			s += fmt.Sprintf(", %s %d", p.n, p.v)
		}
	}
	return s
}

// Waits summarises claim waits.
type Waits struct {
	P50  Duration `json:"p50"`  // median (an upper bound, within about 4%)
	P90  Duration `json:"p90"`  // 90th percentile
	P99  Duration `json:"p99"`  // 99th percentile
	Max  Duration `json:"max"`  // exact
	Mean Duration `json:"mean"` // exact
}

// ClientResult is one client's outcome (or the fleet's, summed).
type ClientResult struct {
	Name   string `json:"name"`   // the client's name, or "fleet"
	Claims uint64 `json:"claims"` // served
	Errors Errors `json:"errors"` // failed claims by kind
	Waits  Waits  `json:"waits"`  // how long served claims waited
	// FailWaits summarises how long failed claims waited before failing
	// (claims closed by a restart or the end not included).
	FailWaits Waits `json:"fail_waits"`
	// Requests counts the requests of the served claims by outcome.
	Requests Requests `json:"requests"`
	Discards uint64   `json:"discards"` // connections the claimers discarded (failed requests, discard_rate)
	Dropped  uint64   `json:"dropped"`  // arrivals while the client was restarting or closed for a while
	Restarts uint64   `json:"restarts"` // restart faults applied
	Closes   uint64   `json:"closes"`   // close faults applied
	// Cut counts the claims whose connection a Close closed while they
	// held it (a restart, a close forced at its drain deadline, the end of
	// the run).
	Cut uint64 `json:"cut"`
	// Pauses counts the pauses of the client (pause faults), and Paused
	// is how long they lasted in all.
	Pauses   uint64   `json:"pauses,omitempty"`
	Paused   Duration `json:"paused,omitempty"`
	Connects uint64   `json:"connects"` // connects the pools started (pool Stats)
	Failures uint64   `json:"failures"` // failed connects, checks, recycles and discards
	Checks   uint64   `json:"checks"`   // health checks (pool Stats)
	// PeakConns is the most connections, open or opening, the client held
	// at once (for the fleet: the sum of the clients' peaks).
	PeakConns int `json:"peak_conns"`
	// DNS counts the DNS exchanges of the client's resolvers and their
	// answers.
	DNS DNSStats `json:"dns"`
}

// BackendResult is one backend's outcome.
type BackendResult struct {
	Name     string `json:"name"`     // the backend's name
	Connects uint64 `json:"connects"` // attempted by every client
	Refused  uint64 `json:"refused"`  // refused or failed at once
	Opened   uint64 `json:"opened"`   // established
	Peak     int    `json:"peak"`     // most connections open at once
	Claims   uint64 `json:"claims"`   // claims served from its connections
	// FailedRequests counts the requests of those claims that failed.
	FailedRequests uint64 `json:"failed_requests"`
	// PeakConnectRate is the most connects attempted in one second of
	// the virtual clock (from one whole second to the next).
	PeakConnectRate int `json:"peak_connect_rate"`
	// PeakUpConnectRate is the same for the connects that reached it
	// while it was up, from the first fault's start on (from the start,
	// without faults): the storm of reconnects a fault sets off.
	PeakUpConnectRate int `json:"peak_up_connect_rate"`
}

// FaultResult is one fault and the recovery after it.
type FaultResult struct {
	Index int      `json:"index"` // place in the scenario's faults
	What  string   `json:"what"`  // the fault, described
	At    Duration `json:"at"`    // when it started
	End   Duration `json:"end"`   // when it ended (see Fault.End)
	// Recovery is the time from End until every client was back to its
	// target; nil (null in JSON) when that never happened before the run
	// ended.
	Recovery *Duration `json:"recovery"`
}

// CloseResult is one graceful close of a client's pool: a close fault.
type CloseResult struct {
	Fault  int    `json:"fault"`  // the close fault's place in the scenario's faults
	Client string `json:"client"` // the client
	Pool   string `json:"pool"`   // its pool's name
	// Began is when Close was called; Returned when it returned, or nil
	// (null in JSON) when the run stopped first (at a violation).
	Began    Duration  `json:"began"`
	Returned *Duration `json:"returned"`
	// Claimed is the number of claimed connections when Close began.
	Claimed int `json:"claimed"`
	// Forced is set when the drain deadline (or the end of the run) came
	// before the pool was quiet; ForcedClaims is the number of claimed
	// connections Close then closed under their claimers.
	Forced       bool `json:"forced"`
	ForcedClaims int  `json:"forced_claims"`
}

// Expectation is one stated expectation and whether the run met it.
type Expectation struct {
	Name string `json:"name"` // the expect field, such as "max_wait_p99"
	OK   bool   `json:"ok"`   // whether the run met it
	Got  string `json:"got"`  // what the run showed
	Want string `json:"want"` // the bound
}

// Result is what a run found.
type Result struct {
	Scenario    string          `json:"scenario"`            // the scenario's name
	Seed        uint64          `json:"seed"`                // the seed of the run
	Virtual     Duration        `json:"virtual"`             // the scenario's duration
	Ended       Duration        `json:"ended"`               // virtual time when the last pool closed and its I/O completed
	Wall        Duration        `json:"wall"`                // real time the run took
	Events      uint64          `json:"events"`              // simulator events and loop timers run
	Transitions uint64          `json:"transitions"`         // machine transitions (trace lines from the pools)
	TraceLines  uint64          `json:"trace_lines"`         // lines of the trace
	TraceHash   string          `json:"trace_hash"`          // sha256 of the JSON-lines trace
	Checks      uint64          `json:"checks"`              // set comparisons made by the invariant checks
	Fleet       ClientResult    `json:"fleet"`               // every client summed
	Clients     []ClientResult  `json:"clients"`             // in scenario order
	Backends    []BackendResult `json:"backends"`            // in scenario order
	Faults      []FaultResult   `json:"faults"`              // in scenario order
	Closes      []CloseResult   `json:"closes,omitempty"`    // graceful closes, in the order they began
	Expect      []Expectation   `json:"expect"`              // the scenario's expectations, checked
	Violation   *Violation      `json:"violation,omitempty"` // the first broken invariant, if any
	// Budget is set when the run stopped over its budget (Options.MaxEvents,
	// Options.MaxLiveClaims) before its end: what follows it is the run
	// so far.
	Budget *BudgetError `json:"budget,omitempty"`
	// PeakLiveClaims is the most claims live at once (issued and not
	// finished, or held for a paused client), which Options.MaxLiveClaims
	// bounds.
	PeakLiveClaims int   `json:"peak_live_claims"`
	Build          Build `json:"build"` // the qorb and Go versions that ran it

	series *series
}

// OK reports whether the run ended within its budget, no invariant was
// violated and every expectation was met.
func (r *Result) OK() bool {
	if r.Violation != nil || r.Budget != nil {
		return false
	}
	for _, e := range r.Expect {
		if !e.OK {
			return false
		}
	}
	return true
}

// Err returns the violation, the budget that stopped the run, or the
// first unmet expectation, or nil.
func (r *Result) Err() error {
	if r.Violation != nil {
		return r.Violation
	}
	if r.Budget != nil {
		return r.Budget
	}
	for _, e := range r.Expect {
		if !e.OK {
			return fmt.Errorf("expectation %s not met: got %s, want %s", e.Name, e.Got, e.Want)
		}
	}
	return nil
}

func (s *Sim) result(wall time.Duration) *Result {
	r := &Result{
		Scenario: s.sc.Name, Seed: s.seed, Virtual: Duration(s.end), Ended: Duration(s.settled), Wall: Duration(wall),
		Events: s.events, Transitions: s.transitions, TraceLines: s.tr.lines, TraceHash: s.tr.sum(),
		Checks: s.chk.checks, Violation: s.violation, Budget: s.budget, PeakLiveClaims: s.peakLive, Build: CurrentBuild(), series: &s.series,
	}
	var fleet clientAcc
	for _, c := range s.clients {
		r.Clients = append(r.Clients, c.res.result(c.name))
		fleet.merge(&c.res)
	}
	r.Fleet = fleet.result("fleet")
	for _, b := range s.backends {
		r.Backends = append(r.Backends, BackendResult{Name: b.name, Connects: b.connects, Refused: b.refused, Opened: b.opened, Peak: b.peak, PeakConnectRate: b.peakRate, PeakUpConnectRate: b.peakUpRate,
			Claims: b.claims, FailedRequests: b.requests[reqReset] + b.requests[reqTimeout] + b.requests[reqError]})
	}
	for _, fs := range s.faults {
		fr := FaultResult{Index: fs.i, What: fs.f.describe(), At: fs.f.At, End: Duration(fs.f.End())}
		if fs.end >= 0 {
			fr.End = Duration(fs.end)
		}
		if fs.recoveredAt >= 0 {
			rec := Duration(fs.recoveredAt) - fr.End
			fr.Recovery = &rec
		}
		r.Faults = append(r.Faults, fr)
	}
	for _, cs := range s.closes {
		cr := CloseResult{Fault: cs.fs.i, Client: cs.c.name, Pool: cs.inst.name, Began: Duration(cs.began),
			Claimed: cs.claimed, Forced: cs.forced, ForcedClaims: cs.forcedClaims}
		if cs.done {
			ret := Duration(cs.returned)
			cr.Returned = &ret
		}
		r.Closes = append(r.Closes, cr)
	}
	if s.budget == nil { // a run stopped early says nothing of its expectations
		r.Expect = s.expectations(r)
	}
	return r
}

func (a *clientAcc) merge(o *clientAcc) {
	a.ok += o.ok
	for i := range a.errs {
		a.errs[i] += o.errs[i]
	}
	a.waits.merge(&o.waits)
	a.failWaits.merge(&o.failWaits)
	a.discards += o.discards
	a.dropped += o.dropped
	a.restarts += o.restarts
	a.closes += o.closes
	a.cut += o.cut
	a.pauses += o.pauses
	a.paused += o.paused
	a.connects += o.connects
	a.failures += o.failures
	a.checks += o.checks
	a.peakConns += o.peakConns
	a.dns.add(&o.dns)
	for i := range a.requests {
		a.requests[i] += o.requests[i]
	}
	a.reqTimes.merge(&o.reqTimes)
}

func (a *clientAcc) result(name string) ClientResult {
	r := ClientResult{Name: name, Claims: a.ok, Discards: a.discards, Dropped: a.dropped, Restarts: a.restarts,
		Closes: a.closes, Cut: a.cut, Pauses: a.pauses, Paused: Duration(a.paused), Connects: a.connects, Failures: a.failures, Checks: a.checks, PeakConns: a.peakConns}
	r.Errors = Errors{NoBackends: a.errs[errNoBackends], NoBackendsOnline: a.errs[errNoBackendsOnline],
		AllClaimsUsed: a.errs[errAllClaimsUsed], Closed: a.errs[errClosed], Shed: a.errs[errShed], NoIdle: a.errs[errNoIdle], QueueFull: a.errs[errQueueFull], CircuitOpen: a.errs[errCircuitOpen], Other: a.errs[errOther]}
	r.DNS = a.dns
	r.Waits = a.waits.summary()
	r.FailWaits = a.failWaits.summary()
	r.Requests = Requests{OK: a.requests[reqOK], Reset: a.requests[reqReset], Timeout: a.requests[reqTimeout], Error: a.requests[reqError],
		Times: a.reqTimes.summary()}
	return r
}

// expectations checks the scenario's [expect] table against the result.
func (s *Sim) expectations(r *Result) []Expectation {
	e := s.sc.Expect
	var out []Expectation
	add := func(name string, ok bool, got, want string) {
		out = append(out, Expectation{Name: name, OK: ok, Got: got, Want: want})
	}
	if e.RecoverWithin > 0 {
		var last *FaultResult
		for i := range r.Faults {
			if last == nil || r.Faults[i].End >= last.End {
				last = &r.Faults[i]
			}
		}
		if last != nil {
			got := "never"
			ok := last.Recovery != nil && *last.Recovery <= e.RecoverWithin
			if last.Recovery != nil {
				got = short(*last.Recovery)
			}
			add("recover_within", ok, got+" after fault "+fmt.Sprint(last.Index)+" ("+last.What+")", "≤ "+e.RecoverWithin.String())
		}
	}
	failed := r.Fleet.Errors.Failed()
	if e.MaxClaimErrors != nil {
		add("max_claim_errors", failed <= uint64(*e.MaxClaimErrors), fmt.Sprint(failed), fmt.Sprintf("≤ %d", *e.MaxClaimErrors))
	}
	if e.MaxErrorRatio != nil {
		total := r.Fleet.Claims + failed
		ratio := 0.0
		if total > 0 {
			ratio = float64(failed) / float64(total)
		}
		add("max_error_ratio", ratio <= *e.MaxErrorRatio, fmt.Sprintf("%.4f", ratio), fmt.Sprintf("≤ %g", *e.MaxErrorRatio))
	}
	if e.MaxWaitP99 > 0 {
		add("max_wait_p99", r.Fleet.Waits.P99 <= e.MaxWaitP99, short(r.Fleet.Waits.P99), "≤ "+e.MaxWaitP99.String())
	}
	if e.MaxWait > 0 {
		add("max_wait", r.Fleet.Waits.Max <= e.MaxWait, short(r.Fleet.Waits.Max), "≤ "+e.MaxWait.String())
	}
	if e.MaxFailWait > 0 {
		add("max_fail_wait", r.Fleet.FailWaits.Max <= e.MaxFailWait, short(r.Fleet.FailWaits.Max), "≤ "+e.MaxFailWait.String())
	}
	if e.MinClaims > 0 {
		add("min_claims", r.Fleet.Claims >= uint64(e.MinClaims), fmt.Sprint(r.Fleet.Claims), fmt.Sprintf("≥ %d", e.MinClaims))
	}
	if e.MaxConnects > 0 {
		var n uint64
		for _, b := range r.Backends {
			n += b.Connects
		}
		add("max_connects", n <= uint64(e.MaxConnects), fmt.Sprint(n), fmt.Sprintf("≤ %d", e.MaxConnects))
	}
	peakRate := func(rate func(BackendResult) int) (int, string) {
		peak, at := 0, ""
		for _, b := range r.Backends {
			if n := rate(b); n > peak {
				peak, at = n, b.Name
			}
		}
		return peak, at
	}
	if e.MaxConnectRate > 0 {
		peak, at := peakRate(func(b BackendResult) int { return b.PeakConnectRate })
		add("max_connect_rate", peak <= e.MaxConnectRate, fmt.Sprintf("%d/s (%s)", peak, at), fmt.Sprintf("≤ %d/s", e.MaxConnectRate))
	}
	if e.MaxUpConnectRate > 0 {
		peak, at := peakRate(func(b BackendResult) int { return b.PeakUpConnectRate })
		add("max_up_connect_rate", peak <= e.MaxUpConnectRate, fmt.Sprintf("%d/s (%s)", peak, at), fmt.Sprintf("≤ %d/s", e.MaxUpConnectRate))
	}
	if e.MaxCutClaims != nil {
		add("max_cut_claims", r.Fleet.Cut <= uint64(*e.MaxCutClaims), fmt.Sprint(r.Fleet.Cut), fmt.Sprintf("≤ %d", *e.MaxCutClaims))
	}
	if e.MaxForcedCloses != nil {
		n := 0
		for _, c := range r.Closes {
			if c.Forced || c.Returned == nil {
				n++
			}
		}
		add("max_forced_closes", n <= *e.MaxForcedCloses, fmt.Sprint(n), fmt.Sprintf("≤ %d", *e.MaxForcedCloses))
	}
	if e.MaxCloseTime > 0 {
		var longest Duration
		ok := len(r.Closes) > 0
		for _, c := range r.Closes {
			if c.Returned == nil {
				ok = false
				continue
			}
			longest = max(longest, *c.Returned-c.Began)
		}
		got := short(longest)
		if len(r.Closes) == 0 {
			got = "no close"
		}
		add("max_close_time", ok && longest <= e.MaxCloseTime, got, "≤ "+e.MaxCloseTime.String())
	}
	if e.MaxDNSRate != nil {
		var busiest ClientResult
		for _, c := range r.Clients {
			if c.DNS.Queries >= busiest.DNS.Queries {
				busiest = c
			}
		}
		rate := float64(busiest.DNS.Queries) / time.Duration(r.Virtual).Seconds()
		add("max_dns_rate", rate <= *e.MaxDNSRate, fmt.Sprintf("%.3g/s (%s)", rate, busiest.Name), fmt.Sprintf("≤ %g/s", *e.MaxDNSRate))
	}
	if e.MaxFailedRequests != nil {
		n := r.Fleet.Requests.Failed()
		add("max_failed_requests", n <= uint64(*e.MaxFailedRequests), fmt.Sprint(n), fmt.Sprintf("≤ %d", *e.MaxFailedRequests))
	}
	if e.MaxDiscards != nil {
		add("max_discards", r.Fleet.Discards <= uint64(*e.MaxDiscards), fmt.Sprint(r.Fleet.Discards), fmt.Sprintf("≤ %d", *e.MaxDiscards))
	}
	if cs := e.MaxClaimShare; cs != nil {
		var n, all uint64
		for _, b := range r.Backends {
			all += b.Claims
			if matches([]string{cs.Backend}, b.Name, false) {
				n += b.Claims
			}
		}
		share := 0.0
		if all > 0 {
			share = float64(n) / float64(all)
		}
		add("max_claim_share", share <= cs.Share, fmt.Sprintf("%.4f (%d of %d claims to %s)", share, n, all, cs.Backend), fmt.Sprintf("≤ %g", cs.Share))
	}
	return out
}

func fmtRate(n uint64, d Duration) string {
	if d <= 0 {
		return "-"
	}
	v := float64(n) / d.D().Seconds()
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM/s", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk/s", v/1e3)
	}
	return fmt.Sprintf("%.0f/s", v)
}

// short formats d for people: rounded to the millisecond from a second
// up ("1m5.085s"), to the microsecond from a millisecond up ("11.722ms"),
// exact below.
func short(d Duration) string {
	v := d.D()
	switch {
	case v >= time.Second || v <= -time.Second:
		v = v.Round(time.Millisecond)
	case v >= time.Millisecond || v <= -time.Millisecond:
		v = v.Round(time.Microsecond)
	}
	return v.String()
}

// WriteSummary writes the result for people: the fleet, each client
// (up to 20, then the worst), each backend, each fault and its recovery,
// the expectations, the invariants, and the trace hash.
func (r *Result) WriteSummary(w io.Writer) {
	fmt.Fprintf(w, "scenario: %s   seed: %d\n", r.Scenario, r.Seed)
	ratio := "-"
	if r.Wall > 0 {
		ratio = fmt.Sprintf("%.0f×", r.Virtual.D().Seconds()/r.Wall.D().Seconds())
	}
	fmt.Fprintf(w, "virtual time: %s (closed at %s)   wall: %s   virtual/wall: %s\n", short(r.Virtual), short(r.Ended), short(r.Wall), ratio)
	fmt.Fprintf(w, "events: %d (%s)   transitions: %d (%s)   invariant checks: %d   live claims at most: %d\n",
		r.Events, fmtRate(r.Events, r.Wall), r.Transitions, fmtRate(r.Transitions, r.Wall), r.Checks, r.PeakLiveClaims)
	fmt.Fprintln(w)
	// n is the number of clients c sums.
	writeClient := func(c ClientResult, n int) {
		fmt.Fprintf(w, "  %-14s claims %d ok, failed: %s", c.Name, c.Claims, c.Errors)
		fmt.Fprintf(w, "; waits p50 %s p90 %s p99 %s max %s", short(c.Waits.P50), short(c.Waits.P90), short(c.Waits.P99), short(c.Waits.Max))
		if c.Errors.Failed() > 0 {
			fmt.Fprintf(w, "; failed after p50 %s max %s", short(c.FailWaits.P50), short(c.FailWaits.Max))
		}
		fmt.Fprintf(w, "; requests %s, took p50 %s p99 %s max %s", c.Requests, short(c.Requests.Times.P50), short(c.Requests.Times.P99), short(c.Requests.Times.Max))
		fmt.Fprintf(w, "; connects %d, failures %d, discards %d, peak conns %d", c.Connects, c.Failures, c.Discards, c.PeakConns)
		switch {
		case c.Closes > 0:
			fmt.Fprintf(w, ", restarts %d, closes %d (dropped %d)", c.Restarts, c.Closes, c.Dropped)
		case c.Restarts > 0:
			fmt.Fprintf(w, ", restarts %d (dropped %d)", c.Restarts, c.Dropped)
		}
		if c.Cut > 0 {
			fmt.Fprintf(w, ", cut %d", c.Cut)
		}
		if c.Pauses > 0 {
			fmt.Fprintf(w, ", pauses %d (%s paused)", c.Pauses, short(c.Paused))
		}
		if c.DNS.Queries > 0 {
			fmt.Fprintf(w, "; %s", c.DNS.summary(n, time.Duration(r.Virtual)))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "claims:")
	writeClient(r.Fleet, len(r.Clients))
	clients := r.Clients
	if len(clients) > 1 {
		if len(clients) > 20 {
			clients = slices.Clone(clients)
			slices.SortStableFunc(clients, func(a, b ClientResult) int {
				return int(b.Errors.Failed()) - int(a.Errors.Failed())
			})
			fmt.Fprintf(w, "  (%d clients; the 20 with the most failed claims)\n", len(r.Clients))
			clients = clients[:20]
		}
		for _, c := range clients {
			writeClient(c, 1)
		}
	}
	fmt.Fprintln(w, "backends:")
	for _, b := range r.Backends {
		fmt.Fprintf(w, "  %-14s connects %d (refused %d), opened %d, peak open %d, peak %d connects/s (%d while up); claims %d, failed requests %d\n",
			b.Name, b.Connects, b.Refused, b.Opened, b.Peak, b.PeakConnectRate, b.PeakUpConnectRate, b.Claims, b.FailedRequests)
	}
	if len(r.Faults) > 0 {
		fmt.Fprintln(w, "faults:")
		for _, f := range r.Faults {
			rec := "not recovered by the end"
			if f.Recovery != nil {
				rec = fmt.Sprintf("recovered %s after its end", short(*f.Recovery))
			}
			fmt.Fprintf(w, "  %d. at %s: %s — ends %s, %s\n", f.Index, short(f.At), f.What, short(f.End), rec)
		}
		recoveryNote(w)
	}
	if len(r.Closes) > 0 {
		fmt.Fprintln(w, "closes:")
		for i, c := range r.Closes {
			if i == 20 {
				fmt.Fprintf(w, "  (%d more)\n", len(r.Closes)-20)
				break
			}
			how := "never returned"
			if c.Returned != nil {
				how = fmt.Sprintf("returned after %s, quiet", short(*c.Returned-c.Began))
				if c.Forced {
					how = fmt.Sprintf("returned after %s, forced: %d claimed cut", short(*c.Returned-c.Began), c.ForcedClaims)
				}
			}
			fmt.Fprintf(w, "  %-14s at %s with %d claimed (fault %d): %s\n", c.Pool, short(c.Began), c.Claimed, c.Fault, how)
		}
	}
	if len(r.Expect) > 0 {
		fmt.Fprintln(w, "expectations:")
		for _, e := range r.Expect {
			mark := "ok  "
			if !e.OK {
				mark = "FAIL"
			}
			fmt.Fprintf(w, "  %s %s: %s (want %s)\n", mark, e.Name, e.Got, e.Want)
		}
	}
	if r.Budget != nil {
		fmt.Fprintf(w, "STOPPED OVER BUDGET: %s\n", r.Budget)
		fmt.Fprintln(w, "(the run so far; its expectations are not checked)")
	}
	if r.Violation != nil {
		fmt.Fprintf(w, "INVARIANT VIOLATED: %s at %s: %s\n", r.Violation.Invariant, r.Violation.At, r.Violation.Detail)
		fmt.Fprintln(w, "trace before it:")
		for _, l := range r.Violation.Trace {
			fmt.Fprintln(w, "  "+l)
		}
	} else if r.Budget != nil {
		fmt.Fprintln(w, "invariants: ok until it stopped")
	} else {
		fmt.Fprintln(w, "invariants: ok")
	}
	fmt.Fprintf(w, "trace hash: %s\n", r.TraceHash)
}
