package fsm

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/benbjohnson/clock"
)

// Transition is the record of one executed (or refused) transition: the Go
// analogue of qorb's DTrace probes. Traces, logs and metrics all come from
// it. It carries the machine's kind and its states and event as the small
// integers of their typed constants; they become names only at the edge
// ([Transition.String], JSON, logs). [Kind.Step] reads them back typed.
type Transition struct {
	At      time.Time // when, on the loop's clock
	Machine *Machine  // the machine's kind
	ID      string    // the machine's stable identity within the pool
	From    int8      // the state left
	Event   int8      // the event fired
	To      int8      // the state entered
	// Impossible is set when the declaration has no transition for (From,
	// Event); To then equals From and the machine did not move.
	Impossible bool
	// Created is set on the record of a new machine (see [Kind.Created]):
	// To is its first state, From equals To and Event is not meaningful.
	// Its names print as "" and "create".
	Created bool
}

// Kind returns the machine kind's name ("slot", "set", "resolver", "pool").
func (t *Transition) Kind() string { return t.Machine.Name() }

// FromName returns the name of the state left, or "" for a creation.
func (t *Transition) FromName() string {
	if t.Created {
		return ""
	}
	return t.Machine.StateName(int(t.From))
}

// EventName returns the name of the event, or "create" for a creation.
func (t *Transition) EventName() string {
	if t.Created {
		return "create"
	}
	return t.Machine.EventName(int(t.Event))
}

// ToName returns the name of the state entered.
func (t *Transition) ToName() string { return t.Machine.StateName(int(t.To)) }

// String formats the record as one trace line.
func (t Transition) String() string {
	s := fmt.Sprintf("%s %s[%s] %s --%s--> %s", t.At.UTC().Format(time.RFC3339Nano), t.Kind(), t.ID, t.FromName(), t.EventName(), t.ToName())
	if t.Impossible {
		s += " (impossible)"
	}
	return s
}

// transitionJSON is the record's JSON form: names, not numbers.
type transitionJSON struct {
	At         time.Time `json:"at"`
	Machine    string    `json:"machine"`
	ID         string    `json:"id"`
	From       string    `json:"from"`
	Event      string    `json:"event"`
	To         string    `json:"to"`
	Impossible bool      `json:"impossible,omitempty"`
}

