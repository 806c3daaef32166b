package policytest

import (
	"fmt"
	"time"

	"pgregory.net/rapid"

	"github.com/qorbgo/qorb/pool"
	"github.com/qorbgo/qorb/sim"
)

// Schedule is one drawn workload and fault schedule.
type Schedule struct {
	Seed     uint64        // the simulation's seed
	Backends []Backend     // one each: db-1, db-2 …
	Clients  []Client      // one pool each
	Faults   []Fault       // in any order
	TTL      time.Duration // of the DNS records: how often resolvers ask again
}

// Backend is one drawn backend. Its zero value is a backend with the
// simulator's defaults: no cap, no accept rate, the default latencies.
type Backend struct {
	// MaxConns refuses connects beyond this many open connections (all
	// clients together); 0: no limit. It is drawn below what the clients
	// may hold together (MaxSlotsPerBackend each), but high enough that a
	// client whose peers hold all they may still has room for its spares
	// and two more: a pool is not asked to recover what the cap forbids.
	MaxConns int
	// AcceptRate is the connects accepted per second (beyond, they queue);
	// 0: no limit. It is drawn fast enough that every slot of every
	// client connecting at once is accepted within half the policy's
	// ConnectTimeout.
	AcceptRate int
	// Connect and Check are the latencies of a connect and of a health
	// check; zero takes the simulator's defaults. They are drawn no
	// longer than a tenth of the policy's ConnectTimeout and
	// HealthTimeout.
	Connect, Check sim.Dist
}

// Client is one drawn client: claims per second and how long each holds
// its connection (the time of its request on a healthy backend).
type Client struct {
	Rate int      // claims per second
	Hold sim.Dist // each claim's hold
}

// Fault is one drawn fault: Kind (a sim fault kind) on backend number
// Backend (1-based; unused by dns_outage, restart, load, close, pause and
// kill) at At, for For.
type Fault struct {
	Kind    string        // a sim fault kind, or Delist
	Backend int           // 1-based
	At      time.Duration // when it starts
	For     time.Duration // how long it lasts (restart, close and kill: how long the client is down)
}

// faultKinds are drawn in this order; shrinking moves toward the first.
var faultKinds = []string{sim.FaultCrash, sim.FaultHang, sim.FaultPartition, sim.FaultCheckFail, sim.FaultSlow,
	sim.FaultDNSOutage, Delist, sim.FaultRestart, sim.FaultLoad, sim.FaultClose, sim.FaultPause, sim.FaultKill}

// longKinds are the fault kinds that make connects fail, and so may last
// LongFault.
var longKinds = map[string]bool{sim.FaultCrash: true, sim.FaultHang: true, sim.FaultPartition: true, sim.FaultCheckFail: true}

// ttls are the DNS TTLs drawn; shrinking moves toward the first.
var ttls = []time.Duration{5 * time.Second, time.Second, 15 * time.Second, 30 * time.Second}

// paretoShapes are the shapes of the Pareto distributions drawn;
// shrinking moves toward the first.
var paretoShapes = []float64{2, 1.5, 3, 1.2}

// Delist is a drawn fault kind of the harness's own: the backend leaves
// DNS at At and comes back For later (a dns_remove and a dns_add).
const Delist = "delist"

// numbers are the numbers of a policy the generator draws around, its
// zero fields replaced by the pool's defaults (see pool.Policy).
type numbers struct {
	maxSlots, perBackend, spares  int
	connectTimeout, healthTimeout time.Duration
	backoffMin, backoffMax        time.Duration
	// churn is the shortest time a connection may live, by its lifetime
	// (less the jitter) or its idle time; 0 with neither.
	churn time.Duration
}

func numbersOf(p pool.Policy) numbers {
	or := func(v, d int) int {
		if v <= 0 {
			return d
		}
		return v
	}
	orD := func(v, d time.Duration) time.Duration {
		if v <= 0 {
			return d
		}
		return v
	}
	n := numbers{
		maxSlots: or(p.MaxSlots, 16), perBackend: or(p.MaxSlotsPerBackend, 16), spares: or(p.SparesWanted, 8),
		connectTimeout: orD(p.ConnectTimeout, 10*time.Second), healthTimeout: orD(p.HealthTimeout, 3*time.Second),
		backoffMin: orD(p.BackoffMin, 20*time.Millisecond), backoffMax: orD(p.BackoffMax, 30*time.Second),
	}
	n.perBackend = min(n.perBackend, n.maxSlots)
	n.spares = min(n.spares, n.maxSlots)
	if l := p.MaxConnLifetime; l > 0 {
		jitter := p.MaxConnLifetimeJitter
		if jitter <= 0 {
			jitter = l / 10
		}
		n.churn = max(l-jitter, time.Millisecond)
	}
	if d := p.MaxConnIdleTime; d > 0 && (n.churn == 0 || d < n.churn) {
		n.churn = d
	}
	return n
}

