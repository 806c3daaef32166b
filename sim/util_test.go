package sim

import (
	"slices"
	"strconv"
	"strings"
	"testing"
)

func sortedKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func mustFloat(t interface{ Fatalf(string, ...any) }, s string) float64 {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return f
}

// runText parses a scenario from its text, runs it with its own seed, and
// returns the result and the trace; the test fails on a parse error or a
// broken invariant.
func runText(t *testing.T, file, text string) (*Result, string) {
	t.Helper()
	sc, err := Parse(file, []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	var trace strings.Builder
	r, err := Run(sc, Options{Trace: &trace})
	if err != nil {
		t.Fatal(err)
	}
	if r.Violation != nil {
		t.Fatal(r.Violation)
	}
	return r, trace.String()
}
