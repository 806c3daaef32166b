package qsim_test

import (
	"os"

	"github.com/qorbgo/qorb/pool"
	"github.com/qorbgo/qorb/sim/qsim"
)

// myRebalancer stands for a Rebalancer of one's own.
type myRebalancer struct{ pool.DefaultRebalancer }

// A qsim of one's own, cmd/myqsim/main.go: it registers the policy that
// policytest tests under the name given in policytest.Config.Name (with
// policytest.Config.QSim "go run ./cmd/myqsim", policytest prints the
// command), so that
//
//	go run ./cmd/myqsim -policy my-rebalancer -scenario testdata/policytest/TestMyRebalancer.toml
//
// replays a failing schedule with it. Every other flag is qsim's.
func ExampleRegisterPolicy() {
	qsim.RegisterPolicy("my-rebalancer", func() pool.Policy {
		return pool.Policy{Rebalancer: myRebalancer{}}
	})
	os.Exit(qsim.Main(os.Args[1:], os.Stdout, os.Stderr))
}
