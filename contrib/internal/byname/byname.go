// Package byname maps pool names to what a tracer keeps for each pool. A
// tracer is called from many goroutines on every claim: Get reads without a
// lock (the map is copied on write, and the name looked up last is kept
// aside), and takes a lock only to add a name.
package byname

import (
	"sync"
	"sync/atomic"
)

// Map maps pool names to values of T, made once per name. The zero Map is
// empty and ready to use.
type Map[T any] struct {
	m    atomic.Pointer[map[string]*entry[T]]
	last atomic.Pointer[entry[T]] // the name looked up last
	mu   sync.Mutex               // held to change m
}

type entry[T any] struct {
	name string
	v    *T
}

// Get returns the value of name, made with mk the first time.
func (b *Map[T]) Get(name string, mk func() *T) *T {
	if e := b.last.Load(); e != nil && e.name == name {
		return e.v
	}
	if m := b.m.Load(); m != nil {
		if e, ok := (*m)[name]; ok {
			b.last.Store(e)
			return e.v
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	old := b.load()
	if e, ok := old[name]; ok {
		return e.v
	}
	next := make(map[string]*entry[T], len(old)+1)
	for k, e := range old {
		next[k] = e
	}
	e := &entry[T]{name: name, v: mk()}
	next[name] = e
	b.m.Store(&next)
	return e.v
}

// Delete forgets name: a later Get makes its value anew.
func (b *Map[T]) Delete(name string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	old := b.load()
	next := make(map[string]*entry[T], len(old))
	for k, e := range old {
		if k != name {
			next[k] = e
		}
	}
	b.m.Store(&next)
	b.last.Store(nil)
}

func (b *Map[T]) load() map[string]*entry[T] {
	if m := b.m.Load(); m != nil {
		return *m
	}
	return nil
}
