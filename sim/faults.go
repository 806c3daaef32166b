package sim

import (
	"fmt"
	"strings"
	"time"
)

// faultState is one scheduled fault and what became of it.
type faultState struct {
	i           int
	f           Fault
	recoveredAt int64 // first time every client was back to target after the fault's end; -1 before
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
	if f.For > 0 {
		fmt.Fprintf(&b, " for %v", f.For)
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
		s.eachBackend(f.Backends, func(b *simBackend) { b.hang++ })
	case FaultPartition:
		s.eachBackend(f.Backends, func(b *simBackend) { b.partition++ })
	case FaultSlow:
		s.eachBackend(f.Backends, func(b *simBackend) { b.slow *= f.Factor })
	case FaultCheckFail:
		s.eachBackend(f.Backends, func(b *simBackend) { b.checkFail++ })
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
		s.eachBackend(f.Backends, func(b *simBackend) { b.hang-- })
	case FaultPartition:
		s.eachBackend(f.Backends, func(b *simBackend) { b.partition-- })
	case FaultSlow:
		s.eachBackend(f.Backends, func(b *simBackend) { b.slow /= f.Factor })
	case FaultCheckFail:
		s.eachBackend(f.Backends, func(b *simBackend) { b.checkFail-- })
	case FaultDNSOutage:
		s.dnsOutage--
	case FaultLoad:
		for _, c := range s.clients {
			if matches(f.Clients, c.name, true) {
				c.rate /= f.Factor
			}
		}
	}
}

// faultOver starts measuring the recovery from a fault.
func (s *Sim) faultOver(fs *faultState) {
	s.pendingRec = append(s.pendingRec, fs)
	s.worldChanged()
}

// restart closes a client's pool and creates a new one down later.
func (s *Sim) restart(c *client, down time.Duration) {
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
