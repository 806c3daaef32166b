package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// os/signal's watcher starts with the first Notify and never ends.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("os/signal.signal_recv"), goleak.IgnoreTopFunction("os/signal.loop"))
}

// TestRun runs the program's workload briefly: one server is killed, no
// claim fails, and every server sees all its connections closed.
func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(&out, 600*time.Millisecond, 6, 6, 200*time.Millisecond); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{"--- killed the server on", "(killed)", "; 0 failed claims"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if n := strings.Count(out.String(), ", 0 open after Close"); n != 3 {
		t.Errorf("%d of 3 servers saw all their connections closed:\n%s", n, out.String())
	}
}
