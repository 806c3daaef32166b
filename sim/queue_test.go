package sim

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestQueueOrder checks the queue against a sorted list: events come out
// by time, and in the order they were pushed at the same time.
func TestQueueOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var q queue
	var want []event
	var last int64 // the time of the last event popped
	for range 20000 {
		if q.len() == 0 || rng.IntN(3) > 0 {
			at := last + rng.Int64N(50) // never before what was popped
			q.push(at, nil)
			want = append(want, event{at: at, seq: q.seq})
			slices.SortFunc(want, func(a, b event) int {
				if less(&a, &b) {
					return -1
				}
				return 1
			})
			continue
		}
		if q.peek() != want[0].at {
			t.Fatalf("peek %d, want %d", q.peek(), want[0].at)
		}
		e := q.pop()
		if e.at != want[0].at || e.seq != want[0].seq {
			t.Fatalf("pop (%d, %d), want (%d, %d)", e.at, e.seq, want[0].at, want[0].seq)
		}
		last = e.at
		want = want[1:]
	}
}

// BenchmarkQueue pops the earliest event and pushes one a little later,
// with n events in the queue, as a fleet's claims and releases do.
func BenchmarkQueue(b *testing.B) {
	for _, n := range []int{30, 600, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			var q queue
			for range n {
				q.push(rng.Int64N(1e7), nil)
			}
			for b.Loop() {
				e := q.pop()
				q.push(e.at+rng.Int64N(1e7), nil)
			}
		})
	}
}
