package sim

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"time"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/connset"
	"github.com/qorbgo/qorb/fsm"
	"github.com/qorbgo/qorb/internal/poolhook"
	"github.com/qorbgo/qorb/internal/simhook"
	"github.com/qorbgo/qorb/pool"
	"github.com/qorbgo/qorb/pool/machine"
	"github.com/qorbgo/qorb/resolver"
	"github.com/qorbgo/qorb/slot"
	"github.com/qorbgo/qorb/slotset"
)

// Options adjust a run without changing its scenario.
type Options struct {
	// Seed seeds the run; 0 takes the scenario's seed (or 1).
	Seed uint64
	// Trace receives the trace as JSON lines; nil keeps only its hash.
	Trace io.Writer
	// Progress, when set, is called now and then (every 65536 events)
	// with the virtual time reached and the scenario's duration.
	Progress func(now, total time.Duration)
	// Policy, when set, adjusts each client's policy before its pool is
	// created: this is how a Go Rebalancer, Picker or Backoff is plugged
	// into a scenario. client is the client's name.
	Policy func(client string, p pool.Policy) pool.Policy
	// BackoffBounds gives the allowed delay after the n-th consecutive
	// failure of a slot for a Backoff other than pool.ExponentialBackoff
	// (whose bounds the simulator knows). Without it such delays are only
	// checked to be non-negative.
	BackoffBounds func(p pool.Policy, n int) (lo, hi time.Duration)
	// Samples is the number of points of the time series behind the
	// picture. Default 500.
	Samples int
	// MaxEvents is the run's budget of events (simulator events and loop
	// timers, as Result.Events counts them): a run that goes past it
	// stops there, and Run returns a [*BudgetError]. 0 takes
	// [DefaultMaxEvents].
	MaxEvents uint64
	// MaxLiveClaims is the run's budget of live claims: claims issued and
	// not finished, and arrivals held for a paused client, at any one
	// time. Each holds memory (the claim, its place in the pool's queue,
	// its timers) until it ends; a run that goes past the budget stops,
	// and Run returns a [*BudgetError]. 0 (or less) takes
	// [DefaultMaxLiveClaims].
	MaxLiveClaims int
}

// The default budgets of a run (see [Options.MaxEvents] and
// [Options.MaxLiveClaims]): every shipped scenario and the runs of swarm
// mode stay far below them (docs/sim.md, Bounds and budgets).
const (
	// DefaultMaxEvents is half a minute to a minute of work on one core
	// of the reference machine (0.7 to 2 million events a second, with
	// the load), 50 times the most any shipped scenario or swarm run of
	// one needs.
	DefaultMaxEvents = 50_000_000
	// DefaultMaxLiveClaims bounds the memory live claims hold to about
	// 600 MB, 200 times the most any shipped scenario or swarm run of one
	// needs.
	DefaultMaxLiveClaims = 1_000_000
)

// BudgetError is the error of a run stopped by its budget
// ([Options.MaxEvents], [Options.MaxLiveClaims]) before its end: the
// scenario asks for more work, or more memory, than the run may spend.
type BudgetError struct {
	Scenario string   `json:"scenario"` // the scenario's name
	Seed     uint64   `json:"seed"`     // the run's seed
	Budget   string   `json:"budget"`   // what ran out: BudgetEvents or BudgetLiveClaims
	Limit    uint64   `json:"limit"`    // the budget
	At       Duration `json:"at"`       // the virtual time when the run stopped
	Duration Duration `json:"duration"` // the scenario's duration
	Events   uint64   `json:"events"`   // the events run by then
	// Live is the number of live claims when the run stopped.
	Live int `json:"live"`
	// Wall is the real time the run took until it stopped.
	Wall Duration `json:"wall"`
}

// Error says what was exceeded, when, and how to raise it.
func (e *BudgetError) Error() string {
	return e.Explain(e.option())
}

func (e *BudgetError) option() string {
	if e.Budget == BudgetLiveClaims {
		return "Options.MaxLiveClaims"
	}
	return "Options.MaxEvents"
}

