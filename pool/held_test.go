package pool

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// Held lists the claims held, oldest first, with their labels under
// TrackHeld; Stats counts them per label; a claim that ended is gone.
func TestHeldListsClaimsWithTheirLabels(t *testing.T) {
	h := newHarness(t, Policy{MaxSlots: 4, SparesWanted: 4, TrackHeld: true}, 2, nil)
	checkout, err := h.p.Claim(WithClaimLabel(context.Background(), "checkout"))
	if err != nil {
		t.Fatal(err)
	}
	h.p.Stats() // a clock read: the claim's age runs from here
	h.advance(3 * time.Second)
	report, err := h.p.Claim(WithClaimLabel(context.Background(), "report"))
	if err != nil {
		t.Fatal(err)
	}
	plain := h.claim()
	h.p.Stats()
	h.advance(time.Second)
	held := h.p.Held()
	if len(held) != 3 {
		t.Fatalf("Held: %+v, want 3 claims", held)
	}
	if held[0].Label != "checkout" || held[0].Age != 4*time.Second {
		t.Errorf("oldest: %+v, want checkout held 4s", held[0])
	}
	if got := []string{held[1].Label, held[2].Label}; !(got[0] == "report" && got[1] == "" || got[0] == "" && got[1] == "report") {
		t.Errorf("the others: %+v", held[1:])
	}
	if held[1].Age != time.Second || held[2].Age != time.Second || held[0].Backend == "" {
		t.Errorf("ages %v and %v, want 1s; backend %q", held[1].Age, held[2].Age, held[0].Backend)
	}
	st := h.stats()
	if st.HeldByLabel["checkout"] != 1 || st.HeldByLabel["report"] != 1 || st.HeldByLabel[""] != 1 || len(st.HeldByLabel) != 3 {
		t.Errorf("HeldByLabel = %v", st.HeldByLabel)
	}
	checkout.Release()
	report.Discard(nil)
	plain.Release()
	h.settle()
	if held := h.p.Held(); len(held) != 0 {
		t.Errorf("after every claim ended, Held: %+v", held)
	}
	for sl, hi := range h.p.held {
		if sl.cur != nil && hi.claim == sl.claimed {
			t.Errorf("the registry holds a claim that ended: %+v", hi)
		}
	}
}

// Without TrackHeld, Held still lists the claims and their ages, and no
// label is read.
func TestHeldWithoutTracking(t *testing.T) {
	h := newHarness(t, Policy{MaxSlots: 2, SparesWanted: 2}, 1, nil)
	hd, err := h.p.Claim(WithClaimLabel(context.Background(), "ignored"))
	if err != nil {
		t.Fatal(err)
	}
	h.p.Stats()
	h.advance(2 * time.Second)
	held := h.p.Held()
	if len(held) != 1 || held[0].Label != "" || held[0].Age != 2*time.Second {
		t.Fatalf("Held: %+v, want one unlabelled claim of 2s", held)
	}
	if st := h.stats(); st.HeldByLabel != nil {
		t.Errorf("HeldByLabel without TrackHeld: %v", st.HeldByLabel)
	}
	if h.p.held != nil {
		t.Error("a registry was made without TrackHeld")
	}
	hd.Release()
}

// A claim held past LeakThreshold is reported once, with its label and
// stack, in the log and to the leak handler, without the loop held; one
// released in time is not. A handler that panics is a policy error, and
// the pool goes on.
func TestLeakThreshold(t *testing.T) {
	var mu sync.Mutex
	var leaks []HeldClaim
	got := make(chan struct{}, 16)
	var h *harness
	onLeak := WithLeakHandler(func(hc HeldClaim) {
		h.p.Stats() // the pool may be called: the loop is not held
		mu.Lock()
		leaks = append(leaks, hc)
		mu.Unlock()
		got <- struct{}{}
		if hc.Label == "panics" {
			panic("handler bug")
		}
	})
	h = newHarness(t, Policy{MaxSlots: 4, SparesWanted: 4, TrackHeld: true, HeldStacks: true, LeakThreshold: time.Second}, 1, nil, onLeak)
	leaked, err := h.p.Claim(WithClaimLabel(context.Background(), "leaky"))
	if err != nil {
		t.Fatal(err)
	}
	quick, err := h.p.Claim(WithClaimLabel(context.Background(), "quick"))
	if err != nil {
		t.Fatal(err)
	}
	h.advance(500 * time.Millisecond)
	quick.Release()
	h.advance(3 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	select {
	case <-got:
	case <-ctx.Done():
		t.Fatal("no leak reported")
	}
	h.advance(3 * time.Second) // later scans report nothing new
	h.settle()
	mu.Lock()
	if len(leaks) != 1 || leaks[0].Label != "leaky" || leaks[0].Age < time.Second || leaks[0].Age > 1500*time.Millisecond {
		t.Errorf("leaks %+v: want the one leaky claim, reported between 1s and 1.5s", leaks)
	}
	if len(leaks) == 1 && !strings.Contains(leaks[0].Stack, "TestLeakThreshold") {
		t.Errorf("the leak's stack does not name its claimer:\n%s", leaks[0].Stack)
	}
	mu.Unlock()
	if st := h.stats(); st.Leaks != 1 {
		t.Errorf("Stats.Leaks = %d, want 1", st.Leaks)
	}
	leaked.Release()

	// A handler that panics.
	bad, err := h.p.Claim(WithClaimLabel(context.Background(), "panics"))
	if err != nil {
		t.Fatal(err)
	}
	h.advance(2 * time.Second)
	select {
	case <-got:
	case <-ctx.Done():
		t.Fatal("no leak reported")
	}
	h.settle()
	bad.Release()
	st := h.stats()
	if !strings.Contains(st.PolicyError, "leak handler panicked: handler bug") {
		t.Errorf("PolicyError = %q", st.PolicyError)
	}
	h.claim().Release()
}
