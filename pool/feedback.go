package pool

import (
	"log/slog"
	"math"
	"math/rand/v2"
	"time"

	"github.com/qorbgo/qorb/fsm"
	"github.com/qorbgo/qorb/slotset"
)

// Report tells the pool how the backend did for this claim: how long the
// request took, and an error when the backend is at fault (a server
// error, an overload), not the connection (for a broken connection, use
// Discard). Call it before Release or Discard, any number of times. The
// pool keeps, per backend, a decaying average of the latencies (each
// report moves it an eighth of the way) that the latency-aware picker
// (LeastLatency) reads, and counts the backend's errors in a row for
// outlier ejection (Policy.Ejection). A report after the claim ended does
// nothing and is counted as misuse.
func (h *Handle[C]) Report(latency time.Duration, backendErr error) {
	p := h.pool("Report")
	p.loop.Enter()
	defer p.loop.Leave()
	if h.sl.cur != h {
		p.st.misuse++
		p.logError("handle used after its claim ended", "op", "Report", "backend", h.sl.set.b.Name)
		return
	}
	s := h.sl.set
	if s.fb.reports == 0 {
		s.fb.latency = latency
	} else {
		s.fb.latency = s.fb.decayed(p.reports, len(p.order)) // what the pickers saw
		s.fb.latency += (latency - s.fb.latency) / 8
	}
	s.fb.reports++
	p.reports++
	s.fb.at = p.reports
	probe := s.fb.probing && s.probe == h.sl
	if backendErr == nil {
		s.fb.errsInRow = 0
		if probe {
			p.unejectDone(s)
		}
		return
	}
	s.fb.errsInRow++
	s.fb.errors++
	if e := p.pol.Ejection; e.ConsecutiveErrors > 0 && (s.fb.errsInRow >= e.ConsecutiveErrors || probe) {
		p.eject(s)
	}
}

// Ejection is outlier ejection (Envoy's): a backend whose claimers
// reported ConsecutiveErrors backend errors in a row (Handle.Report) gets
// no claims for BaseTime times the number of times it was ejected, at
// most MaxTime; then one claim probes it, and the probe's report returns
// it to service or ejects it again. At most MaxEjectedPercent of the
// backends are ejected at once, and never the last one claims could go
// to. Its connections stay open and health-checked while it is ejected.
// The zero value turns ejection off.
type Ejection struct {
	ConsecutiveErrors int           // errors in a row that eject; 0: off
	BaseTime          time.Duration // the first ejection's length; default 30s
	MaxTime           time.Duration // the longest ejection; default 5m
	MaxEjectedPercent int           // of the backends, at most this share ejected at once; default 10 (at least one backend)
}

func (e Ejection) withDefaults() Ejection {
	if e.ConsecutiveErrors > 0 {
		if e.BaseTime == 0 {
			e.BaseTime = 30 * time.Second
		}
		if e.MaxTime == 0 {
			e.MaxTime = 5 * time.Minute
		}
		if e.MaxEjectedPercent == 0 {
			e.MaxEjectedPercent = 10
		}
	}
	return e
}

// feedback is what a set keeps of its claimers' reports.
type feedback struct {
	latency   time.Duration // decaying average, as of the report numbered at
	at        uint64        // the pool's count of reports at this set's last one
	reports   uint64
	errors    uint64
	errsInRow int
	ejected   bool // no claims go to it, but a probe when probing
	probing   bool // its ejection ended: one claim may go to it
	probeOut  bool // the probe claim has been handed out
	times     int  // how many times it was ejected
	ejections uint64
	timer     fsm.Timer // the ejection's end
}

// decayed is the set's average latency as the pickers see it once the
// pool has had reports reports, over n backends: it halves for every 32
// reports per backend made since the set's last one, so that a backend
// that was slow, and gets no claim for it, is tried again in time (and
// its new reports say whether it still is).
func (f *feedback) decayed(reports uint64, n int) time.Duration {
	since := reports - f.at
	if f.latency == 0 || since == 0 {
		return f.latency
	}
	return time.Duration(float64(f.latency) * math.Exp2(-float64(since)/float64(32*max(n, 1))))
}

// pickable reports whether claims may go to s as far as ejection goes.
func (s *set[C]) pickable() bool {
	return !s.fb.ejected || (s.fb.probing && !s.fb.probeOut)
}

// eject takes s out of the backends claims go to, if the limit allows.
func (p *Pool[C]) eject(s *set[C]) {
	e := p.pol.Ejection
	if s.fb.ejected && !s.fb.probing {
		return
	}
	if !s.fb.ejected {
		n, ejected := 0, 0
		for _, o := range p.order {
			if o.State() == slotset.Draining {
				continue
			}
			n++
			if o.fb.ejected {
				ejected++
			}
		}
		limit := max(1, n*e.MaxEjectedPercent/100)
		if ejected+1 > limit || ejected+1 >= n {
			return // too many out already, or it is the last one in
		}
	}
	s.fb.ejected, s.fb.probing, s.fb.probeOut, s.probe = true, false, false, nil
	s.fb.times++
	s.fb.ejections++
	p.st.ejections++
	d := min(time.Duration(s.fb.times)*e.BaseTime, e.MaxTime)
	p.loop.After(&s.fb.timer, d)
	p.loop.Log(p.log, slog.LevelWarn, "backend ejected", "backend", s.b.Name, "for", d, "errors in a row", s.fb.errsInRow)
	p.lc.moved++
	p.lcUpdate(s)
}

// probeEnded ends the probe claim of s that gave no report: a release
// returns s to service, a discard ejects it again.
func (p *Pool[C]) probeEnded(sl *pslot[C], discarded bool) {
	s := sl.set
	if !s.fb.probing || s.probe != sl {
		return
	}
	if discarded {
		p.eject(s)
		return
	}
	p.unejectDone(s)
}

// picked records that a claim goes to s: the probe, if s is probing.
func (p *Pool[C]) picked(s *set[C], sl *pslot[C]) {
	if s.fb.probing && !s.fb.probeOut {
		s.fb.probeOut, s.probe = true, sl
		p.lc.moved++
		p.lcUpdate(s)
	}
}

// ejectionOver lets one claim probe s.
func (p *Pool[C]) ejectionOver(s *set[C]) {
	s.fb.probing, s.fb.probeOut = true, false
	p.lc.moved++
	p.lcUpdate(s)
}

// unejectDone returns s to service after a good probe.
func (p *Pool[C]) unejectDone(s *set[C]) {
	s.fb.ejected, s.fb.probing, s.fb.probeOut, s.probe = false, false, false, nil
	s.fb.errsInRow = 0
	p.lc.moved++
	p.lcUpdate(s)
}

// LeastLatency picks by the power of two choices (as Finagle does): of
// two candidates drawn at random, the one whose claimers reported the
// lower average latency (Handle.Report), and of equals the one with fewer
// claimed slots. A backend with no report yet counts as fastest, so that
// it is tried. A backend's average decays while the others are reported
// on (by half every 32 reports per backend), so that one that was slow
// is tried again once it may have recovered.
type LeastLatency struct{}

// Pick implements [Picker].
func (LeastLatency) Pick(cands []Candidate, r *rand.Rand) int {
	n := len(cands)
	if n < 2 {
		return 0
	}
	i := r.IntN(n)
	j := r.IntN(n - 1)
	if j >= i {
		j++
	}
	a, b := cands[i], cands[j]
	switch {
	case a.Latency < b.Latency:
		return i
	case b.Latency < a.Latency:
		return j
	case b.Claimed < a.Claimed:
		return j
	}
	return i
}
