package sim

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestScenarioBounds: each value past its bound is refused at load, with
// the file, the line, the field, the value, the bound and its reason.
func TestScenarioBounds(t *testing.T) {
	// One backend, one client with a workload, and a line 9 to add to.
	base := func(extra string) string {
		return "name = \"b\"\nduration = \"5m\"\n[[backends]]\nname = \"db\"\n[[clients]]\nname = \"c\"\n[clients.workload]\nrate = 20\n" + extra
	}
	for _, tc := range []struct {
		name, src string
		want      []string // in the error, in this order
	}{
		// The issue's own: a rate that took 24 GB before it was killed,
		// and one that did not finish in a minute.
		{"rate-1e12", strings.Replace(base(""), "rate = 20", "rate = 1e12", 1),
			[]string{"b.toml:8: clients[0].workload.rate: 1e+12 claims a second: at most 10000 per client", "add clients with count"}},
		{"rate-1e5", strings.Replace(base(""), "rate = 20", "rate = 1e5", 1),
			[]string{"b.toml:8: clients[0].workload.rate: 100000 claims a second: at most 10000"}},
		{"fleet-rate", strings.Replace(base(""), "name = \"c\"\n", "name = \"c\"\ncount = 200\n", 1) + "[[clients]]\nname = \"d\"\ncount = 200\n[clients.workload]\nrate = 9000\n",
			[]string{"clients[1].workload.rate: 9000 claims a second × 200 clients brings the fleet to 1804000 a second: at most 1000000"}},
		{"duration", strings.Replace(base(""), `"5m"`, `"25h"`, 1),
			[]string{"b.toml:2: duration: 25h0m0s: at most 24h0m0s", "run several seeds"}},
		{"hold", base("hold = \"exp(100h)\"\n"),
			[]string{"b.toml:9: clients[0].workload.hold: exp(100h0m0s) can draw up to 2000h0m0s: at most 1000h0m0s"}},
		{"policy-duration", base("[clients.policy]\nhealth_interval = \"2000h\"\n"),
			[]string{"b.toml:10: clients[0].policy.health_interval: 2000h0m0s: at most 1000h0m0s", "cannot overflow"}},
		{"linger", base("[[faults]]\nat = \"1m\"\nkind = \"kill\"\nlinger = \"5000h\"\n"),
			[]string{"b.toml:12: faults[0].linger: 5000h0m0s: at most 1000h0m0s"}},
		{"slow-factor", base("[[faults]]\nat = \"1m\"\nkind = \"slow\"\nbackends = [\"db\"]\nfactor = 1e4\n"),
			[]string{"b.toml:13: faults[0].factor: 10000: at most 1000", "use a hang fault"}},
		{"load-factor", base("[[faults]]\nat = \"1m\"\nkind = \"load\"\nfactor = 5000\n"),
			[]string{"b.toml:12: faults[0].factor: 5000: at most 1000", "raise the workload's rate"}},
		{"backend-count", strings.Replace(base(""), "name = \"db\"\n", "name = \"db\"\ncount = 20000\n", 1),
			[]string{"b.toml:5: backends[0].count: 20000: at most 10000 backends"}},
		{"backend-count-huge", strings.Replace(base(""), "name = \"db\"\n", "name = \"db\"\ncount = 1000000000000\n", 1),
			[]string{"backends[0].count: 1000000000000: at most 10000"}},
		{"client-count", strings.Replace(base(""), "name = \"c\"\n", "name = \"c\"\ncount = 200000\n", 1),
			[]string{"b.toml:7: clients[0].count: 200000: at most 100000 clients"}},
		{"backends-in-all", base("") + strings.Repeat("[[backends]]\nname = \"x\"\ncount = 6000\n", 2),
			[]string{"backends: 12001 backends in all: at most 10000"}},
		{"pairs", strings.NewReplacer("name = \"db\"\n", "name = \"db\"\ncount = 1000\n", "name = \"c\"\n", "name = \"c\"\ncount = 1000\n").Replace(base("")),
			[]string{"clients: 1000 clients × 1000 backends = 1000000 client-backend pairs: at most 500000", "slot set for every backend"}},
		{"fleet-slots", strings.Replace(base(""), "name = \"c\"\n", "name = \"c\"\ncount = 40000\n", 1),
			[]string{"clients[0].policy.max_slots: 16 (max_slots) × 40000 clients brings the fleet to 640000 slots: at most 500000"}},
		{"accept-rate", strings.Replace(base(""), "name = \"db\"\n", "name = \"db\"\naccept_rate = 1e10\n", 1),
			[]string{"b.toml:5: backends[0].accept_rate: 1e+10: at most 1e+09 connects a second", "nanoseconds"}},
		{"connect-rate", base("[clients.policy]\nconnect_rate_per_backend = 1e12\n"),
			[]string{"b.toml:10: clients[0].policy.connect_rate_per_backend: 1e+12: at most 1e+09"}},
		{"max-conns", strings.Replace(base(""), "name = \"db\"\n", "name = \"db\"\nmax_conns = 2000000\n", 1),
			[]string{"b.toml:5: backends[0].max_conns: 2000000: at most 1000000", "no cap"}},
		{"start", strings.Replace(base(""), "name = \"c\"\n", "name = \"c\"\nstart = \"6m\"\n", 1),
			[]string{"b.toml:7: clients[0].start: 6m0s is after the end of the run (5m0s)"}},
		{"dns-parallel", base("[dns]\nresolver = \"dns\"\nparallel = 100\n"),
			[]string{"b.toml:11: dns.parallel: 100: at most 64"}},
		{"dns-records", base("[dns]\nresolver = \"dns\"\n" + strings.Repeat("[[dns.records]]\nbackends = [\"db\"]\n", 10001)),
			[]string{"dns.records: 10001 groups of records: at most 10000"}},
		{"dns-servers", base("[dns]\nresolver = \"dns\"\n" + strings.Repeat("[[dns.servers]]\n", 101)),
			[]string{"dns.servers: 101 servers: at most 100"}},
		{"dns-changes", base("[dns]\nresolver = \"dns\"\n" + strings.Repeat("[[dns.changes]]\nat = \"1m\"\nservers = [\"ns1\"]\nanswer = \"drop\"\n", 10001)),
			[]string{"dns.changes: 10001 changes: at most 10000"}},
		{"connset-slots", strings.Replace(base(""), "name = \"c\"\n[clients.workload]\nrate = 20\n", "name = \"c\"\ncount = 1000\nconnset = 600\n", 1),
			[]string{"clients[0].connset: 600 (connset) × 1000 clients brings the fleet to 600000 slots: at most 500000"}},
		{"faults", base(strings.Repeat("[[faults]]\nat = \"1m\"\nkind = \"dns_outage\"\nfor = \"1s\"\n", 10001)),
			[]string{"faults: 10001 faults: at most 10000"}},
	} {
		start := time.Now()
		_, err := Parse("b.toml", []byte(tc.src))
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		msg := err.Error()
		at := 0
		for _, w := range tc.want {
			i := strings.Index(msg[at:], w)
			if i < 0 {
				t.Errorf("%s:\n got %s\nwant …%s…", tc.name, msg, w)
				break
			}
			at += i + len(w)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s: refused after %v", tc.name, d)
		}
	}
}

