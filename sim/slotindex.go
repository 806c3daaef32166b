package sim

import "unsafe"

// slotIndex finds a slot's model by the slot's ID. The map holds every
// slot the model has. In front of it, a direct-mapped cache keyed by the
// address of the ID's bytes answers without reading them: the pool builds
// each slot's ID once and passes that same string in every transition of
// the slot, so after its first transition a slot is found by one compare.
//
// The cache is exact. An entry keeps its string, so its bytes are neither
// freed nor reused while it is cached; a hit needs the same address and
// length, hence the same bytes. An entry is stored only for the model the
// map holds under those bytes, and counts only while that model is still
// in the map: del marks a model gone as it takes it out, and a model
// never comes back. A string with the same bytes at another address
// misses the cache and is found in the map.
type slotIndex struct {
	m     map[string]*shadowSlot
	cache []slotEntry // a power of two long
	shift uint        // 64 less the log2 of len(cache)
}

type slotEntry struct {
	id string
	sl *shadowSlot
}

const slotCacheMin = 256

func (x *slotIndex) init() {
	x.m = map[string]*shadowSlot{}
	x.resize(slotCacheMin)
}

func (x *slotIndex) resize(n int) {
	x.cache = make([]slotEntry, n)
	x.shift = 64
	for ; n > 1; n >>= 1 {
		x.shift--
	}
}

// entry returns the entry of the cache for the string whose bytes start at p.
func (x *slotIndex) entry(p *byte) *slotEntry {
	h := uint64(uintptr(unsafe.Pointer(p))) * 0x9e3779b97f4a7c15
	return &x.cache[h>>x.shift]
}

// get returns the model of the slot with the given ID, or nil.
func (x *slotIndex) get(id string) *shadowSlot {
	p := unsafe.StringData(id)
	e := x.entry(p)
	if sl := e.sl; sl != nil && unsafe.StringData(e.id) == p && len(e.id) == len(id) && !sl.gone {
		return sl
	}
	sl := x.m[id]
	if sl != nil {
		*e = slotEntry{id: id, sl: sl}
	}
	return sl
}

// has reports whether the model has a slot with the given ID.
func (x *slotIndex) has(id string) bool { return x.m[id] != nil }

// add adds the model of a new slot; the map must not hold one for id.
func (x *slotIndex) add(id string, sl *shadowSlot) {
	x.m[id] = sl
	if len(x.m) > len(x.cache)/2 {
		x.resize(2 * len(x.cache)) // the entries are only a cache: start over
	}
}

// del takes the model of a stopped slot out, for good.
func (x *slotIndex) del(id string, sl *shadowSlot) {
	sl.gone = true
	delete(x.m, id)
	if e := x.entry(unsafe.StringData(id)); e.sl == sl {
		*e = slotEntry{}
	}
}
