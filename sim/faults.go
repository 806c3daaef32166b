package sim

import (
	"fmt"
	"strings"
	"time"

	"github.com/qorbgo/qorb/internal/simhook"
)

// faultState is one scheduled fault and what became of it.
type faultState struct {
	i           int
	f           Fault
	recoveredAt int64   // first time every client was back to target after the fault's end; -1 before
	end         int64   // when a close fault ended; -1 before (and for other kinds)
	pending     int     // clients of a close fault not back yet
	factor      float64 // a ramping slow fault's factor now; 0 before it starts and after it ends
}

// describe says what the fault does, for summaries and traces.
func (f Fault) describe() string {
	var b strings.Builder
	b.WriteString(f.Kind)
	if len(f.Backends) > 0 {
		b.WriteString(" " + strings.Join(f.Backends, ","))
	}
	if len(f.With) > 0 {
		b.WriteString(" with " + strings.Join(f.With, ","))
	}
	if len(f.Clients) > 0 {
		b.WriteString(" clients " + strings.Join(f.Clients, ","))
	}
	if f.Factor != 0 {
		fmt.Fprintf(&b, " ×%g", f.Factor)
	}
	if f.Ramp > 0 {
		fmt.Fprintf(&b, " ramp %v", f.Ramp)
	}
	if f.Probability > 0 {
		fmt.Fprintf(&b, " p=%g", f.Probability)
	}
	if f.Direction != "" && f.Direction != DirectionBoth {
		b.WriteString(" " + f.Direction)
	}
	if f.For > 0 {
		fmt.Fprintf(&b, " for %v", f.For)
	}
	if f.Kind == FaultClose {
		fmt.Fprintf(&b, " drain %v", f.Drain)
		if f.Down > 0 {
			fmt.Fprintf(&b, " down %v", f.Down)
		}
	}
	return b.String()
}

// eachBackend calls fn for every backend matching the patterns, in order.
func (s *Sim) eachBackend(patterns []string, fn func(b *simBackend)) {
	for _, b := range s.backends {
		if matches(patterns, b.name, false) {
			fn(b)
		}
	}
}

func (s *Sim) faultRecord(fs *faultState, what string) {
	s.tr.record(s.now, "fault", fmt.Sprint(fs.i), "", what, fs.f.describe(), false)
}

// faultStart applies a fault.
func (s *Sim) faultStart(fs *faultState) {
	f := fs.f
	s.faultRecord(fs, "start")
	s.worldChanged()
	switch f.Kind {
	case FaultCrash:
		s.eachBackend(f.Backends, func(b *simBackend) { b.crashes++; b.update() })
	case FaultStart:
		s.eachBackend(f.Backends, func(b *simBackend) { b.stopped = false; b.update() })
	case FaultHang:
		if f.Probability > 0 {
			s.eachBackend(f.Backends, func(b *simBackend) { b.pHang = append(b.pHang, f.Probability) })
		} else {
			s.eachBackend(f.Backends, func(b *simBackend) { b.hang++ })
		}
	case FaultPartition:
		if len(f.Clients) > 0 {
			s.cutClients(f, 1)
		} else {
			s.eachBackend(f.Backends, func(b *simBackend) {
				b.partition++
				if f.losesToBackends() {
					b.partitionIn++
				}
			})
		}
	case FaultSlow:
		if f.Ramp > 0 {
			s.rampStep(fs, 1)
		} else {
			s.eachBackend(f.Backends, func(b *simBackend) { b.slow *= f.Factor })
		}
	case FaultCheckFail:
		if f.Probability > 0 {
			s.eachBackend(f.Backends, func(b *simBackend) { b.pCheckFail = append(b.pCheckFail, f.Probability) })
		} else {
			s.eachBackend(f.Backends, func(b *simBackend) { b.checkFail++ })
		}
	case FaultErrors:
		if f.Probability > 0 {
			s.eachBackend(f.Backends, func(b *simBackend) { b.pErrors = append(b.pErrors, f.Probability) })
		} else {
			s.eachBackend(f.Backends, func(b *simBackend) { b.errors++ })
		}
	case FaultDemote:
		s.eachBackend(f.Backends, func(b *simBackend) { b.demoted = s.now })
	case FaultKill:
		linger := f.Linger.D()
		if linger == 0 {
			linger = defaultLinger
		}
		for _, c := range s.clients {
			if matches(f.Clients, c.name, true) {
				s.kill(c, f.Down.D(), linger)
			}
		}
	case FaultReset:
		for _, c := range s.clients {
			if matches(f.Clients, c.name, true) {
				s.reset(c)
			}
		}
	case FaultPause:
		for _, c := range s.clients {
			if matches(f.Clients, c.name, true) {
				s.pauseClient(c, f)
			}
		}
	case FaultDNSOutage:
		s.dnsOutage++
	case FaultDNSAdd:
		s.eachBackend(f.Backends, func(b *simBackend) { b.listed = true })
	case FaultDNSRemove:
		s.eachBackend(f.Backends, func(b *simBackend) { b.listed = false })
	case FaultReplace:
		var old []*simBackend
		s.eachBackend(f.Backends, func(b *simBackend) { old = append(old, b) })
		for _, n := range f.With {
			b := s.byName[backendName(n)]
			b.stopped = false
			b.update()
			b.listed = true
		}
		for _, b := range old {
			b.listed = false
		}
		drain := f.Drain.D()
		s.q.push(s.now+int64(drain), handlerFunc(func(s *Sim) {
			s.faultRecord(fs, "stop_old")
			s.worldChanged()
			for _, b := range old {
				b.stopped = true
				b.update()
			}
		}))
	case FaultRestart:
		down := f.Down.D()
		for _, c := range s.clients {
			if !matches(f.Clients, c.name, true) {
				continue
			}
			at := s.now
			if f.Spread > 0 {
				at += s.faultRng.Int64N(int64(f.Spread) + 1)
			}
			s.q.push(at, handlerFunc(func(s *Sim) { s.restart(c, down) }))
		}
	case FaultLoad:
		for _, c := range s.clients {
			if matches(f.Clients, c.name, true) {
				c.rate *= f.Factor
				if c.started {
					c.scheduleArrival(s)
				}
			}
		}
	case FaultClose:
		for _, c := range s.clients {
			if !matches(f.Clients, c.name, true) {
				continue
			}
			at := s.now
			if f.Spread > 0 {
				at += s.faultRng.Int64N(int64(f.Spread) + 1)
			}
			fs.pending++
			s.q.push(at, handlerFunc(func(s *Sim) { s.closeClient(fs, c) }))
		}
		if fs.pending == 0 {
			s.closeFaultOver(fs)
		}
	}
}

