package pool

import (
	"cmp"
	"context"
	"iter"
	"log/slog"
	"runtime"
	"slices"
	"time"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/slot"
)

// HeldClaim is one claim held now, as Held and the leak handler report it.
type HeldClaim struct {
	// Backend is the backend of the claimed connection.
	Backend backend.Name `json:"backend"`
	// Age is how long the claim has been held at least (see
	// Stats.OldestClaim for how claims are timed without a clock read).
	Age time.Duration `json:"age"`
	// Label is the label its claimer gave with WithClaimLabel; it is kept
	// with Policy.TrackHeld only.
	Label string `json:"label,omitempty"`
	// Stack is its claimer's stack when it claimed, with Policy.HeldStacks
	// only.
	Stack string `json:"stack,omitempty"`
}

// heldInfo is what the registry of held claims (Policy.TrackHeld) keeps of
// one claim, beyond what its slot says.
type heldInfo struct {
	claim    int64 // the slot's claimed when it was made: the claim it belongs to
	label    string
	stack    string
	reported bool // the leak handler was told of it
}

type labelKey struct{}

// WithClaimLabel returns a context whose claims carry label: with
// Policy.TrackHeld, Held lists it with each claim, Stats counts the claims
// held per label (Stats.HeldByLabel), and a leak report names it. Without
// TrackHeld the label is not read.
func WithClaimLabel(ctx context.Context, label string) context.Context {
	return context.WithValue(ctx, labelKey{}, label)
}

// WithLeakHandler has the pool call f for each claim held longer than
// Policy.LeakThreshold, once per claim (HikariCP's leak detection), in
// addition to a warning in its log. f runs without the pool's loop held,
// on a goroutine of the pool's; it may call the pool.
func WithLeakHandler(f func(HeldClaim)) Option {
	return func(o *options) { o.onLeak = f }
}

// track records the label and stack of the claim just made on sl, when
// the registry of held claims is on. The claim path pays for it only
// then: a context lookup and, when the claim has a label or a stack to
// keep, a map lookup. Each slot's entry is made once and reused by its
// later claims; an entry belongs to the claim whose number it holds, so
// that a claim's end needs no work, and an entry is dropped when its slot
// stops.
func (p *Pool[C]) track(sl *pslot[C], ctx context.Context) {
	if p.pol.TrackHeld { // small enough to inline: the claim path pays a test
		p.trackClaim(sl, ctx)
	}
}

// trackClaim is track with the registry on.
func (p *Pool[C]) trackClaim(sl *pslot[C], ctx context.Context) {
	label, _ := ctx.Value(labelKey{}).(string)
	var stack string
	if p.pol.HeldStacks {
		buf := make([]byte, 4096)
		stack = string(buf[:runtime.Stack(buf, false)])
	}
	if label == "" && stack == "" {
		return
	}
	hi := p.heldEntry(sl)
	*hi = heldInfo{claim: sl.claimed, label: label, stack: stack}
}

// heldEntry returns sl's entry in the registry, made if need be.
func (p *Pool[C]) heldEntry(sl *pslot[C]) *heldInfo {
	if p.held == nil {
		p.held = make(map[*pslot[C]]*heldInfo)
	}
	hi := p.held[sl]
	if hi == nil {
		hi = &heldInfo{claim: -1}
		p.held[sl] = hi
	}
	return hi
}

// untrack drops the registry's entry of sl, which stopped.
func (p *Pool[C]) untrack(sl *pslot[C]) {
	if p.held != nil {
		delete(p.held, sl)
	}
}

// heldInfoOf returns what the registry keeps of sl's current claim, or nil.
func (p *Pool[C]) heldInfoOf(sl *pslot[C]) *heldInfo {
	if p.held == nil {
		return nil
	}
	if hi := p.held[sl]; hi != nil && hi.claim == sl.claimed {
		return hi
	}
	return nil
}

// claimAge returns how long the claim whose pslot.claimed is claimed has
// been held at least, by now.
func (p *Pool[C]) claimAge(claimed int64, now time.Time) time.Duration {
	if p.tr.release != nil { // claims are stamped for the tracer: exact
		return now.Sub(p.loop.Time(claimed))
	}
	return p.cclock.HeldAtLeast(uint64(claimed), now)
}

