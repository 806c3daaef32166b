package fsm_test

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"pgregory.net/rapid"

	"github.com/qorbgo/qorb/connset"
	"github.com/qorbgo/qorb/fsm"
	"github.com/qorbgo/qorb/pool/machine"
	"github.com/qorbgo/qorb/resolver"
	"github.com/qorbgo/qorb/slot"
	"github.com/qorbgo/qorb/slotset"
)

var update = flag.Bool("update", false, "rewrite the generated diagrams under docs/")

// machines lists every declared machine with its diagram page.
var machines = []struct {
	m    *fsm.Machine
	file string
	page func() string
}{
	{slot.Kind.Machine(), "slot.md", slot.Markdown},
	{slotset.Kind.Machine(), "set.md", slotset.Markdown},
	{resolver.Kind.Machine(), "resolver.md", resolver.Markdown},
	{machine.Kind.Machine(), "pool.md", machine.Markdown},
	{connset.Kind.Machine(), "connset.md", connset.Markdown},
}

// TestTableAgreesWithLooplab checks, for random (state, event) pairs of
// every machine, that the compiled table and looplab give the same answer.
func TestTableAgreesWithLooplab(t *testing.T) {
	for _, mc := range machines {
		m := mc.m
		t.Run(m.Name(), func(t *testing.T) {
			rapid.Check(t, func(t *rapid.T) {
				from := rapid.IntRange(0, len(m.States())-1).Draw(t, "from")
				ev := rapid.IntRange(0, len(m.Events())-1).Draw(t, "event")
				to, ok := m.Next(from, ev)
				lto, lok := m.LooplabNext(from, ev)
				if ok != lok || (ok && to != lto) {
					t.Fatalf("%s --%s-->: table (%s, %v), looplab (%s, %v)", m.StateName(from), m.EventName(ev),
						m.StateName(to), ok, m.StateName(lto), lok)
				}
			})
		})
	}
}

// TestTableAgreesWithLooplabExhaustively checks every pair, since the
// machines are small enough.
func TestTableAgreesWithLooplabExhaustively(t *testing.T) {
	for _, mc := range machines {
		m := mc.m
		transitions := 0
		for from := range m.States() {
			for ev := range m.Events() {
				to, ok := m.Next(from, ev)
				lto, lok := m.LooplabNext(from, ev)
				if ok != lok || (ok && to != lto) {
					t.Errorf("%s: %s --%s-->: table (%d, %v), looplab (%d, %v)", m.Name(), m.StateName(from), m.EventName(ev), to, ok, lto, lok)
				}
				if ok {
					transitions++
				}
			}
		}
		if transitions == 0 {
			t.Errorf("%s has no transitions", m.Name())
		}
	}
}

// TestEveryDeclaredTransition fires each declared transition of the slot
// and pool kinds on the loop through their typed Kind, and checks the state
// it lands in and the record it reports.
func TestEveryDeclaredTransition(t *testing.T) {
	everyTransition(t, slot.Kind)
	everyTransition(t, slotset.Kind)
	everyTransition(t, resolver.Kind)
	everyTransition(t, machine.Kind)
}

// state returns a machine of kind k in state s, reached by firing declared
// events from the initial state on a loop nobody observes.
func state[S, E ~int8](t *testing.T, k *fsm.Kind[S, E], s S) *fsm.State[S, E] {
	t.Helper()
	m := k.Machine()
	// Breadth-first search for a path of events from the initial state.
	prev := map[int][2]int{0: {-1, -1}}
	queue := []int{0}
	for len(queue) > 0 {
		from := queue[0]
		queue = queue[1:]
		for ev := range m.Events() {
			if to, ok := m.Next(from, ev); ok {
				if _, seen := prev[to]; !seen {
					prev[to] = [2]int{from, ev}
					queue = append(queue, to)
				}
			}
		}
	}
	if _, ok := prev[int(s)]; !ok {
		t.Fatalf("%s: state %s is unreachable", m.Name(), k.StateName(s))
	}
	var path []E
	for at := int(s); at != 0; at = prev[at][0] {
		path = append([]E{E(prev[at][1])}, path...)
	}
	st := new(fsm.State[S, E])
	l := fsm.NewLoop(fsm.Config{Strict: true})
	for _, ev := range path {
		k.Fire(l, st, "x", ev)
	}
	if st.Get() != s {
		t.Fatalf("%s: reached %s, want %s", m.Name(), k.StateName(st.Get()), k.StateName(s))
	}
	return st
}