// faultEnd undoes a fault with a duration.
func (s *Sim) faultEnd(fs *faultState) {
	f := fs.f
	s.faultRecord(fs, "end")
	s.worldChanged()
	switch f.Kind {
	case FaultCrash:
		s.eachBackend(f.Backends, func(b *simBackend) { b.crashes--; b.update() })
	case FaultHang:
		if f.Probability > 0 {
			s.eachBackend(f.Backends, func(b *simBackend) { b.pHang = removeOne(b.pHang, f.Probability) })
		} else {
			s.eachBackend(f.Backends, func(b *simBackend) { b.hang-- })
		}
	case FaultPartition:
		if len(f.Clients) > 0 {
			s.cutClients(f, -1)
		} else {
			s.eachBackend(f.Backends, func(b *simBackend) {
				b.partition--
				if f.losesToBackends() {
					b.partitionIn--
				}
			})
		}
		s.deliverLostCloses()
	case FaultSlow:
		factor := f.Factor
		if f.Ramp > 0 {
			factor = fs.factor
			fs.factor = 0 // the ramp stops
		}
		s.eachBackend(f.Backends, func(b *simBackend) { b.slow /= factor })
	case FaultCheckFail:
		if f.Probability > 0 {
			s.eachBackend(f.Backends, func(b *simBackend) { b.pCheckFail = removeOne(b.pCheckFail, f.Probability) })
		} else {
			s.eachBackend(f.Backends, func(b *simBackend) { b.checkFail-- })
		}
	case FaultErrors:
		if f.Probability > 0 {
			s.eachBackend(f.Backends, func(b *simBackend) { b.pErrors = removeOne(b.pErrors, f.Probability) })
		} else {
			s.eachBackend(f.Backends, func(b *simBackend) { b.errors-- })
		}
	case FaultDemote:
		s.eachBackend(f.Backends, func(b *simBackend) { b.demoted = 0 })
	case FaultDNSOutage:
		s.dnsOutage--
	case FaultPause:
		for _, c := range s.clients {
			if matches(f.Clients, c.name, true) {
				s.resumeClient(c)
			}
		}
	case FaultLoad:
		for _, c := range s.clients {
			if matches(f.Clients, c.name, true) {
				c.rate /= f.Factor
			}
		}
	}
}

// rampSteps is the number of steps of a slow fault's ramp.
const rampSteps = 20

// rampStep sets a ramping slow fault's factor to its n-th step (of
// rampSteps, from 1 to Factor) and schedules the next.
func (s *Sim) rampStep(fs *faultState, n int) {
	f := fs.f
	if n > 1 && fs.factor == 0 {
		return // the fault ended
	}
	prev := fs.factor
	if prev == 0 {
		prev = 1
	}
	fs.factor = 1 + (f.Factor-1)*float64(n)/rampSteps
	s.eachBackend(f.Backends, func(b *simBackend) { b.slow = b.slow / prev * fs.factor })
	if n < rampSteps {
		s.q.push(s.now+int64(f.Ramp)/rampSteps, handlerFunc(func(s *Sim) { s.rampStep(fs, n+1) }))
	}
}