// Held lists the claims held now, oldest first: the backend, the age and,
// with Policy.TrackHeld, the label (and with HeldStacks the stack) of
// each. It works whatever the policy, at no cost to a claim; a claim made
// moments ago may show an age of 0 (see Stats.OldestClaim).
func (p *Pool[C]) Held() []HeldClaim {
	p.loop.Enter()
	defer p.loop.Leave()
	now := p.now()
	var out []HeldClaim
	for sl := range p.claims() {
		hc := HeldClaim{Backend: sl.set.b.Name, Age: p.claimAge(sl.claimed, now)}
		if hi := p.heldInfoOf(sl); hi != nil {
			hc.Label, hc.Stack = hi.label, hi.stack
		}
		out = append(out, hc)
	}
	p.cclock.Mark(now)
	slices.SortStableFunc(out, func(a, b HeldClaim) int { return cmp.Compare(b.Age, a.Age) })
	return out
}

// heldByLabel counts the claims held per label, for Stats (with
// TrackHeld; the claims without a label count under "").
func (p *Pool[C]) heldByLabel() map[string]int {
	if !p.pol.TrackHeld {
		return nil
	}
	m := map[string]int{}
	for sl := range p.claims() {
		label := ""
		if hi := p.heldInfoOf(sl); hi != nil {
			label = hi.label
		}
		m[label]++
	}
	return m
}

// leakScan runs every quarter of Policy.LeakThreshold: each claim held
// longer than the threshold is reported once, in the log and to the leak
// handler.
func (p *Pool[C]) leakScan() {
	if p.closing() {
		return
	}
	now := p.now()
	var leaks []HeldClaim
	for sl := range p.claims() {
		age := p.claimAge(sl.claimed, now)
		if age < p.pol.LeakThreshold {
			continue
		}
		hi := p.heldInfoOf(sl)
		if hi == nil {
			hi = p.heldEntry(sl)
			*hi = heldInfo{claim: sl.claimed}
		}
		if hi.reported {
			continue
		}
		hi.reported = true
		p.st.leaks++
		hc := HeldClaim{Backend: sl.set.b.Name, Age: age, Label: hi.label, Stack: hi.stack}
		leaks = append(leaks, hc)
		p.loop.Log(p.log, slog.LevelWarn, "claim held longer than the leak threshold", "backend", hc.Backend, "age", hc.Age, "label", hc.Label, "stack", hc.Stack)
	}
	p.cclock.Mark(now)
	if f := p.onLeak; f != nil && len(leaks) > 0 {
		p.loop.Later(func() {
			for _, hc := range leaks {
				p.callLeakHandler(f, hc)
			}
		})
	}
	p.loop.After(&p.leakTimer, p.leakPeriod())
}

// callLeakHandler calls the leak handler, recovering a panic as a policy
// error.
func (p *Pool[C]) callLeakHandler(f func(HeldClaim), hc HeldClaim) {
	defer func() {
		if v := recover(); v != nil {
			p.loop.Enter()
			p.policyError("pool: leak handler panicked: %v", v)
			p.loop.Leave()
		}
	}()
	f(hc)
}

// leakPeriod is how often held claims are scanned for leaks: a quarter of
// the threshold, so that a leak is reported at most a quarter late (plus
// what the claim clock's lower bound adds), and never more often than
// every millisecond.
func (p *Pool[C]) leakPeriod() time.Duration {
	return max(p.pol.LeakThreshold/4, time.Millisecond)
}

// claims yields the slots claimed now by a claimer (not those a forced
// Close stopped), backend by backend.
func (p *Pool[C]) claims() iter.Seq[*pslot[C]] {
	return func(yield func(*pslot[C]) bool) {
		for _, s := range p.order {
			for _, sl := range s.slots {
				if sl.State() == slot.Claimed && sl.cur != nil && !yield(sl) {
					return
				}
			}
		}
	}
}
