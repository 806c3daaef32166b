package sim

import (
	"strings"
	"testing"
	"time"
)

const minimal = `name = "m"
duration = "1m"
[[backends]]
name = "db"
count = 2
[[clients]]
name = "c"
[clients.workload]
rate = 5
`

func TestParseErrorsNameFileLineField(t *testing.T) {
	for _, tc := range []struct{ add, want string }{
		{"[[faults]]\nat = \"10s\"\nkind = \"explode\"\n", `s.toml:12: faults[0].kind: "explode": want one of crash, start, hang`},
		{"[[faults]]\nat = \"10s\"\nkind = \"crash\"\nbackends = [\"db-9\"]\n", `s.toml:13: faults[0].backends[0]: "db-9" matches no backend`},
		{"[[faults]]\nat = \"2m\"\nkind = \"dns_outage\"\n", "s.toml:11: faults[0].at: 2m0s is after the end of the run (1m0s)"},
		{"[[faults]]\nat = \"10s\"\nkind = \"slow\"\nbackends = [\"db-1\"]\n", "s.toml:10: faults[0].factor: a slow fault needs a positive factor"},
		{"[clients.policy]\nbackoff_min = \"1s\"\nbackoff_max = \"10ms\"\n", "s.toml:10: clients[0].policy: pool: invalid policy: BackoffMin (1s) is above BackoffMax (10ms)"},
		{"[clients.policy]\nmax_slots = \"16\"\n", "s.toml:11: clients[0].policy.max_slots: want an integer, found a string"},
		{"[clients.policy]\nhealth_interval = \"30 s\"\n", `s.toml:11: clients[0].policy.health_interval: bad duration "30 s"`},
		{"[clients.policy]\nhealth_intervals = \"30s\"\n", "s.toml:11: clients[0].policy.health_intervals: unknown field; known here: backoff_jitter"},
		{"[expect]\nmax_error_ratio = 2\n", "s.toml:11: expect.max_error_ratio: 2: want 0 to 1"},
		{"[[backends]]\nname = \"db-1\"\n", "s.toml:11: backends[1].name: backend db-1 defined twice"},
		{"[clients.workload]\nhold = \"5ms..1ms\"\n", "s.toml:10: table [clients.workload] defined twice (first at line 8)"},
		{"io_timeout = \"0s\"\n", "s.toml:10: clients[0].workload.io_timeout: 0s: want a positive duration (leave io_timeout out for the default, 1s)"},
		{"[expect]\nmax_claim_share = { backend = \"db-9\", share = 0.1 }\n", `s.toml:11: expect.max_claim_share.backend: "db-9" matches no backend`},
		{"[expect]\nmax_claim_share = { backend = \"db-1\", share = 1.5 }\n", "s.toml:11: expect.max_claim_share.share: 1.5: want 0 to 1"},
		{"[expect]\nmax_discards = -1\n", "s.toml:11: expect.max_discards: must not be negative"},
		{"[[faults]]\nat = \"10s\"\nkind = \"crash\"\nbackends = [\"db-1\"]\nprobability = 0.5\n", "s.toml:14: faults[0].probability: only hang, check_fail and errors faults take a probability"},
		{"[[faults]]\nat = \"10s\"\nkind = \"hang\"\nbackends = [\"db-1\"]\nprobability = 1.5\n", "s.toml:14: faults[0].probability: 1.5: want a probability above 0, at most 1"},
		{"[[faults]]\nat = \"10s\"\nkind = \"check_fail\"\nbackends = [\"db-1\"]\nprobability = 0.0\n", "s.toml:14: faults[0].probability: 0: want a probability above 0"},
		{"[[faults]]\nat = \"10s\"\nkind = \"hang\"\nbackends = [\"db-1\"]\nramp = \"5s\"\n", "s.toml:14: faults[0].ramp: only slow faults take a ramp"},
		{"[[faults]]\nat = \"10s\"\nkind = \"slow\"\nfactor = 3.0\nbackends = [\"db-1\"]\nramp = \"20s\"\nfor = \"10s\"\n", "s.toml:15: faults[0].ramp: the ramp (20s) is longer than the fault (for 10s)"},
		{"[[faults]]\nat = \"30s\"\nkind = \"slow\"\nfactor = 3.0\nbackends = [\"db-1\"]\nramp = \"40s\"\n", "s.toml:15: faults[0].ramp: the ramp lasts past the end of the run"},
		{"[[faults]]\nat = \"10s\"\nkind = \"partition\"\nclients = [\"c\"]\n", "s.toml:10: faults[0].backends: a partition fault needs backends"},
		{"[[faults]]\nat = \"10s\"\nkind = \"partition\"\nbackends = [\"db-1\"]\nclients = [\"x\"]\n", `s.toml:14: faults[0].clients[0]: "x" matches no client`},
		{"[[faults]]\nat = \"10s\"\nkind = \"hang\"\nbackends = [\"db-1\"]\nclients = [\"c\"]\n", "s.toml:14: faults[0].clients: a hang fault takes no clients"},
		{"do = true\ntry_claim = true\n", "s.toml:10: clients[0].workload.do: Do claims with Claim: not with try_claim"},
		{"do = true\n[clients.policy]\nis_bad_conn = \"sometimes\"\n", `s.toml:12: clients[0].policy.is_bad_conn: "sometimes": want default, never, any-error, read-only`},
		{"[clients.policy]\nis_bad_conn = \"never\"\n", "s.toml:11: clients[0].policy.is_bad_conn: only Do asks it: set workload.do = true"},
	} {
		_, err := Parse("s.toml", []byte(minimal+tc.add))
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%q:\n got %v\nwant %s…", tc.add, err, tc.want)
		}
	}
	if _, err := Parse("s.toml", []byte(minimal)); err != nil {
		t.Fatal(err)
	}
}

func TestScenarioRoundTrip(t *testing.T) {
	for name, sc := range shipped(t) {
		out, err := sc.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		back, err := Parse(name, out)
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, out)
		}
		again, _ := back.Marshal()
		if string(again) != string(out) {
			t.Errorf("%s: does not round-trip", name)
		}
	}
}

func TestDist(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		max  time.Duration
	}{
		{"2ms", "2ms", 2 * time.Millisecond},
		{"1ms..5ms", "1ms..5ms", 5 * time.Millisecond},
		{"exp(10ms)", "exp(10ms)", 200 * time.Millisecond},
		{"pareto( 2ms , 1.5)", "pareto(2ms, 1.5)", 2 * time.Second},
	} {
		d, err := ParseDist(tc.in)
		if err != nil || d.String() != tc.want || d.Max() != tc.max {
			t.Errorf("%s: %v %v %v", tc.in, d, err, d.Max())
		}
		r := stream(1, tc.in)
		for range 1000 {
			if v := d.Draw(r); v < 0 || v > tc.max {
				t.Fatalf("%s drew %v", tc.in, v)
			}
		}
	}
	for _, bad := range []string{"", "5", "-1ms", "5ms..1ms", "exp(5ms", "exp(x)", "pareto(2ms)", "pareto(2ms, 0)", "pareto(2ms, x)", "pareto(2ms, 1.5"} {
		if _, err := ParseDist(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