// Explain is [BudgetError.Error] naming raise (such as a command's flag)
// as the setting that raises the budget.
func (e *BudgetError) Explain(raise string) string {
	what := fmt.Sprintf("having run %d events in %s of real time, past its budget of events: the work a run may do", e.Events, short(e.Wall))
	if e.Budget == BudgetLiveClaims {
		what = fmt.Sprintf("with %d claims live at once (issued and not finished, or held for a paused client), past its budget of live claims: "+
			"each holds memory, about 600 bytes, until it ends, and here claims arrive faster than the pools serve them", e.Live)
	}
	more := e.Limit * 2
	if more < e.Limit {
		more = math.MaxUint64
	}
	return fmt.Sprintf("%s seed %d: stopped at %s of %s of virtual time, %s. Raise it with %s (now %d; such as %s %d), or make the scenario smaller: fewer clients, a lower rate, a shorter duration",
		e.Scenario, e.Seed, short(e.At), short(e.Duration), what, raise, e.Limit, raise, more)
}

// The budgets a [BudgetError] names.
const (
	BudgetEvents     = "events"
	BudgetLiveClaims = "live claims"
)

// Sim is one run of a scenario. It owns the virtual clock, the one event
// loop every pool runs on, the simulated backends and DNS, and its own
// queue of events (claims, releases, I/O completions, faults), merged
// with the loop's timer heap in (time, sequence) order.
//
// A run uses no goroutine: every event runs to completion on the caller's
// goroutine, in an order fixed by the seed. The simulator is the loop's
// only user, so between events it reads the loop and the pools without
// taking the loop.
type Sim struct {
	// upRateFrom is when the backends' connects while up start to count
	// toward their peak rate (BackendResult.PeakUpConnectRate): the first
	// fault's start, or 0.
	upRateFrom int64
	sc         *Scenario
	opt        Options
	seed       uint64

	// watched are the I/O jobs whose context may end without a
	// transition (hung ones, acquire ones): see watchContexts.
	watched []*ioJob

	clk  vclock
	loop *fsm.Loop
	q    queue
	now  int64
	end  int64

	backends []*simBackend
	byName   map[backend.Name]*simBackend
	clients  []*client
	insts    map[string]*poolInst

	io        ioRecord
	running   *ioJob // the I/O against a backend whose function runs now, or nil
	opening   *conn  // the connection the running I/O opened, or nil
	nextConn  uint64
	dnsOutage int
	dnsRng    *rand.Rand
	dns       *dnsWorld // the simulated DNS servers, with the real resolver; nil with the stand-in
	faultRng  *rand.Rand

	tr  *tracer
	chk checker

	violation   *Violation
	ending      bool
	closed      bool
	outstanding int // claims issued and not finished
	// heldArrivals counts the arrivals held for paused clients; with
	// outstanding, the live claims the budget bounds (Options.MaxLiveClaims).
	heldArrivals int
	peakLive     int
	budget       *BudgetError // set when the run stopped over its budget

	events      uint64
	transitions uint64
	settled     int64 // when the last pool closed or the last I/O completed
	faults      []*faultState
	closes      []*closeState // graceful closes (close faults), in the order they began
	pendingRec  []*faultState
	lostCloses  []lostClose   // connections closed while a partition lost their FIN
	capped      []*simBackend // the backends with a max_conns
	recDirty    []*client
	unrecovered int

	series    series
	claimFree *claim

	// pausedClients counts the clients paused now (pause faults); byPool
	// finds a pool's instance from its timers, in scenarios with pauses.
	pausedClients int
	byPool        map[any]*poolInst
}

// client is one client of the scenario: a pool (re-created on restarts)
// and its workload.
type client struct {
	idx      int
	name     string
	spec     *ClientSpec
	rng      *rand.Rand
	rate     float64
	validate bool
	policy   pool.Policy
	inst     *poolInst
	gen      int
	started  bool
	pending  bool // an arrival is scheduled
	gone     bool // shut down for good by a close fault
	// cut counts, by backend index, the partitions in force between
	// this client and a backend (partition faults with clients); nil
	// before the first.
	cut []int32
	// cutIn counts, of those, the partitions that lose the packets the
	// client sends to the backend.
	cutIn []int32

	recovered bool
	recQueued bool
	pause     pauseState

	res clientAcc
}

