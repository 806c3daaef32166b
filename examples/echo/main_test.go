package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/qorbgo/qorb/statshttp"
)

func TestMain(m *testing.M) {
	// os/signal's watcher starts with the first Notify and never ends.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("os/signal.signal_recv"), goleak.IgnoreTopFunction("os/signal.loop"))
}

// TestRun runs the program's workload briefly: one server is killed, no
// claim fails, and every server sees all its connections closed.
func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(&out, config{duration: 600 * time.Millisecond, workers: 6, maxSlots: 6, interval: 200 * time.Millisecond}); err != nil {
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

// TestRunStats runs the program with its stats endpoint on a loopback
// port, follows the pool's stream while the workload runs, and sees the
// claims count, the killed server, and the stream end when the program
// stops serving.
func TestRunStats(t *testing.T) {
	var out bytes.Buffer
	var wg sync.WaitGroup
	var events []statshttp.Pool
	var streamErr error
	ready := func(url string) {
		wg.Go(func() { events, streamErr = follow(url + "/pools/echo?stream=1&interval=100ms") })
	}
	err := run(&out, config{duration: 900 * time.Millisecond, workers: 6, maxSlots: 6, interval: 300 * time.Millisecond,
		statsAddr: "127.0.0.1:0", statsReady: ready})
	wg.Wait()
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "stats on http://127.0.0.1:") {
		t.Errorf("output lacks the endpoint's URL:\n%s", out.String())
	}
	if streamErr != nil {
		t.Fatalf("stream: %v after %d events", streamErr, len(events))
	}
	if len(events) < 2 {
		t.Fatalf("%d events, want a few", len(events))
	}
	first, last := events[0], events[len(events)-1]
	if first.Name != "echo" || last.Claims == 0 || last.Claims < first.Claims || !last.At.After(first.At) {
		t.Errorf("first %+v\nlast %+v", first, last)
	}
	// The stream may outlast the workload and show the pool closing, its
	// backends gone: the three backends show in the last event taken
	// while it ran.
	running := -1
	for i, ev := range events {
		if ev.State == "running" {
			running = i
		}
	}
	if running < 0 || len(events[running].Backends) != 3 {
		t.Errorf("no event of the running pool with its three backends; the last one while running: %+v", events[max(running, 0)])
	}
	// Some event shows a backend with failures: the killed server.
	failed := false
	for _, ev := range events {
		for _, b := range ev.Backends {
			failed = failed || b.Failures > 0
		}
	}
	if !failed {
		t.Errorf("no event shows a backend's failures after the kill:\n%s", out.String())
	}
}

// follow reads a stream of pool snapshots until it ends, at most 10 s.
func follow(url string) ([]statshttp.Pool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var evs []statshttp.Pool
	r := bufio.NewReader(resp.Body)
	for range 10_000 {
		line, err := r.ReadString('\n')
		if errors.Is(err, io.EOF) {
			return evs, nil // the program stopped serving
		}
		if err != nil {
			return evs, err
		}
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			var p statshttp.Pool
			if err := json.Unmarshal([]byte(data), &p); err != nil {
				return evs, err
			}
			evs = append(evs, p)
		}
	}
	return evs, errors.New("too many lines")
}
