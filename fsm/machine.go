package fsm

import (
	"context"
	"fmt"
	"strings"

	lf "github.com/looplab/fsm"
)

// none marks a (state, event) pair with no transition in a compiled table.
const none = -1

// Machine is the untyped description of one declared kind of machine: its
// name, states and events, the transition table compiled from its looplab
// declaration, and what is generated from it (diagrams, the looplab
// reference). Transition records point to it, and turn their small integers
// into names through it. A Machine is immutable after [Declare] and safe for
// concurrent use. The typed view used to fire events is [Kind].
type Machine struct {
	name   string
	states []string
	events []string
	decl   lf.Events
	table  []int8 // table[from*len(events)+event] is the next state, or none
}

// Kind is one declared kind of machine, typed by its state type S and its
// event type E (small integer constants whose values index the declared
// names). It fires events on [State] values of its own types only, so that
// a machine's state can change only through a declared event of its kind.
// A Kind is immutable after [Declare] and safe for concurrent use.
type Kind[S, E ~int8] struct {
	// wide is the table with rows of 256 columns, one per int8 value of an
	// event (negative values wrap to 128..255), so that Fire indexes it
	// without checking the event's range: undeclared columns hold none.
	wide []int8
	m    *Machine
}

// State is the state of one machine of kind Kind[S, E]. Embed it in the
// thing whose state it is. Its zero value is the kind's initial state (the
// first state declared); it changes only through [Kind.Fire], and is read
// with [State.Get]. A State must not be copied to stand for another
// machine: copy its value with Get.
type State[S, E ~int8] struct{ s S }

// Get returns the current state.
func (st *State[S, E]) Get() S { return st.s }

// Declare compiles a machine kind. states and events list every name in
// the order of the caller's typed constants (so a constant's value is its
// index); the first state is the initial one, the zero [State]. decl is the
// looplab declaration: the only place the transitions are written. Declare
// returns an error when decl names an unknown state or event, when one
// (state, event) pair has two destinations, or when a name is listed twice.
func Declare[S, E ~int8](name string, states, events []string, decl lf.Events) (*Kind[S, E], error) {
	m := &Machine{name: name, states: states, events: events, decl: decl}
	if len(states) == 0 || len(states) > 127 || len(events) == 0 || len(events) > 127 {
		return nil, fmt.Errorf("fsm: machine %s: needs 1..127 states and 1..127 events", name)
	}
	stateIdx, err := indexNames(name, "state", states)
	if err != nil {
		return nil, err
	}
	eventIdx, err := indexNames(name, "event", events)
	if err != nil {
		return nil, err
	}
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
	k := &Kind[S, E]{wide: make([]int8, len(states)<<8), m: m}
	for i := range k.wide {
		k.wide[i] = none
	}
	for from := range states {
		copy(k.wide[from<<8:], m.table[from*len(events):(from+1)*len(events)])
	}
	return k, nil
}

// MustDeclare is [Declare] for package-level declarations: it panics on error.
func MustDeclare[S, E ~int8](name string, states, events []string, decl lf.Events) *Kind[S, E] {
	k, err := Declare[S, E](name, states, events, decl)
	if err != nil {
		panic(err)
	}
	return k
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

// Machine is the kind's untyped description, the one transition records
// point to.
func (k *Kind[S, E]) Machine() *Machine { return k.m }

// Name is the kind's name as it appears in traces ("slot", "pool").
func (k *Kind[S, E]) Name() string { return k.m.name }

// StateName returns the trace name of state s, or "state(N)" for a value
// that is not declared.
func (k *Kind[S, E]) StateName(s S) string { return k.m.StateName(int(s)) }

// EventName returns the trace name of event e, or "event(N)" for a value
// that is not declared.
func (k *Kind[S, E]) EventName(e E) string { return k.m.EventName(int(e)) }

// Next returns the state that event ev leads to from state from, and false
// when the declaration has no such transition.
func (k *Kind[S, E]) Next(from S, ev E) (S, bool) {
	to, ok := k.m.Next(int(from), int(ev))
	return S(to), ok
}

// Fire executes event ev on st, the state of the machine of this kind
// whose identity is id, on loop l, and reports the transition to l's
// observers. It returns false, leaves st unchanged and reports an
// [ImpossibleError] (panicking when l is strict) when the declaration has
// no such transition. With no observer, Fire is a table lookup: it reads
// no clock and allocates nothing.
//
// l may be nil for a machine not yet running on any loop (a resolver
// stopped before it was started): the transition is then checked but
// reported to nobody, and an impossible one panics.
//
// Fire must be called with the loop held.
func (k *Kind[S, E]) Fire(l *Loop, st *State[S, E], id string, ev E) bool {
	if i := uint(int(st.s)<<8 | int(uint8(ev))); i < uint(len(k.wide)) && l != nil {
		// l.slow is negative when someone observes: then so is to.
		if to := k.wide[i] | l.slow; to >= 0 {
			st.s = S(to)
			return true
		}
	}
	return k.fireSlow(l, st, id, ev)
}

// fireSlow is Fire with observers to tell, on no loop, or refused. It is
// kept out of line so that Fire's fast path stays a few instructions.
//
//go:noinline
func (k *Kind[S, E]) fireSlow(l *Loop, st *State[S, E], id string, ev E) bool {
	to, ok := l.fire(k.m, id, int8(st.s), int8(ev))
	st.s = S(to)
	return ok
}

// Created reports to l's observers that a machine of this kind with
// identity id was created, in state st. It is a record outside the
// declared transitions, marked [Transition.Created]; nothing happens when
// no observer is registered, or l is nil.
func (k *Kind[S, E]) Created(l *Loop, id string, st *State[S, E]) {
	if l != nil && len(l.observers) > 0 {
		l.notify(Transition{At: l.eventTime(), Machine: k.m, ID: id, From: int8(st.s), Event: none, To: int8(st.s), Created: true})
	}
}

// Step is a transition record of one kind, typed. For a creation record
// (Created), From equals To and Event is not meaningful.
type Step[S, E ~int8] struct {
	From    S    // the state left
	Event   E    // the event fired
	To      S    // the state entered
	Created bool // the record of a new machine, in state To
}

// Step returns t's states and event typed, and false when t is a record of
// another kind.
func (k *Kind[S, E]) Step(t Transition) (Step[S, E], bool) {
	if t.Machine != k.m {
		return Step[S, E]{}, false
	}
	return Step[S, E]{From: S(t.From), Event: E(t.Event), To: S(t.To), Created: t.Created}, true
}

// Name is the machine kind's name as it appears in traces ("slot", "pool"),
// or "" for a nil Machine (the zero Transition's).
func (m *Machine) Name() string {
	if m == nil {
		return ""
	}
	return m.name
}

// String returns the kind's name.
func (m *Machine) String() string { return m.Name() }

// States lists the state names, indexed by state value. Do not modify.
func (m *Machine) States() []string { return m.states }

// Events lists the event names, indexed by event value. Do not modify.
func (m *Machine) Events() []string { return m.events }

// StateName returns the name of state s, or "state(N)" for an unknown value.
func (m *Machine) StateName(s int) string {
	if m != nil && s >= 0 && s < len(m.states) {
		return m.states[s]
	}
	return fmt.Sprintf("state(%d)", s)
}

// EventName returns the name of event e, or "event(N)" for an unknown value.
func (m *Machine) EventName(e int) string {
	if m != nil && e >= 0 && e < len(m.events) {
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
	f := lf.NewFSM(m.states[0], m.decl, nil)
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
	out, err := lf.VisualizeForMermaidWithGraphType(m.Looplab(0), lf.StateDiagram)
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
