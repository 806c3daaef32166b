package dns

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/resolver"
)

// newResolver makes a resolver for service against the given servers.
func newResolver(t *testing.T, service string, cfg Config, servers ...*zoneServer) *Resolver {
	t.Helper()
	var addrs []netip.AddrPort
	for _, z := range servers {
		addrs = append(addrs, z.Addr)
	}
	r, err := New(service, addrs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func wantNames(t *testing.T, got []backend.Backend, want ...string) {
	t.Helper()
	if g := names(got); !slices.Equal(g, want) {
		t.Fatalf("backends:\n got %q\nwant %q", g, want)
	}
}

func wantState(t *testing.T, h *testHost, r *Resolver, want resolver.State) resolver.Stats {
	t.Helper()
	st := h.stats(r)
	if st.State != want.String() {
		t.Fatalf("state %s, want %s (last error: %s)", st.State, want, st.LastError)
	}
	return st
}

var (
	oneSet  = []string{"v4.example.test.@192.0.2.1:5001"}
	manySet = []string{
		"dual.example.test.@192.0.2.3:5003",
		"dual.example.test.@[2001:db8::3]:5003",
		"v4.example.test.@192.0.2.1:5001",
		"v6.example.test.@[2001:db8::6]:5002",
	}
)

func TestSRVTargets(t *testing.T) {
	for _, tc := range []struct {
		name    string
		service string
		noExtra bool
		want    []string
		queries int // DNS exchanges in the first round
	}{
		{"one target, additional section", "_one._tcp.example.test", false, oneSet, 1},
		{"one target, no additional section", "_one._tcp.example.test", true, oneSet, 3},
		{"A only, AAAA only, both, additional section", "_many._tcp.example.test.", false, manySet, 1},
		{"A only, AAAA only, both, no additional section", "_many._tcp.example.test.", true, manySet, 7},
		{"service name is a CNAME", "_moved._tcp.example.test.", false, manySet, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			z := startZoneServer(t, zonePath)
			z.setNoExtra(tc.noExtra)
			h := newHost(t)
			r := newResolver(t, tc.service, Config{}, z)
			h.start(r)
			st := wantState(t, h, r, resolver.Resolved)
			if len(h.updates) != 1 {
				t.Fatalf("%d updates, want 1", len(h.updates))
			}
			wantNames(t, h.last(), tc.want...)
			if n := z.count(""); n != tc.queries || st.Queries != uint64(tc.queries) {
				t.Errorf("server saw %d queries, stats say %d, want %d", n, st.Queries, tc.queries)
			}
			if st.LastError != "" || st.Errors != 0 {
				t.Errorf("errors: %d, last %q", st.Errors, st.LastError)
			}
			if !st.LastAnswer.Equal(h.clk.Now()) {
				t.Errorf("last answer %v, want %v", st.LastAnswer, h.clk.Now())
			}
			for _, b := range h.last() {
				if !strings.HasSuffix(string(b.Name), "@"+b.Addr.String()) {
					t.Errorf("backend %s has address %s", b.Name, b.Addr)
				}
			}
			h.stop(r)
			if st := h.stats(r); st.State != "stopped" || h.pending() {
				t.Fatalf("after stop: state %s, timer pending %v", st.State, h.pending())
			}
			if got := strings.Join(h.trace, "; "); got != "resolving --answer--> resolved; resolved --stop--> stopped" {
				t.Errorf("trace: %s", got)
			}
		})
	}
}

func TestCNAMETarget(t *testing.T) {
	want := []string{"alias.example.test.@192.0.2.3:5004", "alias.example.test.@[2001:db8::3]:5004"}
	for _, chase := range []bool{false, true} {
		t.Run(fmt.Sprintf("server follows the chain %v", !chase), func(t *testing.T) {
			z := startZoneServer(t, zonePath)
			z.setNoChase(chase) // the resolver must chase each CNAME itself
			h := newHost(t)
			r := newResolver(t, "_alias._tcp.example.test.", Config{}, z)
			h.start(r)
			wantState(t, h, r, resolver.Resolved)
			wantNames(t, h.last(), want...)
			// SRV, then A and AAAA; chasing adds two queries per family.
			if n, w := z.count(""), map[bool]int{false: 3, true: 7}[chase]; n != w {
				t.Errorf("%d queries, want %d", n, w)
			}
			h.stop(r)
		})
	}
}

func TestCNAMELoop(t *testing.T) {
	z := startZoneServer(t, zonePath)
	z.set("loop1", typeCNAME, "loop1 CNAME loop2")
	z.set("loop2", typeCNAME, "loop2 CNAME loop1")
	for _, chase := range []bool{false, true} {
		z.setNoChase(chase)
		h := newHost(t)
		r := newResolver(t, "loop1.example.test:80", Config{MaxCNAME: 4}, z)
		h.start(r)
		st := wantState(t, h, r, resolver.Failed)
		if !errors.Is(r.lastErr, ErrCNAMEChain) {
			t.Fatalf("chase %v: last error %v, want ErrCNAMEChain", chase, st.LastError)
		}
		h.stop(r)
	}
}

func TestTTLZeroDoesNotSpin(t *testing.T) {
	z := startZoneServer(t, zonePath)
	h := newHost(t)
	cfg := Config{MinInterval: 5 * time.Second}
	r := newResolver(t, "_zero._tcp.example.test.", cfg, z)
	h.start(r)
	wantNames(t, h.last(), "zero.example.test.@192.0.2.50:5005")
	for i := range 5 {
		d := h.nextIn()
		if d < 5*time.Second || d >= 5500*time.Millisecond {
			t.Fatalf("round %d: re-query in %v, want in [5s, 5.5s)", i, d)
		}
		h.requery()
	}
	if n := z.count(""); n != 6 {
		t.Errorf("%d queries in 6 rounds", n)
	}
	if len(h.updates) != 1 {
		t.Errorf("%d updates for an unchanged set, want 1", len(h.updates))
	}
	h.stop(r)
}

func TestRequeryFollowsTTL(t *testing.T) {
	z := startZoneServer(t, zonePath)
	h := newHost(t)
	r := newResolver(t, "_one._tcp.example.test.", Config{}, z)
	h.start(r)
	if d := h.nextIn(); d < 30*time.Second || d >= 33*time.Second {
		t.Fatalf("TTL 30: re-query in %v, want [30s, 33s)", d)
	}
	// The smallest TTL of the records used counts: the target's A record.
	z.set("v4", typeA, "v4 12 A 192.0.2.1")
	h.requery()
	if d := h.nextIn(); d < 12*time.Second || d >= 13200*time.Millisecond {
		t.Fatalf("TTL 12: re-query in %v", d)
	}
	z.set("v4", typeA, "v4 86400 A 192.0.2.1")
	z.set("_one._tcp", typeSRV, "_one._tcp 86400 SRV 0 0 5001 v4")
	h.requery()
	if d := h.nextIn(); d < DefaultMaxInterval || d >= DefaultMaxInterval*11/10 {
		t.Fatalf("TTL 1d: re-query in %v, want the cap %v", d, DefaultMaxInterval)
	}
	h.stop(r)
}

func TestRecordsAppearAfterEmptyAnswer(t *testing.T) {
	z := startZoneServer(t, zonePath)
	h := newHost(t)
	r := newResolver(t, "_late._tcp.example.test.", Config{EmptyRetry: time.Second}, z)
	h.start(r)
	st := wantState(t, h, r, resolver.Failed)
	if !errors.Is(r.lastErr, ErrNoBackends) || !strings.Contains(st.LastError, "NXDOMAIN") {
		t.Fatalf("last error %q", st.LastError)
	}
	if len(h.updates) != 0 {
		t.Fatalf("updates: %v", h.updates)
	}
	for _, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		if d := h.nextIn(); d < want || d >= want*11/10 {
			t.Fatalf("empty retry in %v, want %v", d, want)
		}
		h.requery()
	}
	z.set("_late._tcp", typeSRV, "_late._tcp SRV 0 0 5001 v4")
	h.requery()
	wantState(t, h, r, resolver.Resolved)
	wantNames(t, h.last(), "v4.example.test.@192.0.2.1:5001")
	h.stop(r)
}

