package fsm_test

import (
	"testing"

	"github.com/qorbgo/qorb/fsm"
)

// TestSpawnRunsCompletionWithTheLoopHeld checks that I/O runs off the loop
// and its completion on it, and that WaitIdle waits for every job.
func TestSpawnRunsCompletionWithTheLoopHeld(t *testing.T) {
	l := fsm.NewLoop(fsm.Config{Seed: 1, Strict: true})
	idle := 0
	l.OnIdle(func() { idle++ })
	const n = 50
	done := 0
	l.Enter()
	for range n {
		l.Spawn(fsm.Action{Kind: fsm.Connect, ID: "test"}, func() func() {
			// Off the loop: taking it here would deadlock if Spawn ran
			// io with the loop held.
			l.Enter()
			l.Leave()
			return func() { done++ }
		})
	}
	if l.InFlight() != n {
		t.Fatalf("in flight %d, want %d", l.InFlight(), n)
	}
	l.Leave()
	l.WaitIdle()
	l.Enter()
	defer l.Leave()
	if done != n || l.InFlight() != 0 || idle == 0 {
		t.Fatalf("done %d, in flight %d, idle hooks %d", done, l.InFlight(), idle)
	}
}