func everyTransition[S, E ~int8](t *testing.T, k *fsm.Kind[S, E]) {
	m := k.Machine()
	for from := range m.States() {
		for ev := range m.Events() {
			to, ok := k.Next(S(from), E(ev))
			if !ok {
				continue
			}
			var got []fsm.Transition
			l := fsm.NewLoop(fsm.Config{Seed: 1, Strict: true})
			l.AddObserver(fsm.ObserverFunc(func(tr fsm.Transition) { got = append(got, tr) }))
			st := state(t, k, S(from))
			l.Enter()
			fired := k.Fire(l, st, "x", E(ev))
			l.Leave()
			if !fired || st.Get() != to || len(got) != 1 {
				t.Fatalf("%s: %s --%s--> fired %v, state %s, %d records", m.Name(), m.StateName(from), m.EventName(ev), fired, k.StateName(st.Get()), len(got))
			}
			r := got[0]
			step, ok := k.Step(r)
			if !ok || r.Machine != m || r.ID != "x" || step.From != S(from) || step.Event != E(ev) || step.To != to || r.Impossible || r.Created {
				t.Fatalf("record %+v", r)
			}
			if r.Kind() != m.Name() || r.FromName() != m.StateName(from) || r.EventName() != m.EventName(ev) || r.ToName() != m.StateName(int(to)) {
				t.Fatalf("record names %s %s %s %s", r.Kind(), r.FromName(), r.EventName(), r.ToName())
			}
		}
	}
}

func TestImpossibleTransitionIsReported(t *testing.T) {
	strict := fsm.NewLoop(fsm.Config{Seed: 1, Strict: true})
	lax := fsm.NewLoop(fsm.Config{Seed: 1})
	var got []fsm.Transition
	obs := fsm.ObserverFunc(func(tr fsm.Transition) { got = append(got, tr) })
	strict.AddObserver(obs)
	lax.AddObserver(obs)
	st := state(t, slot.Kind, slot.Stopped)
	func() {
		defer func() {
			v := recover()
			err, ok := v.(*fsm.ImpossibleError)
			if !ok || !strings.Contains(err.Error(), "slot[s1] in stopped has no event claim") {
				t.Fatalf("strict loop: recovered %v", v)
			}
		}()
		slot.Kind.Fire(strict, st, "s1", slot.Claim)
	}()
	if lax.Strict() || !strict.Strict() {
		t.Fatal("Strict does not report the configuration")
	}
	if slot.Kind.Fire(lax, st, "s1", slot.Claim) {
		t.Fatal("impossible transition fired")
	}
	if st.Get() != slot.Stopped || len(got) != 2 || !got[1].Impossible || got[1].ToName() != "stopped" {
		t.Fatalf("state %v, records %+v", st.Get(), got)
	}
	if step, ok := slot.Kind.Step(got[1]); !ok || step.From != slot.Stopped || step.Event != slot.Claim || step.To != slot.Stopped {
		t.Fatalf("typed record %+v", step)
	}
	// Out-of-range events are impossible too, never a neighbour's row.
	if slot.Kind.Fire(lax, st, "s1", slot.Event(slot.Stop+1)) || st.Get() != slot.Stopped {
		t.Fatal("an undeclared event fired")
	}
}

// TestFireWithoutLoop checks that a machine not yet on a loop moves without
// reports, and that an impossible transition there panics.
func TestFireWithoutLoop(t *testing.T) {
	var st fsm.State[resolver.State, resolver.Event]
	if !resolver.Kind.Fire(nil, &st, "r", resolver.Stop) || st.Get() != resolver.Stopped {
		t.Fatalf("stop before start: %s", st.Get())
	}
	defer func() {
		if _, ok := recover().(*fsm.ImpossibleError); !ok {
			t.Fatal("impossible transition on no loop did not panic")
		}
	}()
	resolver.Kind.Fire(nil, &st, "r", resolver.Query)
}