func TestNegativeAnswerKeepsSetUnlessTrusted(t *testing.T) {
	for _, trust := range []bool{false, true} {
		t.Run(fmt.Sprintf("trust %v", trust), func(t *testing.T) {
			z := startZoneServer(t, zonePath)
			h := newHost(t)
			r := newResolver(t, "_one._tcp.example.test.", Config{TrustNegative: trust}, z)
			h.start(r)
			wantNames(t, h.last(), oneSet...)
			z.set("_one._tcp", typeSRV) // NODATA: the name still has... nothing, so NXDOMAIN
			h.requery()
			st := h.stats(r)
			if trust {
				wantState(t, h, r, resolver.Resolved)
				wantNames(t, h.last())
				if len(st.Backends) != 0 {
					t.Fatalf("stats backends %v", st.Backends)
				}
			} else {
				wantState(t, h, r, resolver.Failed)
				wantNames(t, h.last(), oneSet...)
				wantNames(t, st.Backends, oneSet...)
			}
			if !strings.Contains(st.LastError, "no backends") {
				t.Errorf("last error %q", st.LastError)
			}
			if d := h.nextIn(); d >= 2*time.Second {
				t.Errorf("empty answer: retry in %v, want soon", d)
			}
			h.stop(r)
		})
	}
}

