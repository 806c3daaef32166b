package pool

import (
	"context"
	"sync"
	"time"
)

// ioCtx is the context of one I/O of a slot (a connect, a check, a recycle
// hook): context.WithCancel(context.Background()) in one allocation. Its
// Done channel is made only when asked for, and it implements AfterFunc
// itself, so that context.AfterFunc on it (as connector/tcp uses to end a
// blocked read) costs no goroutine until it is cancelled.
type ioCtx struct {
	mu     sync.Mutex
	done   chan struct{} // made by Done, or closedCh once cancelled
	err    error         // context.Canceled once cancelled
	afters []*ioAfter    // the AfterFunc functions not yet run or stopped
}

// ioAfter is one function registered with ioCtx.AfterFunc.
type ioAfter struct {
	f    func()
	done bool // run or stopped
}

// closedCh is the Done channel of an ioCtx cancelled before Done was asked
// for.
var closedCh = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Deadline reports no deadline: the pool ends an I/O by cancelling it.
func (c *ioCtx) Deadline() (time.Time, bool) { return time.Time{}, false }

// Done returns a channel closed when the context is cancelled.
func (c *ioCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		if c.err != nil {
			c.done = closedCh
		} else {
			c.done = make(chan struct{})
		}
	}
	return c.done
}

// Err returns context.Canceled once the context is cancelled, else nil.
func (c *ioCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Value returns nil: the context carries no values.
func (c *ioCtx) Value(any) any { return nil }

// AfterFunc arranges for f to run in its own goroutine once the context
// is cancelled (at once if it already is), as context.AfterFunc does, which
// calls it. stop keeps f from running and reports whether it did.
func (c *ioCtx) AfterFunc(f func()) (stop func() bool) {
	a := &ioAfter{f: f}
	c.mu.Lock()
	if c.err != nil {
		a.done = true
		c.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	c.afters = append(c.afters, a)
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if a.done {
			return false
		}
		a.done = true
		return true
	}
}

// cancel cancels the context: Done closes, Err says context.Canceled, and
// the AfterFunc functions not stopped start. Later calls do nothing.
func (c *ioCtx) cancel() {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = context.Canceled
	if c.done != nil {
		close(c.done)
	}
	afters := c.afters
	c.afters = nil
	var run []func()
	for _, a := range afters {
		if !a.done {
			a.done = true
			run = append(run, a.f)
		}
	}
	c.mu.Unlock()
	for _, f := range run {
		go f()
	}
}
