package sim

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// TestFileFormatErrors checks the errors of the file format itself: each
// names the file, the line and the field's full path.
func TestFileFormatErrors(t *testing.T) {
	const head = "name = \"m\"\nduration = \"1m\"\n[[backends]]\nname = \"db\"\n[[clients]]\nname = \"c\"\n"
	for _, tc := range []struct{ src, want string }{
		{"name = 5\n", "s.toml:1: name: want a string, found an integer"},
		{"\n\nbogus = 1\n", "s.toml:3: bogus: unknown field; known here: backends, clients, description, dns, duration, expect, faults, name, seed"},
		{"seed = 1.5\n", "s.toml:1: seed: want an integer, found a float"},
		{"seed = -1\n", "s.toml:1: seed: negative integer value -1 cannot be stored in uint64"},
		{"name = \"a\"\nname = \"b\"\n", "s.toml:2: name: defined twice (first at line 1)"},
		{"[dns]\n[dns]\n", "s.toml:2: table [dns] defined twice (first at line 1)"},
		{"duration = 10s\n", `s.toml:1: duration: value 10s: not a number; strings (durations such as "5m" too) need quotes: "10s"`},
		{"duration = \"1m\" junk\n", "s.toml:1: duration: expected newline but got U+006A 'j'"},
		{"name = \"open\n", "s.toml:1: name: basic strings cannot have new lines"},
		{"name = 1979-05-27\n", "s.toml:1: name: want a string, found a date or time"},
		{"[[dns]]\n", "s.toml:1: dns: want a table, found an array"},
		{"[dns.latency]\n", "s.toml:1: dns.latency: want a string, found a table"},
		{"[dns]\nlatency = \"5ms..1ms\"\n", `s.toml:2: dns.latency: bad distribution "5ms..1ms": the upper bound is below the lower`},
		{"[dns]\nttl = \"30 s\"\n", `s.toml:2: dns.ttl: bad duration "30 s": want a number with a unit`},
		// Through arrays of tables, inline tables and arrays.
		{head + "[[clients]]\nname = \"d\"\n[clients.policy]\nmax_slot = 1\n", "s.toml:10: clients[1].policy.max_slot: unknown field; known here: backoff_jitter, backoff_max"},
		{head + "[[clients]]\nname = \"d\"\n[clients.policy]\nmax_slots = true\n", "s.toml:10: clients[1].policy.max_slots: want an integer, found a boolean"},
		{head + "policy = {max_slots = 3, bogus = 1}\n", "s.toml:7: clients[0].policy.bogus: unknown field; known here: backoff_jitter"},
		{head + "policy = {max_slots = 3, claim_timeout = \"1 s\"}\n", `s.toml:7: clients[0].policy.claim_timeout: bad duration "1 s"`},
		{head + "workload.bogus = 3\n", "s.toml:7: clients[0].workload.bogus: unknown field; known here: discard_rate, do, hold, io_timeout, rate, timeout"},
		{head + "[clients.workload]\nhold = 5\n", "s.toml:8: clients[0].workload.hold: want a string, found an integer"},
		{head + "[clients.workload]\nhold = 5m\n", `s.toml:8: clients[0].workload.hold: value 5m: not a number; strings (durations such as "5m" too) need quotes: "5m"`},
		{head + "[clients.workload]\nrate = nan\n", "s.toml:8: clients[0].workload.rate: NaN: want a finite number"},
		{head + "[[faults]]\nat = \"1s\"\nkind = \"crash\"\nbackends = [\"db\",\n  5]\n", "s.toml:11: faults[0].backends[1]: want a string, found an integer"},
		{head + "[[faults]]\nat = \"1s\"\n# a comment\nkind = crash\n", `s.toml:10: faults[0].kind: value crash: not a number; strings (durations such as "5m" too) need quotes: "crash"`},
		// A syntax error inside an array names the line only.
		{head + "[[faults]]\nbackends = [\n  \"db\",\n  db,\n]\n", "s.toml:10: unexpected character U+0064 'd' at start of value"},
	} {
		_, err := Parse("s.toml", []byte(tc.src))
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%q:\n got %v\nwant %s…", tc.src, err, tc.want)
		}
	}
}

// TestFileFormat checks what TOML gives beyond the shipped scenarios'
// style: dotted keys, inline tables, hex integers, literal strings.
func TestFileFormat(t *testing.T) {
	sc, err := Parse("s.toml", []byte(`name = 'm'
duration = "1m"
[[backends]]
name = "db"
[[clients]]
name = "c"
workload.rate = 3
policy = { max_slots = 0x10, claim_timeout = "1s" }
`))
	if err != nil {
		t.Fatal(err)
	}
	c := sc.Clients[0]
	if c.Workload.Rate != 3 || c.Policy.MaxSlots != 16 || c.Policy.ClaimTimeout.D() != time.Second {
		t.Errorf("%+v", c)
	}
}

