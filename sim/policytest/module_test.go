package policytest

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// userTest is a policy test in a module of one's own: a rebalancer that
// gives dead backends no probe slot, or, with USERPOLICY_FIXED set, the
// default one.
const userTest = `package userpolicy

import (
	"os"
	"testing"
	"time"

	"github.com/qorbgo/qorb/pool"
	"github.com/qorbgo/qorb/sim/policytest"
)

type forgetsDead struct{}

func (forgetsDead) Rebalance(in pool.RebalanceInput, want []int) {
	pool.DefaultRebalancer{}.Rebalance(in, want)
	if os.Getenv("USERPOLICY_FIXED") != "" {
		return
	}
	for i, s := range in.Sets {
		if s.Dead && !s.Online {
			want[i] = 0
		}
	}
}

func TestForgetsDead(t *testing.T) {
	policytest.Check(t, policytest.Config{
		Policy:      func() pool.Policy { return pool.Policy{Rebalancer: forgetsDead{}} },
		MaxBackends: 1, MaxClients: 1, MaxFaults: 1, Duration: time.Minute, RecoverWithin: 20 * time.Second,
	})
}
`

// TestReplayInAModuleOfOnesOwn runs the loop a user runs: go test in a
// module of one's own (this one replaced into it) fails a broken policy
// and prints a command; that command, run by a shell in the module's
// root, replays the written schedule and fails the same way; with the
// policy fixed it passes. It runs go test three times (seconds with a
// warm build cache); -short skips it.
func TestReplayInAModuleOfOnesOwn(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module of its own with go test")
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	root, ok := moduleRoot()
	if !ok {
		t.Skip("not in a module")
	}
	goMod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goSum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	goLine := "go 1.26"
	for l := range strings.Lines(string(goMod)) {
		if strings.HasPrefix(l, "go ") {
			goLine = strings.TrimSpace(l)
		}
	}
	mod := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		p := filepath.Join(mod, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", fmt.Sprintf("module example.com/userpolicy\n\n%s\n\nrequire github.com/qorbgo/qorb v0.0.0\n\nreplace github.com/qorbgo/qorb => %q\n", goLine, root))
	write("go.sum", string(goSum))
	write("pkg/userpolicy/policy_test.go", userTest)

	// The module builds from the module cache alone, offline; none of
	// policytest's settings from this test's environment reach it.
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "POLICYTEST_") && !strings.HasPrefix(kv, "GOFLAGS=") && !strings.HasPrefix(kv, "USERPOLICY_") {
			env = append(env, kv)
		}
	}
	env = append(env, "GOFLAGS=-mod=mod "+os.Getenv("GOFLAGS"), "GOPROXY=off", "GOWORK=off")
	run := func(extra []string, name string, args ...string) (string, int) {
		t.Helper()
		c := exec.Command(name, args...)
		c.Dir = mod
		c.Env = append(env, extra...)
		out, err := c.CombinedOutput()
		var exit *exec.ExitError
		switch {
		case err == nil:
			return string(out), 0
		case errors.As(err, &exit):
			return string(out), exit.ExitCode()
		}
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		return "", 0
	}

	out, code := run(nil, goCmd, "test", "./pkg/userpolicy", "-rapid.seed=1", "-rapid.nofailfile")
	if code != 0 && (strings.Contains(out, "GOPROXY=off") || strings.Contains(out, "missing go.sum entry")) {
		t.Skipf("the module does not build offline from the module cache:\n%s", out)
	}
	if code != 1 || !strings.Contains(out, "--- FAIL: TestForgetsDead") {
		t.Fatalf("go test of the broken policy: exit %d, want 1 and the test failed:\n%s", code, out)
	}
	var cmd, violation string
	for sc := bufio.NewScanner(strings.NewReader(out)); sc.Scan(); {
		l := strings.TrimSpace(sc.Text())
		if c, ok := strings.CutPrefix(l, "replay it, from the module's root: "); ok {
			cmd = c
		}
		if i := strings.Index(l, "expectation recover_within not met"); i >= 0 {
			violation = l[i:]
		}
	}
	if want := "go test ./pkg/userpolicy -run '^TestForgetsDead$' -args -policytest.replay=testdata/policytest/TestForgetsDead.toml"; cmd != want {
		t.Fatalf("the replay command is %q, want %q:\n%s", cmd, want, out)
	}
	if want := "policytest wrote the smallest failing schedule (1 backend, 1 client, 1 fault) to " +
		filepath.Join("pkg", "userpolicy", "testdata", "policytest", "TestForgetsDead.toml"); !strings.Contains(out, want) {
		t.Errorf("the failure does not say %q:\n%s", want, out)
	}
	if _, err := os.Stat(filepath.Join(mod, "pkg", "userpolicy", "testdata", "policytest", "TestForgetsDead.toml")); err != nil {
		t.Fatalf("the schedule is not in the package's testdata: %v", err)
	}
	if violation == "" {
		t.Fatalf("no violation in the failure:\n%s", out)
	}

	out, code = run(nil, sh, "-c", cmd)
	if code != 1 || !strings.Contains(out, "policytest: replaying testdata/policytest/TestForgetsDead.toml") ||
		!strings.Contains(out, violation) {
		t.Fatalf("%s: exit %d, want 1 with the replay failing with %q:\n%s", cmd, code, violation, out)
	}
	out, code = run([]string{"USERPOLICY_FIXED=1"}, sh, "-c", cmd)
	if code != 0 || !strings.Contains(out, "ok  \texample.com/userpolicy/pkg/userpolicy") {
		t.Fatalf("%s with the policy fixed: exit %d, want 0:\n%s", cmd, code, out)
	}
}
