package sim

import (
	"context"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/qorbgo/qorb/fsm"
)

// epoch is virtual time zero. Traces print times as seconds since it.
var epoch = time.Date(2000, time.January, 1, 0, 0, 0, 0, time.UTC)

// vclock is the simulator's virtual clock. Only Nanos, Now (and Since,
// Until) are used: the loop is halted, so it never arms a timer of the clock's own,
// and the simulator advances time itself from its event queue and the
// loop's timer heap. The timer methods panic, to catch a pool that starts
// reading real time behind the loop's back.
//
// The time is ns, nanoseconds since epoch, which is what the simulator
// sets and what the loop reads (fsm.NanoClock); the time.Time is built
// only when asked for, once per value of ns. A new clock is
// vclock{now: epoch}.
type vclock struct {
	ns  int64     // now, in nanoseconds since epoch
	at  int64     // the ns that now is for
	now time.Time // epoch plus at
}

var _ fsm.NanoClock = (*vclock)(nil)

// Nanos returns the time as nanoseconds since epoch.
func (c *vclock) Nanos() int64 { return c.ns }

func (c *vclock) Now() time.Time {
	if c.at != c.ns {
		c.now, c.at = epoch.Add(time.Duration(c.ns)), c.ns
	}
	return c.now
}

func (c *vclock) Since(t time.Time) time.Duration { return c.now.Sub(t) }
func (c *vclock) Until(t time.Time) time.Duration { return t.Sub(c.now) }

func (c *vclock) After(time.Duration) <-chan time.Time { panic("sim: clock.After in a simulation") }
func (c *vclock) AfterFunc(time.Duration, func()) *clock.Timer {
	panic("sim: clock.AfterFunc in a simulation (the loop must be halted)")
}
func (c *vclock) Sleep(time.Duration)                 { panic("sim: clock.Sleep in a simulation") }
func (c *vclock) Tick(time.Duration) <-chan time.Time { panic("sim: clock.Tick in a simulation") }
func (c *vclock) Ticker(time.Duration) *clock.Ticker  { panic("sim: clock.Ticker in a simulation") }
func (c *vclock) Timer(time.Duration) *clock.Timer    { panic("sim: clock.Timer in a simulation") }
func (c *vclock) WithDeadline(context.Context, time.Time) (context.Context, context.CancelFunc) {
	panic("sim: clock.WithDeadline in a simulation")
}
func (c *vclock) WithTimeout(context.Context, time.Duration) (context.Context, context.CancelFunc) {
	panic("sim: clock.WithTimeout in a simulation")
}
