package sim

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestCloseFaultParseErrors(t *testing.T) {
	const fault = "[[faults]]\nat = \"10s\"\nkind = \"close\"\n"
	for _, tc := range []struct{ add, want string }{
		{fault + "drian = \"1s\"\n", "s.toml:13: faults[0].drian: unknown field; known here: at, backends, clients, direction, down, drain"},
		{fault + "drain = \"30 s\"\n", `s.toml:13: faults[0].drain: bad duration "30 s": want a number with a unit`},
		{fault + "drain = 5\n", "s.toml:13: faults[0].drain: want a string, found an integer"},
		{fault + "down = \"-2s\"\n", `s.toml:13: faults[0].down: bad duration "-2s": must not be negative`},
		{fault + "for = \"10s\"\n", "s.toml:13: faults[0].for: a close fault has no duration: down starts a new pool after Close returned"},
		{fault + "backends = [\"db-1\"]\n", "s.toml:13: faults[0].backends: a close fault takes no backends"},
		{fault + "clients = [\"x-*\"]\n", `s.toml:13: faults[0].clients[0]: "x-*" matches no client`},
		{fault + "factor = 2.0\n", "s.toml:13: faults[0].factor: only slow and load faults take a factor"},
		{"[[faults]]\nat = \"10s\"\nkind = \"restart\"\ndrain = \"5s\"\n", "s.toml:13: faults[0].drain: only replace and close faults take drain"},
		{"[[faults]]\nat = \"10s\"\nkind = \"crash\"\nbackends = [\"db-1\"]\ndown = \"5s\"\n", "s.toml:14: faults[0].down: only restart, close and kill faults take down"},
		{"[expect]\nmax_cut_claims = -1\n", "s.toml:11: expect.max_cut_claims: must not be negative"},
		{"[expect]\nmax_close_time = \"1 s\"\n", `s.toml:11: expect.max_close_time: bad duration "1 s"`},
	} {
		_, err := Parse("s.toml", []byte(minimal+tc.add))
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%q:\n got %v\nwant %s…", tc.add, err, tc.want)
		}
	}
	sc, err := Parse("s.toml", []byte(minimal+fault+"clients = [\"c\"]\ndrain = \"5s\"\ndown = \"1s\"\nspread = \"2s\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if f := sc.Faults[0]; f.End() != 18*time.Second {
		t.Errorf("End %v, want at+spread+drain+down = 18s", f.End())
	}
	if f := sc.withDefaults().Faults[0]; f.Drain.D() != 5*time.Second {
		t.Errorf("drain %v", f.Drain)
	}
	sc, _ = Parse("s.toml", []byte(minimal+fault))
	if f := sc.withDefaults().Faults[0]; f.Drain.D() != 30*time.Second || f.Down != 0 {
		t.Errorf("defaults: drain %v down %v, want 30s and 0", f.Drain, f.Down)
	}
}

