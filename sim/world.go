package sim

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"net/netip"
	"strings"
	"time"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/fsm"
	"github.com/qorbgo/qorb/pool"
)

// stream returns the random stream of one component, derived from the
// run's seed and the component's name, so that adding a client does not
// change the draws of another.
func stream(seed uint64, name string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(name))
	return rand.New(rand.NewPCG(seed, h.Sum64()))
}

// simBackend is one simulated backend process.
type simBackend struct {
	idx  int
	name string
	b    backend.Backend
	spec *BackendSpec
	rng  *rand.Rand

	stopped   bool // not running (down at start, or stopped by replace)
	crashes   int  // crash faults in force
	hang      int  // hang faults in force
	partition int  // partition faults in force
	// partitionIn counts those of them that lose the packets clients
	// send to the backend.
	partitionIn int
	checkFail   int     // check_fail faults in force
	slow        float64 // latency factor, 1 normally
	// pHang and pCheckFail are the probabilities of the hang and
	// check_fail faults in force with a probability: each connect or
	// request hangs, each check or request fails, with the chance that
	// one of them hits.
	pHang, pCheckFail []float64
	// errors counts errors faults in force, pErrors those with a
	// probability: requests answered with an error.
	errors  int
	pErrors []float64
	// ghosts counts the connections of killed clients the server still
	// holds (kill faults).
	ghosts int
	// wasFull is whether it was at its max_conns when last looked at
	// (see capsChanged).
	wasFull bool
	// demoted is when a demote fault failed the backend over: the
	// connections opened before answer with errors; 0 when none is in
	// force.
	demoted int64
	up      bool   // running: !stopped && crashes == 0
	inc     uint32 // incarnation, bumped each time the process goes down
	listed  bool   // in DNS

	server     int   // connections the process holds (this incarnation, pending included)
	held       int   // connections clients hold open, established and not closed
	peak       int   // largest held
	nextAccept int64 // accept queue: when the next connect can be accepted

	connects, refused, opened uint64
	claims                    uint64                 // claims served from its connections
	requests                  [numReqOutcomes]uint64 // the requests of those claims, by outcome
	// rateSec is the second of the virtual clock rateN counts the
	// connects of; peakRate is the most connects in one second.
	rateSec         int64
	rateN, peakRate int
	// upSec, upN and peakUpRate count the same for the connects that
	// reach it while it is up (those it must answer with a session),
	// from the first fault on.
	upSec           int64
	upN, peakUpRate int
}

// healthy reports whether a pool should be able to use the backend.
func (b *simBackend) healthy() bool {
	return b.up && b.hang == 0 && b.partition == 0 && b.checkFail == 0
}

// accepts reports whether the backend would accept one more connection:
// it is below its max_conns, if it has one.
func (b *simBackend) accepts() bool {
	return b.spec.MaxConns == 0 || b.server < b.spec.MaxConns
}

// healthyFor reports whether c's pool should be able to use the backend:
// it is healthy and no partition cuts c off from it.
func (b *simBackend) healthyFor(c *client) bool {
	return b.healthy() && !c.cutFrom(b)
}

// cutFrom reports whether a partition cuts c off from b.
func (c *client) cutFrom(b *simBackend) bool {
	return len(c.cut) > 0 && c.cut[b.idx] > 0
}

// losesTo reports whether a partition loses the packets c sends to b.
func (c *client) losesTo(b *simBackend) bool {
	return b.partitionIn > 0 || len(c.cutIn) > 0 && c.cutIn[b.idx] > 0
}

// chance draws whether one of the probabilistic faults ps hits.
func (b *simBackend) chance(ps []float64) bool {
	if len(ps) == 0 {
		return false
	}
	miss := 1.0
	for _, p := range ps {
		miss *= 1 - p
	}
	return b.rng.Float64() >= miss
}

// update recomputes up after a change; a process that goes down loses
// every connection.
func (b *simBackend) update() {
	up := !b.stopped && b.crashes == 0
	if b.up && !up {
		b.inc++
		b.server = 0
		b.nextAccept = 0
	}
	b.up = up
}