// TestBoundsLeaveRoom: the bounds let through what they are not about
// (the largest values below them), so that they refuse mistakes only.
func TestBoundsLeaveRoom(t *testing.T) {
	src := `name = "room"
duration = "24h"
[[backends]]
name = "db"
count = 100
accept_rate = 1e9
max_conns = 1000000
connect_latency = "pareto(1h, 2)"
[[clients]]
name = "c"
count = 5000
[clients.policy]
max_slots = 100
health_interval = "1000h"
connect_rate_per_backend = 1e9
[clients.workload]
rate = 200
[[faults]]
at = "1h"
kind = "slow"
backends = ["db-1"]
factor = 1000
[[faults]]
at = "1h"
kind = "load"
factor = 1000
for = "1s"
`
	if _, err := Parse("room.toml", []byte(src)); err != nil {
		t.Fatal(err)
	}
}

// TestShippedWithinBudget: every shipped scenario, and two swarm draws
// of each, stays far inside the default budget (a twentieth of it).
func TestShippedWithinBudget(t *testing.T) {
	scs := shipped(t)
	for _, name := range sortedKeys(scs) {
		if heavyUnderRace(t, name, scs[name]) {
			continue
		}
		for seed := range uint64(3) {
			sc := scs[name]
			if seed > 0 {
				sc = sc.Swarm(seed)
			}
			r, err := Run(sc, Options{Seed: max(seed, sc.Seed)})
			if err != nil {
				t.Fatalf("%s seed %d: %v", name, seed, err)
			}
			if r.Events > DefaultMaxEvents/20 || r.PeakLiveClaims > DefaultMaxLiveClaims/20 {
				t.Errorf("%s seed %d: %d events, %d live claims at most: too close to the default budget (%d, %d)",
					sc.Name, seed, r.Events, r.PeakLiveClaims, DefaultMaxEvents, DefaultMaxLiveClaims)
			}
		}
	}
}

