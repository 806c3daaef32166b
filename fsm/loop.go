package fsm

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
)

// Transition is the record of one executed (or refused) transition: the Go
// analogue of qorb's DTrace probes. Traces, logs and metrics all come from it.
type Transition struct {
	At      time.Time `json:"at"`
	Machine string    `json:"machine"` // machine kind: "slot", "set", "resolver", "pool"
	ID      string    `json:"id"`      // the machine's stable identity within the pool
	From    string    `json:"from"`
	Event   string    `json:"event"`
	To      string    `json:"to"`
	// Impossible is set when the declaration has no transition for (From,
	// Event); To then equals From and the machine did not move.
	Impossible bool `json:"impossible,omitempty"`
}

// String formats the record as one trace line.
func (t Transition) String() string {
	s := fmt.Sprintf("%s %s[%s] %s --%s--> %s", t.At.UTC().Format(time.RFC3339Nano), t.Machine, t.ID, t.From, t.Event, t.To)
	if t.Impossible {
		s += " (impossible)"
	}
	return s
}

// Observer receives every transition. Observe is called on the loop, with the
// loop held, in the order the transitions happen: it must return quickly and
// must not call back into the pool.
type Observer interface {
	Observe(Transition)
}

// ObserverFunc adapts a function to [Observer].
type ObserverFunc func(Transition)

// Observe calls f(t).
func (f ObserverFunc) Observe(t Transition) { f(t) }

// ImpossibleError reports an event that has no transition from the current
// state. It is a bug in the caller of [Loop.Fire].
type ImpossibleError struct{ Transition }

// Error describes the refused transition.
func (e *ImpossibleError) Error() string {
	return fmt.Sprintf("fsm: impossible transition: %s[%s] in %s has no event %s", e.Machine, e.ID, e.From, e.Event)
}

// Loop is the one event loop of a pool: a lock-protected executor with a
// timer heap, a clock, a seeded random source and the observers.
//
// Concurrency contract: every method except [NewLoop], [Loop.Enter],
// [Loop.Spawn]'s I/O function and [Loop.WaitIdle] must be called with the
// loop held, that is between [Loop.Enter] and [Loop.Leave]. Timer callbacks
// and the completions of spawned I/O run with the loop held.
type Loop struct {
	mu        sync.Mutex
	clk       clock.Clock
	rng       *rand.Rand
	logger    *slog.Logger
	observers []Observer
	strict    bool

	heap []*Timer
	seq  uint64

	wake   *clock.Timer
	wakeAt time.Time // deadline the wake timer is armed for; zero when disarmed
	rearm  bool
	halted bool

	inflight int
	idle     sync.Cond
	onIdle   []func()
	check    func()
	spawner  func(io func() func())
	logs     []logRecord // written during the event, emitted by Leave

	// Registration IDs, parallel to observers and onIdle, for removal.
	regSeq      uint64
	observerIDs []uint64
	onIdleIDs   []uint64
}

