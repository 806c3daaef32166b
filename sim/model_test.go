package sim

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/qorbgo/qorb/internal/simhook"
	"github.com/qorbgo/qorb/pool"
)

// manualClaim is a claim the model test makes and releases by hand.
type manualClaim struct {
	n        int
	arrival  int64
	h        *pool.Handle[*conn]
	err      error
	done     bool // served or failed
	released bool
}

// poolModel is the dumb alternative the pool must agree with, when every
// backend is healthy: claims are served first-in first-out, as many at
// once as the pool's capacity, min(MaxSlots, backends × MaxSlotsPerBackend);
// a claim that waits longer than its timeout fails with ErrAllClaimsUsed.
type poolModel struct {
	s        *Sim
	inst     *poolInst
	capacity int
	timeout  time.Duration
	claims   []*manualClaim
}

// modelT is what the model needs of a *testing.T or a *rapid.T.
type modelT interface {
	Fatalf(format string, args ...any)
}

func (m *poolModel) claim(t modelT) {
	c := &manualClaim{n: len(m.claims), arrival: m.s.now}
	m.claims = append(m.claims, c)
	simhook.ClaimAsync(m.inst.p, nil, m.timeout, nil, func(hd any, err error) {
		h, _ := hd.(*pool.Handle[*conn])
		if c.done {
			t.Fatalf("claim %d answered twice", c.n)
		}
		c.h, c.err, c.done = h, err, true
		if h != nil {
			if h.Conn().held != nil {
				t.Fatalf("claim %d handed a connection already held", c.n)
			}
			h.Conn().held = &claim{arrival: c.arrival}
		}
	})
}

func (m *poolModel) held() []*manualClaim {
	var out []*manualClaim
	for _, c := range m.claims {
		if c.h != nil && !c.released {
			out = append(out, c)
		}
	}
	return out
}

func (m *poolModel) releaseOne(t *rapid.T) {
	held := m.held()
	if len(held) == 0 {
		t.Skip("nothing held")
	}
	m.release(rapid.SampledFrom(held).Draw(t, "which"))
}

func (m *poolModel) release(c *manualClaim) {
	c.released = true
	c.h.Conn().held = nil
	c.h.Release()
}

// settle runs the simulation for d of virtual time.
func (m *poolModel) settle(d time.Duration) { m.s.runUntil(m.s.now + int64(d)) }

// check compares the pool with the model after it settled.
func (m *poolModel) check(t modelT) {
	if v := m.s.violation; v != nil {
		t.Fatalf("%v\n%v", v, v.Trace)
	}
	held, waiting := 0, 0
	for i, c := range m.claims {
		switch {
		case c.err != nil:
			if !errors.Is(c.err, pool.ErrAllClaimsUsed) {
				t.Fatalf("claim %d failed with %v; only ErrAllClaimsUsed is possible with every backend healthy", i, c.err)
			}
			if waited := time.Duration(m.s.now - c.arrival); waited < m.timeout {
				t.Fatalf("claim %d failed after %v, before its timeout %v", i, waited, m.timeout)
			}
		case c.h != nil && !c.released:
			held++
		case !c.done:
			waiting++
			if time.Duration(m.s.now-c.arrival) > m.timeout {
				t.Fatalf("claim %d still waiting %v after it arrived, past its timeout", i, time.Duration(m.s.now-c.arrival))
			}
			for j := i + 1; j < len(m.claims); j++ {
				if m.claims[j].h != nil {
					t.Fatalf("claim %d was served while claim %d, older, still waits", j, i)
				}
			}
		}
	}
	if want := min(held+waiting, m.capacity); held != want {
		t.Fatalf("%d claims held and %d waiting after settling; the pool's capacity is %d, so %d should be held", held, waiting, m.capacity, want)
	}
}

// TestPoolAgainstModel drives one pool in the simulator with claims,
// releases and the passing of time, drawn by rapid, and checks after each
// step that it agrees with poolModel. Until the pool bug of
// TestPoolBugWaiterStarvesBelowCap is fixed it fails now and then (about
// one run in a hundred; -rapid.checks=3000 finds it most times).
func TestPoolAgainstModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := newModel(t,
			rapid.IntRange(1, 3).Draw(t, "backends"),
			rapid.IntRange(1, 6).Draw(t, "max_slots"),
			rapid.IntRange(1, 4).Draw(t, "max_slots_per_backend"),
			rapid.IntRange(1, 3).Draw(t, "spares"),
			rapid.Bool().Draw(t, "validate"),
			uint64(rapid.IntRange(1, 100).Draw(t, "seed")))
		t.Repeat(map[string]func(*rapid.T){
			"claim":   func(t *rapid.T) { m.claim(t); m.settle(time.Second); m.check(t) },
			"release": func(t *rapid.T) { m.releaseOne(t); m.settle(time.Second); m.check(t) },
			"burst": func(t *rapid.T) {
				for range rapid.IntRange(2, 8).Draw(t, "n") {
					m.claim(t)
				}
				m.settle(time.Second)
				m.check(t)
			},
			"time passes": func(t *rapid.T) {
				m.settle(time.Duration(rapid.IntRange(1, 70).Draw(t, "seconds")) * time.Second)
				m.check(t)
			},
			"": func(t *rapid.T) {
				if v := m.s.violation; v != nil {
					t.Fatalf("%v", v)
				}
			},
		})
	})
}

// newModel starts one client with the given policy numbers on healthy
// backends, runs it for a second, and returns its model.
func newModel(t modelT, backends, maxSlots, perBackend, spares int, validate bool, seed uint64) *poolModel {
	src := fmt.Sprintf(`name = "model"
duration = "1h"
[[backends]]
name = "db"
count = %d
[[clients]]
name = "c"
validate = %v
[clients.policy]
max_slots = %d
max_slots_per_backend = %d
spares_wanted = %d
`, backends, validate, maxSlots, perBackend, spares)
	sc, err := Parse("model.toml", []byte(src))
	if err != nil {
		t.Fatalf("%v", err)
	}
	s, err := New(sc, Options{Seed: seed})
	if err != nil {
		t.Fatalf("%v", err)
	}
	s.runUntil(int64(time.Second)) // the client starts, DNS answers, the first connects complete
	return &poolModel{s: s, inst: s.clients[0].inst, capacity: min(maxSlots, backends*perBackend), timeout: 10 * time.Second}
}