func TestDNSZeroDurations(t *testing.T) {
	for _, tc := range []struct{ add, want string }{
		{"[dns]\nttl = \"0s\"\n", `s.toml:11: dns.ttl: 0s: want a positive duration (leave ttl out for the default, 30s)`},
		{"[dns]\nttl = \"0\"\n", `s.toml:11: dns.ttl: 0s: want a positive duration`},
		{"[dns]\nretry_min = \"0s\"\n", `s.toml:11: dns.retry_min: 0s: want a positive duration (leave retry_min out for the default, 1s)`},
		{"[dns]\ntimeout = \"0s\"\n", `s.toml:11: dns.timeout: 0s: want a positive duration`},
		{"[dns]\nretry_max = \"0s\"\n", `s.toml:11: dns.retry_max: 0s: want a positive duration`},
	} {
		_, err := Parse("s.toml", []byte(minimal+tc.add))
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%q:\n got %v\nwant %s…", tc.add, err, tc.want)
		}
	}
	sc, err := Parse("s.toml", []byte(minimal+"[dns]\nlatency = \"1ms\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if d := sc.withDefaults().DNS; d.TTL.D() != 30*time.Second || d.RetryMin.D() != time.Second {
		t.Errorf("defaults: %+v", d)
	}
	// Built in Go, a zero TTL is the default.
	sc.pos = nil
	sc.DNS.TTL = 0
	if err := sc.check(); err != nil {
		t.Error(err)
	}
}

func TestFaultPastTheEnd(t *testing.T) {
	for _, tc := range []struct{ add, want string }{
		{"[[faults]]\nat = \"40s\"\nkind = \"crash\"\nbackends = [\"db-1\"]\nfor = \"30s\"\n",
			"s.toml:14: faults[0].for: the fault lasts past the end of the run: at 40s + for 30s ends at 1m10s, after 1m0s; without for, it lasts to the end"},
		{"[[faults]]\nat = \"50s\"\nkind = \"dns_outage\"\nfor = \"11s\"\n", "s.toml:13: faults[0].for: the fault lasts past the end of the run"},
		{"[[faults]]\nat = \"40s\"\nkind = \"replace\"\nbackends = [\"db-1\"]\nwith = [\"db-2\"]\n",
			"s.toml:10: faults[0].drain: the fault lasts past the end of the run: at 40s + drain 30s (the default) ends at 1m10s, after 1m0s"},
		{"[[faults]]\nat = \"50s\"\nkind = \"restart\"\nspread = \"20s\"\n",
			"s.toml:13: faults[0].spread: the fault lasts past the end of the run: at 50s + spread 20s ends at 1m10s, after 1m0s"},
		{"[[faults]]\nat = \"50s\"\nkind = \"restart\"\nspread = \"5s\"\ndown = \"6s\"\n",
			"s.toml:14: faults[0].down: the fault lasts past the end of the run: at 50s + spread 5s + down 6s ends at 1m1s, after 1m0s"},
		{"[[faults]]\nat = \"1m\"\nkind = \"restart\"\n", "s.toml:10: faults[0].down: the fault lasts past the end of the run: at 1m0s + spread 0s + down 1s (the default)"},
		{"[[faults]]\nat = \"50s\"\nkind = \"close\"\nspread = \"20s\"\n", "s.toml:13: faults[0].spread: the fault lasts past the end of the run"},
	} {
		_, err := Parse("s.toml", []byte(minimal+tc.add))
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%q:\n got %v\nwant %s…", tc.add, err, tc.want)
		}
	}
	// Up to the end is fine, and so is a fault without for, or a close
	// whose drain runs past the end (a close still running is forced then).
	for _, add := range []string{
		"[[faults]]\nat = \"40s\"\nkind = \"crash\"\nbackends = [\"db-1\"]\nfor = \"20s\"\n",
		"[[faults]]\nat = \"40s\"\nkind = \"crash\"\nbackends = [\"db-1\"]\n",
		"[[faults]]\nat = \"50s\"\nkind = \"restart\"\nspread = \"5s\"\ndown = \"5s\"\n",
		"[[faults]]\nat = \"50s\"\nkind = \"close\"\nspread = \"10s\"\n",
	} {
		if _, err := Parse("s.toml", []byte(minimal+add)); err != nil {
			t.Errorf("%q: %v", add, err)
		}
	}
}