// A negative answer to one target's address lookup (a server that lags
// behind, a zone being reloaded) is not trusted by default, as for an
// empty answer: the target keeps the addresses it had and the round is
// partial, instead of the pool draining a backend the SRV records still
// list. With TrustNegative the target goes.
func TestNegativeAddressAnswerKeepsTargetUnlessTrusted(t *testing.T) {
	for _, trust := range []bool{false, true} {
		t.Run(fmt.Sprintf("trust %v", trust), func(t *testing.T) {
			z := startZoneServer(t, zonePath)
			z.setNoExtra(true)
			h := newHost(t)
			r := newResolver(t, "_many._tcp.example.test.", Config{TrustNegative: trust}, z)
			h.start(r)
			// v4 has no AAAA record and v6 no A record: their NODATA
			// answers are not errors.
			wantState(t, h, r, resolver.Resolved)
			wantNames(t, h.last(), manySet...)
			z.set("v4", typeA)      // the name is gone: NXDOMAIN
			z.set("dual", typeAAAA) // the name has an A record only: NODATA
			h.requery()
			st := h.stats(r)
			if trust {
				wantState(t, h, r, resolver.Resolved)
				wantNames(t, h.last(), "dual.example.test.@192.0.2.3:5003", "v6.example.test.@[2001:db8::6]:5002")
				return
			}
			wantState(t, h, r, resolver.Failed)
			wantNames(t, h.last(), manySet...)
			if !errors.Is(r.lastErr, ErrNoBackends) || !strings.Contains(st.LastError, "v4.example.test. A: NXDOMAIN") ||
				!strings.Contains(st.LastError, "dual.example.test. AAAA: NODATA") {
				t.Fatalf("last error %q", st.LastError)
			}
			if d := h.nextIn(); d < time.Second || d >= 1100*time.Millisecond {
				t.Errorf("retry in %v, want BackoffMin (a partial answer)", d)
			}
			// The records come back: the round is whole again.
			z.set("v4", typeA, "v4 A 192.0.2.1")
			z.set("dual", typeAAAA, "dual AAAA 2001:db8::3")
			h.requery()
			wantState(t, h, r, resolver.Resolved)
			wantNames(t, h.last(), manySet...)
			h.stop(r)
		})
	}
}

