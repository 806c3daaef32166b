package sim

import (
	"reflect"
	"strings"
	"testing"
)

// storyFile has a little of everything WriteStory tells: a description
// with a blank line, two groups of backends (one down and unlisted),
// clients with claims and a connection set that starts later, faults
// out of order (one with a duration, one that ends with its drain, a
// close), and expectations.
const storyFile = `name = "story"
description = """
A story in two lines,
with a blank line after.

Look at the faults."""
duration = "4m"
[[backends]]
name = "db"
count = 3
[[backends]]
name = "new"
down = true
unlisted = true
[[clients]]
name = "api"
count = 2
[clients.workload]
rate = 5
hold = "1ms..3ms"
[[clients]]
name = "sets"
connset = 2
start = "10s"
[[faults]]
at = "2m"
kind = "hang"
backends = ["db-1"]
for = "30s"
[[faults]]
at = "1m"
kind = "replace"
backends = ["db-3"]
with = ["new"]
[[faults]]
at = "3m"
kind = "close"
clients = ["api-002"]
[expect]
recover_within = "20s"
max_claim_errors = 3
max_wait = "1s"
max_claim_share = { backend = "db-1", share = 0.5 }
`

// TestStory: the story a run begins with, whole: the description, what
// happens when, in order of time, and what to look at, the scenario's
// expectations in words.
func TestStory(t *testing.T) {
	sc, err := Parse("story.toml", []byte(storyFile))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	sc.WriteStory(&b)
	const want = `story
  A story in two lines,
  with a blank line after.

  Look at the faults.

what happens, in virtual time (4m0s of it):
  0s       4 backends: db-1…db-3, new; new down until a fault starts them; new not in DNS yet
  0s       2 clients (api-001 and api-002) start, each with a pool, making 5 claims a second, each
             holding a connection 1ms..3ms
  10s      client sets starts, keeping a connection set of 2 (one connection per backend), with no
             claims
  1m0s     fault 1: replace db-3 with new — a deploy step: the new backends are listed, the old ones
             leave DNS and stop after the drain
  1m30s    fault 1 ends; recovery is timed from here
  2m0s     fault 0: hang db-1 for 30s — connects and requests hang until their timeouts
  2m30s    fault 0 ends; recovery is timed from here
  3m0s     fault 2: close clients api-002 drain 30s — a graceful shutdown: claims in flight finish,
             then Close returns
  3m0s     fault 2 ends when its clients are back, by 3m30s at the latest; recovery is timed from
             then
  4m0s     the workload stops: claims in flight finish, and every pool closes

what to look at in the summary:
  expectations  what this scenario promises, each ok or FAIL: every client back to its target within
                20s of the last fault's end; at most 3 failed claims; every claim served within 1s;
                db-1 serves at most 50% of the claims
  faults        each fault's recovery: "recovered 12s after its end" means every client was back to
                its target 12s after the fault ended
  claims        failed claims by kind, and how long served claims waited (p50, p90, p99, max): the
                fleet, then each client
  backends      for each, its connects (refused ones while it was down) and the claims it served
  invariants    ok, or the first promise of the pool that broke and the trace before it
  picture       qsim -out DIR writes it, picture.svg: the connections to each backend and the claim
                waits over time, the faults shaded
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}

// TestExpectPhrases: every expectation a file can set is said in words.
func TestExpectPhrases(t *testing.T) {
	n, f := 0, 0.5
	e := Expect{RecoverWithin: 1, MaxClaimErrors: &n, MaxErrorRatio: &f, MaxWaitP99: 1, MaxWait: 1, MaxFailWait: 1, MinClaims: 1,
		MaxConnects: 1, MaxConnectRate: 1, MaxUpConnectRate: 1, MaxCutClaims: &n, MaxForcedCloses: &n, MaxCloseTime: 1, MaxDNSRate: &f,
		MaxFailedRequests: &n, MaxDiscards: &n, MaxClaimShare: &ClaimShare{Backend: "db-1", Share: f}}
	if got, want := len(e.phrases()), len(fieldNames(reflect.TypeFor[Expect]())); got != want {
		t.Errorf("%d phrases for %d expectations: %q", got, want, e.phrases())
	}
}

// TestSummaryExplainsRecovery: the summary says, under the faults, what
// "recovered ... after its end" means.
func TestSummaryExplainsRecovery(t *testing.T) {
	r, _ := runText(t, "rec.toml", "name = \"rec\"\nduration = \"1m\"\n[[backends]]\nname = \"db\"\ncount = 2\n[[clients]]\nname = \"c\"\n[clients.workload]\nrate = 5\n"+
		"[[faults]]\nat = \"10s\"\nkind = \"crash\"\nbackends = [\"db-1\"]\nfor = \"10s\"\n")
	sum := summary(r)
	i := strings.Index(sum, "faults:\n  0. at 10s: crash db-1 for 10s — ends 20s, recovered ")
	j := strings.Index(sum, `("recovered X after its end": X after the fault ended, every client was back to its target,`)
	k := strings.Index(sum, "min(spares_wanted, max_slots) connections open. \"not recovered by")
	if i < 0 || j < i || k < j {
		t.Errorf("the summary does not explain the recovery under the faults:\n%s", sum)
	}
}