// cutClients adds d to the partitions in force between the clients and
// the backends of f.
func (s *Sim) cutClients(f Fault, d int32) {
	in := f.losesToBackends()
	for _, c := range s.clients {
		if !matches(f.Clients, c.name, true) {
			continue
		}
		if c.cut == nil {
			c.cut = make([]int32, len(s.backends))
			c.cutIn = make([]int32, len(s.backends))
		}
		s.eachBackend(f.Backends, func(b *simBackend) {
			c.cut[b.idx] += d
			if in {
				c.cutIn[b.idx] += d
			}
		})
	}
}

// lostClose is a connection a client closed while its packets to the
// backend were lost: the server holds it until the partition ends.
type lostClose struct {
	c   *client
	b   *simBackend
	inc uint32
}

// loseClose records that the server keeps cn, closed by its client while
// a partition loses its packets to the backend.
func (s *Sim) loseClose(cn *conn) {
	cn.b.ghosts++
	s.lostCloses = append(s.lostCloses, lostClose{c: cn.inst.c, b: cn.b, inc: cn.inc})
}

// deliverLostCloses lets the servers close the connections whose FIN a
// partition that has ended was losing.
func (s *Sim) deliverLostCloses() {
	kept := s.lostCloses[:0]
	for _, lc := range s.lostCloses {
		if lc.c.losesTo(lc.b) {
			kept = append(kept, lc)
			continue
		}
		lc.b.ghosts--
		if lc.b.inc == lc.inc && lc.b.up {
			lc.b.server--
		}
	}
	clear(s.lostCloses[len(kept):])
	s.lostCloses = kept
}

// removeOne removes one v from ps.
func removeOne(ps []float64, v float64) []float64 {
	for i, p := range ps {
		if p == v {
			return append(ps[:i], ps[i+1:]...)
		}
	}
	return ps
}

// faultOver starts measuring the recovery from a fault.
func (s *Sim) faultOver(fs *faultState) {
	s.pendingRec = append(s.pendingRec, fs)
	s.worldChanged()
}

// reset calls Reset on a client's pool.
func (s *Sim) reset(c *client) {
	if s.holdIfPaused(c, func(s *Sim) { s.reset(c) }) {
		return
	}
	if c.inst != nil && c.inst.p != nil && !c.inst.closing {
		c.inst.p.Reset()
	}
}

// restart closes a client's pool and creates a new one down later.
func (s *Sim) restart(c *client, down time.Duration) {
	if s.holdIfPaused(c, func(s *Sim) { s.restart(c, down) }) {
		return
	}
	if s.closed || c.inst == nil {
		return
	}
	s.tr.record(s.now, "client", c.name, "", "restart", fmt.Sprintf("down %v", down), false)
	c.res.restarts++
	s.closeInst(c.inst)
	s.q.push(s.now+int64(down), handlerFunc(func(s *Sim) {
		if s.closed || s.ending {
			return
		}
		s.startPool(c)
	}))
}

// kill ends c's pool as if its host vanished: its connections close on
// the client side, and the servers keep them for linger. With down, the
// client starts a new pool down later.
func (s *Sim) kill(c *client, down, linger time.Duration) {
	if s.holdIfPaused(c, func(s *Sim) { s.kill(c, down, linger) }) {
		return
	}
	if s.closed || c.inst == nil {
		return
	}
	s.tr.record(s.now, "client", c.name, "", "kill", fmt.Sprintf("linger %v", linger), false)
	c.res.restarts++
	c.inst.linger = int64(linger)
	s.closeInst(c.inst)
	if down > 0 {
		s.q.push(s.now+int64(down), handlerFunc(func(s *Sim) {
			if s.closed || s.ending {
				return
			}
			s.startPool(c)
		}))
	}
}

// worldChanged marks every client for a new recovery check.
func (s *Sim) worldChanged() {
	for _, c := range s.clients {
		s.markRecovery(c)
	}
}

// markRecovery queues c for a recovery check, while one is wanted.
func (s *Sim) markRecovery(c *client) {
	if len(s.pendingRec) == 0 || c.recQueued {
		return
	}
	c.recQueued = true
	s.recDirty = append(s.recDirty, c)
}

