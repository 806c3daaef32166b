package pool

import (
	"fmt"
	"math/bits"

	"github.com/qorbgo/qorb/slotset"
)

// lcIndex finds what LeastClaimed picks without a scan of the backends:
// the sets that can serve a claim (online, with an idle slot) sit in
// buckets by their count of claimed slots, each bucket a bitset over the
// sets' places in the preference order. The pick is the lowest bit of the
// lowest bucket that has one: the fewest claimed, the earliest in
// preference order among equals. A claim or release moves one set by one
// bucket; the pick reads one word per 64 backends of a bucket. The pool
// keeps the index only when its picker is LeastClaimed.
type lcIndex[C any] struct {
	words   int        // words of a bucket's bitset: one per 64 sets
	buckets [][]uint64 // by claimed count
	low     int        // every bucket below is empty
	checks  uint64     // calls of lcCheckEvent
	// moved counts the changes of the index that no slot or set
	// transition shows (the preference order, a set's ejection or
	// probe); verified is its value at the last whole check.
	moved, verified uint64
}

// lcUpdate puts s in the bucket its state calls for, or takes it out.
// The pool calls it whenever s's claimed count, its idle slots or its
// state may have changed.
func (p *Pool[C]) lcUpdate(s *set[C]) {
	if !p.leastClaimed || p.closing() {
		return
	}
	want := int32(-1)
	if len(s.idle) > 0 && s.State() == slotset.Online && s.pickable() {
		want = int32(s.Claimed)
	}
	if want == s.lcIn {
		return
	}
	ix := &p.lc
	w, bit := s.rank>>6, uint64(1)<<(s.rank&63)
	if s.lcIn >= 0 {
		ix.buckets[s.lcIn][w] &^= bit
	}
	s.lcIn = want
	if want < 0 {
		return
	}
	for int(want) >= len(ix.buckets) {
		ix.buckets = append(ix.buckets, make([]uint64, ix.words))
	}
	ix.buckets[want][w] |= bit
	ix.low = min(ix.low, int(want))
}

// lcRebuild builds the index anew after the preference order changed.
func (p *Pool[C]) lcRebuild() {
	p.lc.moved++
	for i, s := range p.order {
		s.rank, s.lcIn = int32(i), -1
	}
	if !p.leastClaimed {
		return
	}
	ix := &p.lc
	ix.words = (len(p.order) + 63) / 64
	for i := range ix.buckets {
		if cap(ix.buckets[i]) >= ix.words {
			ix.buckets[i] = ix.buckets[i][:ix.words]
			clear(ix.buckets[i])
		} else {
			ix.buckets[i] = make([]uint64, ix.words)
		}
	}
	ix.low = 0
	for _, s := range p.order {
		p.lcUpdate(s)
	}
}

// lcPick returns the set LeastClaimed would pick, or nil.
func (p *Pool[C]) lcPick() *set[C] {
	ix := &p.lc
	for ; ix.low < len(ix.buckets); ix.low++ {
		for w, word := range ix.buckets[ix.low] {
			if word != 0 {
				return p.order[w<<6|bits.TrailingZeros64(word)]
			}
		}
	}
	return nil
}

// lcCheckEvent verifies the index at the end of an event, for the
// simulator, whose checks also verify the entry of every set the event
// moved (lcCheckSet): the pick, at every call; every set's entry, when a
// change that no transition shows (the preference order, an ejection or
// a probe) came since the last whole check, and at one call in 64.
// Between those, a set whose entry went wrong must have moved (a claim,
// a release, a slot or set transition), and so was checked itself.
func (p *Pool[C]) lcCheckEvent() error {
	if !p.leastClaimed || p.closing() {
		return nil
	}
	p.lc.checks++
	if p.lc.moved != p.lc.verified || p.lc.checks%64 == 1 {
		return p.lcCheck()
	}
	return p.lcCheckPick()
}