// latency draws one latency from d, scaled by the backend's slowness.
func (b *simBackend) latency(d Dist) int64 {
	v := d.Draw(b.rng)
	if b.slow != 1 {
		v = time.Duration(float64(v) * b.slow)
	}
	return int64(v)
}

// connState is where a simulated connection is in its life.
type connState uint8

const (
	connOpen   connState = iota // established
	connClosed                  // closed by the pool
)

// conn is one simulated connection: the C of the simulated pools.
type conn struct {
	id     uint64
	b      *simBackend
	inc    uint32 // the backend's incarnation when it was opened
	inst   *poolInst
	state  connState
	held   *claim // the claim holding it, or nil
	opened int64  // when it was opened (virtual time)
	// hooked is the claim handed it whose check on claim or acquire
	// hook has not returned yet, or nil.
	hooked *claim
	// undelivered is set while the connect that opened it is done in the
	// world but held for its paused client; late once it reached a pool
	// whose Close had returned, which may then close it.
	undelivered, late bool
}

// alive reports whether the connection still works for its user.
func (c *conn) alive() bool {
	b := c.b
	return c.inc == b.inc && b.up && b.partition == 0 && b.checkFail == 0 && !c.inst.c.cutFrom(b)
}

var (
	errRefused  = errors.New("connection refused")
	errNoAnswer = errors.New("no answer (hung until cancelled)")
	errTooMany  = errors.New("too many connections")
	errFlaky    = errors.New("connection reset during handshake")
	errReset    = errors.New("connection reset by peer")
	errCheck    = errors.New("health check failed: backend serves errors")
	errDNS      = errors.New("dns: i/o timeout")
	errUse      = errors.New("claimer found the connection bad")
)

// ioRecord is what the connector and resolver calls inside one spawned
// I/O function report to the spawner: how long the I/O takes in virtual
// time, whether it hangs until its context ends, and for a connect the
// connection it returned.
type ioRecord struct {
	lat  int64
	ctx  context.Context
	inst *poolInst
}

// ioJob is one spawned I/O in flight: its completion runs at the time the
// I/O takes, or as soon as its context is cancelled, whichever is first.
type ioJob struct {
	done     func()
	ctx      context.Context
	inst     *poolInst
	pos      int // index in inst.pending, or -1
	finished bool

	// An I/O against a backend (connect, check, recycle, acquire) runs
	// when it completes, so that its outcome is decided by the backend as
	// it is then: io is the pool's I/O function, kind and b what it is.
	io      func() func()
	kind    fsm.ActionKind
	b       *simBackend
	inc     uint32 // the backend's incarnation when the I/O started
	hanging bool   // waits for its context to end

}

// spawn is the loop's spawner. An I/O against a backend runs when it
// completes (spawnAtBackend); any other (a close, a DNS query) runs
// inline, its simulated calls returning at once and recording their
// virtual latency, and its completion is scheduled.
func (s *Sim) spawn(a fsm.Action, io func() func()) {
	if s.spawnAtBackend(a, io) {
		return
	}
	s.io = ioRecord{}
	done := io()
	r := s.io
	s.io = ioRecord{}
	j := &ioJob{done: done, ctx: r.ctx, inst: r.inst, pos: -1}
	if j.ctx != nil && j.inst != nil {
		j.pos = len(j.inst.pending)
		j.inst.pending = append(j.inst.pending, j)
		if j.ctx.Err() != nil {
			j.inst.scanIO = true
		}
	}
	s.q.push(s.now+r.lat, j)
}

