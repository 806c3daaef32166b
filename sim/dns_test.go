package sim

import (
	"bufio"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/qorbgo/qorb/internal/simhook"
)

// dnsBase is a small service with the real resolver: three backends, a
// fourth kept out of DNS, two clients.
const dnsBase = `name = "dns"
duration = "2m"
[[backends]]
name = "db"
count = 3
[[backends]]
name = "spare"
unlisted = true
[[clients]]
name = "api"
count = 2
[clients.policy]
max_slots = 8
spares_wanted = 4
[clients.workload]
rate = 20
hold = "1ms..5ms"
timeout = "2s"
`

// dnsLine is one line of the trace.
type dnsLine struct {
	At      float64 `json:"at"`
	Machine string  `json:"machine"`
	ID      string  `json:"id"`
	From    string  `json:"from"`
	Event   string  `json:"event"`
	To      string  `json:"to"`
}

// traceLines parses the lines of machine (any, when empty) and id (any,
// when empty).
func traceLines(t *testing.T, trace, machine, id string) []dnsLine {
	t.Helper()
	var out []dnsLine
	sc := bufio.NewScanner(strings.NewReader(trace))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l dnsLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		if (machine == "" || l.Machine == machine) && (id == "" || l.ID == id) {
			out = append(out, l)
		}
	}
	return out
}

