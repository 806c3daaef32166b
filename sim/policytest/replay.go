package policytest

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/qorbgo/qorb/sim"
)

// The environment variables Check reads, each the default of the flag of
// the same role (a flag given on the command line wins).
const (
	// ReplayEnv names a scenario file Check replays instead of drawing
	// schedules, as -policytest.replay does.
	ReplayEnv = "POLICYTEST_REPLAY"
	// DirEnv names the folder Check writes a failing schedule to, as
	// -policytest.dir does.
	DirEnv = "POLICYTEST_DIR"
)

// DefaultDir is the folder, relative to the test's package directory
// (where go test runs a test), that Check writes a failing schedule to
// when neither Config.Out, -policytest.dir nor $POLICYTEST_DIR says
// otherwise.
const DefaultDir = "testdata/policytest"

var (
	replayFlag = flag.String("policytest.replay", "",
		"policytest: run this scenario file (a failing schedule Check wrote) in every Check, in place of drawn schedules (default $"+ReplayEnv+")")
	dirFlag = flag.String("policytest.dir", "",
		"policytest: the folder Check writes a failing schedule to, as <test name>.toml (default $"+DirEnv+", else "+DefaultDir+")")
)

// setting returns the flag's value when set, else the environment
// variable's.
func setting(f *string, env string) string {
	if f != nil && *f != "" {
		return *f
	}
	return os.Getenv(env)
}

// replayFile is the file Check replays, "" for none.
func replayFile() string { return setting(replayFlag, ReplayEnv) }

// outDir is the folder Check writes failing schedules to by default.
func outDir() string {
	if d := setting(dirFlag, DirEnv); d != "" {
		return d
	}
	return filepath.FromSlash(DefaultDir)
}

// replay is Check in replay mode: it runs the scenario in file once with
// cfg's policy and fails t as Check does when the run fails.
func (c Config) replay(t TB, file string) {
	t.Helper()
	t.Logf("policytest: replaying %s (from -policytest.replay or $%s) in place of drawn schedules", file, ReplayEnv)
	sc, err := sim.Load(file)
	if err != nil {
		t.Fatalf("policytest: replay: %v", err)
		return
	}
	if _, err := c.run(sc); err != nil {
		t.Fatalf("%v\npolicy under test: %s\nreplayed from %s", err, formatPolicy(c.Policy()), file)
		return
	}
	t.Logf("policytest: %s passes with the policy", file)
}

// GoTestCommand returns the go test command line, run from the root of the
// module the working directory is in, that replays file in the test
// named test (a *testing.T's Name): it runs only that test, which calls
// Check, with -policytest.replay set to file. A relative file is from
// the test's package directory, which is the working directory of a test
// run with go test. Outside a module the command runs in the package's
// directory (its package is ".").
func GoTestCommand(test, file string) string {
	pkg := "."
	if root, ok := moduleRoot(); ok {
		if wd, err := os.Getwd(); err == nil {
			if rel, err := filepath.Rel(root, wd); err == nil && rel != "." && !outside(rel) {
				pkg = "./" + filepath.ToSlash(rel)
			}
		}
	}
	return fmt.Sprintf("go test %s -run %s -args -policytest.replay=%s", shellQuote(pkg), shellQuote(runPattern(test)), shellQuote(file))
}

// runPattern is the -run pattern that selects exactly the test named
// name, subtests included ("TestA/b" is "^TestA$/^b$").
func runPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

// shellQuote quotes s for a POSIX shell when it holds anything but
// letters, digits and the punctuation of paths and flags.
func shellQuote(s string) string {
	safe := s != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_-./:=@%+,", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// moduleRoot returns the root of the module the working directory is in
// (the nearest directory up with a go.mod).
func moduleRoot() (string, bool) {
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, true
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", false
		}
		dir = up
	}
}

// fromModuleRoot returns file's path relative to the root of the module
// the working directory is in, or file's absolute path when it is
// outside it or there is no module.
func fromModuleRoot(file string) string {
	abs, err := filepath.Abs(file)
	if err != nil {
		return file
	}
	root, ok := moduleRoot()
	if !ok {
		return abs
	}
	rel, err := filepath.Rel(root, abs)
	if err != nil || outside(rel) {
		return abs
	}
	return rel
}

// outside says whether the relative path rel leaves its base directory.
func outside(rel string) bool {
	return rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator))
}
