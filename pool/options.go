package pool

import (
	"log/slog"

	"github.com/benbjohnson/clock"

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
	strict    bool
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

// WithStrict makes an impossible transition of any of the pool's machines
// panic, after it is reported to the observers and logged; tests turn it on
// (see [fsm.Config.Strict]). Default: off, the transition is reported and
// logged and the machine does not move. It is ignored with [WithLoop]: a
// shared loop has its own setting.
func WithStrict(strict bool) Option { return func(o *options) { o.strict = strict } }

// WithLoop runs the pool on an existing loop instead of a loop of its own,
// so that several pools (a fleet of clients in a simulation) share one
// clock, one seed and one timer heap, and their events interleave in one
// deterministic order. The loop's clock, seed, logger and strictness are
// used; WithClock, WithSeed, WithLogger and WithStrict are ignored. On a
// shared loop the IDs of the pool's slots and sets in transition records
// (and so their random streams) start with the pool's name and a slash.
func WithLoop(l *fsm.Loop) Option { return func(o *options) { o.loop = l } }