// busy is a scenario whose client "c" holds long claims near its cap, so
// that a close meets claims in flight and claims waiting.
func busy(t *testing.T, hold, faults string) *Scenario {
	t.Helper()
	sc, err := Parse("busy.toml", []byte(`name = "busy"
duration = "1m"
[[backends]]
name = "db"
count = 2
[[clients]]
name = "c"
[clients.policy]
max_slots = 4
spares_wanted = 2
[clients.workload]
rate = 18 # with holds of 200ms on average: 3.6 of its 4 slots busy, so claims wait
hold = "`+hold+`"
io_timeout = "30s" # holds of seconds are slow requests, not failed ones
timeout = "5s"
[[clients]]
name = "other"
[clients.workload]
rate = 20
hold = "5ms"
`+faults))
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// runTraced runs sc and returns its result and trace.
func runTraced(t *testing.T, sc *Scenario) (*Result, []string) {
	t.Helper()
	var b strings.Builder
	r, err := Run(sc, Options{Trace: &b})
	if err != nil {
		t.Fatal(err)
	}
	if r.Violation != nil {
		t.Fatalf("%v\n%s", r.Violation, strings.Join(r.Violation.Trace, "\n"))
	}
	return r, strings.Split(strings.TrimSpace(b.String()), "\n")
}

type traceLine struct {
	At      float64 `json:"at"`
	Machine string  `json:"machine"`
	ID      string  `json:"id"`
	From    string  `json:"from"`
	Event   string  `json:"event"`
	To      string  `json:"to"`
}

func parseTrace(t *testing.T, lines []string) []traceLine {
	t.Helper()
	out := make([]traceLine, len(lines))
	for i, l := range lines {
		if err := json.Unmarshal([]byte(l), &out[i]); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
	}
	return out
}

func clientOf(r *Result, name string) ClientResult {
	for _, c := range r.Clients {
		if c.Name == name {
			return c
		}
	}
	return ClientResult{}
}

// TestCloseGraceful: a close under load fails the waiting claims with
// ErrClosed, lets the claims in flight finish, serves none after it
// began, and returns when the last claim released, without forcing.
func TestCloseGraceful(t *testing.T) {
	sc := busy(t, "100ms..300ms", "[[faults]]\nat = \"30s\"\nkind = \"close\"\nclients = [\"c\"]\n")
	r, lines := runTraced(t, sc)
	if len(r.Closes) != 1 {
		t.Fatalf("closes %+v", r.Closes)
	}
	cl := r.Closes[0]
	if cl.Client != "c" || cl.Pool != "c" || cl.Forced || cl.ForcedClaims != 0 || cl.Claimed == 0 {
		t.Fatalf("close %+v: want one close of c with claims in flight, not forced", cl)
	}
	if d := returned(t, cl) - cl.Began.D(); cl.Began.D() != 30*time.Second || d <= 0 || d > 300*time.Millisecond+10*time.Millisecond {
		t.Errorf("close began at %v and took %v; want 30s, and no longer than the longest hold", cl.Began, d)
	}
	c := clientOf(r, "c")
	if c.Errors.Closed == 0 || c.Errors.Failed() != 0 || c.Cut != 0 || c.Closes != 1 || c.Dropped != 0 {
		t.Errorf("client c: %+v; want claims waiting at the close failed as closed, none cut, no arrival after it", c)
	}
	if o := clientOf(r, "other"); o.Claims == 0 || o.Errors.Failed() != 0 || o.Closes != 0 {
		t.Errorf("client other: %+v", o)
	}
	if f := r.Faults[0]; f.End.D() != returned(t, cl) || f.Recovery == nil || *f.Recovery != 0 {
		t.Errorf("fault %+v: want it to end when Close returned (%v), recovered at once", r.Faults[0], cl.Returned)
	}
	// From the trace: the close began and returned at the recorded times;
	// after it began no slot of c was claimed; after it returned no slot
	// of c moved, and every one had stopped.
	began, closed := -1.0, -1.0
	live := map[string]bool{}
	for _, l := range parseTrace(t, lines) {
		switch {
		case l.Machine == "client" && l.ID == "c" && l.Event == "close":
			began = l.At
		case l.Machine == "client" && l.ID == "c" && l.Event == "closed":
			closed = l.At
			if !strings.HasPrefix(l.To, "c, quiet after ") {
				t.Errorf("closed line %+v", l)
			}
		case l.Machine == "slot" && strings.HasPrefix(l.ID, "c/"):
			if began >= 0 && l.Event == "claim" {
				t.Errorf("slot claimed after Close began: %+v", l)
			}
			if closed >= 0 {
				t.Errorf("slot moved after Close returned: %+v", l)
			}
			live[l.ID] = l.To != "stopped"
		}
	}
	if began != cl.Began.D().Seconds() || closed != returned(t, cl).Seconds() {
		t.Errorf("trace: close at %v, closed at %v; result %v, %v", began, closed, cl.Began, returned(t, cl))
	}
	for id, ok := range live {
		if ok {
			t.Errorf("slot %s not stopped by the end", id)
		}
	}
}

// TestCloseForcedAtDrain: claims that hold longer than the drain are cut
// at the drain deadline, and counted.
func TestCloseForcedAtDrain(t *testing.T) {
	sc := busy(t, "20s", "[[faults]]\nat = \"30s\"\nkind = \"close\"\nclients = [\"c\"]\ndrain = \"2s\"\n")
	r, lines := runTraced(t, sc)
	if len(r.Closes) != 1 {
		t.Fatalf("closes %+v", r.Closes)
	}
	cl := r.Closes[0]
	if !cl.Forced || cl.ForcedClaims != 4 || cl.Claimed != 4 || returned(t, cl)-cl.Began.D() != 2*time.Second {
		t.Fatalf("close %+v: want 4 claims in flight, all cut at the 2s drain deadline", cl)
	}
	if c := clientOf(r, "c"); c.Cut != 4 {
		t.Errorf("client c: cut %d, want 4", c.Cut)
	}
	found := false
	for _, l := range parseTrace(t, lines) {
		if l.Machine == "client" && l.Event == "closed" {
			found = l.To == "c, forced, 4 claimed cut after 2s" && l.At == 32
		}
	}
	if !found {
		t.Error("no closed line for the forced close")
	}
	// The expectations of a graceful close fail.
	zero := 0
	sc.Expect = Expect{MaxCutClaims: &zero, MaxForcedCloses: &zero, MaxCloseTime: Duration(time.Second)}
	r, err := Run(sc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range r.Expect {
		if e.OK {
			t.Errorf("expectation %s met by a forced close: %s", e.Name, e.Got)
		}
	}
}

// TestCloseThenRestart: a close with down starts a new pool down after
// Close returned; a restart later replaces that pool.
func TestCloseThenRestart(t *testing.T) {
	sc := busy(t, "10ms..50ms", `[[faults]]
at = "20s"
kind = "close"
clients = ["c"]
down = "3s"
[[faults]]
at = "40s"
kind = "restart"
clients = ["c"]
[expect]
recover_within = "2s"
max_claim_errors = 0
max_forced_closes = 0
max_close_time = "60ms"
`)
	r, lines := runTraced(t, sc)
	if err := r.Err(); err != nil {
		t.Fatalf("%v\n%s", err, summary(r))
	}
	if len(r.Closes) != 1 || r.Closes[0].Pool != "c" || r.Closes[0].Forced {
		t.Fatalf("closes %+v", r.Closes)
	}
	cl := r.Closes[0]
	if want := returned(t, cl) + 3*time.Second; r.Faults[0].End.D() != want {
		t.Errorf("close fault ended at %v, want 3s after Close returned: %v", r.Faults[0].End, want)
	}
	c := clientOf(r, "c")
	if c.Closes != 1 || c.Restarts != 1 {
		t.Errorf("client c: %+v", c)
	}
	// The client starts again when the fault ends; its new pool c#2 runs
	// until the restart replaces it with c#3 a second later.
	started, first2, first3 := -1.0, -1.0, -1.0
	for _, l := range parseTrace(t, lines) {
		switch {
		case l.Machine == "client" && l.ID == "c" && l.Event == "start":
			started = l.At
		case first2 < 0 && (l.ID == "c#2" || strings.HasPrefix(l.ID, "c#2/")):
			first2 = l.At
		case first3 < 0 && (l.ID == "c#3" || strings.HasPrefix(l.ID, "c#3/")):
			first3 = l.At
		}
	}
	if end := r.Faults[0].End.D().Seconds(); started != end || first2 < end || first2 > end+0.1 {
		t.Errorf("client started at %v and pool c#2 first moved at %v; want both when the fault ended, %v", started, first2, end)
	}
	if first3 < 41 || first3 > 41.1 {
		t.Errorf("pool c#3 first moved at %v, want just after 41s", first3)
	}
}

// TestCloseQuietIgnoresOtherPools: on the simulator's shared loop a pool
// is quiet when its own I/O is done, even while another pool's connects
// hang on a partitioned backend. Its own claimers' requests to that
// backend end at their I/O timeout, 500ms.
func TestCloseQuietIgnoresOtherPools(t *testing.T) {
	sc := busy(t, "100ms..300ms", `[[faults]]
at = "25s"
kind = "partition"
backends = ["db-2"]
for = "20s"
[[faults]]
at = "30s"
kind = "close"
clients = ["c"]
`)
	sc.Clients[0].Workload.IOTimeout = Duration(500 * time.Millisecond)
	r, _ := runTraced(t, sc)
	if len(r.Closes) != 1 {
		t.Fatalf("closes %+v", r.Closes)
	}
	if cl := r.Closes[0]; cl.Forced || returned(t, cl)-cl.Began.D() > 510*time.Millisecond {
		t.Fatalf("close %+v took %v; want it quiet within the I/O timeout", cl, returned(t, cl)-cl.Began.D())
	}
}

// TestCloseAtTheEndOfTheRun: a close still waiting for its claims when
// the workload ends returns, quiet, when the last is released, although
// the pools are closed at that same instant.
func TestCloseAtTheEndOfTheRun(t *testing.T) {
	sc := busy(t, "10s", "[[faults]]\nat = \"55s\"\nkind = \"close\"\nclients = [\"c\"]\n")
	r, _ := runTraced(t, sc)
	if len(r.Closes) != 1 {
		t.Fatalf("closes %+v", r.Closes)
	}
	if cl := r.Closes[0]; cl.Forced || cl.Claimed == 0 || returned(t, cl) <= 60*time.Second || returned(t, cl) > 65*time.Second {
		t.Errorf("close %+v: want it quiet after the last claim released, 60s to 65s", cl)
	}
}

// returned is when the close returned; the test fails if it never did.
func returned(t *testing.T, cl CloseResult) time.Duration {
	t.Helper()
	if cl.Returned == nil {
		t.Fatalf("close %+v never returned", cl)
	}
	return cl.Returned.D()
}
