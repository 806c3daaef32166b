package qsim

import (
	"fmt"
	"io"
	"path/filepath"
	"runtime/debug"
	"sync"

	"github.com/qorbgo/qorb/sim"
)

// parallel runs job(i) for i = 0 … n-1 on workers goroutines and calls
// emit with each result in the order of i, on the caller's goroutine, as
// soon as the results before it are in. At most 2×workers jobs are
// running or waiting to be emitted at once, whatever n: memory stays
// bounded, and a slow job holds the others back by at most that much.
func parallel[T any](n uint64, workers int, job func(i uint64) T, emit func(i uint64, v T)) {
	type item struct {
		i uint64
		v T
	}
	window := 2 * workers
	tokens := make(chan struct{}, window)
	jobs := make(chan uint64)
	results := make(chan item, window)
	go func() {
		defer close(jobs)
		for i := range n {
			tokens <- struct{}{}
			jobs <- i
		}
	}()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range jobs {
				results <- item{i, job(i)}
			}
		})
	}
	go func() {
		wg.Wait()
		close(results)
	}()
	pending := map[uint64]T{}
	var next uint64
	for it := range results {
		pending[it.i] = it.v
		for {
			v, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			emit(next, v)
			next++
			<-tokens
		}
	}
}

// seedRun is what one seed of -seeds gives.
type seedRun struct {
	r     *sim.Result
	err   error  // the scenario cannot run, or a file of -out cannot be written
	panic string // the run panicked: the value and the stack
}

// runSafe runs sc with opt, writing the files of dir, and turns a panic
// into a failed run.
func runSafe(sc *sim.Scenario, opt sim.Options, dir string) (out seedRun) {
	defer func() {
		if v := recover(); v != nil {
			out = seedRun{panic: fmt.Sprintf("%v\n%s", v, debug.Stack())}
		}
	}()
	r, err := runWithFiles(sc, opt, dir)
	return seedRun{r: r, err: err}
}

// runSeeds runs every seed of the range on workers goroutines and prints
// one line each, in seed order. With out, each seed's files go into
// out/seed-N.
func runSeeds(sc *sim.Scenario, lo, hi uint64, workers int, out string, pol *policy, b budget, stdout, stderr io.Writer) int {
	status, failed, stopped := 0, 0, 0
	parallel(hi-lo+1, workers, func(i uint64) seedRun {
		dir := ""
		if out != "" {
			dir = filepath.Join(out, fmt.Sprintf("seed-%d", lo+i))
		}
		return runSafe(sc, pol.options(lo+i, b), dir)
	}, func(i uint64, sr seedRun) {
		seed := lo + i
		switch {
		case sr.err != nil:
			if _, over := sr.err.(*sim.BudgetError); over {
				stopped++
				fmt.Fprintf(stderr, "qsim: %s\n", explain(sr.err))
			} else {
				fmt.Fprintf(stderr, "qsim: seed %d: %s\n", seed, explain(sr.err))
			}
			status = 2
			return
		case sr.panic != "":
			fmt.Fprintf(stdout, "seed %-6d PANIC %s\n", seed, sr.panic)
			failed++
			status = max(status, 1)
			return
		}
		r := sr.r
		verdict := "ok"
		err := r.Err()
		if err == nil {
			err = pol.verify(sc, r)
		}
		if err != nil {
			verdict = "FAIL " + err.Error()
			status = max(status, 1)
			failed++
		}
		fmt.Fprintf(stdout, "seed %-6d claims %-8d failed %-6d p99 %-10v connects %-6d %s  trace hash: %s\n",
			seed, r.Fleet.Claims, r.Fleet.Errors.Failed(), r.Fleet.Waits.P99, r.Fleet.Connects, verdict, r.TraceHash)
	})
	fmt.Fprintf(stdout, "%d of %d seeds failed", failed, hi-lo+1)
	if stopped > 0 {
		fmt.Fprintf(stdout, ", %d stopped over their budget", stopped)
	}
	fmt.Fprintln(stdout)
	if out != "" && status != 2 {
		fmt.Fprintf(stdout, "wrote %s/seed-%d … seed-%d\n", out, lo, hi)
	}
	return status
}
