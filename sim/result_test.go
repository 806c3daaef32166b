package sim

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestResultDurationsReadable: result.json has durations as the strings a
// person reads ("1m0s", "1.5ms"), null for a recovery that never came, and
// reads back; the summary rounds them.
func TestResultDurationsReadable(t *testing.T) {
	r, _ := runText(t, "d.toml", `name = "d"
duration = "1m"
[[backends]]
name = "db"
count = 2
[[clients]]
name = "c"
[clients.workload]
rate = 10
[[faults]]
at = "10s"
kind = "crash"
backends = ["db-1"]
for = "7s"
[[faults]]
at = "59s"
kind = "restart"
`)
	js, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"virtual":"1m0s"`, `"at":"10s","end":"17s","recovery":"`, `"at":"59s","end":"1m0s","recovery":null`,
		`"build":{"module":"`, `"go":"go`} {
		if !strings.Contains(string(js), want) {
			t.Errorf("result.json has no %s:\n%s", want, js)
		}
	}
	if m := regexp.MustCompile(`"(p50|p99|max|mean|wall|ended)":-?[0-9]`).FindString(string(js)); m != "" {
		t.Errorf("a duration written as a number: %s", m)
	}
	var back Result
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	if back.Virtual.D() != time.Minute || back.Faults[0].Recovery == nil || *back.Faults[0].Recovery != *r.Faults[0].Recovery || back.Faults[1].Recovery != nil {
		t.Errorf("read back: %+v", back.Faults)
	}
	if long := regexp.MustCompile(`[0-9]\.[0-9]{4,}m?s`).FindString(summary(r)); long != "" {
		t.Errorf("the summary has an unrounded duration %s:\n%s", long, summary(r))
	}
}
