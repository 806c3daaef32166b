// Package dnshook is what the simulator (package sim) needs of
// resolver/dns and a resolver's users must not depend on: a resolver whose
// DNS exchanges go to simulated servers instead of the network. Package
// resolver/dns fills the hook in at init; the value it takes as any is a
// *dns.Resolver.
package dnshook

import (
	"context"
	"net/netip"
	"time"

	mdns "github.com/miekg/dns"
)

// Exchanger carries out one DNS exchange for a resolver: q sent to server
// over network ("udp" or "tcp"), the answer's bytes read back, unchecked
// (the resolver checks and parses them). It runs inside the query function
// the resolver hands to its host's Go, off the pool's core, and must not
// take longer than timeout: when no answer comes within it, it returns an
// error wrapping context.DeadlineExceeded. It honours ctx's cancellation.
//
// In a simulation the exchange returns at once and records the virtual
// time it takes; ctx then has no deadline, only cancellation (Stop, or
// another server answered first).
type Exchanger interface {
	Exchange(ctx context.Context, network string, server netip.AddrPort, q *mdns.Msg, timeout time.Duration) ([]byte, error)
}

// SetExchanger makes r, a *dns.Resolver that has not started, send its
// exchanges to x instead of the network.
var SetExchanger func(r any, x Exchanger)
