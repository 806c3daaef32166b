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
	other := crowded.NewRand("slot", "b2/0")
	for range 100 {
		other.Uint64()
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
// draws without allocating.
func TestStreamDrawsDoNotAllocate(t *testing.T) {
	l := fsm.NewLoop(fsm.Config{Seed: 1})
	var s fsm.Stream
	s.Init(l, "slot", "b/0")
	var sink int64
	if n := testing.AllocsPerRun(100, func() { sink += s.Int64N(1000) + int64(s.IntN(1000)) + int64(1000*s.Float64()) }); n != 0 {
		t.Fatalf("%v allocations per draw", n)
	}
	if sink == 0 {
		t.Fatal("no draws")
	}
}

// TestStreamViews checks that a stream's own draws, its Rand and the
// loop's NewRand of the same name are one sequence.
func TestStreamViews(t *testing.T) {
	l := fsm.NewLoop(fsm.Config{Seed: 9})
	var a, b fsm.Stream
	a.Init(l, "pool", "p")
	b.Init(l, "pool", "p")
	c := l.NewRand("pool", "p")
	for i := range 20 {
		x, y, z := a.Int64N(1<<40), b.Rand().Int64N(1<<40), c.Int64N(1<<40)
		if x != y || y != z {
			t.Fatalf("draw %d: stream %d, its Rand %d, NewRand %d", i, x, y, z)
		}
	}
}
