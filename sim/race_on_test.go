//go:build race

package sim

// raceOn: the tests run under the race detector, which makes a big
// fleet's run about ten times slower.
const raceOn = true