// poolInst is one pool of a client (a restart makes a new one).
type poolInst struct {
	s        *Sim
	c        *client
	name     string
	p        *pool.Pool[*conn]
	view     simhook.PoolInspector // p's, for the checks
	res      resolver.Resolver
	pol      pool.Policy
	finished bool // Close returned
	// closing is set when Close began; forcing while a Close may close
	// claimed connections (an ended context, a drain deadline passed).
	closing, forcing bool
	cut              int // connections closed while a claimer held them
	listed           []bool
	scratch          []bool // one flag per backend, false between uses (see recovered)
	pending          []*ioJob
	scanIO           bool

	open       int     // connections established and not closed
	conns      int     // connections opening or open
	perBackend []int32 // conns by backend
	connects   uint64
	checks     uint64

	nslots, nclaimed int           // from the trace
	live             int           // slots holding a connection, from the trace
	state            machine.State // from the trace
	sets             []*shadowSet  // the sets not stopped, from the trace
	dirty            bool
	lastServed       int64
	// onlineSets counts the sets online by the trace; noneOnlineAt is
	// when the last of them went down: the pool may then probe its dead
	// backends at once, before their backoff ends.
	onlineSets   int
	noneOnlineAt int64
	// downSec and downN count, by backend, the connects to a backend that
	// is down in one second (downSec is that second + 1); nil before the
	// first. stormLimit bounds them.
	downSec    []int64
	downN      []int32
	stormLimit int
	// linger, when set, is how long the servers keep the connections this
	// pool closes: it was killed (a kill fault).
	linger int64
	// undelivered counts the connections open in the world whose connect
	// is held for the paused client (see conn.undelivered): Close cannot
	// close what it has not got yet, and closes each as it arrives.
	undelivered int
}

// setListed records the backend set the resolver delivered.
func (inst *poolInst) setListed(bs []backend.Backend) {
	clear(inst.listed)
	s := inst.s
	for _, b := range bs {
		if sb := s.byName[b.Name]; sb != nil {
			inst.listed[sb.idx] = true
		}
	}
}

// New prepares a run of sc. It fails only on a scenario that [Parse] would
// refuse.
func New(sc *Scenario, opt Options) (*Sim, error) {
	if err := sc.check(); err != nil {
		return nil, err
	}
	sc = sc.withDefaults()
	seed := opt.Seed
	if seed == 0 {
		seed = sc.Seed
	}
	if opt.Samples <= 0 {
		opt.Samples = 500
	}
	if opt.MaxEvents == 0 {
		opt.MaxEvents = DefaultMaxEvents
	}
	if opt.MaxLiveClaims <= 0 {
		opt.MaxLiveClaims = DefaultMaxLiveClaims
	}
	s := &Sim{
		sc: sc, opt: opt, seed: seed,
		byName: map[backend.Name]*simBackend{},
		insts:  map[string]*poolInst{},
		end:    int64(sc.Duration),
		tr:     newTracer(opt.Trace),
	}
	s.clk = vclock{now: epoch}
	s.loop = fsm.NewLoop(fsm.Config{Clock: &s.clk, Seed: seed, Strict: true})
	s.loop.Halt() // the simulator advances time itself
	s.loop.SetSpawner(s.spawn)
	s.loop.AddObserver(observer{s})
	s.loop.OnEventEnd(s.eventEnd)
	s.chk.init()
	s.dnsRng = stream(seed, "dns")
	s.faultRng = stream(seed, "faults")

	for i := range sc.Backends {
		spec := &sc.Backends[i]
		for _, n := range expand(spec.Name, spec.Count, "%s-%d") {
			b := &simBackend{idx: len(s.backends), name: n, spec: spec, rng: stream(seed, "backend/"+n),
				stopped: spec.Down, listed: !spec.Unlisted, slow: 1}
			b.b = backend.Backend{Name: backend.Name(n), Addr: addr(b.idx + 1)}
			b.update()
			s.backends = append(s.backends, b)
			if spec.MaxConns > 0 {
				s.capped = append(s.capped, b)
			}
			s.byName[b.b.Name] = b
		}
	}
	for i := range sc.Clients {
		spec := &sc.Clients[i]
		for _, n := range expand(spec.Name, spec.Count, "%s-%03d") {
			c := &client{idx: len(s.clients), name: n, spec: spec, rng: stream(seed, "client/"+n),
				rate: spec.Workload.Rate, validate: spec.Validate == nil || *spec.Validate, recovered: true}
			c.policy = spec.Policy.Policy()
			if opt.Policy != nil {
				c.policy = opt.Policy(n, c.policy)
			}
			s.clients = append(s.clients, c)
			s.q.push(int64(spec.Start), handlerFunc(func(s *Sim) { s.startClient(c) }))
		}
	}
	for i, f := range sc.Faults {
		if i == 0 || int64(f.At) < s.upRateFrom {
			s.upRateFrom = int64(f.At)
		}
		fs := &faultState{i: i, f: f, recoveredAt: -1, end: -1}
		s.faults = append(s.faults, fs)
		s.q.push(int64(f.At), handlerFunc(func(s *Sim) { s.faultStart(fs) }))
		if f.For > 0 {
			s.q.push(int64(f.At+f.For), handlerFunc(func(s *Sim) { s.faultEnd(fs) }))
		}
		if f.Kind != FaultClose { // a close ends when its clients are back
			s.q.push(int64(f.End()), handlerFunc(func(s *Sim) { s.faultOver(fs) }))
		}
	}
	if sc.hasFault(FaultPause) {
		s.byPool = map[any]*poolInst{}
		s.loop.SetTimerGate(s.timerGate)
	}
	s.initDNS()
	s.q.push(s.end, handlerFunc(func(s *Sim) { s.endWorkload() }))
	s.series.init(s, opt.Samples)
	return s, nil
}