// Of two servers, one loses the zone and answers NXDOMAIN. Its negative
// answer, which the resolver does not trust by default, must not win over
// the other server's records: the next server is asked, and the one that
// answered NXDOMAIN goes to the back of the order. (Before, it won: the
// resolver kept its last set but failed every round and, asking that
// server first, never saw the records change.) When every server says so,
// the negative answer stands.
func TestNegativeAnswerFromOneServerAsksTheNext(t *testing.T) {
	lost := startZoneServer(t, zonePath)
	good := startZoneServer(t, zonePath)
	h := newHost(t)
	r := newResolver(t, "_many._tcp.example.test.", Config{Parallel: 1}, lost, good)
	h.start(r)
	wantNames(t, h.last(), manySet...)
	if good.count("") != 0 {
		t.Fatalf("the second server was asked %d times while the first answered", good.count(""))
	}
	lost.set("_many._tcp", typeSRV) // the name is gone: NXDOMAIN
	good.set("_many._tcp", typeSRV, "_many._tcp SRV 0 0 5001 v4")
	h.requery()
	st := wantState(t, h, r, resolver.Resolved)
	wantNames(t, h.last(), oneSet[0])
	if !errors.Is(r.lastErr, ErrNoBackends) || !strings.Contains(st.LastError, "NXDOMAIN, where the last answer had records") {
		t.Errorf("last error %q", st.LastError)
	}
	// The server that answered NXDOMAIN is asked last from now on.
	lostBefore := lost.count("")
	good.set("_many._tcp", typeSRV, "_many._tcp SRV 0 0 5001 v4", "_many._tcp SRV 0 0 5003 dual")
	h.requery()
	wantState(t, h, r, resolver.Resolved)
	wantNames(t, h.last(), "dual.example.test.@192.0.2.3:5003", "dual.example.test.@[2001:db8::3]:5003", oneSet[0])
	if lost.count("") != lostBefore {
		t.Errorf("the server that lost the zone was asked first again")
	}
	// Both lose it: the negative answer stands, and the last set is kept.
	good.set("_many._tcp", typeSRV)
	h.requery()
	st = wantState(t, h, r, resolver.Failed)
	if len(st.Backends) != 3 || !strings.Contains(st.LastError, "no backends in the answer: _many._tcp.example.test.: NXDOMAIN") {
		t.Errorf("backends %v, last error %q", names(st.Backends), st.LastError)
	}
	h.stop(r)
}

func TestTargetRemovedAndAdded(t *testing.T) {
	z := startZoneServer(t, zonePath)
	h := newHost(t)
	r := newResolver(t, "_many._tcp.example.test.", Config{}, z)
	h.start(r)
	wantNames(t, h.last(), manySet...)
	before := map[string]backend.Backend{}
	for _, b := range h.last() {
		before[string(b.Name)] = b
	}
	z.set("_many._tcp", typeSRV,
		"_many._tcp SRV 0 0 5001 v4", // kept
		"_many._tcp SRV 0 0 5003 dual",
		"_many._tcp SRV 0 0 5006 new") // added; v6 removed
	z.set("new", typeA, "new A 192.0.2.7")
	h.requery()
	wantNames(t, h.last(),
		"dual.example.test.@192.0.2.3:5003",
		"dual.example.test.@[2001:db8::3]:5003",
		"new.example.test.@192.0.2.7:5006",
		"v4.example.test.@192.0.2.1:5001")
	for _, b := range h.last() {
		if old, ok := before[string(b.Name)]; ok && old != b {
			t.Errorf("unchanged backend changed: %v -> %v", old, b)
		}
	}
	// An address that moves is a new backend.
	z.set("v4", typeA, "v4 A 192.0.2.99")
	h.requery()
	if !slices.Contains(names(h.last()), "v4.example.test.@192.0.2.99:5001") ||
		slices.Contains(names(h.last()), "v4.example.test.@192.0.2.1:5001") {
		t.Fatalf("after the move: %v", names(h.last()))
	}
	h.stop(r)
}

// bigService gives _big._tcp n targets with an A and an AAAA record each.
func bigService(z *zoneServer, n int) {
	var srvs []string
	for i := range n {
		name := fmt.Sprintf("big%03d", i)
		srvs = append(srvs, fmt.Sprintf("_big._tcp SRV 0 0 7000 %s", name))
		z.set(name, typeA, fmt.Sprintf("%s A 192.0.2.%d", name, i+1))
		z.set(name, typeAAAA, fmt.Sprintf("%s AAAA 2001:db8::%x", name, i+1))
	}
	z.set("_big._tcp", typeSRV, srvs...)
}