// run completes the job: an I/O against a backend runs now, then the
// pool's completion runs, with the loop held.
func (j *ioJob) run(s *Sim) {
	if j.finished {
		return
	}
	if j.io == nil && j.inst != nil && j.inst.c.paused() {
		j.inst.c.hold(j) // its client sees the completion at its resume
		return
	}
	if j.io != nil && !s.ended(j) && s.hangs(j.kind, j.b, j.inst) {
		// The backend hangs now: the I/O waits for its context to end.
		j.hanging = true
		s.watched = append(s.watched, j)
		return
	}
	j.finished = true
	if s.closed {
		s.settled = s.now
	}
	if j.pos >= 0 {
		p := j.inst.pending
		last := p[len(p)-1]
		p[j.pos] = last
		last.pos = j.pos
		p[len(p)-1] = nil
		j.inst.pending = p[:len(p)-1]
		j.pos = -1
	}
	if j.io != nil {
		if j.kind == fsm.Connect {
			j.inst.countConn(j.b, -1) // no longer opening: open, or not at all
		}
		s.loop.Enter()
		s.running, s.opening = j, nil
		done := j.io()
		s.running = nil
		if c := j.inst.c; c.paused() {
			// Done in the world; its client sees it at its resume.
			s.loop.Leave()
			if cn := s.opening; cn != nil && cn.state == connOpen {
				// (A connection the job closed itself, as the pool does
				// when its first check fails, was never the pool's.)
				// Its pool gets the connection at the resume: until
				// then, it is open in the world but not the pool's.
				cn.undelivered = true
				j.inst.undelivered++
				c.hold(delivery{cn: cn, done: done})
				return
			}
			c.hold(completion(done))
			return
		}
		if done != nil {
			done()
		}
		s.loop.Leave()
		return
	}
	s.loop.Enter()
	if j.done != nil {
		j.done()
	}
	s.loop.Leave()
}

// scanCancelled completes at once every I/O of inst whose context was
// cancelled during the event that just ended: a connector honours its
// context.
func (s *Sim) scanCancelled(inst *poolInst) {
	inst.scanIO = false
	for _, j := range inst.pending {
		if s.ended(j) {
			s.q.push(s.now, j)
		}
	}
}

// watchContexts completes at once every watched I/O whose context ended
// during the event that just ended, whatever ended it: a hung I/O, and an
// acquire I/O (a check on claim, an acquire hook), whose contexts a timer
// of the pool (HealthTimeout, the claim's deadline) or its Close may end
// without a transition of any machine, so that scanCancelled, which
// follows transitions, does not see it.
func (s *Sim) watchContexts() {
	kept := s.watched[:0]
	for _, j := range s.watched {
		switch {
		case j.finished:
		case s.ended(j):
			s.q.push(s.now, j)
		default:
			kept = append(kept, j)
		}
	}
	clear(s.watched[len(kept):])
	s.watched = kept
}

// ended reports whether the context of j ended.
//
// The pool ends the context of an acquire I/O (a check on claim, an
// acquire hook) when its Close begins, in the same event: an acquire I/O
// of a pool whose Close began with its context still live is a
// violation.
func (s *Sim) ended(j *ioJob) bool {
	if j.ctx.Err() != nil {
		return true
	}
	if j.kind == fsm.Acquire && j.inst.closing {
		s.violate("close-hook", "%s: Close began, and the context of the acquire I/O on %s did not end", j.inst.name, j.b.name)
	}
	return false
}

// connector is the simulated connector of one pool instance.
type connector struct {
	s    *Sim
	inst *poolInst
}

// validating adds a Validator to the connector.
type validating struct{ *connector }

func (c *connector) call(op string) {
	if c.inst.finished {
		c.s.violate("connector-after-close", "%s: the pool called %s after its Close returned", c.inst.name, op)
	}
	c.s.io.inst = c.inst
}