// Run runs sc with opt and returns the result. The error is for a
// scenario that cannot run, or a [*BudgetError] for a run its budget
// stopped (with the result so far); a violated invariant or expectation
// is in the result (see Result.OK).
func Run(sc *Scenario, opt Options) (*Result, error) {
	s, err := New(sc, opt)
	if err != nil {
		return nil, err
	}
	r := s.Run()
	if r.Budget != nil {
		return r, r.Budget
	}
	return r, nil
}

// Run runs the simulation to its end: the workload for the scenario's
// duration, then the release of the claims still held, the close of every
// pool, and the completion of every I/O in flight. It stops early at the
// first violated invariant, and when it runs over its budget
// (Result.Budget).
func (s *Sim) Run() *Result {
	wall := time.Now()
	for s.violation == nil && s.budget == nil && s.step(math.MaxInt64) {
		if s.opt.Progress != nil && s.events&0xffff == 0 {
			s.opt.Progress(time.Duration(min(s.now, s.end)), time.Duration(s.end))
		}
	}
	if s.violation == nil && s.budget == nil {
		s.finalChecks()
	}
	if s.budget != nil {
		s.budget.Wall = Duration(time.Since(wall))
	}
	if s.opt.Progress != nil {
		s.opt.Progress(time.Duration(s.end), time.Duration(s.end))
	}
	return s.result(time.Since(wall))
}

// step runs the next event, the loop's or the simulator's, if it is due
// by limit; it reports false when none is.
func (s *Sim) step(limit int64) bool {
	lt := int64(math.MaxInt64)
	if d, ok := s.loop.NextDeadlineNanos(); ok {
		lt = d // the loop's root time is epoch
	}
	qt := int64(math.MaxInt64)
	if s.q.len() > 0 {
		qt = s.q.peek()
	}
	t := min(lt, qt)
	if t == math.MaxInt64 || t > limit {
		return false
	}
	if t > s.now {
		s.series.upTo(t)
		s.now = t
		s.clk.ns = t
	}
	if lt <= qt {
		s.loop.Enter()
		s.events += uint64(s.loop.RunDue())
		s.loop.Leave()
	} else {
		e := s.q.pop()
		e.h.run(s)
		s.events++
	}
	if len(s.pendingRec) > 0 {
		s.capsChanged()
		s.evalRecovery()
	}
	s.checkBudget()
	return true
}