// MarshalJSON writes the record with names for its kind, states and event:
// {"at","machine","id","from","event","to"}, and "impossible" when set.
func (t Transition) MarshalJSON() ([]byte, error) {
	return json.Marshal(transitionJSON{At: t.At, Machine: t.Kind(), ID: t.ID, From: t.FromName(),
		Event: t.EventName(), To: t.ToName(), Impossible: t.Impossible})
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
// state. It is a bug in the caller of [Kind.Fire].
type ImpossibleError struct{ Transition }

// Error describes the refused transition.
func (e *ImpossibleError) Error() string {
	return fmt.Sprintf("fsm: impossible transition: %s[%s] in %s has no event %s", e.Kind(), e.ID, e.FromName(), e.EventName())
}

// Config configures a [Loop]. The zero value is a loop on the real clock,
// seeded with 0, that discards its logs and is not strict.
type Config struct {
	// Clock is what the loop reads time and sets its one real timer
	// through. Nil means the real clock. A clock that also implements
	// [NanoClock] is read through Nanos where the loop wants a stamp (see
	// [Loop.Nanos]), which is cheaper than reading and subtracting a
	// time.Time.
	Clock clock.Clock
	// Seed seeds every random stream of the loop (see [Stream]).
	Seed uint64
	// Logger receives the loop's logs (impossible transitions). Nil
	// discards.
	Logger *slog.Logger
	// Strict makes an impossible transition panic with an
	// [*ImpossibleError] after it is reported. Tests and the simulator turn
	// it on; otherwise it is reported to the observers and logged as an
	// error, and the machine does not move.
	Strict bool
}

// NanoClock is a clock that can give its time as a count of nanoseconds,
// without building a time.Time. A virtual clock, which keeps its time as
// such a count, implements it so that the loop's timers and stamps cost
// no time arithmetic. The loop checks for it once, in [NewLoop].
type NanoClock interface {
	clock.Clock
	// Nanos returns the clock's time as nanoseconds since an origin of
	// the clock's choosing that never changes: Now() is always
	// origin.Add(time.Duration(Nanos())).
	Nanos() int64
}

// Loop is the one event loop of a pool: a lock-protected executor with a
// timer heap, a clock, seeded random streams and the observers.
//
// Concurrency contract: every method except [NewLoop], [Loop.Enter],
// [Loop.Spawn]'s I/O function and [Loop.WaitIdle] must be called with the
// loop held, that is between [Loop.Enter] and [Loop.Leave]. Timer callbacks
// and the completions of spawned I/O run with the loop held.
type Loop struct {
	mu        sync.Mutex
	clk       clock.Clock
	seed      uint64
	logger    *slog.Logger
	observers []Observer
	slow      int8 // -1 with observers: Kind.Fire then takes its slow path
	strict    bool

	heap []*Timer
	seq  uint32
	gate func(*Timer) bool // see SetTimerGate; nil: every due timer fires

	wake   *clock.Timer
	wakeAt int64 // deadline the wake timer is armed for, when armed
	armed  bool
	rearm  bool
	halted bool

	inflight int
	idle     sync.Cond
	onIdle   []func()
	check    func()
	spawner  func(a Action, job func() func())
	logs     []logRecord // written during the event, emitted by Leave
	later    []func()    // Later's, run by Leave once the loop is released
	mono     bool        // the real clock, read as root plus monotonic time
	root     time.Time   // the loop's start: timers keep deadlines as offsets from it
	nano     NanoClock   // clk, when it is one; nil otherwise
	nanoRoot int64       // nano's Nanos at root
	deferred []func()    // follow-up work, run at the end of the event
	// stamp is the time of the current event's transition records, read
	// once per event (stamped); both are cleared when the event ends.
	stamp   time.Time
	stamped bool

	// Registration IDs, parallel to observers and onIdle, for removal.
	regSeq      uint64
	observerIDs []uint64
	onIdleIDs   []uint64
}

// NewLoop returns a loop configured by cfg.
func NewLoop(cfg Config) *Loop {
	l := &Loop{clk: cfg.Clock, seed: cfg.Seed, logger: cfg.Logger, strict: cfg.Strict}
	if l.clk == nil {
		l.clk = clock.New()
		// On the real clock, time is read from the monotonic clock alone,
		// as an offset from a root: about half the cost of a wall-clock
		// read, and immune to the wall clock being set.
		l.root = time.Now()
		l.mono = true
	} else if nc, ok := l.clk.(NanoClock); ok {
		l.nano = nc
		l.root, l.nanoRoot = nc.Now(), nc.Nanos()
	} else {
		l.root = l.clk.Now()
	}
	if l.logger == nil {
		l.logger = slog.New(slog.DiscardHandler)
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
	if len(l.deferred) > 0 {
		l.runDeferred()
	}
	if l.check != nil {
		l.check()
	}
	l.stamped = false
	if l.rearm {
		l.arm()
	}
	if len(l.logs) == 0 && len(l.later) == 0 {
		l.mu.Unlock()
		return
	}
	logs, later := l.takeLogs(), l.later
	l.later = nil
	l.mu.Unlock()
	emit(logs)
	for _, f := range later {
		f()
	}
}

// Defer queues f to run at the end of the current event, with the loop
// held: after the event's handler has returned, before the invariant check
// and before the loop is left (at Leave, or after the timer that fired).
// Functions queued while deferred ones run, run too, in the order queued.
// Components queue their follow-up work here instead of calling each
// other's handlers from inside a handler.
func (l *Loop) Defer(f func()) { l.deferred = append(l.deferred, f) }

func (l *Loop) runDeferred() {
	for i := 0; i < len(l.deferred); i++ {
		f := l.deferred[i]
		l.deferred[i] = nil
		f()
	}
	l.deferred = l.deferred[:0]
}

// Clock is the loop's clock.
func (l *Loop) Clock() clock.Clock { return l.clk }

// Now reads the loop's clock.
//
// On the real clock (Config.Clock nil) it reads the monotonic clock only:
// the result is the loop's start plus the time elapsed since, so it does
// not follow later changes of the wall clock.
func (l *Loop) Now() time.Time {
	if l.mono {
		return l.root.Add(time.Since(l.root))
	}
	return l.clk.Now()
}

// Nanos reads the loop's clock as nanoseconds from the loop's root time
// (its start): a stamp that takes 8 bytes where a time.Time takes 24.
// [Loop.Time] turns it back into a time.
func (l *Loop) Nanos() int64 { return l.nanos() }

// Time returns the time of a stamp made by [Loop.Nanos].
func (l *Loop) Time(n int64) time.Time { return l.root.Add(time.Duration(n)) }

func (l *Loop) nanos() int64 {
	if l.mono {
		return int64(time.Since(l.root))
	}
	if l.nano != nil {
		return l.nano.Nanos() - l.nanoRoot
	}
	return int64(l.clk.Now().Sub(l.root))
}

// eventTime is the time of the current event's transition records: the
// clock is read once per event, at its first record, so that observing
// costs one read per event however many machines move.
func (l *Loop) eventTime() time.Time {
	if !l.stamped {
		l.stamp, l.stamped = l.Now(), true
	}
	return l.stamp
}

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
	l.slow = -1
	return func() {
		if i := slices.Index(l.observerIDs, id); i >= 0 {
			l.observers = slices.Delete(l.observers, i, i+1)
			l.observerIDs = slices.Delete(l.observerIDs, i, i+1)
			if len(l.observers) == 0 {
				l.slow = 0
			}
		}
	}
}

// Observed reports whether any observer is registered, so that callers can
// skip building records nobody reads.
func (l *Loop) Observed() bool { return len(l.observers) > 0 }

// Strict reports whether an impossible transition panics (see
// [Config.Strict]).
func (l *Loop) Strict() bool { return l.strict }

// fire is the slow path of [Kind.Fire]: a transition with observers to
// tell, an impossible one, or one on no loop. It returns the state the
// machine is in afterwards.
func (l *Loop) fire(m *Machine, id string, from, ev int8) (int8, bool) {
	to, ok := m.Next(int(from), int(ev))
	if !ok {
		t := Transition{Machine: m, ID: id, From: from, Event: ev, To: from, Impossible: true}
		err := &ImpossibleError{t}
		if l == nil {
			panic(err)
		}
		err.At = l.eventTime()
		l.notify(err.Transition)
		l.Log(nil, slog.LevelError, err.Error())
		if l.strict {
			panic(err)
		}
		return from, false
	}
	if l != nil && len(l.observers) > 0 {
		l.notify(Transition{At: l.eventTime(), Machine: m, ID: id, From: from, Event: ev, To: int8(to)})
	}
	return int8(to), true
}

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

// SetSpawner replaces the driver that runs spawned actions. The default
// runs io on a new goroutine and then its completion with the loop held. A
// simulator installs one that runs both in virtual time; a test can hold
// the actions and complete them when its script says. The spawner is called
// with the loop held; it must run the job's function (its I/O) at most once
// and then run what that returns with the loop held. Call it before any
// Spawn.
func (l *Loop) SetSpawner(s func(a Action, job func() func())) { l.spawner = s }

// Driven reports whether a driver installed with [Loop.SetSpawner] runs
// the actions: only such a driver reads an action's ID, so a caller can
// leave it empty otherwise.
func (l *Loop) Driven() bool { return l.spawner != nil }

// Spawn asks the driver to carry out action a: io does the I/O (connect,
// check, close, query) off the loop, without touching machine state, and
// returns the completion, which then runs with the loop held, or nil.
// Spawn itself must be called with the loop held; the number of spawned
// jobs not yet completed is [Loop.InFlight].
func (l *Loop) Spawn(a Action, io func() func()) {
	l.inflight++
	if l.spawner != nil {
		l.spawner(a, func() func() {
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
	l.armed = false
}
