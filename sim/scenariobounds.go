package sim

import (
	"fmt"
	"math"
	"reflect"
	"time"
)

// Bounds of what a scenario may ask for. Each is far above what any
// shipped scenario or swarm run uses (docs/sim.md, Bounds and budgets),
// and each has a reason: past it a run would take hours or gigabytes, or
// virtual time would overflow. Within them, a run that still asks too
// much is stopped by its budget (Options.MaxEvents, MaxLiveClaims).
const (
	// maxRunDuration bounds Scenario.Duration.
	maxRunDuration = 24 * time.Hour
	// maxAnyDuration bounds every other duration of a file, and the
	// largest value of every distribution: far longer than any timeout,
	// latency or lifetime needs, and so far from the 292 years where
	// virtual time in nanoseconds overflows that a slow fault's largest
	// factor on the largest latency still fits.
	maxAnyDuration = 1000 * time.Hour
	// maxClientRate bounds a client's claims per second.
	maxClientRate = 10_000
	// maxFleetRate bounds the claims per second of all clients together.
	maxFleetRate = 1_000_000
	// maxFactor bounds the factor of slow and load faults.
	maxFactor = 1000
	// maxPerSecond bounds accept_rate and connect_rate_per_backend: the
	// virtual clock ticks in nanoseconds.
	maxPerSecond = 1e9
	// maxBackends and maxClients bound the backends and the clients of
	// a scenario, counts expanded.
	maxBackends = 10_000
	maxClients  = 100_000
	// maxPairs bounds clients × backends: each client keeps a slot set
	// for every backend it is told of, about 1.5 KB in the simulator.
	maxPairs = 500_000
	// maxFleetSlots bounds the slots of all clients together (each
	// client's max_slots, or its connset target): about 2 KB each.
	maxFleetSlots = 500_000
	// maxMaxConns bounds a backend's max_conns: beyond every slot of the
	// fleet it is no cap.
	maxMaxConns = 1_000_000
	// maxFaults bounds the faults, the DNS changes and the groups of DNS
	// records of a scenario: each is listed in the summary, drawn in the
	// picture or matched against every backend.
	maxFaults = 10_000
	// maxDNSServers bounds the DNS servers; maxDNSParallel the servers
	// a resolver asks at once.
	maxDNSServers  = 100
	maxDNSParallel = 64
)

// checkSizes reports counts of backends and clients past their bounds,
// and reports whether the names can be expanded: a count of a billion
// would take gigabytes to expand before any other check.
func (sc *Scenario) checkSizes(bad func(path, format string, a ...any)) bool {
	ok := true
	backends, clients := 0, 0
	for i, b := range sc.Backends {
		if b.Count > maxBackends {
			bad(fmt.Sprintf("backends[%d].count", i), "%d: at most %d backends: each client keeps a slot set for each, and the picture draws a line for each", b.Count, maxBackends)
			ok = false
		}
		backends += min(max(b.Count, 1), maxBackends+1)
	}
	for i, c := range sc.Clients {
		if c.Count > maxClients {
			bad(fmt.Sprintf("clients[%d].count", i), "%d: at most %d clients, each a pool of its own in the simulator", c.Count, maxClients)
			ok = false
		}
		clients += min(max(c.Count, 1), maxClients+1)
	}
	if !ok {
		return false
	}
	if backends > maxBackends {
		bad("backends", "%d backends in all: at most %d: each client keeps a slot set for each, and the picture draws a line for each", backends, maxBackends)
		return false
	}
	if clients > maxClients {
		bad("clients", "%d clients in all: at most %d, each a pool of its own in the simulator", clients, maxClients)
		return false
	}
	if pairs := clients * backends; pairs > maxPairs {
		bad("clients", "%d clients × %d backends = %d client-backend pairs: at most %d: each client keeps a slot set for every backend, about 1.5 KB each in the simulator",
			clients, backends, pairs, maxPairs)
	}
	return true
}