// Connect opens a simulated connection. It runs when the connect
// completes (see spawnAtBackend), so the backend as it is then decides:
// refused when down, at its connection cap or by its error rate, the
// context's error when the pool gave up first.
func (c *connector) Connect(ctx context.Context, bk backend.Backend) (*conn, error) {
	s := c.s
	c.call("Connect")
	b := s.byName[bk.Name]
	if b == nil {
		s.violate("unknown-backend", "%s: connect to %s, which the simulation does not know", c.inst.name, bk.Name)
		return nil, errRefused
	}
	switch {
	case ctx.Err() != nil:
		return nil, ctx.Err() // it honours its context
	case s.running != nil && s.running.inc != b.inc:
		b.refused++
		return nil, errReset // the process it was talking to went down meanwhile
	case !b.up:
		b.refused++
		return nil, errRefused
	case b.hang > 0 || b.partition > 0 || c.inst.c.cutFrom(b):
		return nil, errNoAnswer // the spawner waits for the context first
	case b.spec.MaxConns > 0 && b.server >= b.spec.MaxConns:
		b.refused++
		if b.spec.Overloaded {
			return nil, backend.Overloaded(errTooMany, b.spec.RetryAfter.D())
		}
		return nil, errTooMany
	case b.spec.ConnectErrorRate > 0 && b.rng.Float64() < b.spec.ConnectErrorRate:
		b.refused++
		return nil, errFlaky
	}
	s.nextConn++
	cn := &conn{id: s.nextConn, b: b, inc: b.inc, inst: c.inst, state: connOpen, opened: s.now}
	s.opening = cn
	b.server++
	b.held++
	b.opened++
	b.peak = max(b.peak, b.held)
	c.inst.open++
	c.inst.countConn(cn.b, 1)
	return cn, nil
}

// Close closes a simulated connection. Closing one twice is a violation,
// and so is any call after the pool's Close returned: a connect that
// completes after it meets its cancelled context and opens nothing.
func (c *connector) Close(cn *conn) error {
	s := c.s
	if cn == nil || !cn.late {
		c.call("Close") // a connection that arrived after Close returned may be closed then
	}
	if cn == nil {
		s.violate("close-nil", "%s: Close of a nil connection", c.inst.name)
		return nil
	}
	switch cn.state {
	case connClosed:
		s.violate("double-close", "%s: connection %d to %s closed twice", c.inst.name, cn.id, cn.b.name)
		return nil
	case connOpen:
		cn.b.held--
		cn.inst.open--
		if cl := cn.held; cl != nil {
			cl.forced = true
			cn.inst.cut++
			cl.c.res.cut++
			if !cn.inst.forcing {
				s.violate("claim-cut", "%s: connection %d to %s closed while the claim that arrived at %v held it",
					c.inst.name, cn.id, cn.b.name, time.Duration(cl.arrival))
			}
		} else if cn.hooked != nil && cn.inst.forcing {
			// A forced Close took it from a claim in its hook: the
			// claimer never gets it (its claim fails as closed).
			cn.inst.cut++
		}
	}
	cn.hooked = nil
	switch {
	case cn.inc != cn.b.inc || !cn.b.up:
	case cn.inst.c.losesTo(cn.b):
		// Its FIN is lost: the server holds it until the partition ends.
		s.loseClose(cn)
	case cn.inst.linger > 0:
		// Its client vanished: the server holds the connection until it
		// gives up on it, or restarts (or the run ends first).
		b, inc := cn.b, cn.inc
		b.ghosts++
		if s.now+cn.inst.linger > s.end {
			break
		}
		s.q.push(s.now+cn.inst.linger, handlerFunc(func(s *Sim) {
			b.ghosts--
			if b.inc == inc && b.up {
				b.server--
			}
		}))
	default:
		cn.b.server--
	}
	cn.inst.countConn(cn.b, -1)
	cn.state = connClosed
	return nil
}

// Validate checks a simulated connection when the check completes: it
// fails on a connection the backend lost and while a check_fail fault is
// in force (a partitioned backend makes the check hang: the spawner waits
// for its context).
func (v validating) Validate(ctx context.Context, cn *conn) error {
	s := v.s
	v.call("Validate")
	if cn == nil || cn.state == connClosed {
		s.violate("validate-closed", "%s: Validate of a closed connection", v.inst.name)
		return errReset
	}
	b := cn.b
	v.inst.checks++
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case b.partition > 0 || v.inst.c.cutFrom(b):
		return errNoAnswer
	case cn.inc != b.inc || !b.up:
		return errReset
	case b.checkFail > 0 || b.chance(b.pCheckFail):
		return errCheck
	}
	return nil
}

