package fsm

import (
	"context"
	"fmt"
	"strings"

	lf "github.com/looplab/fsm"
)

// none marks a (state, event) pair with no transition in a compiled table.
const none = -1

// Machine is one declared kind of machine: its states, its events, and the
// transition table compiled from its looplab declaration. A Machine is
// immutable after [Declare] and safe for concurrent use.
type Machine struct {
	name    string
	states  []string
	events  []string
	initial int
	decl    lf.Events
	table   []int8 // table[from*len(events)+event] is the next state, or none
}

// Declare compiles a machine kind. states and events list every name in the
// order of the caller's typed constants (so a constant's value is its index),
// initial names the state a new machine starts in, and decl is the looplab
// declaration: the only place the transitions are written. Declare returns
// an error when decl names an unknown state or event, when one (state,
// event) pair has two destinations, or when a name is listed twice.
func Declare(name string, states, events []string, initial string, decl lf.Events) (*Machine, error) {
	m := &Machine{name: name, states: states, events: events, decl: decl}
	if len(states) == 0 || len(states) > 127 || len(events) == 0 {
		return nil, fmt.Errorf("fsm: machine %s: needs 1..127 states and at least one event", name)
	}
	stateIdx, err := indexNames(name, "state", states)
	if err != nil {
		return nil, err
	}
	eventIdx, err := indexNames(name, "event", events)
	if err != nil {
		return nil, err
	}
	i, ok := stateIdx[initial]
	if !ok {
		return nil, fmt.Errorf("fsm: machine %s: unknown initial state %q", name, initial)
	}
	m.initial = i
	m.table = make([]int8, len(states)*len(events))
	for i := range m.table {
		m.table[i] = none
	}
	for _, d := range decl {
		ev, ok := eventIdx[d.Name]
		if !ok {
			return nil, fmt.Errorf("fsm: machine %s: transition on unknown event %q", name, d.Name)
		}
		to, ok := stateIdx[d.Dst]
		if !ok {
			return nil, fmt.Errorf("fsm: machine %s: event %s goes to unknown state %q", name, d.Name, d.Dst)
		}
		for _, src := range d.Src {
			from, ok := stateIdx[src]
			if !ok {
				return nil, fmt.Errorf("fsm: machine %s: event %s leaves unknown state %q", name, d.Name, src)
			}
			k := from*len(events) + ev
			if m.table[k] != none && int(m.table[k]) != to {
				return nil, fmt.Errorf("fsm: machine %s: event %s from %s has two destinations", name, d.Name, src)
			}
			m.table[k] = int8(to)
		}
	}
	return m, nil
}

// MustDeclare is [Declare] for package-level declarations: it panics on error.
func MustDeclare(name string, states, events []string, initial string, decl lf.Events) *Machine {
	m, err := Declare(name, states, events, initial, decl)
	if err != nil {
		panic(err)
	}
	return m
}

func indexNames(machine, what string, names []string) (map[string]int, error) {
	idx := make(map[string]int, len(names))
	for i, n := range names {
		if n == "" {
			return nil, fmt.Errorf("fsm: machine %s: %s %d has no name", machine, what, i)
		}
		if _, dup := idx[n]; dup {
			return nil, fmt.Errorf("fsm: machine %s: %s %q listed twice", machine, what, n)
		}
		idx[n] = i
	}
	return idx, nil
}

// Name is the machine kind's name as it appears in traces ("slot", "pool").
func (m *Machine) Name() string { return m.name }

// States lists the state names, indexed by state value. Do not modify.
func (m *Machine) States() []string { return m.states }

// Events lists the event names, indexed by event value. Do not modify.
func (m *Machine) Events() []string { return m.events }

// Initial is the state a new machine of this kind starts in.
func (m *Machine) Initial() int { return m.initial }

// StateName returns the name of state s, or "state(N)" for an unknown value.
func (m *Machine) StateName(s int) string {
	if s >= 0 && s < len(m.states) {
		return m.states[s]
	}
	return fmt.Sprintf("state(%d)", s)
}

// EventName returns the name of event e, or "event(N)" for an unknown value.
func (m *Machine) EventName(e int) string {
	if e >= 0 && e < len(m.events) {
		return m.events[e]
	}
	return fmt.Sprintf("event(%d)", e)
}

// Next returns the state that event ev leads to from state from, and false
// when the declaration has no such transition.
func (m *Machine) Next(from, ev int) (int, bool) {
	if from < 0 || from >= len(m.states) || ev < 0 || ev >= len(m.events) {
		return 0, false
	}
	to := m.table[from*len(m.events)+ev]
	return int(to), to != none
}

// Looplab returns a new looplab machine of this kind in the given state. It
// is the reference the compiled table is checked against, and is never used
// on the loop.
func (m *Machine) Looplab(state int) *lf.FSM {
	f := lf.NewFSM(m.states[m.initial], m.decl, nil)
	f.SetState(m.StateName(state))
	return f
}

// LooplabNext asks looplab where event ev leads from state from. It returns
// false when looplab refuses the event. A declared self-transition counts as
// a transition even though looplab reports it as NoTransitionError.
func (m *Machine) LooplabNext(from, ev int) (int, bool) {
	f := m.Looplab(from)
	err := f.Event(context.Background(), m.EventName(ev))
	if err != nil {
		if _, self := err.(lf.NoTransitionError); !self {
			return 0, false
		}
	}
	for i, s := range m.states {
		if s == f.Current() {
			return i, true
		}
	}
	return 0, false
}

// Mermaid renders the machine as a Mermaid state diagram, generated by
// looplab from the declaration, in a fixed order.
func (m *Machine) Mermaid() string {
	out, err := lf.VisualizeForMermaidWithGraphType(m.Looplab(m.initial), lf.StateDiagram)
	if err != nil { // only for an unknown diagram type
		panic(err)
	}
	return out
}

// Markdown renders the machine's diagram page for docs/: a title, the
// Mermaid diagram, and the lists of states and events.
func (m *Machine) Markdown(about string, stateDocs, eventDocs []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# The %s machine\n\n", m.name)
	b.WriteString("<!-- Generated from the declaration by `go test ./fsm -run TestDiagrams -update`; do not edit. -->\n\n")
	if about != "" {
		b.WriteString(about + "\n\n")
	}
	b.WriteString("```mermaid\n" + m.Mermaid() + "```\n\n")
	b.WriteString("| state | meaning |\n|---|---|\n")
	for i, s := range m.states {
		fmt.Fprintf(&b, "| `%s` | %s |\n", s, docAt(stateDocs, i))
	}
	b.WriteString("\n| event | meaning |\n|---|---|\n")
	for i, e := range m.events {
		fmt.Fprintf(&b, "| `%s` | %s |\n", e, docAt(eventDocs, i))
	}
	return b.String()
}

func docAt(docs []string, i int) string {
	if i < len(docs) {
		return docs[i]
	}
	return ""
}
