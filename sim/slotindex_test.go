package sim

import (
	"strconv"
	"strings"
	"testing"
)

// TestSlotIndex checks that the cache in front of the map never answers
// for a slot the map would not: a string with the same bytes elsewhere,
// a slot taken out, a slot made again under the same ID.
func TestSlotIndex(t *testing.T) {
	var x slotIndex
	x.init()
	ids := make([]string, 3*slotCacheMin) // enough to grow the cache
	models := make([]*shadowSlot, len(ids))
	for i := range ids {
		ids[i] = "p/b/" + strconv.Itoa(i)
		models[i] = &shadowSlot{}
		x.add(ids[i], models[i])
	}
	for round := range 2 {
		for i, id := range ids {
			if got := x.get(id); got != models[i] {
				t.Fatalf("round %d: get(%q) = %p, want %p", round, id, got, models[i])
			}
			if got := x.get(strings.Clone(id)); got != models[i] {
				t.Fatalf("round %d: get(a copy of %q) = %p, want %p", round, id, got, models[i])
			}
		}
	}
	id := ids[7]
	x.del(id, models[7])
	if got := x.get(id); got != nil {
		t.Fatalf("get(%q) after del = %p, want nil", id, got)
	}
	again := &shadowSlot{}
	x.add(id, again)
	if got := x.get(id); got != again {
		t.Fatalf("get(%q) after a new add = %p, want %p", id, got, again)
	}
	x.del(strings.Clone(id), again)
	if got := x.get(id); got != nil {
		t.Fatalf("get(%q) after del of a copy = %p, want nil", id, got)
	}
}