// acquiring and validatingAcquiring add an AcquireHook (a session reset)
// to a connector: it takes the backend's check latency and fails on a
// connection the backend lost.
type (
	acquiring           struct{ *connector }
	validatingAcquiring struct{ validating }
)

// OnAcquire runs when the hook completes.
func (a acquiring) OnAcquire(ctx context.Context, cn *conn) error { return onAcquire(ctx, cn) }

// OnAcquire runs when the hook completes.
func (a validatingAcquiring) OnAcquire(ctx context.Context, cn *conn) error {
	return onAcquire(ctx, cn)
}

func onAcquire(ctx context.Context, cn *conn) error {
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case !cn.alive():
		return errReset
	}
	return nil
}

// spawnAtBackend schedules an I/O against a backend (a connect, check,
// recycle hook or acquire hook): it takes its latency now, from the
// backend as it is now (and its accept queue for a connect), and runs the
// pool's I/O function when it completes, so that a backend that crashes
// during a connect makes that connect fail. An I/O that meets a hung or
// partitioned backend, now or when it would complete, waits for its
// context to end. It reports false for other actions.
func (s *Sim) spawnAtBackend(a fsm.Action, io func() func()) bool {
	switch a.Kind {
	case fsm.Connect, fsm.Check, fsm.Recycle, fsm.Acquire:
	default:
		return false
	}
	inst, b := s.actionTarget(a.ID)
	if inst == nil || b == nil || a.Ctx == nil {
		s.violate("action", "an action the simulation cannot place: %v", a)
		return true
	}
	var lat int64
	switch a.Kind {
	case fsm.Connect:
		b.connects++
		inst.connects++
		if sec := s.now / int64(time.Second); sec != b.rateSec || b.rateN == 0 {
			b.rateSec, b.rateN = sec, 0
		}
		b.rateN++
		b.peakRate = max(b.peakRate, b.rateN)
		if b.up && s.now >= s.upRateFrom {
			if sec := s.now / int64(time.Second); sec != b.upSec || b.upN == 0 {
				b.upSec, b.upN = sec, 0
			}
			b.upN++
			b.peakUpRate = max(b.peakUpRate, b.upN)
		}
		if !b.up {
			inst.connectToDown(b)
		}
		lat = b.latency(b.spec.ConnectLatency)
		if b.up && b.spec.AcceptRate > 0 {
			start := max(s.now, b.nextAccept)
			b.nextAccept = start + int64(float64(time.Second)/b.spec.AcceptRate)
			lat += start - s.now
		}
		if inst.c.validate {
			lat += b.latency(b.spec.CheckLatency) // the first check
		}
		inst.countConn(b, 1) // opening
	default:
		lat = b.latency(b.spec.CheckLatency)
	}
	j := &ioJob{io: io, ctx: a.Ctx, inst: inst, kind: a.Kind, b: b, inc: b.inc, pos: len(inst.pending)}
	inst.pending = append(inst.pending, j)
	if a.Kind == fsm.Acquire {
		s.watched = append(s.watched, j)
	}
	if s.ended(j) {
		inst.scanIO = true
	}
	if s.hangs(a.Kind, b, inst) || a.Kind == fsm.Connect && b.up && b.chance(b.pHang) {
		j.hanging = true
		s.watched = append(s.watched, j)
		return true
	}
	s.q.push(s.now+lat, j)
	return true
}

// hangs reports whether an I/O of inst of kind against b gets no answer:
// a connect to a hung or partitioned backend, anything else to a
// partitioned one (a partition of every client, or of inst's).
func (s *Sim) hangs(kind fsm.ActionKind, b *simBackend, inst *poolInst) bool {
	cut := b.partition > 0 || inst.c.cutFrom(b)
	if kind == fsm.Connect {
		return b.up && (b.hang > 0 || cut)
	}
	return cut
}

