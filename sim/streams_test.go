package sim

import (
	"bufio"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestClientDrawsDoNotDependOnOtherClients checks that every slot draws from
// its own random stream: the backoff delays of client a's slots, against a
// backend that refuses every connect, are the same whether or not a second
// client shares the run (and the loop, and the backend).
func TestClientDrawsDoNotDependOnOtherClients(t *testing.T) {
	const base = `name = "streams"
duration = "2m"
[[backends]]
name = "db"
down = true
[[clients]]
name = "a"
[clients.policy]
max_slots = 2
spares_wanted = 2
[clients.workload]
rate = 1
hold = "1ms"
`
	const second = `[[clients]]
name = "b"
[clients.policy]
max_slots = 2
spares_wanted = 2
[clients.workload]
rate = 5
hold = "1ms"
`
	alone := slotBackoffs(t, base, "a/")
	shared := slotBackoffs(t, base+second, "a/")
	if others := slotBackoffs(t, base+second, "b/"); len(others) == 0 {
		t.Fatal("client b drew no backoff")
	}
	compared := 0
	for id, want := range alone {
		got, ok := shared[id]
		if !ok {
			continue
		}
		n := min(len(got), len(want))
		if !slices.Equal(got[:n], want[:n]) {
			t.Errorf("slot %s backed off %v alone and %v with another client", id, want[:n], got[:n])
		}
		compared += n
	}
	t.Logf("%d backoffs of %d slots compared", compared, len(alone))
	if compared < 10 {
		t.Fatalf("only %d backoffs compared (alone %v, shared %v)", compared, alone, shared)
	}
}

// slotBackoffs runs the scenario and returns, for each slot whose id starts
// with prefix, the time it spent in failed before each backoff elapsed.
func slotBackoffs(t *testing.T, scenario, prefix string) map[string][]time.Duration {
	t.Helper()
	_, trace := runText(t, "streams.toml", scenario)
	out := map[string][]time.Duration{}
	failedAt := map[string]int64{}
	sc2 := bufio.NewScanner(strings.NewReader(trace))
	for sc2.Scan() {
		var rec struct {
			At                     json.Number
			Machine, ID, Event, To string
		}
		if err := json.Unmarshal(sc2.Bytes(), &rec); err != nil {
			t.Fatal(err)
		}
		if rec.Machine != "slot" || !strings.HasPrefix(rec.ID, prefix) {
			continue
		}
		at := nanos(t, string(rec.At))
		if rec.To == "failed" {
			failedAt[rec.ID] = at
		}
		if rec.Event == "backoff_elapsed" {
			out[rec.ID] = append(out[rec.ID], time.Duration(at-failedAt[rec.ID]))
		}
	}
	return out
}

// nanos parses a trace time, seconds with nine decimals, exactly.
func nanos(t *testing.T, s string) int64 {
	t.Helper()
	sec, frac, ok := strings.Cut(s, ".")
	n, err1 := strconv.ParseInt(sec, 10, 64)
	f, err2 := strconv.ParseInt(frac, 10, 64)
	if !ok || len(frac) != 9 || err1 != nil || err2 != nil {
		t.Fatalf("trace time %q", s)
	}
	return n*1e9 + f
}