// checkBudget stops the run once it went past its budget of events or
// of live claims.
func (s *Sim) checkBudget() {
	live := s.outstanding + s.heldArrivals
	s.peakLive = max(s.peakLive, live)
	if s.budget != nil {
		return
	}
	switch {
	case s.events > s.opt.MaxEvents:
		s.budget = &BudgetError{Budget: BudgetEvents, Limit: s.opt.MaxEvents}
	case live > s.opt.MaxLiveClaims:
		s.budget = &BudgetError{Budget: BudgetLiveClaims, Limit: uint64(s.opt.MaxLiveClaims)}
	default:
		return
	}
	b := s.budget
	b.Scenario, b.Seed, b.At, b.Duration, b.Events, b.Live = s.sc.Name, s.seed, Duration(s.now), s.sc.Duration, s.events, live
}

// capsChanged marks every client for a new recovery check when a backend
// with a max_conns filled up or made room: whether it accepts counts in
// the recovery (see recovered).
func (s *Sim) capsChanged() {
	for _, b := range s.capped {
		if full := !b.accepts(); full != b.wasFull {
			b.wasFull = full
			s.worldChanged()
		}
	}
}

// runUntil runs every event due by virtual time t, then sets the clock to t.
func (s *Sim) runUntil(t int64) {
	for s.violation == nil && s.budget == nil && s.step(t) {
	}
	if t > s.now {
		s.series.upTo(t)
		s.now = t
		s.clk.ns = t
	}
}

// startClient creates the client's first pool and starts its workload.
func (s *Sim) startClient(c *client) {
	if s.closed {
		return
	}
	c.started = true
	s.startPool(c)
	c.scheduleArrival(s)
}

// startPool creates a new pool for c on the shared loop.
func (s *Sim) startPool(c *client) {
	if s.holdIfPaused(c, func(s *Sim) { s.startPool(c) }) {
		return
	}
	c.gen++
	name := c.name
	if c.gen > 1 {
		name = fmt.Sprintf("%s#%d", c.name, c.gen)
	}
	inst := &poolInst{s: s, c: c, name: name, listed: make([]bool, len(s.backends)), perBackend: make([]int32, len(s.backends)), lastServed: math.MinInt64}
	s.insts[name] = inst
	inst.res = s.newResolver(inst)
	base := &connector{s: s, inst: inst}
	var cn backend.Connector[*conn] = base
	switch {
	case c.validate && c.spec.AcquireHook:
		cn = validatingAcquiring{validating{base}}
	case c.validate:
		cn = validating{base}
	case c.spec.AcquireHook:
		cn = acquiring{base}
	}
	var p *pool.Pool[*conn]
	var err error
	if n := c.spec.ConnSet; n > 0 {
		var set *connset.Set[*conn]
		set, err = connset.New(inst.res, cn, connset.Config[*conn]{Target: n, Policy: c.policy},
			simhook.WithLoop(s.loop).(pool.Option), pool.WithName(name))
		if err == nil {
			p = poolhook.SetPool(set).(*pool.Pool[*conn])
		}
	} else {
		p, err = pool.New(inst.res, cn, c.policy, simhook.WithLoop(s.loop).(pool.Option), pool.WithName(name))
	}
	if err != nil {
		s.violate("policy", "%s: pool.New: %v", name, err)
		return
	}
	inst.p = p
	if s.byPool != nil {
		s.byPool[p] = inst
	}
	inst.view = simhook.Inspector(p)
	inst.pol = p.EffectivePolicy()
	c.inst = inst
	s.markRecovery(c)
}

// closeInst closes a pool at once (with an ended context: claimed
// connections are closed too) and checks that it left no connection open.
func (s *Sim) closeInst(inst *poolInst) {
	c := inst.c
	s.addStats(inst)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	inst.closing, inst.forcing = true, true
	_ = inst.p.Close(ctx)
	inst.finished = true
	if c.inst == inst {
		c.inst = nil
	}
	s.markRecovery(c)
	if n := inst.open - inst.undelivered; n != 0 {
		s.violate("conn-leak", "%s: %d connections still open after Close returned", inst.name, n)
	}
}

// addStats adds the pool's counters to its client's, before its Close.
func (s *Sim) addStats(inst *poolInst) {
	st := inst.p.Stats()
	inst.c.res.addStats(&st)
	if st.PolicyError != "" {
		s.violate("policy-error", "%s: the pool reported a policy error: %s", inst.name, st.PolicyError)
	}
}