// maxLongFault bounds LongFault, so that a policy with a backoff of
// hours does not make runs of hours.
const maxLongFault = 10 * time.Minute

// LongFault is how long the harness keeps a backend down in the schedules
// that test the backoff's maximum: the time an exponential backoff with
// the policy's BackoffMin and BackoffMax takes to reach BackoffMax, plus
// two delays at BackoffMax, in whole seconds, at most ten minutes. With
// the default policy (20ms doubling to 30s) it is 1m41s: the slots of a
// crashed backend fail eleven times in the first 41s, then wait 30s
// between tries, and a backoff that grows past its maximum waits 41s
// after the twelfth failure. About one in four drawn faults that make
// connects fail (crash, hang, partition, check_fail) lasts this long,
// and its run is lengthened to fit it and the recovery after; shrinking
// shortens it to its drawn length when the failure does not need it.
func LongFault(p pool.Policy) time.Duration {
	n := numbersOf(p)
	var d time.Duration
	for b := n.backoffMin; b < n.backoffMax && d < maxLongFault; b *= 2 {
		d += b
	}
	d += 2 * n.backoffMax
	d = (d + time.Second - 1).Truncate(time.Second)
	return min(d, maxLongFault)
}

// generator draws schedules within cfg's bounds, around the numbers of
// policy p.
func generator(cfg Config, p pool.Policy) *rapid.Generator[Schedule] {
	n := numbersOf(p)
	window := int((cfg.Duration - cfg.RecoverWithin) / time.Second) // faults happen in [0, window]
	long := LongFault(p)
	return rapid.Custom(func(t *rapid.T) Schedule {
		s := Schedule{Seed: uint64(rapid.IntRange(1, 1000).Draw(t, "seed"))}
		s.Clients = rapid.SliceOfN(rapid.Custom(func(t *rapid.T) Client {
			return Client{
				Rate: rapid.IntRange(1, 20).Draw(t, "rate"),
				Hold: holdGen().Draw(t, "hold"),
			}
		}), 1, cfg.MaxClients).Draw(t, "clients")
		s.Backends = rapid.SliceOfN(backendGen(n, len(s.Clients)), 1, cfg.MaxBackends).Draw(t, "backends")
		s.TTL = rapid.SampledFrom(ttls).Draw(t, "ttl")
		s.Faults = rapid.SliceOfN(rapid.Custom(func(t *rapid.T) Fault {
			f := Fault{
				Kind:    rapid.SampledFrom(faultKinds).Draw(t, "kind"),
				Backend: rapid.IntRange(1, len(s.Backends)).Draw(t, "backend"),
				At:      time.Duration(rapid.IntRange(0, window/2).Draw(t, "at_s")) * time.Second,
				For:     time.Duration(rapid.IntRange(1, window/2).Draw(t, "for_s")) * time.Second,
			}
			if longKinds[f.Kind] && rapid.IntRange(0, 3).Draw(t, "long") == 3 {
				f.For = long
			}
			return f
		}), 0, cfg.MaxFaults).Draw(t, "faults")
		return s
	})
}

// backendGen draws one backend for a schedule of that many clients.
// Each drawn number shrinks toward the simulator's default: no cap, no
// accept rate, the default latencies.
func backendGen(n numbers, clients int) *rapid.Generator[Backend] {
	return rapid.Custom(func(t *rapid.T) Backend {
		var b Backend
		// A cap from every slot the clients may hold down to what leaves
		// each client room for its spares and two more, whatever the
		// others hold; 0 is none.
		hi := n.perBackend * clients
		lo := min(n.spares+2, n.perBackend) + (clients-1)*n.perBackend
		if k := rapid.IntRange(0, max(hi-lo, 0)).Draw(t, "max_conns"); k > 0 {
			b.MaxConns = hi + 1 - k
		}
		// Accepting every slot of every client within half the connect
		// timeout, and twice the reconnects of their lifetimes, times 8,
		// 4, 2 or 1; 0 is no limit.
		if k := rapid.IntRange(0, 4).Draw(t, "accept_rate"); k > 0 {
			base := float64(2*n.perBackend*clients) / n.connectTimeout.Seconds()
			if n.churn > 0 {
				base = max(base, float64(2*n.perBackend*clients)/n.churn.Seconds())
			}
			b.AcceptRate = int(base+0.999) << (4 - k)
		}
		b.Connect = latencyGen(min(100*time.Millisecond, n.connectTimeout/10)).Draw(t, "connect_latency")
		b.Check = latencyGen(min(100*time.Millisecond, n.healthTimeout/10)).Draw(t, "check_latency")
		return b
	})
}

