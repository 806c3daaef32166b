package fsm_test

import (
	"slices"
	"testing"

	"github.com/qorbgo/qorb/fsm"
)

// TestStreamsAreIndependent checks that a stream's draws depend only on the
// loop's seed and the stream's name: not on which other streams exist or
// what they drew.
func TestStreamsAreIndependent(t *testing.T) {
	draws := func(l *fsm.Loop, kind, id string) []uint64 {
		var s fsm.Stream
		s.Init(l, kind, id)
		out := make([]uint64, 8)
		for i := range out {
			out[i] = s.Rand().Uint64()
		}
		return out
	}
	l := fsm.NewLoop(fsm.Config{Seed: 42})
	alone := draws(l, "slot", "b1/0")

	crowded := fsm.NewLoop(fsm.Config{Seed: 42})
	other := crowded.NewStream("slot", "b2/0")
	for range 100 {
		other.Rand().Uint64()
	}
	if got := draws(crowded, "slot", "b1/0"); !slices.Equal(got, alone) {
		t.Fatalf("draws of slot b1/0 changed with another stream: %v, want %v", got, alone)
	}
	if got := draws(l, "slot", "b1/1"); slices.Equal(got, alone) {
		t.Fatal("two slots draw the same numbers")
	}
	if got := draws(l, "set", "b1/0"); slices.Equal(got, alone) {
		t.Fatal("two kinds with one id draw the same numbers")
	}
	if got := draws(fsm.NewLoop(fsm.Config{Seed: 43}), "slot", "b1/0"); slices.Equal(got, alone) {
		t.Fatal("the seed does not change the draws")
	}
}

// TestStreamDrawsDoNotAllocate checks that an embedded stream, once set up,
// draws without allocating, also through the *rand.Rand it hands out.
func TestStreamDrawsDoNotAllocate(t *testing.T) {
	l := fsm.NewLoop(fsm.Config{Seed: 1})
	var s fsm.Stream
	s.Init(l, "slot", "b/0")
	var sink int64
	if n := testing.AllocsPerRun(100, func() { sink += s.Rand().Int64N(1000) }); n != 0 {
		t.Fatalf("%v allocations per draw", n)
	}
	if sink == 0 {
		t.Fatal("no draws")
	}
}
