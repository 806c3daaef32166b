package fsm

import "math/rand/v2"

// Stream is the random stream of one component (a slot, a slot set, a
// resolver), derived from the loop's seed and the
// component's name, so that adding a component does not change what any
// other draws. It is 16 bytes: embed it in its component and set it up once
// with [Stream.Init]; its own draws (IntN, Int64N, Float64) then allocate
// nothing. A Stream must not be copied after Init, and must be used only
// with the loop held.
type Stream struct {
	_   noCopy
	pcg rand.PCG
}

// Init seeds s from the loop's seed and the component's name: kind (such as
// "slot") and id (its identity, unique among components of that kind on
// the loop). Two streams with the same loop seed, kind and id draw the same
// numbers.
func (s *Stream) Init(l *Loop, kind, id string) {
	s.pcg.Seed(streamSeed(l.seed, kind, id))
}

// IntN returns a uniform int in [0, n); it panics if n <= 0.
func (s *Stream) IntN(n int) int { return rand.New(&s.pcg).IntN(n) }

// Int64N returns a uniform int64 in [0, n); it panics if n <= 0.
func (s *Stream) Int64N(n int64) int64 { return rand.New(&s.pcg).Int64N(n) }

// Float64 returns a uniform float64 in [0, 1).
func (s *Stream) Float64() float64 { return rand.New(&s.pcg).Float64() }

// Rand returns a *rand.Rand drawing from s, for the policies that take one.
// It allocates a small wrapper (16 bytes) on each call, so that a Stream
// itself stays 16 bytes: call it where a draw is rare (a backoff), and use
// [Loop.NewRand] for a component that hands a *rand.Rand out often.
func (s *Stream) Rand() *rand.Rand { return rand.New(&s.pcg) }

// NewRand returns a *rand.Rand drawing from the stream named kind and id,
// seeded as by [Stream.Init], for a long-lived component that hands a
// *rand.Rand to a policy often (the pool's picker). It allocates; a
// component that draws rarely, or many of which exist (slots), embeds a
// [Stream] instead.
func (l *Loop) NewRand(kind, id string) *rand.Rand {
	return rand.New(rand.NewPCG(streamSeed(l.seed, kind, id)))
}

// streamSeed is the PCG seed of the stream named kind/id: the loop's seed,
// and the 64-bit FNV-1a hash of "kind/id".
func streamSeed(seed uint64, kind, id string) (uint64, uint64) {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for i := 0; i < len(kind); i++ {
		h = (h ^ uint64(kind[i])) * prime
	}
	h = (h ^ '/') * prime
	for i := 0; i < len(id); i++ {
		h = (h ^ uint64(id[i])) * prime
	}
	return seed, h
}

// noCopy makes go vet's copylocks check report a copied [Stream].
type noCopy struct{}

func (*noCopy) Lock()   {}
func (*noCopy) Unlock() {}