// lcCheckSet verifies s's entry in the index: s sits at its place in
// the preference order, in the bucket its state calls for and in no
// other.
func (p *Pool[C]) lcCheckSet(s *set[C]) error {
	if !p.leastClaimed || p.closing() {
		return nil
	}
	want := int32(-1)
	if len(s.idle) > 0 && s.State() == slotset.Online && s.pickable() {
		want = int32(s.Claimed)
	}
	if s.rank < 0 || int(s.rank) >= len(p.order) || p.order[s.rank] != s || s.lcIn != want {
		return fmt.Errorf("LeastClaimed index: set %s at rank %d in bucket %d; want bucket %d", s.b.Name, s.rank, s.lcIn, want)
	}
	w, bit := s.rank>>6, uint64(1)<<(s.rank&63)
	for b, words := range p.lc.buckets {
		if int(w) >= len(words) {
			return fmt.Errorf("LeastClaimed index: set %s at rank %d, beyond bucket %d's %d words", s.b.Name, s.rank, b, len(words))
		}
		if in := words[w]&bit != 0; in != (int32(b) == want) {
			return fmt.Errorf("LeastClaimed index: set %s in bucket %d: %v; it belongs in bucket %d", s.b.Name, b, in, want)
		}
	}
	return nil
}

// lcCheck verifies the index against the sets, for tests and the
// simulator's invariant checks: every set sits in the bucket its state
// calls for, and the pick is the one a scan of the sets finds. The scan
// costs a look at every backend.
func (p *Pool[C]) lcCheck() error {
	if !p.leastClaimed || p.closing() {
		return nil // a closing pool serves no claim, and keeps no index
	}
	p.lc.verified = p.lc.moved
	var scan *set[C]
	eligible := 0
	for i, s := range p.order {
		want := int32(-1)
		if len(s.idle) > 0 && s.State() == slotset.Online && s.pickable() {
			want = int32(s.Claimed)
			eligible++
			if scan == nil || s.Claimed < scan.Claimed {
				scan = s
			}
		}
		if s.rank != int32(i) || s.lcIn != want {
			return fmt.Errorf("LeastClaimed index: set %s at rank %d in bucket %d; want rank %d, bucket %d", s.b.Name, s.rank, s.lcIn, i, want)
		}
		if want >= 0 && p.lc.buckets[want][i>>6]&(1<<(i&63)) == 0 {
			return fmt.Errorf("LeastClaimed index: set %s missing from bucket %d", s.b.Name, want)
		}
	}
	bitsSet := 0
	for _, words := range p.lc.buckets {
		for _, w := range words {
			bitsSet += bits.OnesCount64(w)
		}
	}
	if bitsSet != eligible {
		return fmt.Errorf("LeastClaimed index holds %d sets; %d can serve a claim", bitsSet, eligible)
	}
	if got := p.lcPick(); got != scan {
		return fmt.Errorf("LeastClaimed index picks %v; a scan picks %v", setName(got), setName(scan))
	}
	return nil
}

// lcCheckPick checks the pick against the index alone: no bucket below
// the pick's holds a set, nor does its own bucket at an earlier rank.
func (p *Pool[C]) lcCheckPick() error {
	s := p.lcPick()
	if s == nil {
		for b, words := range p.lc.buckets {
			for _, w := range words {
				if w != 0 {
					return fmt.Errorf("LeastClaimed index picks nothing, but bucket %d holds a set", b)
				}
			}
		}
		return nil
	}
	if s.lcIn < 0 || s.lcIn != int32(s.Claimed) || s.State() != slotset.Online || len(s.idle) == 0 || !s.pickable() {
		return fmt.Errorf("LeastClaimed index picks %s, which cannot serve a claim (bucket %d, %d claimed, %d idle, %s)", s.b.Name, s.lcIn, s.Claimed, len(s.idle), s.State())
	}
	for b := 0; b < int(s.lcIn); b++ {
		for _, w := range p.lc.buckets[b] {
			if w != 0 {
				return fmt.Errorf("LeastClaimed index picks %s in bucket %d, but bucket %d holds a set", s.b.Name, s.lcIn, b)
			}
		}
	}
	return nil
}

func setName[C any](s *set[C]) string {
	if s == nil {
		return "none"
	}
	return string(s.b.Name)
}
