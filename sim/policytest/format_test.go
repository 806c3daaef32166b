package policytest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/qorbgo/qorb/pool"
	"github.com/qorbgo/qorb/sim"
)

// TestScheduleGoString: rapid prints a drawn schedule with %#v; it reads
// as one writes it, with only the fields set, durations as duration
// strings and distributions in the scenario files' syntax (it printed
// sim.Dist{kind:0x3, a:5000000, ...} and For:101000000000).
func TestScheduleGoString(t *testing.T) {
	s := Schedule{
		Seed: 7,
		Backends: []Backend{{}, {MaxConns: 20, AcceptRate: 8, Connect: sim.Exp(5 * time.Millisecond),
			Check: sim.Pareto(100*time.Microsecond, 1.5)}},
		Clients: []Client{{Rate: 3, Hold: sim.Uniform(time.Millisecond, 4*time.Millisecond)}, {Rate: 1, Hold: sim.Const(2 * time.Millisecond)}},
		Faults: []Fault{{Kind: sim.FaultCrash, Backend: 2, At: 10 * time.Second, For: 101 * time.Second},
			{Kind: Delist, Backend: 1, For: 1500 * time.Millisecond}},
		TTL: 5 * time.Second,
	}
	want := `policytest.Schedule{Seed: 7, ` +
		`Backends: []policytest.Backend{{}, {MaxConns: 20, AcceptRate: 8, Connect: exp(5ms), Check: pareto(100µs, 1.5)}}, ` +
		`Clients: []policytest.Client{{Rate: 3, Hold: 1ms..4ms}, {Rate: 1, Hold: 2ms}}, ` +
		`Faults: []policytest.Fault{{Kind: "crash", Backend: 2, At: 10s, For: 1m41s}, {Kind: "delist", Backend: 1, For: 1.5s}}, ` +
		`TTL: 5s}`
	if got := fmt.Sprintf("%#v", s); got != want {
		t.Errorf("%%#v of a schedule:\n got %s\nwant %s", got, want)
	}
	if got := fmt.Sprintf("%#v", Schedule{}); got != "policytest.Schedule{}" {
		t.Errorf("%%#v of the zero schedule: %s", got)
	}
}

// TestFormatPolicy: the policy under test is printed with only the
// fields set, durations as duration strings, the pluggable parts as
// their values and functions by name.
func TestFormatPolicy(t *testing.T) {
	for _, tc := range []struct {
		p    pool.Policy
		want string
	}{
		{pool.Policy{}, "pool.Policy{} (every field its default)"},
		{pool.Policy{MaxSlots: 7, HealthInterval: 1500 * time.Millisecond, ConnectRatePerBackend: 2.5, CheckOnRelease: true},
			"pool.Policy{MaxSlots: 7, ConnectRatePerBackend: 2.5, HealthInterval: 1.5s, CheckOnRelease: true}"},
		{pool.Policy{Rebalancer: forgetsDead{}, Picker: pool.LeastLatency{}, Backoff: pool.ExponentialBackoff{Min: time.Second, Max: time.Minute}},
			"pool.Policy{Rebalancer: policytest.forgetsDead{}, Picker: pool.LeastLatency{}, Backoff: pool.ExponentialBackoff{Min: 1s, Max: 1m0s}}"},
		{pool.Policy{Backoff: &pool.ExponentialBackoff{Jitter: time.Millisecond}}, "pool.Policy{Backoff: &pool.ExponentialBackoff{Jitter: 1ms}}"},
		{pool.Policy{IsBadConn: pool.DefaultIsBadConn, Ejection: pool.Ejection{ConsecutiveErrors: 3, BaseTime: 10 * time.Second}},
			"pool.Policy{IsBadConn: pool.DefaultIsBadConn, Ejection: pool.Ejection{ConsecutiveErrors: 3, BaseTime: 10s}}"},
	} {
		if got := formatPolicy(tc.p); got != tc.want {
			t.Errorf("formatPolicy:\n got %s\nwant %s", got, tc.want)
		}
	}
}

// selfRef refers to itself: formatting it ends.
type selfRef struct {
	Next *selfRef
	d    time.Duration
	m    map[string]int
}

func TestFormatValueEnds(t *testing.T) {
	r := &selfRef{d: time.Second, m: map[string]int{"b": 2, "a": 1}}
	r.Next = r
	got := formatValue(r)
	if want := "&policytest.selfRef{Next: &policytest.selfRef{Next: "; !strings.HasPrefix(got, want) || !strings.Contains(got, "…") ||
		!strings.HasSuffix(got, `, d: 1s, m: map[string]int{"a": 1, "b": 2}}`) {
		t.Errorf("formatValue of a value that refers to itself: %s", got)
	}
}
