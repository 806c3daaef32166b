package core

// Demand is the number of slots the default rebalancing wants: one for each
// claim held and each claim waiting, plus the spares, within [minSlots,
// maxSlots].
func Demand(claimed, waiting, spares, minSlots, maxSlots int) int {
	return min(max(claimed+waiting+spares, minSlots), maxSlots)
}

// WantProblems says how a rebalancer's want for one backend broke the
// policy; several may hold at once. The zero value is none.
type WantProblems uint8

const (
	// WantNegative: the want was below zero; it is taken as 0.
	WantNegative WantProblems = 1 << iota
	// WantAbovePerBackend: the want was above MaxSlotsPerBackend; it is cut
	// to it.
	WantAbovePerBackend
	// WantAboveTotal: with the wants of the backends before it, the want
	// passed MaxSlots; it is cut to what remained.
	WantAboveTotal
)

// Has reports whether every problem of q is in p.
func (p WantProblems) Has(q WantProblems) bool { return p&q == q }

// Clamp cuts a rebalancer's want for one backend to the policy: at least
// 0, at most perBackend (Policy.MaxSlotsPerBackend), at most capacity (the
// most the backend accepts, as it showed by refusing connects), and at most
// room (what MaxSlots leaves after the backends before it). It returns the
// want cut and the problems the rebalancer's want had; a cut to the
// backend's capacity is none, since a rebalancer cannot know it beyond
// what it is told.
func Clamp(want, perBackend, capacity, room int) (int, WantProblems) {
	var p WantProblems
	switch {
	case want < 0:
		p |= WantNegative
		want = 0
	case want > perBackend:
		p |= WantAbovePerBackend
		want = perBackend
	}
	want = min(want, capacity)
	if want > room {
		p |= WantAboveTotal
		want = room
	}
	return want, p
}

// DampedShrink returns how many of a backend's surplus slots to remove at
// one periodic rebalance, when each removes share of the surplus (so that
// the surplus decays with a half-life rather than at once). The share is
// rounded to whole slots; what rounding left is kept in *carry for the next
// step, so that a small surplus decays too.
func DampedShrink(carry *float64, surplus int, share float64) int {
	*carry += float64(surplus) * share
	n := min(int(*carry+0.5), surplus)
	*carry -= float64(n)
	return n
}