// actionTarget returns the pool and the backend of a slot's action, from
// the slot's ID: "pool/backend/n".
func (s *Sim) actionTarget(id string) (*poolInst, *simBackend) {
	i, j := strings.IndexByte(id, '/'), strings.LastIndexByte(id, '/')
	if i < 0 || j <= i {
		return nil, nil
	}
	return s.insts[id[:i]], s.byName[backend.Name(id[i+1:j])]
}

// addr returns the simulated address of the i-th backend.
func addr(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 5432)
}

func (b *simBackend) String() string { return fmt.Sprintf("%s(%v)", b.name, b.b.Addr) }

func backendName(n string) backend.Name { return backend.Name(n) }

// countConn adds d to the connections (opening or open) the pool holds,
// and checks the hard caps: MaxSlots in all, MaxSlotsPerBackend to one
// backend.
func (inst *poolInst) countConn(b *simBackend, d int) {
	inst.conns += d
	inst.perBackend[b.idx] += int32(d)
	if d < 0 {
		return
	}
	inst.c.res.peakConns = max(inst.c.res.peakConns, inst.conns)
	s := inst.s
	if inst.conns > inst.pol.MaxSlots {
		s.violate("conn-cap", "%s holds %d connections, open or opening; MaxSlots is %d", inst.name, inst.conns, inst.pol.MaxSlots)
	}
	if n := int(inst.perBackend[b.idx]); n > inst.pol.MaxSlotsPerBackend {
		s.violate("conn-cap", "%s holds %d connections to %s, open or opening; MaxSlotsPerBackend is %d", inst.name, n, b.name, inst.pol.MaxSlotsPerBackend)
	}
}

// connectToDown counts a connect of the pool to a backend that is down,
// and checks that the pool's backoff keeps such connects within its
// bound in each second of the virtual clock (see stormLimit).
func (inst *poolInst) connectToDown(b *simBackend) {
	s := inst.s
	if inst.downSec == nil {
		inst.downSec = make([]int64, len(s.backends))
		inst.downN = make([]int32, len(s.backends))
		inst.stormLimit = stormLimit(inst.pol)
	}
	sec := s.now/int64(time.Second) + 1 // 0: none counted yet
	if inst.downSec[b.idx] != sec {
		inst.downSec[b.idx], inst.downN[b.idx] = sec, 0
	}
	inst.downN[b.idx]++
	if n := int(inst.downN[b.idx]); n > inst.stormLimit {
		s.violate("connect-storm", "%s made %d connects to %s in one second while it was down, over the %d its policy allows: its backoff lets slots reconnect at once",
			inst.name, n, b.name, inst.stormLimit)
	}
}

// ConnectStormLimit is the most connects a pool with policy p (zero
// fields taking the pool's defaults) may make in one second to a backend
// that is down before the simulator stops the run with the connect-storm
// invariant. See docs/sim.md.
func ConnectStormLimit(p pool.Policy) int {
	if eff, err := validatePolicy(p); err == nil {
		p = eff
	}
	return stormLimit(p)
}

// stormLimit is the most connects a pool may make to a backend that is
// down in one second: ten for each slot it may hold to the backend (a
// slot backing off from the default 20ms tries about six times in its
// first second), more when BackoffMin is shorter (two for each doubling
// from BackoffMin to a second) or BackoffMax is under a second (twice
// the tries a second at BackoffMax), and at least 100. A backoff of zero
// makes about 400 a second from one probe slot.
func stormLimit(p pool.Policy) int {
	perSlot := 10
	if m := p.BackoffMin; m > 0 && m < 20*time.Millisecond {
		perSlot = 2 * (int(math.Log2(float64(time.Second)/float64(m))) + 1)
	}
	if m := p.BackoffMax; m > 0 && m < time.Second {
		perSlot = max(perSlot, 2*int(math.Ceil(float64(time.Second)/float64(m))))
	}
	return max(100, perSlot*min(p.MaxSlotsPerBackend, p.MaxSlots))
}
