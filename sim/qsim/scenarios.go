package qsim

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/qorbgo/qorb/sim"
)

// loadScenario reads a scenario file, or a built-in scenario by name.
func loadScenario(name string) (*sim.Scenario, error) {
	if _, err := os.Stat(name); err == nil {
		return sim.Load(name)
	}
	base, data, err := builtinFile(name)
	if err != nil {
		return nil, err
	}
	return sim.Parse("builtin:"+base+".toml", data)
}

// builtinFile returns the file of a built-in scenario.
func builtinFile(name string) (base string, data []byte, err error) {
	base = strings.TrimSuffix(filepath.Base(name), ".toml")
	data, err = builtin.ReadFile("scenarios/" + base + ".toml")
	if err != nil {
		if strings.ContainsAny(name, "/.") {
			return "", nil, fmt.Errorf("%s: no such file, and no built-in scenario %s (-list lists them)", name, base)
		}
		return "", nil, fmt.Errorf("no built-in scenario %s and no such file (-list lists them)", name)
	}
	return base, data, nil
}

// listBuiltin prints each built-in scenario's name and its whole story.
func listBuiltin(stdout, stderr io.Writer) int {
	entries, err := fs.ReadDir(builtin, "scenarios")
	if err != nil {
		fmt.Fprintf(stderr, "qsim: %v\n", err)
		return 2
	}
	for i, e := range entries {
		name := strings.TrimSuffix(e.Name(), ".toml")
		sc, err := loadScenario(name)
		if err != nil {
			fmt.Fprintf(stderr, "qsim: %v\n", err)
			return 2
		}
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		fmt.Fprintf(stdout, "%s (%v, %d backends, %d clients, %d faults)\n", name, sc.Duration, len(sc.BackendNames()), len(sc.ClientNames()), len(sc.Faults))
		for _, l := range strings.Split(strings.TrimSpace(sc.Description), "\n") {
			fmt.Fprintf(stdout, "    %s\n", l)
		}
	}
	fmt.Fprintln(stdout, "\nqsim -describe NAME prints a scenario's file; qsim -scenario NAME runs it.")
	return 0
}

// describeScenario prints a scenario's file: a built-in one by name, or
// a file.
func describeScenario(name string, stdout, stderr io.Writer) int {
	var data []byte
	if _, err := os.Stat(name); err == nil {
		if _, err := sim.Load(name); err != nil {
			fmt.Fprintf(stderr, "qsim: %v\n", err)
			return 2
		}
		data, _ = os.ReadFile(name)
	} else {
		_, d, err := builtinFile(name)
		if err != nil {
			fmt.Fprintf(stderr, "qsim: %v\n", err)
			return 2
		}
		data = d
	}
	stdout.Write(data)
	return 0
}

// parseRange reads "A-B" (or a single seed).
func parseRange(s string) (lo, hi uint64, err error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		b = a
	}
	lo, err1 := strconv.ParseUint(strings.TrimSpace(a), 10, 64)
	hi, err2 := strconv.ParseUint(strings.TrimSpace(b), 10, 64)
	if err1 != nil || err2 != nil || lo == 0 || hi < lo || hi == ^uint64(0) {
		return 0, 0, fmt.Errorf("%q: want A-B with 1 ≤ A ≤ B, such as 1-20", s)
	}
	return lo, hi, nil
}
