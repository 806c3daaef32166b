package core

import (
	"math"
	"time"
)

// ConnectGate is one backend's limit on connects: at most MaxConnecting in
// flight at once, and at most Rate new ones per second, in a token bucket
// whose burst is max(1, Rate). A zero limit is off. The caller keeps the
// queue of connects that wait for the gate; times are stamps in
// nanoseconds on the caller's clock.
type ConnectGate struct {
	dialing   int     // connects (and first checks) in flight
	tokens    float64 // connects the rate allows now
	filled    int64   // when tokens was last refilled (stamp)
	holdUntil int64   // no connect starts before this stamp (Hold); 0: none
}

// NewConnectGate returns a gate whose bucket is full at now.
func NewConnectGate(now int64, rate float64) ConnectGate {
	return ConnectGate{tokens: max(1, rate), filled: now}
}

// Hold keeps every connect from starting before until (a stamp): the
// backend asked to be left alone that long. A shorter hold than the one in
// force changes nothing.
func (g *ConnectGate) Hold(until int64) { g.holdUntil = max(g.holdUntil, until) }

// Held reports whether a hold keeps connects from starting at now.
func (g *ConnectGate) Held(now int64) bool { return now < g.holdUntil }

// HeldUntil returns the end of the hold in force or last in force (a
// stamp), or 0 when there was none.
func (g *ConnectGate) HeldUntil() int64 { return g.holdUntil }

// Allow reports whether one more connect may start at now under the hold
// and the limits, and if so takes its token; the caller then calls
// Started.
func (g *ConnectGate) Allow(now int64, maxConnecting int, rate float64) bool {
	if now < g.holdUntil {
		return false
	}
	if maxConnecting > 0 && g.dialing >= maxConnecting {
		return false
	}
	if rate > 0 {
		burst := math.Max(1, rate)
		g.tokens = math.Min(burst, g.tokens+rate*float64(now-g.filled)/1e9)
		g.filled = now
		if g.tokens < 1 {
			return false
		}
		g.tokens--
	}
	return true
}

// Started counts a connect in flight.
func (g *ConnectGate) Started() { g.dialing++ }

// Done counts the end of a connect in flight.
func (g *ConnectGate) Done() { g.dialing-- }

// Connecting returns the connects in flight.
func (g *ConnectGate) Connecting() int { return g.dialing }

// Next returns when a connect that waits for the gate at now may try
// again: the end of a hold in force, else the moment the bucket holds a
// whole token; and false when only the end of a connect in flight can let
// it (or no rate applies).
func (g *ConnectGate) Next(now int64, maxConnecting int, rate float64) (int64, bool) {
	if now < g.holdUntil {
		return g.holdUntil, true
	}
	if rate <= 0 || (maxConnecting > 0 && g.dialing >= maxConnecting) {
		return 0, false
	}
	need := (1 - g.tokens) / rate // seconds until one token
	return g.filled + int64(math.Ceil(need*float64(time.Second))), true
}
