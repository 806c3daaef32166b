package sim

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/qorbgo/qorb/pool"
)

func small(t *testing.T, extra string) *Scenario {
	t.Helper()
	sc, err := Parse("small.toml", []byte(`name = "small"
duration = "2m"
[[backends]]
name = "db"
count = 2
[[clients]]
name = "c"
[clients.policy]
max_slots = 6
spares_wanted = 3
connect_timeout = "2s"
health_timeout = "500ms"
health_interval = "5s"
[clients.workload]
rate = 10
hold = "5ms"
timeout = "1s"
`+extra))
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// constBackoff always waits the same: fine for the pool, but outside the
// bounds the test declares.
type constBackoff struct{ d time.Duration }

func (b constBackoff) Delay(int, *rand.Rand) time.Duration { return b.d }

func TestBackoffBoundsViolationIsCaught(t *testing.T) {
	sc := small(t, "[[faults]]\nat = \"30s\"\nkind = \"crash\"\nbackends = [\"db-1\"]\nfor = \"20s\"\n")
	r, err := Run(sc, Options{
		Policy: func(_ string, p pool.Policy) pool.Policy { p.Backoff = constBackoff{5 * time.Millisecond}; return p },
		BackoffBounds: func(p pool.Policy, n int) (time.Duration, time.Duration) {
			return 20 * time.Millisecond, 30 * time.Second
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	v := r.Violation
	if v == nil || v.Invariant != "backoff-bounds" || !strings.Contains(v.Detail, "waited 5ms") {
		t.Fatalf("want a backoff-bounds violation, got %v", v)
	}
	if v.At.D() < 30*time.Second || v.At.D() > 31*time.Second || len(v.Trace) == 0 || !strings.Contains(v.Trace[len(v.Trace)-1], `"event":"backoff_elapsed"`) {
		t.Errorf("violation at %v with trace ending %q", v.At, v.Trace[len(v.Trace)-1])
	}
}

func TestDefaultBackoffWithinBounds(t *testing.T) {
	sc := small(t, "[[faults]]\nat = \"30s\"\nkind = \"crash\"\nbackends = [\"db-*\"]\nfor = \"50s\"\n")
	r, err := Run(sc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Violation != nil {
		t.Fatal(r.Violation)
	}
}

// badPicker picks past the end of the candidates now and then.
type badPicker struct{}

func (badPicker) Pick(c []pool.Candidate, r *rand.Rand) int { return len(c) }

func TestPolicyErrorIsCaught(t *testing.T) {
	r, err := Run(small(t, ""), Options{
		Policy: func(_ string, p pool.Policy) pool.Policy { p.Picker = badPicker{}; return p },
	})
	if err != nil {
		t.Fatal(err)
	}
	if v := r.Violation; v == nil || v.Invariant != "policy-error" || !strings.Contains(v.Detail, "picker chose") {
		t.Fatalf("want a policy-error violation, got %v", v)
	}
}

// TestHungIOEndsAtItsTimeout: connects to a partitioned backend hang and
// complete exactly when the pool's connect timeout cancels them.
func TestHungIOEndsAtItsTimeout(t *testing.T) {
	sc := small(t, "[[faults]]\nat = \"0s\"\nkind = \"partition\"\nbackends = [\"db-2\"]\nfor = \"1m\"\n")
	var trace strings.Builder
	r, err := Run(sc, Options{Trace: &trace})
	if err != nil {
		t.Fatal(err)
	}
	if r.Violation != nil {
		t.Fatal(r.Violation)
	}
	// The first connect to db-2 starts when DNS answers and times out 2s later.
	var created, failed string
	for _, l := range strings.Split(trace.String(), "\n") {
		if created == "" && strings.Contains(l, `"id":"c/db-2/0"`) && strings.Contains(l, `"event":"create"`) {
			created = l
		}
		if failed == "" && strings.Contains(l, `"id":"c/db-2/0"`) && strings.Contains(l, `"event":"connect_err"`) {
			failed = l
		}
	}
	at := func(l string) float64 {
		s := strings.TrimPrefix(l, `{"at":`)
		return mustFloat(t, s[:strings.IndexByte(s, ',')])
	}
	if created == "" || failed == "" {
		t.Fatalf("no connect and timeout of c/db-2/0 in the trace")
	}
	if d := at(failed) - at(created); d < 1.999999 || d > 2.000001 {
		t.Errorf("the hung connect failed %.9fs after it started, want 2s", d)
	}
	if r.Fleet.Errors.Failed() != 0 {
		t.Errorf("claims failed: %v", r.Fleet.Errors)
	}
}

// negativeBackoff returns a negative delay: a policy error.
type negativeBackoff struct{}

func (negativeBackoff) Delay(int, *rand.Rand) time.Duration { return -time.Second }

// TestPolicyErrorCaughtWhenItHappens: a policy error stops the run at the
// event that caused it (the first backoff, after the crash at 5m), not
// when the pool closes at the end.
func TestPolicyErrorCaughtWhenItHappens(t *testing.T) {
	sc, err := Parse("policy.toml", []byte(`name = "policy"
duration = "10m"
[[backends]]
name = "db"
count = 2
[[clients]]
name = "c"
[clients.workload]
rate = 5
hold = "1ms"
[[faults]]
at = "5m"
kind = "crash"
backends = ["db-1"]
for = "1m"
`))
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(sc, Options{Policy: func(_ string, p pool.Policy) pool.Policy {
		p.Backoff = negativeBackoff{}
		return p
	}})
	if err != nil {
		t.Fatal(err)
	}
	v := r.Violation
	if v == nil || v.Invariant != "policy-error" {
		t.Fatalf("violation %+v; want policy-error", v)
	}
	if at := time.Duration(v.At); at < 5*time.Minute || at > 5*time.Minute+10*time.Second {
		t.Fatalf("the policy error was caught at %v; want just after the crash at 5m", at)
	}
}
