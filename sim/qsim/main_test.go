package qsim

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestBuiltinMatchesTestdata keeps the embedded copies of the scenarios
// equal to testdata/scenarios. Run with -update to copy them again.
func TestBuiltinMatchesTestdata(t *testing.T) {
	files, err := filepath.Glob("../../testdata/scenarios/*.toml")
	if err != nil || len(files) == 0 {
		t.Fatal("no scenarios in testdata")
	}
	want := map[string]bool{}
	for _, f := range files {
		want[filepath.Base(f)] = true
		src, _ := os.ReadFile(f)
		if *update {
			if err := os.WriteFile(filepath.Join("scenarios", filepath.Base(f)), src, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := builtin.ReadFile("scenarios/" + filepath.Base(f))
		if err != nil || !bytes.Equal(got, src) {
			t.Errorf("sim/qsim/scenarios/%s differs from testdata/scenarios (go test ./sim/qsim -update)", filepath.Base(f))
		}
	}
	entries, _ := fs.ReadDir(builtin, "scenarios")
	for _, e := range entries {
		if !want[e.Name()] {
			t.Errorf("sim/qsim/scenarios/%s has no testdata/scenarios counterpart", e.Name())
		}
	}
}

var hashLine = regexp.MustCompile(`(?m)^trace hash: [0-9a-f]{64}$`)

func TestDefaultRunPrintsTraceHash(t *testing.T) {
	var out1, out2, errs bytes.Buffer
	if code := Main([]string{"-progress=false"}, &out1, &errs); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out1.String(), errs.String())
	}
	Main([]string{"-progress=false"}, &out2, &errs)
	h1, h2 := hashLine.FindString(out1.String()), hashLine.FindString(out2.String())
	if h1 == "" || h1 != h2 {
		t.Fatalf("hash lines %q and %q\n%s", h1, h2, out1.String())
	}
	if !strings.Contains(out1.String(), "scenario: "+defaultScenario) {
		t.Errorf("not the default scenario:\n%s", out1.String())
	}
}

func TestSeedsRange(t *testing.T) {
	var out, errs bytes.Buffer
	if code := Main([]string{"-scenario", "all-down-then-back", "-seeds", "1-3"}, &out, &errs); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errs.String())
	}
	lines := regexp.MustCompile(`(?m)^seed \d+ .* ok  trace hash: [0-9a-f]{64}$`).FindAllString(out.String(), -1)
	if len(lines) != 3 {
		t.Fatalf("want 3 seed lines:\n%s", out.String())
	}
}

func TestExitStatus(t *testing.T) {
	dir := t.TempDir()
	failing := filepath.Join(dir, "failing.toml")
	os.WriteFile(failing, []byte(`name = "impossible"
duration = "10s"
[[backends]]
name = "db"
[[clients]]
name = "c"
[clients.workload]
rate = 10
[expect]
min_claims = 1000000
`), 0o644)
	broken := filepath.Join(dir, "broken.toml")
	os.WriteFile(broken, []byte("name = \"x\"\nduration = 10s\n"), 0o644)
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"-scenario", failing, "-progress=false"}, 1, "FAIL min_claims"},
		{[]string{"-scenario", broken}, 2, "broken.toml:2: duration: value 10s: not a number"},
		{[]string{"-scenario", "no-such-thing"}, 2, "no built-in scenario no-such-thing"},
		{[]string{"-seeds", "5-1"}, 2, "want A-B"},
	} {
		var out, errs bytes.Buffer
		code := Main(tc.args, &out, &errs)
		if code != tc.code || !strings.Contains(out.String()+errs.String(), tc.msg) {
			t.Errorf("%v: exit %d, want %d with %q\n%s%s", tc.args, code, tc.code, tc.msg, out.String(), errs.String())
		}
	}
}

func TestOutDir(t *testing.T) {
	dir := t.TempDir()
	var out, errs bytes.Buffer
	if code := Main([]string{"-scenario", "all-down-then-back", "-out", dir, "-progress=false"}, &out, &errs); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errs.String())
	}
	for _, f := range []string{"trace.jsonl", "summary.txt", "result.json", "picture.svg"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
}
