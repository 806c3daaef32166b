package fsm

import "math/rand/v2"

// Stream is the random stream of one component (the pool, a slot, a
// resolver, a simulated client), derived from the loop's seed and the
// component's name, so that adding a component does not change what any
// other draws. Embed it in its component and set it up once with
// [Stream.Init]; drawing then allocates nothing. A Stream must not be
// copied after Init, and must be used only with the loop held.
type Stream struct {
	_   noCopy
	pcg rand.PCG
	r   rand.Rand
}

// Init seeds s from the loop's seed and the component's name: kind (such as
// "slot") and id (its identity, unique among components of that kind on
// the loop). Two streams with the same loop seed, kind and id draw the same
// numbers.
func (s *Stream) Init(l *Loop, kind, id string) {
	s.pcg.Seed(streamSeed(l.seed, kind, id))
	s.r = *rand.New(&s.pcg)
}

// Rand is the stream as a *rand.Rand, for the policies that take one. It
// points into s: it is valid as long as s is.
func (s *Stream) Rand() *rand.Rand { return &s.r }

// NewStream returns a new stream seeded as by [Stream.Init], for
// components that keep a pointer.
func (l *Loop) NewStream(kind, id string) *Stream {
	s := new(Stream)
	s.Init(l, kind, id)
	return s
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