// NewLoop returns a loop reading time from clk and drawing randomness from a
// PCG source seeded with seed. A nil logger discards. Impossible transitions
// panic when the binary is a test (testing.Testing), and are logged
// otherwise.
func NewLoop(clk clock.Clock, seed uint64, logger *slog.Logger) *Loop {
	if clk == nil {
		clk = clock.New()
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	l := &Loop{
		clk:    clk,
		rng:    rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		logger: logger,
		strict: testing.Testing(),
	}
	l.idle.L = &l.mu
	return l
}

// Enter takes the loop. The caller then runs one event to completion and
// calls [Loop.Leave].
func (l *Loop) Enter() { l.mu.Lock() }

// Leave rearms the real timer if the earliest deadline moved, and releases
// the loop.
func (l *Loop) Leave() {
	if l.check != nil {
		l.check()
	}
	if l.rearm {
		l.arm()
	}
	if len(l.logs) == 0 {
		l.mu.Unlock()
		return
	}
	logs := l.takeLogs()
	l.mu.Unlock()
	emit(logs)
}

// Clock is the loop's clock.
func (l *Loop) Clock() clock.Clock { return l.clk }

// Now reads the loop's clock.
func (l *Loop) Now() time.Time { return l.clk.Now() }

// Rand is the loop's one seeded random source. Use it only with the loop held.
func (l *Loop) Rand() *rand.Rand { return l.rng }

// Logger is the loop's logger.
func (l *Loop) Logger() *slog.Logger { return l.logger }

// AddObserver registers o for every later transition. Calling the
// returned function (with the loop held) unregisters it.
func (l *Loop) AddObserver(o Observer) (remove func()) {
	if o == nil {
		return func() {}
	}
	l.regSeq++
	id := l.regSeq
	l.observers = append(l.observers, o)
	l.observerIDs = append(l.observerIDs, id)
	return func() {
		if i := slices.Index(l.observerIDs, id); i >= 0 {
			l.observers = slices.Delete(l.observers, i, i+1)
			l.observerIDs = slices.Delete(l.observerIDs, i, i+1)
		}
	}
}

// Observed reports whether any observer is registered, so that callers can
// skip building records nobody reads.
func (l *Loop) Observed() bool { return len(l.observers) > 0 }

// SetStrict chooses whether an impossible transition panics (true) or is
// only logged and reported (false).
func (l *Loop) SetStrict(strict bool) { l.strict = strict }

// Fire executes event ev on the machine of kind m whose state is *state and
// whose identity is id, and reports the transition. It returns false, leaves
// *state unchanged and reports an [ImpossibleError] (panicking in strict
// mode) when the declaration has no such transition.
func (l *Loop) Fire(m *Machine, id string, state *int8, ev int) bool {
	from := int(*state)
	to, ok := m.Next(from, ev)
	if !ok {
		t := Transition{At: l.clk.Now(), Machine: m.name, ID: id, From: m.StateName(from), Event: m.EventName(ev), To: m.StateName(from), Impossible: true}
		l.notify(t)
		err := &ImpossibleError{t}
		l.Log(nil, slog.LevelError, err.Error())
		if l.strict {
			panic(err)
		}
		return false
	}
	*state = int8(to)
	if len(l.observers) > 0 {
		l.notify(Transition{At: l.clk.Now(), Machine: m.name, ID: id, From: m.states[from], Event: m.events[ev], To: m.states[to]})
	}
	return true
}

// Report sends a record to the observers, for events outside the declared
// machines (a slot being created).
func (l *Loop) Report(t Transition) { l.notify(t) }

func (l *Loop) notify(t Transition) {
	for _, o := range l.observers {
		l.observe(o, t)
	}
}

// observe calls one observer, recovering a panic so that the event it
// reports still completes.
func (l *Loop) observe(o Observer, t Transition) {
	defer func() {
		if v := recover(); v != nil {
			l.Log(nil, slog.LevelError, "fsm: observer panicked", "panic", v, "transition", t.String())
		}
	}()
	o.Observe(t)
}

// SetSpawner replaces how [Loop.Spawn] runs I/O. The default runs io on a new
// goroutine and then its completion with the loop held. A simulator installs
// one that runs both in virtual time. Call it before any Spawn.
func (l *Loop) SetSpawner(s func(io func() func())) { l.spawner = s }

// Spawn runs io off the loop. io does the I/O (connect, check, close) without
// touching machine state and returns the completion, which then runs with the
// loop held, or nil. Spawn itself must be called with the loop held; the
// number of spawned jobs not yet completed is [Loop.InFlight].
func (l *Loop) Spawn(io func() func()) {
	l.inflight++
	if l.spawner != nil {
		l.spawner(func() func() {
			done := io()
			return func() {
				if done != nil {
					done()
				}
				l.jobDone()
			}
		})
		return
	}
	go func() {
		done := io()
		l.Enter()
		// Leave even when the completion panics, so that the loop is not
		// left held.
		defer l.Leave()
		defer l.jobDone()
		if done != nil {
			done()
		}
	}()
}

func (l *Loop) jobDone() {
	l.inflight--
	if l.inflight == 0 {
		l.idle.Broadcast()
		for _, f := range l.onIdle {
			f()
		}
	}
}

// OnEventEnd sets a function run, with the loop held, at the end of every
// event: at each Leave and after each timer fires. Tests and the simulator
// check invariants there, when no event is half done.
func (l *Loop) OnEventEnd(f func()) { l.check = f }

// OnIdle adds a function run, with the loop held, each time the last
// spawned job in flight completes. Calling the returned function (with the
// loop held) removes it.
func (l *Loop) OnIdle(f func()) (remove func()) {
	l.regSeq++
	id := l.regSeq
	l.onIdle = append(l.onIdle, f)
	l.onIdleIDs = append(l.onIdleIDs, id)
	return func() {
		if i := slices.Index(l.onIdleIDs, id); i >= 0 {
			l.onIdle = slices.Delete(l.onIdle, i, i+1)
			l.onIdleIDs = slices.Delete(l.onIdleIDs, i, i+1)
		}
	}
}

// InFlight is the number of spawned jobs whose completion has not run yet.
func (l *Loop) InFlight() int { return l.inflight }

// WaitIdle blocks, without the loop held, until no spawned job is in flight.
// Tests use it to run to quiescence instead of sleeping.
func (l *Loop) WaitIdle() {
	l.mu.Lock()
	for l.inflight > 0 {
		l.idle.Wait()
	}
	if l.rearm {
		l.arm()
	}
	logs := l.takeLogs()
	l.mu.Unlock()
	emit(logs)
}

// Halt disarms the real timer for good: timers still in the heap stay there
// but no longer fire on their own. Pools halt their loop when they close.
func (l *Loop) Halt() {
	l.halted = true
	if l.wake != nil {
		l.wake.Stop()
	}
	l.wakeAt = time.Time{}
}
