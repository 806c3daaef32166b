package pool

import (
	"log/slog"

	"github.com/benbjohnson/clock"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/fsm"
)

// Option configures what is not policy: the clock, the seed, observers,
// the logger and the pool's name.
type Option func(*options)

type options struct {
	clock     clock.Clock
	seed      uint64
	observers []fsm.Observer
	logger    *slog.Logger
	name      string
	loop      *fsm.Loop
	tracers   []Tracer
	strict    bool
	connHooks any // a connHooks[C]
	onLeak    func(HeldClaim)
}

// connHooks are the functions of WithConnHooks, typed.
type connHooks[C any] struct {
	added, removed func(backend.Backend, C)
}

// WithConnHooks has the pool tell of every connection it holds: added when
// a slot takes a new connection (connected and, with a Validator, checked),
// removed when the pool lets it go, before the connector closes it. Each
// connection is reported added once and removed at most once (a pool
// whose Close gave up on a connector's Close still reports it), in that
// order. They run on the pool's loop, with the loop held, in the order the
// pool decides: they must return quickly and must not call the pool (hand
// the work to a goroutine of your own). C must be the pool's connection
// type, or New fails. Either may be nil. Package connset builds connection
// sets on them.
func WithConnHooks[C any](added, removed func(b backend.Backend, c C)) Option {
	return func(o *options) { o.connHooks = connHooks[C]{added: added, removed: removed} }
}

// WithClock makes the pool read time and set timers through c (for
// example a clock.Mock in tests). Default: the real clock.
func WithClock(c clock.Clock) Option { return func(o *options) { o.clock = c } }

// WithSeed seeds the pool's random streams: the pool's own (decoherence,
// the picker), each slot set's (its place in the preference order), each
// slot's (backoff, health-check and lifetime jitter) and the resolver's,
// each derived from the seed and the component's name (see
// [fsm.Stream]). Default: 1.
func WithSeed(seed uint64) Option { return func(o *options) { o.seed = seed } }

// WithObserver registers an observer of every machine transition.
func WithObserver(obs fsm.Observer) Option {
	return func(o *options) { o.observers = append(o.observers, obs) }
}

// WithLogger sets the logger. Default: discard.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithName names the pool in logs, traces and Stats. Default: "pool".
func WithName(name string) Option { return func(o *options) { o.name = name } }

// WithTracer registers a tracer of claims, releases, connects and closes:
// a value implementing one or more of [ClaimTracer], [ReleaseTracer],
// [ConnectTracer] and [CloseTracer]. New fails when it implements none.
// Several tracers may be registered; each is called in turn.
func WithTracer(t Tracer) Option { return func(o *options) { o.tracers = append(o.tracers, t) } }

// WithStrict makes an impossible transition of any of the pool's machines
// panic, after it is reported to the observers and logged; tests turn it on
// (see [fsm.Config.Strict]). Default: off, the transition is reported and
// logged and the machine does not move.
func WithStrict(strict bool) Option { return func(o *options) { o.strict = strict } }
