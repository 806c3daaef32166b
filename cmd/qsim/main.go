// Command qsim runs failure simulations of qorb pools in virtual time:
// the real pool code against simulated backends, DNS and faults, giving
// the same result, byte for byte, from the same seed.
//
// With no flags it runs a built-in scenario (a backend dies under load):
// it tells the scenario's story (what happens when, and what to look at),
// then prints the summary, ending with the trace's hash:
//
//	go run ./cmd/qsim
//	go run ./cmd/qsim -scenario testdata/scenarios/dns-outage.toml -seed 7
//	go run ./cmd/qsim -scenario rolling-deploy -seeds 1-20
//	go run ./cmd/qsim -scenario thundering-herd -out /tmp/herd
//	go run ./cmd/qsim -swarm 1000
//
// -h prints every flag and the exit statuses; docs/sim.md has the
// scenario format, the invariants and swarm mode. The command is a thin
// main over package sim/qsim: a qsim of one's own, with one's own
// policies registered for -policy, is a main like this one (see that
// package).
package main

import (
	"os"

	"github.com/qorbgo/qorb/sim/qsim"
)

func main() {
	os.Exit(qsim.Main(os.Args[1:], os.Stdout, os.Stderr))
}
