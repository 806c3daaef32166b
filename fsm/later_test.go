package fsm

import (
	"testing"
)

// Later's functions run after the loop is released, in the order queued,
// and one queued while they run waits for the next event.
func TestLaterRunsWithTheLoopReleased(t *testing.T) {
	l := NewLoop(Config{})
	var got []string
	l.Enter()
	l.Later(func() {
		if !l.mu.TryLock() {
			t.Error("the loop is held while a Later function runs")
			return
		}
		l.mu.Unlock()
		got = append(got, "first")
	})
	l.Later(func() { got = append(got, "second") })
	if len(got) != 0 {
		t.Fatal("ran before the event ended")
	}
	l.Leave()
	if len(got) != 2 || got[0] != "first" || got[1] != "second" {
		t.Fatalf("ran %v, want [first second]", got)
	}
	// A later event runs only its own.
	l.Enter()
	l.Leave()
	if len(got) != 2 {
		t.Fatalf("ran again: %v", got)
	}
}
