package slotset_test

import (
	"testing"

	"pgregory.net/rapid"

	"github.com/qorbgo/qorb/fsm"
	"github.com/qorbgo/qorb/slotset"
)

// refSet is the slot set as a reference model: online is "has a
// connection", draining is "removed", stopped is terminal.
type refSet struct {
	live    int
	removed bool
	stopped bool
}

func (r *refSet) state() slotset.State {
	switch {
	case r.stopped:
		return slotset.Stopped
	case r.removed:
		return slotset.Draining
	case r.live > 0:
		return slotset.Online
	}
	return slotset.Offline
}

// TestSetAgainstModel drives a set's machine the way the pool does (up when
// the first connection arrives, down when the last goes, remove, restore,
// drained, stop) and checks it against the model after every step.
func TestSetAgainstModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		l := fsm.NewLoop(fsm.Config{Seed: 1, Strict: true})
		l.Enter()
		defer l.Leave()
		var real fsm.State[slotset.State, slotset.Event]
		var ref refSet
		fire := func(t *rapid.T, e slotset.Event) {
			if !slotset.Kind.Fire(l, &real, "b", e) {
				t.Fatalf("%s refused in %s", e, real.Get())
			}
		}
		t.Repeat(map[string]func(*rapid.T){
			"connect": func(t *rapid.T) {
				if ref.stopped || ref.removed {
					t.Skip("no connects while draining or stopped")
				}
				ref.live++
				if ref.live == 1 {
					fire(t, slotset.Up)
				}
			},
			"lose": func(t *rapid.T) {
				if ref.live == 0 || ref.stopped {
					t.Skip("nothing to lose")
				}
				ref.live--
				if ref.live == 0 && !ref.removed {
					fire(t, slotset.Down)
				}
			},
			"remove": func(t *rapid.T) {
				if ref.removed || ref.stopped {
					t.Skip("already removed")
				}
				ref.removed = true
				fire(t, slotset.Remove)
				if ref.live == 0 {
					ref.stopped = true
					fire(t, slotset.Drained)
				}
			},
			"restore": func(t *rapid.T) {
				if !ref.removed || ref.stopped {
					t.Skip("not draining")
				}
				ref.removed = false
				fire(t, slotset.Restore)
				if ref.live > 0 {
					fire(t, slotset.Up)
				}
			},
			"drain out": func(t *rapid.T) {
				if !ref.removed || ref.stopped || ref.live == 0 {
					t.Skip("not draining with connections")
				}
				ref.live--
				if ref.live == 0 {
					ref.stopped = true
					fire(t, slotset.Drained)
				}
			},
			"stop": func(t *rapid.T) {
				if ref.stopped {
					t.Skip("stopped")
				}
				ref.stopped = true
				fire(t, slotset.Stop)
			},
			"stopped stays stopped": func(t *rapid.T) {
				if !ref.stopped {
					t.Skip("not stopped")
				}
				for e := range slotset.Kind.Machine().Events() {
					if _, ok := slotset.Kind.Next(real.Get(), slotset.Event(e)); ok {
						t.Fatalf("stopped set accepts %s", slotset.Event(e))
					}
				}
			},
			"": func(t *rapid.T) {
				if got := real.Get(); got != ref.state() {
					t.Fatalf("machine in %s, model in %s (%+v)", got, ref.state(), ref)
				}
			},
		})
	})
}
