package pool

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/qorbgo/qorb/backend"
)

type greedyRebalancer struct{}

func (greedyRebalancer) Rebalance(in RebalanceInput, want []int) {
	for i := range want {
		want[i] = 1000
	}
	if len(want) > 0 {
		want[0] = -5
	}
}

type wildPicker struct{ panics bool }

func (w wildPicker) Pick(cands []Candidate, _ *rand.Rand) int {
	if w.panics {
		panic("picker bug")
	}
	return len(cands) + 3
}

type negativeBackoff struct{}

func (negativeBackoff) Delay(int, *rand.Rand) time.Duration { return -time.Second }

func TestBadRebalancerIsCappedAndReported(t *testing.T) {
	pol := Policy{MaxSlots: 6, MaxSlotsPerBackend: 4, Rebalancer: greedyRebalancer{}}
	h := newHarness(t, pol, 3, nil)
	st := h.stats()
	if st.Slots.Total > 6 {
		t.Fatalf("%d slots, MaxSlots 6", st.Slots.Total)
	}
	for _, b := range st.Backends {
		if b.Slots.Total > 4 {
			t.Fatalf("backend %s has %d slots, cap 4", b.Name, b.Slots.Total)
		}
	}
	if !strings.Contains(st.PolicyError, "rebalancer wanted") {
		t.Fatalf("policy error %q", st.PolicyError)
	}
	h.claim().Release()
}

func TestBadPickerFallsBackToFirstCandidate(t *testing.T) {
	for _, panics := range []bool{false, true} {
		h := newHarness(t, Policy{Picker: wildPicker{panics: panics}}, 3, nil)
		for range 5 {
			h.claim().Release()
		}
		st := h.stats()
		if st.Claims != 5 || st.PolicyError == "" {
			t.Fatalf("panics=%v: claims %d, policy error %q", panics, st.Claims, st.PolicyError)
		}
	}
}

func TestNegativeBackoffIsReportedAndRetriesGoOn(t *testing.T) {
	h := newHarness(t, Policy{Backoff: negativeBackoff{}, DeadAfter: 1000, MaxSlots: 1}, 1, func(f *fakeConnector) backend.Connector[*fakeConn] {
		f.fail[name(1)] = errors.New("refused")
		return f
	})
	delays := h.backoffDelays(func() { h.advance(time.Second) })
	for _, d := range delays {
		if d != 20*time.Millisecond {
			t.Fatalf("delay %v, want BackoffMin", d)
		}
	}
	h.fake.set(func(f *fakeConnector) { delete(f.fail, name(1)) })
	h.advance(time.Second)
	st := h.stats()
	if !strings.Contains(st.PolicyError, "negative") || st.State != "running" {
		t.Fatalf("state %s, policy error %q", st.State, st.PolicyError)
	}
}

// panicky panics in Connect for one backend and in Validate for another.
type panicky struct{ *fakeConnector }

func (p panicky) Connect(ctx context.Context, b backend.Backend) (*fakeConn, error) {
	if b.Name == name(1) {
		panic("connect bug")
	}
	return p.fakeConnector.Connect(ctx, b)
}

func (p panicky) Validate(_ context.Context, c *fakeConn) error {
	if c.b.Name == name(2) {
		panic("validate bug")
	}
	return nil
}

func TestPanickingConnectorIsAnError(t *testing.T) {
	h := newHarness(t, Policy{DeadAfter: 2}, 3, func(f *fakeConnector) backend.Connector[*fakeConn] { return panicky{f} })
	h.advance(time.Second)
	st := h.stats()
	for _, b := range st.Backends[:2] {
		if b.State != "failing" || !strings.Contains(b.LastError, "panicked") {
			t.Fatalf("backend %s: %+v", b.Name, b)
		}
	}
	var pe *PanicError
	h.p.loop.Enter()
	err := h.p.sets[name(1)].LastErr()
	h.p.loop.Leave()
	if !errors.As(err, &pe) || pe.Op != "connect" {
		t.Fatalf("last error %v is not a connect PanicError", err)
	}
	for range 10 {
		hd := h.claim()
		if hd.Backend().Name != name(3) {
			t.Fatalf("claim served by %s", hd.Backend().Name)
		}
		hd.Release()
	}
}

