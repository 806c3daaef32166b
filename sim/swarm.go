package sim

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Swarm testing (Groce et al., "Swarm Testing", ISSTA 2012; TigerBeetle's
// VOPR) gives each run its own mix: instead of every run drawing from
// every kind of fault with fixed odds, each run enables a random subset
// of the kinds, with random weights, so that some runs pile many faults
// of two kinds onto the same backends and others never see a kind that
// would mask a bug.

// swarmKinds are the fault kinds [Scenario.Swarm] draws from: every kind
// of fault the simulator has but pause, which is drawn apart (see
// swarmPauses).
var swarmKinds = slices.DeleteFunc(slices.Clone(faultKinds), func(k string) bool { return k == FaultPause })

// Swarm knobs that are not faults of the schedule: each run enables each
// one time in two, and then draws its probability.
const (
	swarmConnectErrors = "connect_errors" // every backend's connect_error_rate
	swarmDiscards      = "discards"       // every client's workload discard_rate
)

// swarmMaxFaults bounds the faults of one drawn schedule.
const swarmMaxFaults = 10

// Swarm returns a copy of sc with the same topology (DNS, backends,
// clients, their policies and workloads) and expectations, whose faults
// are replaced by a mix drawn from seed:
//
//   - which fault kinds are enabled (each one time in two, at least one),
//     and a weight for each;
//   - whether connects fail at random (every backend's connect_error_rate)
//     and claimers discard good connections (discard_rate), and how often;
//   - how many faults (1 to 10), and for each its kind (by weight), its
//     targets (a few backends or clients, sometimes all), its lengths
//     (for, spread, down, drain), its factor, and its time. Every fault
//     ends within the run, as [Parse] requires.
//
// The copy's Seed is seed, its Name the scenario's with "-swarm-<seed>",
// and its Description says what was drawn. The same scenario and seed
// give the same copy, whose [Scenario.Marshal] reads back with [Parse]
// to an equal scenario: a drawn run is replayed from its file.
func (sc *Scenario) Swarm(seed uint64) *Scenario {
	d := &swarmDraw{rng: stream(seed, "swarm"), dur: sc.Duration.D(),
		backends: sc.BackendNames(), clients: sc.ClientNames()}
	c := *sc
	c.file, c.pos = "", nil
	c.Seed = seed
	c.Name = fmt.Sprintf("%s-swarm-%d", sc.Name, seed)
	c.Backends = slices.Clone(sc.Backends)
	c.Clients = slices.Clone(sc.Clients)

	// The mix: the kinds enabled and their weights.
	var kinds []string
	var weights []float64
	for _, k := range swarmKinds {
		if d.rng.IntN(2) == 0 {
			kinds = append(kinds, k)
			weights = append(weights, 0.1+0.9*d.rng.Float64())
		}
	}
	if len(kinds) == 0 {
		kinds = []string{swarmKinds[d.rng.IntN(len(swarmKinds))]}
		weights = []float64{1}
	}
	var knobs []string
	if d.rng.IntN(2) == 0 {
		p := round(d.logUniform(0.001, 0.3), 4)
		knobs = append(knobs, fmt.Sprintf("%s %g", swarmConnectErrors, p))
		for i := range c.Backends {
			c.Backends[i].ConnectErrorRate = max(c.Backends[i].ConnectErrorRate, p)
		}
	}
	if d.rng.IntN(2) == 0 {
		p := round(d.logUniform(0.001, 0.1), 4)
		knobs = append(knobs, fmt.Sprintf("%s %g", swarmDiscards, p))
		for i := range c.Clients {
			c.Clients[i].Workload.DiscardRate = max(c.Clients[i].Workload.DiscardRate, p)
		}
	}

	// The schedule.
	n := 1 + d.rng.IntN(swarmMaxFaults)
	c.Faults = make([]Fault, 0, n)
	for range n {
		c.Faults = append(c.Faults, d.fault(kinds[pick(d.rng, weights)]))
	}
	pauses := d.pauses(seed)
	c.Faults = append(c.Faults, pauses...)
	slices.SortStableFunc(c.Faults, func(a, b Fault) int { return cmp.Compare(a.At, b.At) })

	var b strings.Builder
	fmt.Fprintf(&b, "Drawn by swarm testing from %s with seed %d: %d faults, of the kinds enabled: ", sc.Name, seed, n)
	for i, k := range kinds {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s (weight %.2f)", k, weights[i])
	}
	if len(knobs) > 0 {
		b.WriteString("; " + strings.Join(knobs, ", "))
	}
	if len(pauses) > 0 {
		fmt.Fprintf(&b, "; and %d pauses", len(pauses))
	}
	b.WriteString(".")
	if desc := strings.TrimSpace(sc.Description); desc != "" {
		b.WriteString("\n\nThe scenario's own story, with its own faults:\n" + desc)
	}
	c.Description = b.String()
	return &c
}

// pauses draws the pause faults of a run: one run in two has one to
// three, each of 10ms to 10s (a GC pause, a VM stall), of a few clients
// or all. They are drawn from a stream of their own, after the other
// faults, so that a seed draws the same other faults as before pauses
// existed.
func (d *swarmDraw) pauses(seed uint64) []Fault {
	pd := *d
	pd.rng = stream(seed, "swarm/pause")
	if pd.rng.IntN(2) != 0 {
		return nil
	}
	fs := make([]Fault, 1+pd.rng.IntN(3))
	for i := range fs {
		fs[i] = pd.fault(FaultPause)
	}
	return fs
}

// swarmDraw draws the faults of one swarm run.
type swarmDraw struct {
	rng      *rand.Rand
	dur      time.Duration
	backends []string
	clients  []string
}

// fault draws one fault of the given kind that ends within the run.
func (d *swarmDraw) fault(kind string) Fault {
	f := Fault{Kind: kind}
	switch kind {
	case FaultCrash, FaultHang, FaultPartition, FaultCheckFail, FaultErrors, FaultDemote, FaultDNSOutage:
		f.For = d.forLength()
	case FaultSlow:
		f.For = d.forLength()
		f.Factor = round(d.logUniform(1.5, 100), 1)
	case FaultLoad:
		f.For = d.forLength()
		f.Factor = round(d.logUniform(0.1, 10), 1)
	case FaultReplace:
		f.Drain = d.length(time.Second, time.Minute)
	case FaultRestart:
		if d.rng.IntN(2) == 0 {
			f.Spread = d.length(100*time.Millisecond, 30*time.Second)
		}
		f.Down = d.length(10*time.Millisecond, 10*time.Second)
	case FaultKill:
		f.Down = d.length(10*time.Millisecond, 10*time.Second)
		f.Linger = d.length(time.Second, 10*time.Minute)
	case FaultPause:
		f.For = d.length(10*time.Millisecond, 10*time.Second)
	case FaultClose:
		if d.rng.IntN(2) == 0 {
			f.Spread = d.length(100*time.Millisecond, 30*time.Second)
		}
		f.Drain = d.length(100*time.Millisecond, time.Minute)
		if d.rng.IntN(2) == 0 {
			f.Down = d.length(100*time.Millisecond, 30*time.Second)
		}
	}
	switch kind {
	case FaultReplace:
		f.Backends, f.With = d.replacement()
	case FaultRestart, FaultLoad, FaultClose, FaultReset, FaultKill, FaultPause:
		f.Clients = d.some(d.clients, true)
	case FaultDNSOutage:
	default:
		f.Backends = d.some(d.backends, false)
	}
	// The options of a kind, each drawn half the time: a probability per
	// call, a ramp, a partition of some clients only and one way.
	switch kind {
	case FaultHang, FaultCheckFail, FaultErrors:
		if d.rng.IntN(2) == 0 {
			f.Probability = round(d.logUniform(0.01, 0.9), 2)
		}
	case FaultSlow:
		if d.rng.IntN(2) == 0 {
			f.Ramp = -1 // a share of the fault's length, once that is final
		}
	case FaultPartition:
		if d.rng.IntN(2) == 0 && len(d.clients) > 1 {
			f.Clients = d.some(d.clients, false)
		}
		if d.rng.IntN(2) == 0 {
			f.Direction = []string{DirectionToBackends, DirectionFromBackends}[d.rng.IntN(2)]
		}
	}
	// The lengths that must end within the run, and the time: drawn last,
	// in what the lengths leave.
	var lengths []*Duration
	switch kind {
	case FaultReplace:
		lengths = []*Duration{&f.Drain}
	case FaultRestart:
		lengths = []*Duration{&f.Spread, &f.Down}
	case FaultClose:
		lengths = []*Duration{&f.Spread} // its drain and down may pass the end
	case FaultKill:
		lengths = []*Duration{&f.Down} // its linger may pass the end
	case FaultReset:
		lengths = nil // instant
	default:
		lengths = []*Duration{&f.For}
	}
	var sum time.Duration
	for _, l := range lengths {
		sum += l.D()
	}
	if sum > d.dur { // a scenario shorter than the lengths drawn: scale them down
		for _, l := range lengths {
			*l = Duration(time.Duration(float64(*l) * float64(d.dur) / float64(sum)).Truncate(time.Millisecond))
		}
		sum = 0
		for _, l := range lengths {
			sum += l.D()
		}
	}
	if kind == FaultReplace && f.Drain == 0 || kind == FaultRestart && f.Down == 0 {
		// Zero takes the default (30s, 1s): not in a run this short.
		f.At = 0
		if kind == FaultReplace {
			f.Drain = Duration(min(d.dur, time.Millisecond))
		} else {
			f.Down = Duration(min(d.dur, time.Millisecond))
		}
		return f
	}
	f.At = Duration(d.uniform(0, d.dur-sum))
	if f.Ramp < 0 {
		span := f.For.D()
		if span == 0 {
			span = d.dur - f.At.D()
		}
		f.Ramp = Duration(d.uniform(0, span))
	}
	return f
}

// forLength draws the length of a fault with for: one in ten lasts to
// the end of the run (for = 0), the others from 100ms to the whole run.
func (d *swarmDraw) forLength() Duration {
	if d.rng.IntN(10) == 0 {
		return 0
	}
	return d.length(100*time.Millisecond, d.dur)
}

// length draws a duration log-uniformly from lo to hi, to the
// millisecond, at least 1ms.
func (d *swarmDraw) length(lo, hi time.Duration) Duration {
	v := time.Duration(d.logUniform(float64(lo), float64(max(hi, lo))))
	return Duration(max(v.Round(time.Millisecond), time.Millisecond))
}

// uniform draws a time from lo to hi, to the millisecond.
func (d *swarmDraw) uniform(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	v := lo + time.Duration(d.rng.Int64N(int64(hi-lo)+1))
	if r := v.Truncate(time.Millisecond); r >= lo {
		return r
	}
	return v
}

func (d *swarmDraw) logUniform(lo, hi float64) float64 {
	return math.Exp(math.Log(lo) + d.rng.Float64()*(math.Log(hi)-math.Log(lo)))
}

// some draws targets among names: one in five times all of them (for
// clients, an empty list), else a few, fewer more often than many, in
// the scenario's order.
func (d *swarmDraw) some(names []string, emptyIsAll bool) []string {
	if d.rng.IntN(5) == 0 {
		if emptyIsAll {
			return nil
		}
		return slices.Clone(names)
	}
	k := 1 + d.rng.IntN(1+d.rng.IntN(len(names)))
	idx := d.rng.Perm(len(names))[:k]
	slices.Sort(idx)
	out := make([]string, k)
	for i, j := range idx {
		out[i] = names[j]
	}
	return out
}

// replacement draws the old and new backends of a replace: k old ones
// and k others (the same one, with a single backend).
func (d *swarmDraw) replacement() (old, with []string) {
	n := len(d.backends)
	if n == 1 {
		return []string{d.backends[0]}, []string{d.backends[0]}
	}
	k := 1 + d.rng.IntN(max(n/2, 1))
	perm := d.rng.Perm(n)
	for i := range k {
		old = append(old, d.backends[perm[i]])
		with = append(with, d.backends[perm[k+i]])
	}
	return old, with
}

// pick draws an index with probability proportional to its weight.
func pick(r *rand.Rand, weights []float64) int {
	var total float64
	for _, w := range weights {
		total += w
	}
	v := r.Float64() * total
	for i, w := range weights {
		if v < w {
			return i
		}
		v -= w
	}
	return len(weights) - 1
}

// round rounds v to the given decimals, and to no less than the
// smallest positive number they write.
func round(v float64, decimals int) float64 {
	r, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'f', decimals, 64), 64)
	return max(r, math.Pow10(-decimals))
}