// FuzzScenarioRoundTrip checks that every scenario that parses is
// written by Marshal as a file that parses back to the same scenario, and
// that writing it again gives the same bytes. Plain go test runs the
// seeds only.
func FuzzScenarioRoundTrip(f *testing.F) {
	f.Add(minimal)
	f.Add("description = \"\"\"\x1f\"\"\"\n" + minimal)
	f.Add("description = \"\"\"\\u001f\"\"\"\n" + minimal)
	f.Add("description = \"\"\"\nends with quotes\"\"\\\"\r\n\\\\\"\"\"\n" + minimal)
	f.Add("description = '''a ''literal'' \\ string'''\n" + minimal)
	f.Add("description = \"tab\\there\\u007f\\u0000\"\n" + minimal)
	f.Add(minimal + "rate = 1e300\ndiscard_rate = 0.1\n[[faults]]\nat = \"10s\"\nkind = \"load\"\nfactor = 1.5e-3\nfor = \"1s\"\nclients = [\"*\", \"[a-c]\"]\n")
	files, _ := filepath.Glob("../testdata/scenarios/*.toml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(data))
	}
	f.Fuzz(func(t *testing.T, src string) {
		sc, err := Parse("fuzz.toml", []byte(src))
		if err != nil {
			return
		}
		out, err := sc.Marshal()
		if err != nil {
			t.Fatalf("does not write: %v", err)
		}
		back, err := Parse("out.toml", out)
		if err != nil {
			t.Fatalf("written scenario does not read back: %v\n%s", err, out)
		}
		if a, b := comparable(sc), comparable(back); !reflect.DeepEqual(a, b) {
			t.Fatalf("read back differs:\n%+v\n%+v\n%s", a, b, out)
		}
		again, err := back.Marshal()
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("written twice differs (%v):\n%s\n---\n%s", err, out, again)
		}
	})
}

// FuzzScenarioMarshal checks the same from the other side: a valid
// scenario with any description, numbers and durations is written as a
// file that parses back to it. (Random files seldom make valid
// scenarios; this reaches the writer on every input.)
func FuzzScenarioMarshal(f *testing.F) {
	f.Add("\x1f", 0.5, 0.25, int64(time.Second), int64(time.Millisecond), "*")
	f.Add("a \"\"\" b\r\n\\'''", 1e300, 1.0, int64(1), int64(0), "db-[12]")
	f.Add("\n\x7f\u00e9\x00", 5e-324, 0.0, int64(1<<62), int64(1<<40), "db-?")
	f.Fuzz(func(t *testing.T, desc string, rate, ratio float64, d1, d2 int64, pattern string) {
		sc, err := Parse("s.toml", []byte(minimal))
		if err != nil {
			t.Fatal(err)
		}
		maxErrors := int(d2 % 1000)
		sc.Description = desc
		sc.Duration = Duration(max(d1, 1))
		sc.DNS.Latency = Uniform(time.Duration(max(d2, 0)), time.Duration(max(d1, d2, 0)))
		sc.Clients[0].Workload.Rate = rate
		sc.Clients[0].Workload.Hold = Exp(time.Duration(max(d2, 0)))
		sc.Expect.MaxErrorRatio = &ratio
		sc.Expect.MaxClaimErrors = &maxErrors
		sc.Faults = []Fault{{Kind: FaultCrash, Backends: []string{pattern}}}
		if !utf8.ValidString(desc) || !utf8.ValidString(pattern) || sc.check() != nil {
			return // TOML strings are UTF-8; the rest Parse would refuse
		}
		out, err := sc.Marshal()
		if err != nil {
			t.Fatalf("does not write: %v", err)
		}
		back, err := Parse("out.toml", out)
		if err != nil {
			t.Fatalf("written scenario does not read back: %v\n%s", err, out)
		}
		if a, b := comparable(sc), comparable(back); !reflect.DeepEqual(a, b) {
			t.Fatalf("read back differs:\n%+v\n%+v\n%s", a, b, out)
		}
	})
}

// comparable returns sc without where it was read from, with empty lists
// as nil (Marshal leaves them out).
func comparable(sc *Scenario) Scenario {
	c := *sc
	c.file, c.pos = "", nil
	c.Backends = orNil(c.Backends)
	c.Clients = orNil(c.Clients)
	c.Faults = orNil(append([]Fault(nil), c.Faults...))
	for i := range c.Faults {
		f := &c.Faults[i]
		f.Backends, f.Clients, f.With = orNil(f.Backends), orNil(f.Clients), orNil(f.With)
	}
	c.DNS.Servers = orNil(c.DNS.Servers)
	c.DNS.Records = orNil(append([]DNSRecordSpec(nil), c.DNS.Records...))
	for i := range c.DNS.Records {
		c.DNS.Records[i].Backends = orNil(c.DNS.Records[i].Backends)
	}
	c.DNS.Changes = orNil(append([]DNSChange(nil), c.DNS.Changes...))
	for i := range c.DNS.Changes {
		ch := &c.DNS.Changes[i]
		ch.Servers, ch.Backends = orNil(ch.Servers), orNil(ch.Backends)
	}
	return c
}

