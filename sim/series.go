package sim

// series is the time series behind the picture: at fixed intervals, the
// connections open to each backend, and over each interval the claims
// served, the longest wait and the failed claims.
type series struct {
	s        *Sim
	interval int64
	next     int64
	points   []point

	served uint64
	failed uint64
	maxW   int64
	sumW   int64
}

type point struct {
	at     int64
	held   []int32 // per backend, at the end of the interval
	served uint64
	failed uint64
	maxW   int64
	meanW  int64
}

func (se *series) init(s *Sim, n int) {
	se.s = s
	se.interval = max(s.end/int64(n), 1e6)
	se.next = se.interval
}

func (se *series) claimServed(wait int64) {
	se.served++
	se.sumW += wait
	se.maxW = max(se.maxW, wait)
}

func (se *series) claimError() { se.failed++ }

// upTo records every point due before virtual time t.
func (se *series) upTo(t int64) {
	for se.next <= t && se.next <= se.s.end {
		p := point{at: se.next, served: se.served, failed: se.failed, maxW: se.maxW}
		if se.served > 0 {
			p.meanW = se.sumW / int64(se.served)
		}
		p.held = make([]int32, len(se.s.backends))
		for i, b := range se.s.backends {
			p.held[i] = int32(b.held)
		}
		se.points = append(se.points, p)
		se.served, se.failed, se.maxW, se.sumW = 0, 0, 0, 0
		se.next += se.interval
	}
}
