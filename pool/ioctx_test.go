package pool

import (
	"context"
	"errors"
	"testing"
	"time"
)

// ioCtx behaves as context.WithCancel(context.Background()) does: Done
// closes and Err says Canceled at cancel, whenever Done was asked for;
// context.AfterFunc on it runs once at cancel unless stopped; a child
// context (WithTimeout, as connectors make) ends with it.
func TestIOCtx(t *testing.T) {
	bound, stop := context.WithTimeout(context.Background(), 10*time.Second)
	defer stop()
	wait := func(what string, ch <-chan struct{}) {
		t.Helper()
		select {
		case <-ch:
		case <-bound.Done():
			t.Fatalf("%s: not within the bound", what)
		}
	}

	c := &ioCtx{}
	if c.Err() != nil {
		t.Fatal("Err before cancel")
	}
	if _, ok := c.Deadline(); ok || c.Value("k") != nil {
		t.Fatal("a deadline or a value")
	}
	early := c.Done()
	ran := make(chan struct{}, 2)
	stopA := context.AfterFunc(c, func() { ran <- struct{}{} })
	stopB := context.AfterFunc(c, func() { t.Error("a stopped AfterFunc ran") })
	if !stopB() {
		t.Fatal("stop before cancel reported false")
	}
	child, cancelChild := context.WithTimeout(c, time.Hour)
	defer cancelChild()
	select {
	case <-early:
		t.Fatal("Done closed before cancel")
	default:
	}
	c.cancel()
	c.cancel() // a second cancel does nothing
	wait("Done asked before cancel", early)
	wait("Done asked after cancel", c.Done())
	wait("the AfterFunc", ran)
	wait("the child context", child.Done())
	if !errors.Is(c.Err(), context.Canceled) || !errors.Is(child.Err(), context.Canceled) {
		t.Fatalf("Err %v, child's %v: want Canceled", c.Err(), child.Err())
	}
	if stopA() {
		t.Fatal("stop after the function ran reported true")
	}
	// AfterFunc on a cancelled context runs at once.
	late := make(chan struct{})
	context.AfterFunc(c, func() { close(late) })
	wait("an AfterFunc after cancel", late)

	// Done never asked for: cancel makes no channel; Done after it is
	// closed.
	d := &ioCtx{}
	d.cancel()
	if d.done != nil && d.done != closedCh {
		t.Fatal("cancel made a channel nobody asked for")
	}
	wait("Done after cancel", d.Done())
}
