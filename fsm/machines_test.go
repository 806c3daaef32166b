package fsm_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/qorbgo/qorb/fsm"
	"github.com/qorbgo/qorb/pool"
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
	{slot.Machine, "slot.md", slot.Markdown},
	{slotset.Machine, "set.md", slotset.Markdown},
	{resolver.Machine, "resolver.md", resolver.Markdown},
	{pool.Machine, "pool.md", pool.Markdown},
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

// TestEveryDeclaredTransition fires each declared transition on the loop
// and checks the state it lands in and the record it reports.
func TestEveryDeclaredTransition(t *testing.T) {
	for _, mc := range machines {
		m := mc.m
		for from := range m.States() {
			for ev := range m.Events() {
				to, ok := m.Next(from, ev)
				if !ok {
					continue
				}
				var got []fsm.Transition
				l := fsm.NewLoop(nil, 1, nil)
				l.AddObserver(fsm.ObserverFunc(func(tr fsm.Transition) { got = append(got, tr) }))
				state := int8(from)
				l.Enter()
				fired := l.Fire(m, "x", &state, ev)
				l.Leave()
				if !fired || int(state) != to || len(got) != 1 {
					t.Fatalf("%s: %s --%s--> fired %v, state %s, %d records", m.Name(), m.StateName(from), m.EventName(ev), fired, m.StateName(int(state)), len(got))
				}
				r := got[0]
				if r.Machine != m.Name() || r.ID != "x" || r.From != m.StateName(from) || r.Event != m.EventName(ev) || r.To != m.StateName(to) || r.Impossible {
					t.Fatalf("record %+v", r)
				}
			}
		}
	}
}

func TestImpossibleTransitionIsReported(t *testing.T) {
	l := fsm.NewLoop(nil, 1, nil)
	var got []fsm.Transition
	l.AddObserver(fsm.ObserverFunc(func(tr fsm.Transition) { got = append(got, tr) }))
	state := int8(slot.Stopped)
	func() {
		defer func() {
			v := recover()
			err, ok := v.(*fsm.ImpossibleError)
			if !ok || !strings.Contains(err.Error(), "slot[s1] in stopped has no event claim") {
				t.Fatalf("strict loop: recovered %v", v)
			}
		}()
		l.Fire(slot.Machine, "s1", &state, int(slot.Claim))
	}()
	l.SetStrict(false)
	if l.Fire(slot.Machine, "s1", &state, int(slot.Claim)) {
		t.Fatal("impossible transition fired")
	}
	if slot.State(state) != slot.Stopped || len(got) != 2 || !got[1].Impossible || got[1].To != "stopped" {
		t.Fatalf("state %v, records %+v", slot.State(state), got)
	}
}

func TestStateAndEventNamesAreStable(t *testing.T) {
	want := map[string]string{
		slot.Connecting.String():     "connecting",
		slot.Stopped.String():        "stopped",
		slot.BackoffElapsed.String(): "backoff_elapsed",
		slotset.Draining.String():    "draining",
		resolver.Failed.String():     "failed",
		pool.Stopping.String():       "stopping",
		slot.State(99).String():      "state(99)",
		slotset.Event(-1).String():   "event(-1)",
	}
	for got, w := range want {
		if got != w {
			t.Errorf("got %q, want %q", got, w)
		}
	}
	if len(slot.Machine.States()) != slot.NumStates {
		t.Errorf("slot.NumStates %d, declared %d", slot.NumStates, len(slot.Machine.States()))
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
		_, err := fsm.Declare("m", tc.states, events, "a", decl)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
}