// checkBounds reports every value of sc past its bound, naming the
// field, the value, the bound and the reason for it. It runs after the
// other checks, on a scenario whose policies are valid or reported.
func (sc *Scenario) checkBounds(bad func(path, format string, a ...any)) {
	if sc.Duration > Duration(maxRunDuration) {
		bad("duration", "%v: at most %v: a run's events grow with its virtual time, and a failure story is minutes long (run several seeds rather than one long run)",
			sc.Duration, Duration(maxRunDuration))
	}
	walkDurations(reflect.ValueOf(sc).Elem(), "", func(path string, d time.Duration, dist *Dist) {
		if path == "duration" || d <= maxAnyDuration {
			return
		}
		if dist != nil {
			bad(path, "%v can draw up to %v: at most %v, far longer than any latency or hold needs, so that a slow fault's factor on it cannot overflow virtual time",
				*dist, d, Duration(maxAnyDuration))
			return
		}
		bad(path, "%v: at most %v, far longer than any run, timeout or lifetime needs, so that virtual time (in nanoseconds) cannot overflow",
			Duration(d), Duration(maxAnyDuration))
	})

	for i, b := range sc.Backends {
		p := fmt.Sprintf("backends[%d]", i)
		if b.AcceptRate > maxPerSecond {
			bad(p+".accept_rate", "%v: at most %g connects a second: the virtual clock ticks in nanoseconds (leave accept_rate out for no limit)", b.AcceptRate, maxPerSecond)
		}
		if b.MaxConns > maxMaxConns {
			bad(p+".max_conns", "%d: at most %d: more than the fleet's slots can ever open (leave max_conns out for no cap)", b.MaxConns, maxMaxConns)
		}
	}

	slots := 0
	rate := 0.0
	for i, c := range sc.Clients {
		p := fmt.Sprintf("clients[%d]", i)
		n := max(c.Count, 1)
		if r := c.Workload.Rate; r > maxClientRate {
			bad(p+".workload.rate", "%v claims a second: at most %d per client: each claim is a few events of simulated work, so the rate sets how long a run takes (a client is one process's pool: for more load, add clients with count)",
				r, maxClientRate)
		} else if !math.IsNaN(r) && rate <= maxFleetRate {
			rate += r * float64(n)
			if rate > maxFleetRate {
				bad(p+".workload.rate", "%v claims a second × %d clients brings the fleet to %.0f a second: at most %d for all clients together, each claim a few events of simulated work",
					r, n, rate, maxFleetRate)
			}
		}
		if c.Start > sc.Duration && sc.Duration > 0 {
			bad(p+".start", "%v is after the end of the run (%v): the client would never start", c.Start, sc.Duration)
		}
		per := c.ConnSet
		if per == 0 {
			if eff, err := validatePolicy(c.Policy.Policy()); err == nil {
				per = eff.MaxSlots
			}
		}
		if slots <= maxFleetSlots {
			slots += per * n
			if slots > maxFleetSlots {
				field, what := p+".policy.max_slots", "max_slots"
				if c.ConnSet > 0 {
					field, what = p+".connset", "connset"
				}
				bad(field, "%d (%s) × %d clients brings the fleet to %d slots: at most %d for all clients together, each about 2 KB in the simulator (fewer clients, or fewer slots each)",
					per, what, n, slots, maxFleetSlots)
			}
		}
	}
	if len(sc.Faults) > maxFaults {
		bad("faults", "%d faults: at most %d: each is listed in the summary and drawn in the picture", len(sc.Faults), maxFaults)
	}
	for i, f := range sc.Faults {
		if f.Factor > maxFactor && (f.Kind == FaultSlow || f.Kind == FaultLoad) {
			why := "a backend that much slower is as good as hung: use a hang fault"
			if f.Kind == FaultLoad {
				why = "raise the workload's rate instead, within its bound"
			}
			bad(fmt.Sprintf("faults[%d].factor", i), "%v: at most %d: %s", f.Factor, maxFactor, why)
		}
	}
	d := &sc.DNS
	if len(d.Changes) > maxFaults {
		bad("dns.changes", "%d changes: at most %d, each an event in the trace", len(d.Changes), maxFaults)
	}
	if len(d.Records) > maxFaults {
		bad("dns.records", "%d groups of records: at most %d, each matched against every backend", len(d.Records), maxFaults)
	}
	if len(d.Servers) > maxDNSServers {
		bad("dns.servers", "%d servers: at most %d: a resolver asks them in turn", len(d.Servers), maxDNSServers)
	}
	if d.Parallel > maxDNSParallel {
		bad("dns.parallel", "%d: at most %d servers asked at once", d.Parallel, maxDNSParallel)
	}
	for i := range sc.Clients {
		if r := sc.Clients[i].Policy.ConnectRatePerBackend; r > maxPerSecond {
			bad(fmt.Sprintf("clients[%d].policy.connect_rate_per_backend", i), "%v: at most %g connects a second: the virtual clock ticks in nanoseconds (leave it out for no limit)", r, maxPerSecond)
		}
	}
}

var (
	durationType = reflect.TypeFor[Duration]()
	distType     = reflect.TypeFor[Dist]()
)

// walkDurations calls f with the path and the value of every Duration
// under v, and with the largest value of every Dist (and the Dist).
func walkDurations(v reflect.Value, path string, f func(path string, d time.Duration, dist *Dist)) {
	switch {
	case v.Type() == durationType:
		f(path, time.Duration(v.Int()), nil)
		return
	case v.Type() == distType:
		d := v.Interface().(Dist)
		f(path, d.Max(), &d)
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			walkDurations(v.Elem(), path, f)
		}
	case reflect.Slice:
		for i := range v.Len() {
			walkDurations(v.Index(i), fmt.Sprintf("%s[%d]", path, i), f)
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			if name, ok := tomlName(t.Field(i)); ok {
				walkDurations(v.Field(i), join(path, name), f)
			}
		}
	}
}