// latencyGen draws a latency of at most most: the simulator's default
// first (shrinking moves there), then constant, uniform, exponential and
// Pareto distributions.
func latencyGen(most time.Duration) *rapid.Generator[sim.Dist] {
	return rapid.Custom(func(t *rapid.T) sim.Dist {
		kind := rapid.IntRange(0, 4).Draw(t, "kind")
		top := most * time.Duration(rapid.IntRange(1, 100).Draw(t, "percent")) / 100
		switch kind {
		case 1:
			return sim.Const(top)
		case 2:
			return sim.Uniform(top/2, top)
		case 3:
			return sim.Exp(max(top/20, time.Microsecond))
		case 4:
			return sim.Pareto(max(top/1000, time.Microsecond), rapid.SampledFrom(paretoShapes).Draw(t, "shape"))
		}
		return sim.Dist{} // the default
	})
}

// holdGen draws a hold time: constant first (shrinking moves there),
// then uniform, exponential and Pareto distributions, their typical
// values between 1ms and 100ms.
func holdGen() *rapid.Generator[sim.Dist] {
	return rapid.Custom(func(t *rapid.T) sim.Dist {
		kind := rapid.IntRange(0, 3).Draw(t, "kind")
		ms := time.Duration(rapid.IntRange(1, 50).Draw(t, "ms")) * time.Millisecond
		switch kind {
		case 1:
			return sim.Uniform(ms, ms+time.Duration(rapid.IntRange(1, 50).Draw(t, "spread_ms"))*time.Millisecond)
		case 2:
			return sim.Exp(ms)
		case 3:
			return sim.Pareto(ms/10, rapid.SampledFrom(paretoShapes).Draw(t, "shape"))
		}
		return sim.Const(ms)
	})
}

// Scenario turns the schedule into a scenario for the simulator, with the
// numbers of policy p, lasting d (longer when a fault and recoverWithin
// after it do not fit).
func (s Schedule) Scenario(name string, p pool.Policy, d, recoverWithin time.Duration) *sim.Scenario {
	ttl := s.TTL
	if ttl <= 0 {
		ttl = 5 * time.Second
	}
	sc := &sim.Scenario{
		Name:   name,
		Seed:   s.Seed,
		DNS:    sim.DNSSpec{TTL: sim.Duration(ttl)},
		Expect: sim.Expect{RecoverWithin: sim.Duration(recoverWithin)},
	}
	for i, b := range s.Backends {
		sc.Backends = append(sc.Backends, sim.BackendSpec{
			Name:           fmt.Sprintf("db-%d", i+1),
			MaxConns:       b.MaxConns,
			AcceptRate:     float64(b.AcceptRate),
			ConnectLatency: b.Connect,
			CheckLatency:   b.Check,
		})
	}
	for i, c := range s.Clients {
		sc.Clients = append(sc.Clients, sim.ClientSpec{
			Name:     fmt.Sprintf("client-%d", i+1),
			Policy:   sim.PolicySpecOf(p),
			Workload: sim.Workload{Rate: float64(c.Rate), Hold: c.Hold},
		})
	}
	for _, f := range s.Faults {
		if end := f.At + f.For + recoverWithin; end > d {
			d = end + 10*time.Second // a long fault
		}
		sf := sim.Fault{At: sim.Duration(f.At), Kind: f.Kind}
		switch f.Kind {
		case sim.FaultRestart, sim.FaultClose:
			sf.Down = sim.Duration(f.For)
		case sim.FaultPause:
			sf.For = sim.Duration(f.For)
		case sim.FaultKill:
			// The client comes back For later; the servers keep its
			// connections for as long again.
			sf.Down = sim.Duration(f.For)
			sf.Linger = sim.Duration(f.For)
		case sim.FaultDNSOutage:
			sf.For = sim.Duration(f.For)
		case sim.FaultLoad:
			sf.For = sim.Duration(f.For)
			sf.Factor = 5
		case Delist:
			b := []string{fmt.Sprintf("db-%d", f.Backend)}
			sc.Faults = append(sc.Faults,
				sim.Fault{At: sim.Duration(f.At), Kind: sim.FaultDNSRemove, Backends: b},
				sim.Fault{At: sim.Duration(f.At + f.For), Kind: sim.FaultDNSAdd, Backends: b})
			continue
		default:
			sf.For = sim.Duration(f.For)
			sf.Backends = []string{fmt.Sprintf("db-%d", f.Backend)}
			if f.Kind == sim.FaultSlow {
				sf.Factor = 20
			}
		}
		sc.Faults = append(sc.Faults, sf)
	}
	sc.Duration = sim.Duration(d)
	return sc
}
