package policytest

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/qorbgo/qorb/pool"
)

// setFlag sets a flag for the test and puts it back after.
func setFlag(t *testing.T, name, value string) {
	t.Helper()
	f := flag.Lookup(name)
	old := f.Value.String()
	if err := f.Value.Set(value); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Value.Set(old) })
}

// expectFailure makes a Check that is meant to fail write no rapid fail
// file and search the same way on every run, and clears policytest's own
// settings, which the test sets itself.
func expectFailure(t *testing.T) {
	t.Helper()
	setFlag(t, "rapid.nofailfile", "true")
	if flag.Lookup("rapid.seed").Value.String() == "0" {
		setFlag(t, "rapid.seed", "1") // -rapid.seed on the command line still wins
	}
	noSettings(t)
}

// noSettings clears -policytest.replay, -policytest.dir and their
// environment variables for the test.
func noSettings(t *testing.T) {
	t.Helper()
	setFlag(t, "policytest.replay", "")
	setFlag(t, "policytest.dir", "")
	t.Setenv(ReplayEnv, "")
	t.Setenv(DirEnv, "")
}

// smallBroken is the broken rebalancer in a space of schedules small
// enough to find and shrink it in a second.
func smallBroken() Config {
	return Config{Policy: func() pool.Policy { return pool.Policy{Rebalancer: forgetsDead{}} },
		MaxBackends: 1, MaxClients: 1, MaxFaults: 1, Duration: time.Minute, RecoverWithin: 20 * time.Second}
}

// lineAfter returns the rest of the last line of msgs that starts with
// prefix, and whether there is one.
func lineAfter(msgs []string, prefix string) (string, bool) {
	rest, found := "", false
	for _, m := range msgs {
		for _, l := range strings.Split(m, "\n") {
			if r, ok := strings.CutPrefix(strings.TrimSpace(l), prefix); ok {
				rest, found = r, true
			}
		}
	}
	return rest, found
}

// unquote undoes shellQuote.
func unquote(s string) string {
	if len(s) >= 2 && s[0] == '\'' && s[len(s)-1] == '\'' {
		return strings.ReplaceAll(s[1:len(s)-1], `'\''`, "'")
	}
	return s
}

// TestFailurePrintsAReplayThatFails: a failing Check writes the schedule
// where $POLICYTEST_DIR says and prints the go test command that replays
// it in the test itself (the command printed was a go run ./cmd/qsim
// that only this repository has); the command's flag, set as go test
// sets it, makes Check replay the file and fail the same way, and pass
// with a policy that is not broken. $POLICYTEST_REPLAY does the same.
func TestFailurePrintsAReplayThatFails(t *testing.T) {
	expectFailure(t)
	dir := t.TempDir()
	t.Setenv(DirEnv, dir)
	rec := &recorder{t: t}
	Check(rec, smallBroken())
	if !rec.failed {
		t.Fatal("the broken rebalancer was not caught")
	}
	file := filepath.Join(dir, t.Name()+".toml")
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("the schedule is not where $%s says: %v\n%s", DirEnv, err, strings.Join(rec.msgs, "\n"))
	}
	wrote, ok := lineAfter(rec.msgs, "policytest wrote the smallest failing schedule (1 backend, 1 client, 1 fault) to ")
	if want := file + " (-policytest.dir or $POLICYTEST_DIR choose the folder, Config.Out the file)"; !ok || wrote != want {
		t.Errorf("the failure says it wrote %q, want %q", wrote, want)
	}
	cmd, ok := lineAfter(rec.msgs, "replay it, from the module's root: ")
	if !ok {
		t.Fatalf("no replay command in the failure:\n%s", strings.Join(rec.msgs, "\n"))
	}
	args := strings.Fields(cmd)
	if len(args) != 7 || strings.Join(args[:4], " ") != "go test ./sim/policytest -run" || args[5] != "-args" ||
		unquote(args[4]) != "^"+t.Name()+"$" || !strings.HasPrefix(args[6], "-policytest.replay=") {
		t.Fatalf("replay command %q: want go test ./sim/policytest -run '^%s$' -args -policytest.replay=FILE", cmd, t.Name())
	}
	replayed := unquote(strings.TrimPrefix(args[6], "-policytest.replay="))
	if replayed != file {
		t.Fatalf("the command replays %s, not the file written, %s", replayed, file)
	}
	violation := strings.Split(rec.msgs[len(rec.msgs)-1], "\n")[0]
	if !strings.HasPrefix(violation, "expectation recover_within not met") {
		t.Fatalf("the failure's first line is %q, want the missed recovery", violation)
	}
	// The values in the log read as one writes them: no sim.Dist{kind:0x3,
	// ...}, no nanoseconds, the policy by the fields set.
	draw, ok := lineAfter(rec.msgs, "[rapid] draw schedule: ")
	if !ok || !strings.HasPrefix(draw, "policytest.Schedule{Seed: ") || strings.Contains(draw, "sim.Dist{") ||
		strings.Contains(draw, "kind:") || regexp.MustCompile(`[0-9]{7}`).MatchString(draw) {
		t.Errorf("rapid's line for the drawn schedule is %q, want it readable", draw)
	}
	if pol, _ := lineAfter(rec.msgs, "policy under test: "); pol != "pool.Policy{Rebalancer: policytest.forgetsDead{}}" {
		t.Errorf("the policy under test is printed %q", pol)
	}
	if strings.Contains(cmd, "qsim") {
		t.Errorf("a qsim command is printed without Config.QSim: %s", cmd)
	}

	// The command's flag, as go test passes it to the test binary.
	setFlag(t, "policytest.replay", replayed)
	again := &recorder{t: t}
	Check(again, smallBroken())
	if !again.failed || len(again.msgs) < 2 || strings.Split(again.msgs[1], "\n")[0] != violation ||
		!strings.Contains(again.msgs[1], "\nreplayed from "+file) {
		t.Fatalf("replayed with -policytest.replay: failed %v, want the same failure %q:\n%s", again.failed, violation, strings.Join(again.msgs, "\n"))
	}
	if want := "policytest: replaying " + file; !strings.HasPrefix(again.msgs[0], want) {
		t.Errorf("the replay's first line is %q, want it to start %q", again.msgs[0], want)
	}
	fixed := smallBroken()
	fixed.Policy = func() pool.Policy { return pool.Policy{} }
	pass := &recorder{t: t}
	Check(pass, fixed)
	if pass.failed {
		t.Errorf("the default policy fails the replayed file:\n%s", strings.Join(pass.msgs, "\n"))
	}

	// The environment variable, without the flag.
	setFlag(t, "policytest.replay", "")
	t.Setenv(ReplayEnv, replayed)
	env := &recorder{t: t}
	Check(env, smallBroken())
	if !env.failed || len(env.msgs) < 2 || strings.Split(env.msgs[1], "\n")[0] != violation {
		t.Fatalf("replayed with $%s: failed %v, want the same failure %q:\n%s", ReplayEnv, env.failed, violation, strings.Join(env.msgs, "\n"))
	}
}