// evalRecovery re-checks the clients marked since the last event, and
// when every client is back to target, records the recovery of every
// fault waiting for one.
func (s *Sim) evalRecovery() {
	for _, c := range s.recDirty {
		c.recQueued = false
		r := s.recovered(c)
		if r != c.recovered {
			c.recovered = r
			if r {
				s.unrecovered--
			} else {
				s.unrecovered++
			}
		}
	}
	s.recDirty = s.recDirty[:0]
	if s.unrecovered == 0 {
		for _, fs := range s.pendingRec {
			fs.recoveredAt = s.now
			s.tr.record(s.now, "fault", fmt.Sprint(fs.i), "", "recovered", fs.f.describe(), false)
		}
		s.pendingRec = s.pendingRec[:0]
	}
}

// closeState is one graceful close of a client's pool (a close fault).
type closeState struct {
	fs           *faultState
	c            *client
	inst         *poolInst
	began        int64
	claimed      int        // claimed connections when Close began
	end          func() int // the second half of Close
	quiet        bool       // the pool said it is quiet
	done         bool       // Close returned
	returned     int64      // when
	forced       bool       // by the drain deadline or the end of the run
	forcedClaims int        // claimed connections Close closed under their claimers
}

// closeClient begins the graceful close of c's pool: the client stops
// issuing claims, and the pool's Close runs its first half now. The
// second half runs once the pool is quiet, or at the drain deadline.
func (s *Sim) closeClient(fs *faultState, c *client) {
	if s.holdIfPaused(c, func(s *Sim) { s.closeClient(fs, c) }) {
		return
	}
	inst := c.inst
	if s.closed || inst == nil {
		s.closeClientBack(fs) // down or restarting already
		return
	}
	f := fs.f
	s.addStats(inst)
	cs := &closeState{fs: fs, c: c, inst: inst, began: s.now, claimed: inst.nclaimed}
	s.closes = append(s.closes, cs)
	c.inst = nil
	c.gone = f.Down == 0
	c.res.closes++
	inst.closing = true
	s.tr.record(s.now, "client", c.name, "", "close", fmt.Sprintf("%s, %d claimed, drain %v", inst.name, cs.claimed, f.Drain), false)
	cs.end = simhook.CloseAsync(inst.p, func() {
		cs.quiet = true
		s.q.push(s.now, handlerFunc(func(s *Sim) { s.endClose(cs, false) }))
	})
	if cs.end == nil {
		s.violate("close", "%s: Close began on a pool already closing", inst.name)
		return
	}
	s.q.push(s.now+int64(f.Drain), handlerFunc(func(s *Sim) { s.endClose(cs, true) }))
	s.markRecovery(c)
}

// endClose runs the second half of a graceful close: when the pool is
// quiet, or, forced, when the drain deadline passed (or the run ends),
// closing the connections still claimed. It checks that the pool closed
// exactly the claimed connections it says it forced, and left none open.
func (s *Sim) endClose(cs *closeState, forced bool) {
	if cs.done || cs.end == nil || s.holdIfPaused(cs.c, func(s *Sim) { s.endClose(cs, forced) }) {
		return
	}
	cs.done = true
	inst, c := cs.inst, cs.c
	inst.forcing = forced
	cut := inst.cut
	cs.forcedClaims = cs.end()
	cs.returned, cs.forced = s.now, forced
	inst.finished = true
	s.markRecovery(c)
	what := "quiet"
	if forced {
		what = fmt.Sprintf("forced, %d claimed cut", cs.forcedClaims)
	}
	s.tr.record(s.now, "client", c.name, "", "closed", fmt.Sprintf("%s, %s after %v", inst.name, what, time.Duration(s.now-cs.began)), false)
	switch {
	case inst.open-inst.undelivered != 0:
		s.violate("conn-leak", "%s: %d connections still open after Close returned", inst.name, inst.open-inst.undelivered)
	case cs.forcedClaims != inst.cut-cut:
		s.violate("close-forced", "%s: Close says it closed %d claimed connections; %d claimers lost theirs", inst.name, cs.forcedClaims, inst.cut-cut)
	}
	down := cs.fs.f.Down.D()
	if down == 0 || s.closed || s.ending {
		s.closeClientBack(cs.fs)
		return
	}
	s.q.push(s.now+int64(down), handlerFunc(func(s *Sim) {
		if !s.closed && !s.ending && c.inst == nil {
			c.gone = false
			s.tr.record(s.now, "client", c.name, "", "start", "", false)
			s.startPool(c)
		}
		s.closeClientBack(cs.fs)
	}))
}

// closeClientBack records that one client of a close fault is done with
// it: its Close returned and, with down, it started a new pool.
func (s *Sim) closeClientBack(fs *faultState) {
	fs.pending--
	if fs.pending == 0 {
		s.closeFaultOver(fs)
	}
}

// closeFaultOver ends a close fault and starts measuring the recovery.
func (s *Sim) closeFaultOver(fs *faultState) {
	fs.end = s.now
	s.faultRecord(fs, "end")
	s.faultOver(fs)
}