func TestTruncatedAnswerRetriedOverTCP(t *testing.T) {
	z := startZoneServer(t, zonePath)
	bigService(z, 60)
	h := newHost(t)
	r := newResolver(t, "_big._tcp.example.test.", Config{}, z)
	h.start(r)
	wantState(t, h, r, resolver.Resolved)
	if n := len(h.last()); n != 120 {
		t.Fatalf("%d backends, want 120", n)
	}
	if z.count("udp") != 1 || z.count("tcp") != 1 {
		t.Fatalf("udp %d, tcp %d queries: want one of each", z.count("udp"), z.count("tcp"))
	}
	if st := h.stats(r); st.Queries != 1 || st.Errors != 0 {
		t.Fatalf("stats %+v", st)
	}
	h.stop(r)
}

func TestBadServers(t *testing.T) {
	for _, tc := range []struct {
		name    string
		behave  behavior
		is      error
		text    string
		service string
	}{
		{"times out", drop, context.DeadlineExceeded, "no answer within 100ms", ""},
		{"SERVFAIL", servfail, ErrServerFailure, "server failure: SERVFAIL", ""},
		{"REFUSED without a question", refused, ErrServerFailure, "server failure: REFUSED", ""},
		{"malformed", malformed, ErrMalformed, "malformed answer", ""},
		{"wrong ID", wrongID, ErrMismatch, "does not match the query: ID ", ""},
		{"wrong question", wrongQuestion, ErrMismatch, "question other.example.test. SRV", ""},
		{"oversized UDP answer", oversize, ErrOversized, "over udp, the limit is 1232", "_big._tcp.example.test."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			z := startZoneServer(t, zonePath)
			bigService(z, 60)
			service := cmp.Or(tc.service, "_many._tcp.example.test.")
			h := newHost(t)
			r := newResolver(t, service, Config{Timeout: 100 * time.Millisecond}, z)
			h.start(r)
			wantState(t, h, r, resolver.Resolved)
			good := h.last()

			z.setBehavior(tc.behave)
			for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
				h.requery()
				st := wantState(t, h, r, resolver.Failed)
				if !errors.Is(r.lastErr, tc.is) || !strings.Contains(st.LastError, tc.text) {
					t.Fatalf("last error %q, want %v and %q", st.LastError, tc.is, tc.text)
				}
				if !slices.Equal(st.Backends, good) || len(h.updates) != 1 {
					t.Fatalf("the last good set was not kept: %v (%d updates)", names(st.Backends), len(h.updates))
				}
				if st.Errors != uint64(i+1) {
					t.Errorf("errors %d, want %d", st.Errors, i+1)
				}
				if d := h.nextIn(); d < want || d >= want*11/10 {
					t.Fatalf("failure %d: retry in %v, want %v (backoff)", i+1, d, want)
				}
			}
			z.setBehavior(answerWell)
			h.requery()
			st := wantState(t, h, r, resolver.Resolved)
			if !strings.Contains(st.LastError, tc.text) {
				t.Errorf("the last error is kept after recovery; got %q", st.LastError)
			}
			if d := h.nextIn(); d < 30*time.Second {
				t.Errorf("after recovery: re-query in %v, want the TTL", d)
			}
			h.stop(r)
		})
	}
}

func TestTwoServersOneDead(t *testing.T) {
	for _, parallel := range []int{1, 2} {
		t.Run(fmt.Sprintf("parallel %d", parallel), func(t *testing.T) {
			dead := startZoneServer(t, zonePath)
			dead.setBehavior(drop)
			good := startZoneServer(t, zonePath)
			h := newHost(t)
			// Asked one at a time, the dead server's timeout is waited
			// out; asked together, the good answer wins at once (the
			// long timeout shows it was not waited for).
			timeout := map[int]time.Duration{1: 100 * time.Millisecond, 2: 10 * time.Second}[parallel]
			r := newResolver(t, "_many._tcp.example.test.", Config{Parallel: parallel, Timeout: timeout}, dead, good)
			start := time.Now()
			h.start(r)
			elapsed := time.Since(start)
			wantState(t, h, r, resolver.Resolved)
			wantNames(t, h.last(), manySet...)
			if parallel == 2 && elapsed > 5*time.Second {
				t.Errorf("with both asked at once the good answer should win at once; took %v", elapsed)
			}
			if parallel == 1 && h.stats(r).Errors != 1 {
				t.Errorf("errors %d, want 1 (the dead server timed out once)", h.stats(r).Errors)
			}
			// The dead server is asked first only while it has not failed.
			deadBefore := dead.count("")
			for range 3 {
				h.requery()
				wantState(t, h, r, resolver.Resolved)
			}
			if parallel == 1 && dead.count("") != deadBefore {
				t.Errorf("the dead server was asked %d more times; it should come last", dead.count("")-deadBefore)
			}
			if good.count("") != 4 {
				t.Errorf("good server asked %d times, want 4", good.count(""))
			}
			h.stop(r)
		})
	}
}

