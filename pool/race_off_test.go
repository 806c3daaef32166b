//go:build !race

package pool

// raceOn reports a build with the race detector, which changes what the
// heap holds.
const raceOn = false