// newSim parses and prepares a run, for tests that look at it midway.
func newSim(t *testing.T, text string) *Sim {
	t.Helper()
	sc, err := Parse("dns.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(sc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// listedNames returns the simulated backends a client's pool may use now.
func listedNames(s *Sim, client string) []string {
	var out []string
	inst := s.insts[client]
	for _, b := range s.backends {
		if inst.listed[b.idx] {
			out = append(out, b.name)
		}
	}
	return out
}

func noFailedClaims(t *testing.T, r *Result) {
	t.Helper()
	if n := r.Fleet.Errors.Failed(); n > 0 {
		t.Errorf("%d failed claims (%s)\n%s", n, r.Fleet.Errors, summary(r))
	}
}

// A TTL of 1ms makes the stand-in ask hundreds of times a second; the
// real resolver clamps the TTL to MinInterval (5s), plus up to 10%
// jitter, whatever the records say.
func TestDNSTTLClampHolds(t *testing.T) {
	rate := func(r *Result) float64 {
		return float64(r.Clients[0].DNS.Queries) / time.Duration(r.Virtual).Seconds()
	}
	standIn, _ := runText(t, "stand-in.toml", dnsBase+"[dns]\nttl = \"1ms\"\n")
	real, trace := runText(t, "real.toml", dnsBase+"[dns]\nresolver = \"dns\"\nttl = \"1ms\"\n")
	t.Logf("ttl 1ms: stand-in %.1f queries/s per client, resolver/dns %.3f", rate(standIn), rate(real))
	if rate(standIn) < 100 {
		t.Errorf("the stand-in asked %.1f times a second; with a TTL of 1ms it has no floor", rate(standIn))
	}
	if rate(real) > 0.25 {
		t.Errorf("resolver/dns asked %.3f times a second with a TTL of 1ms; its floor is one round per 5s\n%s", rate(real), summary(real))
	}
	queries := traceLines(t, trace, "dns", "api-001")
	if len(queries) < 20 {
		t.Fatalf("%d queries in 2m", len(queries))
	}
	for i := 1; i < len(queries); i++ {
		gap := queries[i].At - queries[i-1].At
		if gap < 5 || gap > 5.5+0.01 {
			t.Fatalf("queries %d and %d are %.3fs apart; want MinInterval 5s plus jitter below 10%%", i-1, i, gap)
		}
	}
	noFailedClaims(t, real)

	// A TTL of exactly 0, written per record, is clamped the same way.
	zero, _ := runText(t, "zero.toml", dnsBase+"[dns]\nresolver = \"dns\"\n[[dns.records]]\nbackends = [\"*\"]\nttl = \"0s\"\n")
	if rate(zero) > 0.25 {
		t.Errorf("TTL 0: %.3f queries/s", rate(zero))
	}
}

// Of two servers, one answers SERVFAIL: the resolver asks the other, the
// pools never notice, and a backend listed meanwhile is found through the
// good server. Asked one at a time (Parallel 1), the failing server goes
// to the back of the order after its first failure.
func TestDNSServfailFromOneOfTwoServers(t *testing.T) {
	for _, parallel := range []int{1, 2} {
		t.Run(fmt.Sprint("parallel ", parallel), func(t *testing.T) {
			r, trace := runText(t, "servfail.toml", dnsBase+fmt.Sprintf(`[dns]
resolver = "dns"
ttl = "10s"
parallel = %d
[[dns.servers]]
name = "ns1"
answer = "servfail"
[[dns.servers]]
name = "ns2"
[[faults]]
at = "1m"
kind = "dns_add"
backends = ["spare"]
`, parallel))
			noFailedClaims(t, r)
			for _, l := range traceLines(t, trace, "resolver", "") {
				if l.Event == "error" {
					t.Fatalf("a resolver failed at %.3fs; the good server should have answered", l.At)
				}
			}
			for _, c := range r.Clients {
				if c.DNS.Errors == 0 || c.DNS.Answers == 0 {
					t.Errorf("%s: %+v; want SERVFAILs and answers", c.Name, c.DNS)
				}
				ns1 := 0
				for _, l := range traceLines(t, trace, "dns", c.Name) {
					if strings.HasPrefix(l.To, "ns1 ") {
						ns1++
						if !strings.Contains(l.To, ": SERVFAIL in ") {
							t.Fatalf("ns1 answered %q", l.To)
						}
					}
				}
				if parallel == 1 && ns1 != 1 {
					t.Errorf("%s asked the failing server %d times; after failing once it comes last", c.Name, ns1)
				}
			}
			if b := r.Backends[3]; b.Name != "spare" || b.Opened == 0 {
				t.Errorf("the backend listed at 1m was not used: %+v", b)
			}
		})
	}
}

// NXDOMAIN: every backend leaves DNS for 30s and the service's name is
// gone. resolver/dns's rule: by default the last good set is kept (the
// resolver fails, and asks again after EmptyRetry, doubling); with
// TrustNegative the set becomes empty and claims fail with no backends.
func TestDNSNXDomain(t *testing.T) {
	const faults = `[[faults]]
at = "1m"
kind = "dns_remove"
backends = ["db-*"]
[[faults]]
at = "1m30s"
kind = "dns_add"
backends = ["db-*"]
`
	t.Run("kept by default", func(t *testing.T) {
		r, trace := runText(t, "nx.toml", dnsBase+"[dns]\nresolver = \"dns\"\nttl = \"5s\"\n"+faults)
		noFailedClaims(t, r)
		// The empty answers are retried after 1s, 2s, 4s, … (plus jitter).
		var nx []float64
		for _, l := range traceLines(t, trace, "dns", "api-001") {
			if strings.Contains(l.To, "NXDOMAIN") {
				nx = append(nx, l.At)
			}
		}
		if len(nx) < 3 {
			t.Fatalf("%d NXDOMAIN answers", len(nx))
		}
		want := 1.0
		for i := 1; i < len(nx); i++ {
			gap := nx[i] - nx[i-1]
			if gap < want || gap > want*1.1+0.01 {
				t.Errorf("NXDOMAIN %d came %.3fs after the one before; want EmptyRetry doubling: %vs plus jitter", i, gap, want)
			}
			want *= 2
		}
		failed := 0
		for _, l := range traceLines(t, trace, "resolver", "api-001") {
			if l.Event == "error" {
				failed++
			}
		}
		if failed != len(nx) {
			t.Errorf("%d resolver errors for %d NXDOMAIN answers", failed, len(nx))
		}
	})
	t.Run("emptied with trust_negative", func(t *testing.T) {
		s := newSim(t, dnsBase+"[dns]\nresolver = \"dns\"\nttl = \"5s\"\ntrust_negative = true\n"+faults)
		s.runUntil(int64(59 * time.Second))
		if got := listedNames(s, "api-001"); len(got) != 3 {
			t.Fatalf("before: %v", got)
		}
		s.runUntil(int64(70 * time.Second))
		if got := listedNames(s, "api-001"); len(got) != 0 {
			t.Fatalf("10s into NXDOMAIN the pool still lists %v", got)
		}
		if n := simhook.Inspect(s.insts["api-001"].p).Sets; n != 0 {
			t.Errorf("the pool still has %d sets", n)
		}
		s.runUntil(int64(100 * time.Second))
		if got := listedNames(s, "api-001"); len(got) != 3 {
			t.Fatalf("10s after the records came back the pool lists %v", got)
		}
		r := s.Run()
		if r.Violation != nil {
			t.Fatal(r.Violation)
		}
		if r.Fleet.Errors.NoBackends == 0 {
			t.Errorf("no claim failed for lack of backends while the set was empty: %s", r.Fleet.Errors)
		}
	})
}

// A UDP answer longer than the server's limit is truncated; the resolver
// asks again over TCP and gets the whole set.
func TestDNSTruncationFallsBackToTCP(t *testing.T) {
	for _, tc := range []struct{ name, server string }{
		{"too long for 512 bytes", "max_udp = 512"},
		{"server truncates every UDP answer", `answer = "truncate"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(t, strings.Replace(dnsBase, "count = 3", "count = 40", 1)+"[dns]\nresolver = \"dns\"\n[[dns.servers]]\nname = \"ns1\"\n"+tc.server+"\n")
			s.runUntil(int64(10 * time.Second))
			if got := listedNames(s, "api-001"); len(got) != 40 {
				t.Fatalf("the pool lists %d backends, want 40", len(got))
			}
			r := s.Run()
			if r.Violation != nil {
				t.Fatal(r.Violation)
			}
			noFailedClaims(t, r)
			for _, c := range r.Clients {
				d := c.DNS
				if d.Truncated == 0 || d.TCP != d.Truncated || d.Answers != d.TCP || d.Queries != d.TCP+d.Truncated {
					t.Errorf("%s: %+v; want every UDP answer truncated and answered over TCP", c.Name, d)
				}
			}
		})
	}
}

// A record changes over time: db-1's name moves to the address of the
// spare backend. The resolver sees a new backend, the pools connect to
// it and drain the old one; no claim is served from the old address
// after the pools stopped listing it (checked after every event).
func TestDNSRecordChangeMovesPool(t *testing.T) {
	s := newSim(t, dnsBase+`[dns]
resolver = "dns"
ttl = "10s"
[[dns.changes]]
at = "1m"
backends = ["db-1"]
address = "spare"
`)
	db1, spare := s.byName["db-1"], s.byName["spare"]
	s.runUntil(int64(59 * time.Second))
	if db1.held == 0 || spare.held != 0 {
		t.Fatalf("before the change: db-1 holds %d, spare %d", db1.held, spare.held)
	}
	s.runUntil(int64(80 * time.Second))
	if db1.held != 0 || spare.held == 0 {
		t.Fatalf("20s after the change: db-1 holds %d, spare %d", db1.held, spare.held)
	}
	want := []string{"db-2", "db-3", "spare"}
	if got := listedNames(s, "api-002"); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("listed %v, want %v", got, want)
	}
	r := s.Run()
	if r.Violation != nil {
		t.Fatal(r.Violation)
	}
	noFailedClaims(t, r)
}

// A TTL that changes: from 60s to 0, the re-queries follow (the next one
// still waits out the old TTL), clamped to MinInterval.
func TestDNSTTLChange(t *testing.T) {
	_, trace := runText(t, "ttl.toml", dnsBase+`[dns]
resolver = "dns"
ttl = "1m"
[[dns.changes]]
at = "30s"
backends = ["*"]
ttl = "0s"
`)
	var at []float64
	for _, l := range traceLines(t, trace, "dns", "api-001") {
		at = append(at, l.At)
	}
	// 0, ~60-66 (the old TTL), then every ~5s to 120.
	if len(at) < 8 || at[1] < 60 || at[1] > 66.1 {
		t.Fatalf("queries at %v", at)
	}
	for i := 2; i < len(at); i++ {
		if gap := at[i] - at[i-1]; gap < 5 || gap > 5.51 {
			t.Fatalf("after the TTL became 0, queries %.3fs apart (%v)", gap, at)
		}
	}
}

// Servers that lose queries and one that is down, and for a while two
// down: the resolvers ask two at a time, wait out the timeout of the lost
// exchanges, fail a round now and then and keep their set, and no pool
// notices.
func TestDNSLossAndADeadServer(t *testing.T) {
	r, trace := runText(t, "loss.toml", dnsBase+`[dns]
resolver = "dns"
ttl = "5s"
timeout = "500ms"
[[dns.servers]]
name = "ns1"
loss = 0.3
[[dns.servers]]
name = "ns2"
loss = 0.3
[[dns.servers]]
name = "ns3"
answer = "drop"
[[dns.changes]]
at = "1m"
servers = ["ns1"]
answer = "drop"
for = "20s"
`)
	noFailedClaims(t, r)
	d := r.Fleet.DNS
	if d.Lost == 0 || d.Answers == 0 {
		t.Fatalf("%+v", d)
	}
	if n := len(traceLines(t, trace, "dns_change", "0")); n != 2 {
		t.Errorf("%d change lines, want the change and its end", n)
	}
}

// Asked together, a server that is down and one that answers: the good
// answer wins, and the exchange with the other, cancelled, completes at
// once instead of waiting out its 10s timeout.
func TestDNSCancelledExchangeCompletesAtOnce(t *testing.T) {
	s := newSim(t, `name = "cancel"
duration = "1m"
[dns]
resolver = "dns"
ttl = "5s"
timeout = "10s"
[[dns.servers]]
name = "down"
answer = "drop"
[[dns.servers]]
name = "up"
[[backends]]
name = "db"
count = 3
[[clients]]
name = "api"
validate = false
[clients.policy]
max_slots = 3
spares_wanted = 3
`)
	// The second round, at 5s to 5.5s, changes nothing in the pool: only
	// the resolver's completion can see that it cancelled an exchange.
	s.runUntil(int64(6 * time.Second))
	if got := listedNames(s, "api"); len(got) != 3 {
		t.Fatalf("listed %v", got)
	}
	if n := len(s.insts["api"].pending); n != 0 {
		t.Errorf("%d of the pool's I/O still in flight at 6s (the cancelled exchange waits for its timeout)", n)
	}
	if n := s.loop.InFlight(); n != 0 {
		t.Errorf("%d I/O jobs in flight on the loop", n)
	}
	if r := s.Run(); r.Violation != nil {
		t.Fatal(r.Violation)
	}
}

// The same DNS scenario gives the same trace twice, and another trace
// with another seed.
func TestDNSDeterminism(t *testing.T) {
	const text = dnsBase + `[dns]
resolver = "dns"
ttl = "2s"
[[dns.servers]]
name = "ns1"
loss = 0.2
latency = "exp(5ms)"
[[dns.servers]]
name = "ns2"
max_udp = 512
[[dns.records]]
backends = ["db-2"]
cname = true
[[dns.changes]]
at = "40s"
servers = ["ns2"]
answer = "servfail"
for = "30s"
[[faults]]
at = "1m"
kind = "dns_outage"
for = "20s"
`
	sc, err := Parse("det.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	var hashes []string
	for _, seed := range []uint64{1, 1, 2} {
		r, err := Run(sc, Options{Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		if r.Violation != nil {
			t.Fatal(r.Violation)
		}
		hashes = append(hashes, r.TraceHash)
	}
	if hashes[0] != hashes[1] {
		t.Errorf("two runs with seed 1: %s and %s", hashes[0], hashes[1])
	}
	if hashes[0] == hashes[2] {
		t.Errorf("seeds 1 and 2 give the same trace")
	}
}

// CNAME targets: the servers answer the alias and the address together;
// without the additional section the resolver asks for each target.
func TestDNSCNAMETargets(t *testing.T) {
	r, trace := runText(t, "cname.toml", dnsBase+`[dns]
resolver = "dns"
[[dns.records]]
backends = ["db-*"]
cname = true
`)
	noFailedClaims(t, r)
	seen := false
	for _, l := range traceLines(t, trace, "dns", "api-001") {
		if strings.Contains(l.To, "udp A db-1.sim.: 2 answers") {
			seen = true
		}
	}
	if !seen {
		t.Error("no A question for db-1.sim. answered with its CNAME and address")
	}
	if r.Backends[0].Opened == 0 {
		t.Errorf("db-1 was not used: %+v", r.Backends[0])
	}
}

func TestDNSScenarioErrors(t *testing.T) {
	const head = "name = \"m\"\nduration = \"1m\"\n[[backends]]\nname = \"db\"\n[[clients]]\nname = \"c\"\n"
	for _, tc := range []struct{ add, want string }{
		{"[dns]\nresolver = \"real\"\n", `s.toml:8: dns.resolver: "real": want "dns"`},
		{"[dns]\nparallel = 2\n", `s.toml:8: dns.parallel: only the real resolver takes parallel: add resolver = "dns" to [dns]`},
		{"[[dns.servers]]\nname = \"a\"\n", `s.toml:7: dns.servers: only the real resolver takes servers`},
		{"[dns]\nresolver = \"dns\"\nttl = \"0s\"\n", `s.toml:9: dns.ttl: 0s: want a positive duration (leave ttl out for the default, 30s); a TTL of 0 is written per record`},
		{"[dns]\nresolver = \"dns\"\nmin_interval = \"2m\"\n", `s.toml:7: dns: dns: config: MinInterval 2m0s is above MaxInterval 1m0s`},
		{"[dns]\nresolver = \"dns\"\n[[dns.servers]]\nname = \"a\"\nanswer = \"slow\"\n", `s.toml:11: dns.servers[0].answer: "slow": want one of ok, servfail`},
		{"[dns]\nresolver = \"dns\"\n[[dns.servers]]\nname = \"a\"\nloss = 2\n", `s.toml:11: dns.servers[0].loss: 2: want a probability`},
		{"[dns]\nresolver = \"dns\"\n[[dns.records]]\nbackends = [\"x*\"]\n", `s.toml:10: dns.records[0].backends[0]: "x*" matches no backend`},
		{"[dns]\nresolver = \"dns\"\n[[dns.changes]]\nat = \"30s\"\nfor = \"1m\"\nservers = [\"ns1\"]\nanswer = \"drop\"\n", `s.toml:11: dns.changes[0].for: the change lasts past the end of the run`},
		{"[dns]\nresolver = \"dns\"\n[[dns.changes]]\nat = \"30s\"\nservers = [\"ns1\"]\n", `s.toml:9: dns.changes[0]: a change changes nothing`},
		{"[dns]\nresolver = \"dns\"\n[[dns.changes]]\nat = \"30s\"\nanswer = \"drop\"\n", `s.toml:9: dns.changes[0].servers: a change of answer, loss or latency needs servers`},
		{"[dns]\nresolver = \"dns\"\n[[dns.changes]]\nat = \"30s\"\nservers = [\"ns2\"]\nanswer = \"drop\"\n", `s.toml:11: dns.changes[0].servers[0]: "ns2" matches no server`},
		{"[dns]\nresolver = \"dns\"\n[[dns.changes]]\nat = \"30s\"\nbackends = [\"db\"]\naddress = \"db-9\"\n", `s.toml:12: dns.changes[0].address: "db-9" is no backend`},
		{"[expect]\nmax_dns_rate = -1.0\n", `s.toml:8: expect.max_dns_rate: must not be negative`},
		{"[dns]\nresolver = \"dns\"\n[[backends]]\nname = \"DB\"\n", `s.toml:3: backends: db and DB are the same name in DNS`},
		{"[dns]\nresolver = \"dns\"\n[[backends]]\nname = \"a..b\"\n", `s.toml:3: backends: backend 2, "a..b", is no DNS name`},
	} {
		_, err := Parse("s.toml", []byte(head+tc.add))
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%q:\n got %v\nwant %s…", tc.add, err, tc.want)
		}
	}
}

// One of two servers has lost the zone and answers NXDOMAIN to every
// question; the other loses a query now and then, and then the resolver
// asks the broken one. Its negative answers must not win: they do not
// drain a backend the SRV records still list, and the backend listed at
// 1m is found. (Before resolver/dns stopped trusting such answers while
// another server may have the records, each NXDOMAIN to an address lookup
// drained a backend until the next round, and after the first lost SRV
// query the broken server came first in the order for good: the resolver
// failed every round and never saw the new backend.)
func TestDNSServerThatLostTheZone(t *testing.T) {
	r, trace := runText(t, "lost-zone.toml", dnsBase+`[dns]
resolver = "dns"
ttl = "5s"
timeout = "200ms"
parallel = 1
[[dns.servers]]
name = "good"
loss = 0.3
[[dns.servers]]
name = "lost-the-zone"
answer = "nxdomain"
[[dns.records]]
backends = ["*"]
additional = false
[[faults]]
at = "1m"
kind = "dns_add"
backends = ["spare"]
`)
	noFailedClaims(t, r)
	nx := 0
	for _, l := range traceLines(t, trace, "dns", "") {
		if strings.Contains(l.To, "NXDOMAIN") {
			nx++
		}
	}
	if nx == 0 {
		t.Fatal("the broken server was never asked: the test shows nothing")
	}
	for _, l := range traceLines(t, trace, "set", "") {
		if l.Event == "remove" && l.At < time.Duration(r.Virtual).Seconds() {
			t.Errorf("%s removed at %.3fs (%d NXDOMAIN answers in the run)", l.ID, l.At, nx)
			break
		}
	}
	if b := r.Backends[3]; b.Name != "spare" || b.Opened == 0 {
		t.Errorf("the backend listed at 1m was never used: %+v", b)
	}
}

// Changes back to back: the one that ends leaves the server as if it had
// never been made, whatever the order of the two events at the boundary.
func TestDNSChangesBackToBack(t *testing.T) {
	s := newSim(t, dnsBase+`[dns]
resolver = "dns"
[[dns.changes]]
at = "10s"
servers = ["ns1"]
answer = "servfail"
for = "20s"
[[dns.changes]]
at = "30s"
servers = ["ns1"]
answer = "drop"
for = "20s"
[[dns.changes]]
at = "40s"
servers = ["ns1"]
loss = 0.5
[[dns.changes]]
at = "60s"
backends = ["db-1"]
ttl = "0s"
address = "db-2"
for = "10s"
`)
	ns1 := s.dns.servers[0]
	for _, c := range []struct {
		at     time.Duration
		answer string
		loss   float64
	}{{5 * time.Second, "ok", 0}, {20 * time.Second, "servfail", 0}, {35 * time.Second, "drop", 0},
		{45 * time.Second, "drop", 0.5}, {55 * time.Second, "ok", 0.5}} {
		s.runUntil(int64(c.at))
		if ns1.answer != c.answer || ns1.loss != c.loss {
			t.Errorf("at %v: ns1 answers %s with loss %v, want %s and %v", c.at, ns1.answer, ns1.loss, c.answer, c.loss)
		}
	}
	r := &s.dns.recs[0]
	s.runUntil(int64(65 * time.Second))
	if r.ttl != 0 || r.addr != 1 {
		t.Errorf("during the change db-1's record has TTL %d and the address of backend %d", r.ttl, r.addr)
	}
	s.runUntil(int64(75 * time.Second))
	if r.ttl != 30 || r.addr != 0 {
		t.Errorf("after the change db-1's record has TTL %d and the address of backend %d", r.ttl, r.addr)
	}
}

// Every shipped scenario meets its expectations with the real resolver
// too: the stand-in stays the default only so that the traces (and the
// backend names in them) of scenarios that do not ask for it are as they
// were.
func TestShippedScenariosUnderResolverDNS(t *testing.T) {
	scs := shipped(t)
	for _, name := range sortedKeys(scs) {
		if heavyUnderRace(t, name, scs[name]) {
			continue
		}
		sc := *scs[name]
		if sc.DNS.realDNS() {
			continue // run by TestShippedScenarios
		}
		sc.DNS.Resolver = ResolverDNS
		r, err := Run(&sc, Options{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := r.Err(); err != nil {
			t.Errorf("%s with resolver/dns: %v\n%s", name, err, summary(r))
		}
	}
}