// TestReplayOfAMissingFile: a file to replay that is not there fails the
// test with its name.
func TestReplayOfAMissingFile(t *testing.T) {
	noSettings(t)
	missing := filepath.Join(t.TempDir(), "missing.toml")
	setFlag(t, "policytest.replay", missing)
	rec := &recorder{t: t}
	Check(rec, smallBroken())
	if !rec.failed || !strings.Contains(strings.Join(rec.msgs, "\n"), "policytest: replay: ") ||
		!strings.Contains(strings.Join(rec.msgs, "\n"), missing) {
		t.Fatalf("replaying a missing file: failed %v:\n%s", rec.failed, strings.Join(rec.msgs, "\n"))
	}
}

// TestOutFolder: the failing schedule goes to Config.Out, else to
// <folder>/<test>.toml, the folder from -policytest.dir, else
// $POLICYTEST_DIR, else testdata/policytest.
func TestOutFolder(t *testing.T) {
	noSettings(t)
	cfg := Config{Policy: func() pool.Policy { return pool.Policy{} }}
	if c := cfg.withDefaults("TestA/sub b"); c.Out != filepath.Join("testdata", "policytest", "TestA_sub_b.toml") || !c.outDefault {
		t.Errorf("by default: %s (default %v)", c.Out, c.outDefault)
	}
	t.Setenv(DirEnv, "/tmp/env")
	if c := cfg.withDefaults("TestA"); c.Out != filepath.Join("/tmp/env", "TestA.toml") {
		t.Errorf("with $%s: %s", DirEnv, c.Out)
	}
	setFlag(t, "policytest.dir", "flagdir")
	if c := cfg.withDefaults("TestA"); c.Out != filepath.Join("flagdir", "TestA.toml") {
		t.Errorf("with -policytest.dir and $%s: %s", DirEnv, c.Out)
	}
	cfg.Out = "mine.toml"
	if c := cfg.withDefaults("TestA"); c.Out != "mine.toml" || c.outDefault {
		t.Errorf("with Config.Out: %s (default %v)", c.Out, c.outDefault)
	}
}

// TestGoTestCommand: the command runs exactly the test, subtests
// included, from the module's root, with shell quoting where needed;
// outside a module it runs in the package's directory.
func TestGoTestCommand(t *testing.T) {
	for _, tc := range []struct{ test, file, want string }{
		{"TestA", "testdata/policytest/TestA.toml",
			"go test ./sim/policytest -run '^TestA$' -args -policytest.replay=testdata/policytest/TestA.toml"},
		{"TestA/x.y+", "/tmp/my dir/it's.toml",
			`go test ./sim/policytest -run '^TestA$/^x\.y\+$' -args -policytest.replay='/tmp/my dir/it'\''s.toml'`},
	} {
		if got := GoTestCommand(tc.test, tc.file); got != tc.want {
			t.Errorf("GoTestCommand(%q, %q):\n got %s\nwant %s", tc.test, tc.file, got, tc.want)
		}
	}
	t.Chdir(t.TempDir())
	if _, inModule := moduleRoot(); !inModule {
		if got, want := GoTestCommand("TestA", "a.toml"), "go test . -run '^TestA$' -args -policytest.replay=a.toml"; got != want {
			t.Errorf("outside a module:\n got %s\nwant %s", got, want)
		}
	}
}

// TestReplayCommandNeedsQSim: the qsim command is printed only with
// both Name and QSim (it defaulted to go run ./cmd/qsim, which has no
// policy of one's own registered, in this repository or any other).
func TestReplayCommandNeedsQSim(t *testing.T) {
	cfg := Config{Name: "mine", Policy: func() pool.Policy { return pool.Policy{} }}
	if got := cfg.ReplayCommand("testdata/policytest/TestA.toml"); got != "" {
		t.Errorf("with a Name and no QSim: %q, want none", got)
	}
	cfg.QSim = "go run ./cmd/myqsim"
	if got, want := cfg.ReplayCommand("testdata/policytest/TestA.toml"),
		"go run ./cmd/myqsim -policy mine -scenario sim/policytest/testdata/policytest/TestA.toml"; got != want {
		t.Errorf("with a Name and QSim:\n got %s\nwant %s", got, want)
	}
}