// TestTransitionText checks the edge where records become text: String,
// JSON, and the creation record.
func TestTransitionText(t *testing.T) {
	l := fsm.NewLoop(fsm.Config{Clock: fixedClock(), Seed: 1})
	var got []fsm.Transition
	l.AddObserver(fsm.ObserverFunc(func(tr fsm.Transition) { got = append(got, tr) }))
	var st fsm.State[slot.State, slot.Event]
	slot.Kind.Created(l, "b/0", &st)
	slot.Kind.Fire(l, &st, "b/0", slot.ConnectOK)
	if len(got) != 2 {
		t.Fatalf("%d records", len(got))
	}
	if s := got[0].String(); s != "2026-01-02T03:04:05Z slot[b/0]  --create--> connecting" {
		t.Errorf("String: %q", s)
	}
	if step, ok := slot.Kind.Step(got[0]); !ok || !step.Created || step.To != slot.Connecting {
		t.Errorf("creation record %+v", step)
	}
	j, err := json.Marshal(got[1])
	if err != nil {
		t.Fatal(err)
	}
	want := `{"at":"2026-01-02T03:04:05Z","machine":"slot","id":"b/0","from":"connecting","event":"connect_ok","to":"connected"}`
	if string(j) != want {
		t.Errorf("JSON %s, want %s", j, want)
	}
	if _, ok := slotset.Kind.Step(got[1]); ok {
		t.Error("a slot record read as a set record")
	}
	if s := (fsm.Transition{}).String(); s != "0001-01-01T00:00:00Z [] state(0) --event(0)--> state(0)" {
		t.Errorf("zero record: %q", s)
	}
}

func TestStateAndEventNamesAreStable(t *testing.T) {
	want := map[string]string{
		slot.Connecting.String():     "connecting",
		slot.Stopped.String():        "stopped",
		slot.BackoffElapsed.String(): "backoff_elapsed",
		slotset.Draining.String():    "draining",
		resolver.Failed.String():     "failed",
		machine.Stopping.String():    "stopping",
		slot.State(99).String():      "state(99)",
		slotset.Event(-1).String():   "event(-1)",
	}
	for got, w := range want {
		if got != w {
			t.Errorf("got %q, want %q", got, w)
		}
	}
	if len(slot.Kind.Machine().States()) != slot.NumStates {
		t.Errorf("slot.NumStates %d, declared %d", slot.NumStates, len(slot.Kind.Machine().States()))
	}
}

// TestDiagrams fails when a diagram under docs/ is stale; run with -update
// to rewrite them from the declarations.
func TestDiagrams(t *testing.T) {
	for _, mc := range machines {
		path := filepath.Join("..", "docs", mc.file)
		want := mc.page()
		if *update {
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./fsm -run TestDiagrams -update)", err)
		}
		if string(got) != want {
			t.Errorf("%s is stale: run go test ./fsm -run TestDiagrams -update", path)
		}
	}
}

func TestDeclareRejectsBadDeclarations(t *testing.T) {
	states := []string{"a", "b"}
	events := []string{"go"}
	for _, tc := range []struct {
		name   string
		states []string
		decl   [][3]string
		want   string
	}{
		{"unknown state", states, [][3]string{{"go", "a", "c"}}, `unknown state "c"`},
		{"unknown source", states, [][3]string{{"go", "z", "b"}}, `unknown state "z"`},
		{"unknown event", states, [][3]string{{"stop", "a", "b"}}, `unknown event "stop"`},
		{"two destinations", states, [][3]string{{"go", "a", "b"}, {"go", "a", "a"}}, "two destinations"},
		{"duplicate state", []string{"a", "a"}, nil, "listed twice"},
	} {
		var decl []lfEvent
		for _, d := range tc.decl {
			decl = append(decl, lfEvent{Name: d[0], Src: []string{d[1]}, Dst: d[2]})
		}
		_, err := fsm.Declare[int8, int8]("m", tc.states, events, decl)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
}

// fixedClock is a mock clock set to 2026-01-02T03:04:05Z.
func fixedClock() clock.Clock {
	c := clock.NewMock()
	c.Set(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	return c
}
