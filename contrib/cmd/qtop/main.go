// Command qtop is a live terminal view of qorb pools, read from a stats
// endpoint (package statshttp):
//
//	qtop [-interval 1s] [-timeout 2s] [-pool NAME] http://127.0.0.1:7070
//
// The URL is the endpoint's root, where the statshttp handler is mounted
// (a bare host:port means http://host:port). qtop reads GET /pools every
// interval and shows one pool at a time: its state, claims per second,
// waiters, wait percentiles and claim errors by kind, then a row per
// backend with its state, claims per second and slots by state (connecting,
// idle, checking, claimed, failed, total) and its last error.
//
// Claims per second are the difference of the pool's own counters between
// the last two snapshots divided by the time between their stamps; wait
// percentiles are the bounds of the histogram buckets that hold them
// ("≤10ms"), over the claims served between the last two snapshots.
//
// Keys: tab, → or l for the next pool, shift+tab, ← or h for the previous
// one, 1-9 to choose one; n, c, f and s sort the backends by name,
// claims/s, failures or state, r reverses the order; q quits.
//
// qtop exits 1 with a message when the endpoint cannot be read at start
// or is not a qorb stats endpoint, or when -pool names no served pool.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
)

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }

// run runs qtop with args and returns the exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("qtop", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: qtop [flags] URL\n\nURL is the root of a qorb stats endpoint (package statshttp), e.g. http://127.0.0.1:7070.\n\nflags:")
		fs.PrintDefaults()
	}
	interval := fs.Duration("interval", time.Second, "time between two reads of the endpoint")
	timeout := fs.Duration("timeout", 2*time.Second, "bound on one read of the endpoint")
	first := fs.String("pool", "", "the pool to show first (default: the first by name)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 || *interval <= 0 || *timeout <= 0 {
		fs.Usage()
		return 2
	}
	m, err := start(fs.Arg(0), *interval, *timeout, *first)
	if err != nil {
		fmt.Fprintln(stderr, "qtop:", err)
		return 1
	}
	p := tea.NewProgram(m, tea.WithAltScreen(), tea.WithInput(stdin), tea.WithOutput(stdout))
	if _, err := p.Run(); err != nil && !errors.Is(err, tea.ErrProgramKilled) {
		fmt.Fprintln(stderr, "qtop:", err)
		return 1
	}
	return 0
}

// start checks the endpoint with a first read and returns the model that
// begins with it.
func start(url string, interval, timeout time.Duration, first string) (model, error) {
	e, err := newEndpoint(url, timeout)
	if err != nil {
		return model{}, err
	}
	ps, err := e.fetch(context.Background())
	if err != nil {
		return model{}, err
	}
	names := make([]string, 0, len(ps.Pools))
	for _, p := range ps.Pools {
		names = append(names, p.Name)
	}
	if first != "" && !slices.Contains(names, first) {
		return model{}, fmt.Errorf("%s serves no pool named %q; pools: %s", e.root, first, strings.Join(names, ", "))
	}
	m := newModel(e, interval, first)
	return m.withSnapshot(ps), nil
}