func TestFailingServerAskedLess(t *testing.T) {
	bad := startZoneServer(t, zonePath)
	bad.setBehavior(servfail)
	good1 := startZoneServer(t, zonePath)
	good2 := startZoneServer(t, zonePath)
	h := newHost(t)
	r := newResolver(t, "_one._tcp.example.test.", Config{Parallel: 1}, bad, good1, good2)
	h.start(r)
	wantNames(t, h.last(), oneSet...)
	for range 4 {
		h.requery()
	}
	if bad.count("") != 1 || good1.count("") != 5 || good2.count("") != 0 {
		t.Fatalf("asked: bad %d, good1 %d, good2 %d; want 1, 5, 0", bad.count(""), good1.count(""), good2.count(""))
	}
	// When the one in use fails too, the next healthy one takes over.
	good1.setBehavior(servfail)
	h.requery()
	h.requery()
	wantState(t, h, r, resolver.Resolved)
	if good1.count("") != 6 || good2.count("") != 2 || bad.count("") != 1 {
		t.Fatalf("asked: bad %d, good1 %d, good2 %d; want 1, 6, 2", bad.count(""), good1.count(""), good2.count(""))
	}
	h.stop(r)
}

func TestMalformedAnswerBesideAGoodServer(t *testing.T) {
	bad := startZoneServer(t, zonePath)
	bad.setBehavior(malformed)
	good := startZoneServer(t, zonePath)
	h := newHost(t)
	r := newResolver(t, "_one._tcp.example.test.", Config{Parallel: 1}, bad, good)
	h.start(r)
	st := wantState(t, h, r, resolver.Resolved)
	wantNames(t, h.last(), oneSet...)
	if !errors.Is(r.lastErr, ErrMalformed) || !strings.Contains(st.LastError, bad.Addr.String()) || st.Errors != 1 {
		t.Fatalf("stats %+v", st)
	}
	h.stop(r)
}

func TestPlainMode(t *testing.T) {
	want := []string{"plain.example.test.@192.0.2.10:8080", "plain.example.test.@[2001:db8::10]:8080"}
	z := startZoneServer(t, zonePath)
	h := newHost(t)
	r := newResolver(t, "plain.example.test:8080", Config{}, z)
	h.start(r)
	wantNames(t, h.last(), want...)
	if z.count("") != 2 {
		t.Errorf("%d queries, want A and AAAA only", z.count(""))
	}
	h.stop(r)

	// Fallback: no SRV records for the name, Config.Port set.
	h = newHost(t)
	r = newResolver(t, "plain.example.test", Config{Port: 8080}, z)
	h.start(r)
	wantNames(t, h.last(), want...)
	h.stop(r)

	// Families.
	for fam, w := range map[Family][]string{IPv4Only: want[:1], IPv6Only: want[1:]} {
		h = newHost(t)
		r = newResolver(t, "plain.example.test:8080", Config{Family: fam}, z)
		h.start(r)
		wantNames(t, h.last(), w...)
		h.stop(r)
	}
	h = newHost(t)
	r = newResolver(t, "_many._tcp.example.test", Config{Family: IPv4Only}, z)
	h.start(r)
	wantNames(t, h.last(), "dual.example.test.@192.0.2.3:5003", "v4.example.test.@192.0.2.1:5001")
	h.stop(r)
}
