package fsm_test

import (
	"testing"

	"github.com/qorbgo/qorb/fsm"
	"github.com/qorbgo/qorb/slot"
)

// BenchmarkFire fires a claim and a giveback on a slot with no observer
// (two transitions per op): the cost every pool event pays.
func BenchmarkFire(b *testing.B) {
	l := fsm.NewLoop(fsm.Config{Seed: 1})
	var st fsm.State[slot.State, slot.Event]
	l.Enter()
	defer l.Leave()
	slot.Kind.Fire(l, &st, "s", slot.ConnectOK)
	b.ReportAllocs()
	for b.Loop() {
		slot.Kind.Fire(l, &st, "s", slot.Claim)
		slot.Kind.Fire(l, &st, "s", slot.Giveback)
	}
	if st.Get() != slot.Connected {
		b.Fatalf("slot in %s", st.Get())
	}
}

// BenchmarkFireObserved is BenchmarkFire with one observer: each transition
// reads the clock and builds a record.
func BenchmarkFireObserved(b *testing.B) {
	l := fsm.NewLoop(fsm.Config{Seed: 1})
	n := 0
	l.AddObserver(fsm.ObserverFunc(func(fsm.Transition) { n++ }))
	var st fsm.State[slot.State, slot.Event]
	l.Enter()
	defer l.Leave()
	slot.Kind.Fire(l, &st, "s", slot.ConnectOK)
	b.ReportAllocs()
	for b.Loop() {
		slot.Kind.Fire(l, &st, "s", slot.Claim)
		slot.Kind.Fire(l, &st, "s", slot.Giveback)
	}
	if n < 2*b.N {
		b.Fatalf("%d records for %d ops", n, b.N)
	}
}