func orNil[S ~[]E, E any](s S) S {
	if len(s) == 0 {
		return nil
	}
	return s
}

// TestWrittenZerosAreRefused checks that a zero written in a file where
// zero reads as a default is an error that says what it would have meant,
// and that the same fields left out take their defaults.
func TestWrittenZerosAreRefused(t *testing.T) {
	const head = "name = \"m\"\nduration = \"1m\"\n"
	const rest = "[[backends]]\nname = \"db\"\ncount = 2\n[[clients]]\nname = \"c\"\n[clients.workload]\nrate = 5\n"
	for _, tc := range []struct{ src, want string }{
		{head + "seed = 0\n" + rest, `s.toml:3: seed: zero here would mean the default seed, 1`},
		{head + rest + "hold = \"0s\"\n", `s.toml:10: clients[0].workload.hold: zero here would mean the default hold, 5ms: leave hold out for it, or write "1ns" for a release at once`},
		{head + rest + "hold = \"exp(0s)\"\n", `s.toml:10: clients[0].workload.hold: zero here would mean the default hold, 5ms`},
		{head + rest + "timeout = \"0s\"\n", `s.toml:10: clients[0].workload.timeout: zero here would mean the policy's claim_timeout`},
		{head + "[[backends]]\nname = \"db\"\nconnect_latency = \"0s\"\n[[clients]]\nname = \"c\"\n", `s.toml:5: backends[0].connect_latency: zero here would mean the default, 1ms..3ms`},
		{head + "[[backends]]\nname = \"db\"\ncheck_latency = \"0..0\"\n[[clients]]\nname = \"c\"\n", `s.toml:5: backends[0].check_latency: zero here would mean the default, 200µs..1ms`},
		{head + rest + "[dns]\nlatency = \"0s\"\n", `s.toml:11: dns.latency: zero here would mean the default latency`},
		{head + rest + "[clients.policy]\nmax_slots = 0\n", `s.toml:11: clients[0].policy.max_slots: zero here would mean the pool's default, 16: leave max_slots out for it`},
		{head + rest + "[clients.policy]\nbackoff_max = \"0s\"\n", `s.toml:11: clients[0].policy.backoff_max: zero here would mean the pool's default, 30s`},
		{head + rest + "[[faults]]\nat = \"1s\"\nkind = \"close\"\ndrain = \"0s\"\n", `s.toml:13: faults[0].drain: zero here would mean the default drain, 30s`},
		{head + rest + "[[faults]]\nat = \"1s\"\nkind = \"restart\"\ndown = \"0s\"\n", `s.toml:13: faults[0].down: zero here would mean the default down, 1s`},
		{head + rest + "[[faults]]\nat = \"1s\"\nkind = \"kill\"\ndown = \"0s\"\n", `s.toml:13: faults[0].down: zero here would mean a client that does not come back`},
		{head + rest + "[[faults]]\nat = \"1s\"\nkind = \"kill\"\nlinger = \"0s\"\n", `s.toml:13: faults[0].linger: zero here would mean the default linger, 2h0m0s`},
		{head + rest + "[[faults]]\nat = \"1s\"\nkind = \"crash\"\nbackends = [\"db-1\"]\nfor = \"0s\"\n", `s.toml:14: faults[0].for: zero here would mean a fault that lasts to the end of the run`},
	} {
		_, err := Parse("s.toml", []byte(tc.src))
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%q:\n got %v\nwant %s…", tc.src, err, tc.want)
		}
	}
	// Zeros that mean what they say stay allowed.
	for _, add := range []string{
		"[clients.policy]\nmin_slots = 0\nconnect_rate_per_backend = 0\ncheck_on_release = false\n",
		"[[faults]]\nat = \"1s\"\nkind = \"restart\"\nspread = \"0s\"\n",
	} {
		if _, err := Parse("s.toml", []byte(head+rest+add)); err != nil {
			t.Errorf("%q: %v", add, err)
		}
	}
	// Left out, they take their defaults.
	sc, err := Parse("s.toml", []byte(head+rest+"[[faults]]\nat = \"1s\"\nkind = \"close\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	d := sc.withDefaults()
	if d.Seed != 1 || d.Clients[0].Workload.Hold != Const(5*time.Millisecond) || d.Faults[0].Drain.D() != 30*time.Second {
		t.Errorf("defaults: seed %d, hold %v, drain %v", d.Seed, d.Clients[0].Workload.Hold, d.Faults[0].Drain)
	}
}