// budgetScenario is within every bound but makes a lot of work: a
// client at 10,000 claims a second for a day.
const budgetScenario = `name = "big"
duration = "24h"
[[backends]]
name = "db"
count = 2
[[clients]]
name = "c"
[clients.workload]
rate = 10000
hold = "1ms"
`

// TestBudgetStopsRun: a run past its budget of events stops there, at
// once, with a message that says what was exceeded and how to raise it;
// the result so far says so.
func TestBudgetStopsRun(t *testing.T) {
	sc, err := Parse("big.toml", []byte(budgetScenario))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r, err := Run(sc, Options{MaxEvents: 20000})
	var be *BudgetError
	if !errors.As(err, &be) {
		t.Fatalf("err %v, want a *BudgetError", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("stopped after %v", d)
	}
	if be.Budget != BudgetEvents || be.Limit != 20000 || be.Events != 20001 || be.At <= 0 || be.At >= sc.Duration || r == nil || r.Budget != be || r.OK() {
		t.Errorf("%+v; result budget %v", be, r.Budget)
	}
	for _, want := range []string{"big seed 1: stopped at ", "of 24h0m0s of virtual time, having run 20001 events in ", "of real time, past its budget of events",
		"Raise it with Options.MaxEvents (now 20000; such as Options.MaxEvents 40000)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the message does not say %q:\n%s", want, err)
		}
	}
	sum := summary(r)
	if !strings.Contains(sum, "STOPPED OVER BUDGET: big seed 1: stopped at") || strings.Contains(sum, "expectations:") ||
		!strings.Contains(sum, "invariants: ok until it stopped") {
		t.Errorf("summary:\n%s", sum)
	}
	var svg strings.Builder
	r.WriteSVG(&svg)
	if !strings.Contains(svg.String(), "over its budget") && !strings.Contains(svg.String(), `stroke-dasharray="4 3"`) {
		t.Errorf("the picture does not mark where the run stopped")
	}
}

// TestBudgetExactlyEnough: a budget of exactly the events a run needs
// lets it finish, with the trace it has without a budget; one less stops
// it.
func TestBudgetExactlyEnough(t *testing.T) {
	sc, err := Parse("d.toml", []byte(strings.Replace(budgetScenario, `"24h"`, `"10s"`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	free, err := Run(sc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	exact, err := Run(sc, Options{MaxEvents: free.Events})
	if err != nil || exact.TraceHash != free.TraceHash {
		t.Fatalf("with a budget of %d events: %v, hash %s, want %s", free.Events, err, exact.TraceHash, free.TraceHash)
	}
	if _, err := Run(sc, Options{MaxEvents: free.Events - 1}); err == nil {
		t.Fatalf("a budget of %d events let a run of %d finish", free.Events-1, free.Events)
	}
}

// TestBudgetOfLiveClaims: claims that arrive faster than one slot serves
// them pile up; past the budget of live claims the run stops. Arrivals
// held for a paused client count too.
func TestBudgetOfLiveClaims(t *testing.T) {
	for _, tc := range []struct{ name, src string }{
		{"queued", `name = "queued"
duration = "1h"
[[backends]]
name = "db"
[[clients]]
name = "c"
[clients.policy]
max_slots = 1
claim_timeout = "1h"
[clients.workload]
rate = 1000
hold = "1s"
`},
		{"paused", `name = "paused"
duration = "1m"
[[backends]]
name = "db"
[[clients]]
name = "c"
[clients.workload]
rate = 1000
hold = "1ms"
[[faults]]
at = "10s"
kind = "pause"
for = "30s"
`},
	} {
		sc, err := Parse(tc.name+".toml", []byte(tc.src))
		if err != nil {
			t.Fatal(err)
		}
		if tc.name == "paused" {
			if free, err := Run(sc, Options{}); err != nil || free.PeakLiveClaims < 20000 {
				t.Fatalf("%s: %v, %d live at most; want the 30s of arrivals held", tc.name, err, free.PeakLiveClaims)
			}
		}
		_, err = Run(sc, Options{MaxLiveClaims: 5000})
		var be *BudgetError
		if !errors.As(err, &be) || be.Budget != BudgetLiveClaims || be.Live != 5001 {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !strings.Contains(err.Error(), "with 5001 claims live at once") || !strings.Contains(err.Error(), "Options.MaxLiveClaims (now 5000") {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}