func TestErroringConnectorKeepsLastError(t *testing.T) {
	h := newHarness(t, Policy{DeadAfter: 1000, ClaimTimeout: time.Second}, 1, func(f *fakeConnector) backend.Connector[*fakeConn] {
		f.fail[name(1)] = errors.New("dial tcp 127.0.0.1:7001: connection refused")
		return f
	})
	err := h.claimAfter(time.Second)
	want := "pool: no backends online: last error: connect 127.0.0.1:7001: dial tcp 127.0.0.1:7001: connection refused"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

func TestConnectTimeoutOnTheLoopClock(t *testing.T) {
	pol := Policy{ConnectTimeout: 2 * time.Second, DeadAfter: 1000, MaxSlots: 1}
	h := startHarnessNoSettle(t, pol, 1, func(f *fakeConnector) backend.Connector[*fakeConn] {
		f.hang[name(1)] = true // honours its context
		return f
	})
	h.advanceNoWait(2 * time.Second)
	h.p.loop.WaitIdle()
	st := h.stats()
	if st.Failures == 0 || !strings.Contains(st.LastError, "timed out after 2s") {
		t.Fatalf("after the connect timeout: failures %d, last error %q", st.Failures, st.LastError)
	}
}

// leastClaimedOutOfPlace is LeastClaimed under another type, so that the
// pool takes the general path: candidates, then Pick.
type leastClaimedOutOfPlace struct{ LeastClaimed }

// TestLeastClaimedInPlace checks that the pool's index for the default
// picker chooses what LeastClaimed.Pick chooses from candidates.
func TestLeastClaimedInPlace(t *testing.T) {
	h := newHarness(t, Policy{MaxSlots: 16, SparesWanted: 16}, 5, nil)
	var held []*Handle[*fakeConn]
	for range 12 {
		h.p.loop.Enter()
		fast := h.p.pick()
		// The general path: candidates built and Pick called.
		h.p.pol.Picker, h.p.leastClaimed = leastClaimedOutOfPlace{}, false
		general := h.p.pick()
		h.p.pol.Picker, h.p.leastClaimed = LeastClaimed{}, true
		h.p.loop.Leave()
		if fast == nil || fast.set != general.set {
			t.Fatalf("in place chose %v, Pick chose %v", fast, general)
		}
		held = append(held, h.claim())
	}
	for _, hd := range held {
		hd.Release()
	}
}

// TestLeastClaimedChecks corrupts the LeastClaimed index in the ways a
// missed update would, and checks that the simulator's checks see each:
// the entry of a set that moved (lcCheckSet), and a set moved without a
// transition (an ejection) by the whole check it calls for.
func TestLeastClaimedChecks(t *testing.T) {
	h := newHarness(t, Policy{MaxSlots: 16, SparesWanted: 16}, 5, nil)
	p := h.p
	p.loop.Enter()
	defer p.loop.Leave()
	if err := p.lcCheckEvent(); err != nil {
		t.Fatalf("a sound index: %v", err)
	}
	s := p.order[2]
	for _, corrupt := range []struct {
		name string
		do   func() (undo func())
	}{
		{"stale bucket", func() func() {
			in := s.lcIn
			s.lcIn++
			return func() { s.lcIn = in }
		}},
		{"bit in a second bucket", func() func() {
			for len(p.lc.buckets) < 3 {
				p.lc.buckets = append(p.lc.buckets, make([]uint64, p.lc.words))
			}
			b := p.lc.buckets[2]
			b[0] |= 1 << s.rank
			return func() { b[0] &^= 1 << s.rank }
		}},
		{"wrong rank", func() func() {
			r := s.rank
			s.rank = 3
			return func() { s.rank = r }
		}},
	} {
		undo := corrupt.do()
		if err := p.lcCheckSet(s); err == nil {
			t.Errorf("%s: lcCheckSet saw nothing", corrupt.name)
		}
		undo()
		if err := p.lcCheckSet(s); err != nil {
			t.Fatalf("%s undone: %v", corrupt.name, err)
		}
	}
	// An ejection without its update of the index: the next check is
	// a whole one.
	s.fb.ejected = true
	p.lc.moved++
	if err := p.lcCheckEvent(); err == nil {
		t.Errorf("an ejection the index missed: lcCheckEvent saw nothing")
	}
	s.fb.ejected = false
	if err := p.lcCheckEvent(); err != nil {
		t.Fatalf("ejection undone: %v", err)
	}
}

// TestDefaultRebalancerProbeOrder checks the short round of
// DefaultRebalancer (fewer slots than backends) against a stable sort of
// the backends by probe rank.
func TestDefaultRebalancerProbeOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		n := 1 + rng.IntN(40)
		in := RebalanceInput{Sets: make([]SetInfo, n), MaxSlots: 1 + rng.IntN(n), Claimed: rng.IntN(4), Spares: rng.IntN(8)}
		for i := range in.Sets {
			in.Sets[i] = SetInfo{Online: rng.IntN(3) == 0, Dead: rng.IntN(4) == 0, Failures: rng.IntN(4), Cap: rng.IntN(3)}
		}
		got := make([]int, n)
		DefaultRebalancer{}.Rebalance(in, got)
		// The reference: one slot each in a stable order by probe rank,
		// then the share round robin as Rebalance hands it out.
		want := make([]int, n)
		order := make([]int, n)
		for i := range order {
			order[i] = i
		}
		slices.SortStableFunc(order, func(a, b int) int { return probeRank(in.Sets[a]) - probeRank(in.Sets[b]) })
		budget, given := in.MaxSlots, 0
		for _, i := range order {
			if budget > 0 && in.Sets[i].Cap > 0 {
				want[i], budget, given = 1, budget-1, given+1
			}
		}
		target := min(max(in.Claimed+in.Waiters+in.Spares, in.Min), in.MaxSlots)
		for share := min(max(target-given, 0), budget); share > 0; {
			gave := false
			for i, s := range in.Sets {
				if share > 0 && s.Online && want[i] < s.Cap {
					want[i]++
					share--
					gave = true
				}
			}
			if !gave {
				break
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("sets %+v, MaxSlots %d: got %v, want %v", in.Sets, in.MaxSlots, got, want)
		}
	}
}