// endWorkload stops the arrivals at the end of the scenario's duration;
// the pools close once every claim has finished (or a bound later).
func (s *Sim) endWorkload() {
	s.ending = true
	if s.outstanding == 0 {
		s.closeAll()
		return
	}
	var bound time.Duration
	for _, c := range s.clients {
		bound = max(bound, time.Duration(c.ioTimeout())+c.timeout()) // a request ends within its I/O timeout
	}
	s.q.push(s.now+int64(bound+time.Second), handlerFunc(func(s *Sim) { s.closeAll() }))
}

// closeAll closes every pool: first those of graceful closes still
// waiting (forced, unless the pool is quiet already), in the order they
// began, then the others in client order.
func (s *Sim) closeAll() {
	if s.closed {
		return
	}
	s.closed = true
	s.settled = s.now
	for _, cs := range s.closes {
		s.endClose(cs, !cs.quiet)
	}
	for _, c := range s.clients {
		if c.inst != nil {
			s.closeInst(c.inst)
		}
	}
	s.tr.record(s.now, "sim", "run", "", "closed", "", false)
}

// finalChecks runs when no event is left: every connection is closed,
// no timer is left on the loop, no I/O is in flight.
func (s *Sim) finalChecks() {
	if !s.closed {
		s.violate("not-closed", "the run ended before its pools were closed")
		return
	}
	for _, b := range s.backends {
		if b.held != 0 {
			s.violate("conn-leak", "%d connections to %s still open after every pool closed", b.held, b.name)
			return
		}
	}
	if d, ok := s.loop.NextDeadline(); ok {
		s.violate("timer-leak", "a timer due at %v is left on the loop after every pool closed", d.Sub(epoch))
		return
	}
	if n := s.loop.InFlight(); n != 0 {
		s.violate("io-leak", "%d I/O jobs in flight after every pool closed and the queue drained", n)
	}
}

// observer feeds the trace and the model behind the invariant checks.
type observer struct{ s *Sim }

func (o observer) Observe(t fsm.Transition) { o.s.observe(&t) }

func (s *Sim) observe(t *fsm.Transition) {
	s.transitions++
	if st, ok := slot.Kind.Step(*t); ok && !t.Created && !t.Impossible {
		// The common case: the model's slot has its ID encoded.
		sl := s.chk.slots.get(t.ID)
		var id []byte
		if sl != nil {
			id = sl.id
		}
		s.tr.transition(s.now, t, id)
		s.chk.step(s, t.ID, st, sl)
		return
	}
	s.tr.transition(s.now, t, nil)
	if t.Impossible {
		s.violate("impossible-transition", "%s[%s] has no event %s in state %s", t.Kind(), t.ID, t.EventName(), t.FromName())
		return
	}
	if st, ok := slot.Kind.Step(*t); ok {
		s.chk.slot(s, t.ID, st)
		return
	}
	if st, ok := slotset.Kind.Step(*t); ok {
		s.chk.set(s, t.ID, st)
		return
	}
	if st, ok := machine.Kind.Step(*t); ok {
		if inst := s.insts[t.ID]; inst != nil {
			inst.state = st.To
			inst.scanIO = true
			s.chk.dirtyInst(inst)
		}
	}
}

// eventEnd runs, with the loop held, at the end of every event.
func (s *Sim) eventEnd() { s.chk.atEventEnd(s) }

// Violation is a broken invariant: what, when, and the trace before it.
type Violation struct {
	At        Duration `json:"at"`        // virtual time since the start
	Invariant string   `json:"invariant"` // a short name, such as "backend-cap"
	Detail    string   `json:"detail"`    // what was wrong
	Trace     []string `json:"trace"`     // the last trace lines, oldest first
}

// Error describes the violation in one line.
func (v *Violation) Error() string {
	return fmt.Sprintf("invariant %s violated at %v: %s", v.Invariant, v.At, v.Detail)
}

// violate records the first violation; the run stops after the event.
func (s *Sim) violate(invariant, format string, a ...any) {
	if s.violation != nil {
		return
	}
	s.violation = &Violation{At: Duration(s.now), Invariant: invariant, Detail: fmt.Sprintf(format, a...), Trace: s.tr.last()}
}
