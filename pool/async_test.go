package pool

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/fsm"
	"github.com/qorbgo/qorb/resolver"
	"github.com/qorbgo/qorb/slot"
)

func TestClaimAsyncServesInOrderAndTimesOut(t *testing.T) {
	h := newHarness(t, Policy{MaxSlots: 1, ClaimTimeout: time.Minute}, 1, nil)
	var got []string
	var first *Handle[*fakeConn]
	h.p.claimAsync(nil, 0, func(hd any, err error) {
		if err != nil {
			t.Errorf("first: %v", err)
		}
		first = hd.(*Handle[*fakeConn])
		got = append(got, "first")
	})
	if first == nil {
		t.Fatal("the fast path did not answer before returning")
	}
	var second *Handle[*fakeConn]
	h.p.claimAsync(nil, 0, func(hd any, err error) { second = hd.(*Handle[*fakeConn]); got = append(got, "second") })
	var thirdErr error
	h.p.claimAsync(nil, 5*time.Second, func(hd any, err error) {
		if hd != nil {
			t.Errorf("third: a handle with error %v", err)
		}
		thirdErr = err
		got = append(got, "third")
	})
	if len(got) != 1 {
		t.Fatalf("served %v while the only slot is claimed", got)
	}
	first.Release()
	if second == nil {
		t.Fatal("release did not serve the queued claim")
	}
	h.advance(5 * time.Second)
	if !errors.Is(thirdErr, ErrAllClaimsUsed) {
		t.Fatalf("third: %v", thirdErr)
	}
	second.Release()
	if len(got) != 3 || got[1] != "second" || got[2] != "third" {
		t.Fatalf("order %v", got)
	}
}

func TestPoolsShareOneLoop(t *testing.T) {
	clk := clock.NewMock()
	l := fsm.NewLoop(fsm.Config{Clock: clk, Seed: 3, Strict: true})
	var ids []string
	l.AddObserver(fsm.ObserverFunc(func(tr fsm.Transition) {
		if st, ok := slot.Kind.Step(tr); ok && st.Event == slot.ConnectOK {
			ids = append(ids, tr.ID)
		}
	}))
	var pools []*Pool[*fakeConn]
	fake := newFakeConnector()
	for _, n := range []string{"a", "b"} {
		p, err := New(resolver.NewFixed(addr(1)), backend.Connector[*fakeConn](fake), Policy{MaxSlots: 1, SparesWanted: 1}, withLoop(l), WithName(n))
		if err != nil {
			t.Fatal(err)
		}
		pools = append(pools, p)
	}
	l.WaitIdle()
	slices.Sort(ids)
	if len(ids) != 2 || !strings.HasPrefix(ids[0], "a/") || !strings.HasPrefix(ids[1], "b/") {
		t.Fatalf("slot ids %v, want one per pool, prefixed by its name", ids)
	}
	for _, p := range pools {
		done := make(chan error, 1)
		go func() { done <- p.Close(t.Context()) }()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if fake.openCount() != 0 {
		t.Fatalf("%d open", fake.openCount())
	}
}

// withLoop is internal/simhook.WithLoop, for the tests of this package.
func withLoop(l *fsm.Loop) Option { return func(o *options) { o.loop = l } }
