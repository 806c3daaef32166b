package dns

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Family chooses which address records the resolver asks for.
type Family int8

const (
	// BothFamilies asks for A and AAAA records: every IPv4 and IPv6
	// address of a target becomes a backend. The default.
	BothFamilies Family = iota
	// IPv4Only asks for A records only.
	IPv4Only
	// IPv6Only asks for AAAA records only.
	IPv6Only
)

// String returns "both", "ipv4" or "ipv6".
func (f Family) String() string {
	switch f {
	case BothFamilies:
		return "both"
	case IPv4Only:
		return "ipv4"
	case IPv6Only:
		return "ipv6"
	}
	return fmt.Sprintf("family(%d)", int8(f))
}

func (f Family) wantA() bool    { return f != IPv6Only }
func (f Family) wantAAAA() bool { return f != IPv4Only }

// Defaults of the zero fields of a [Config].
const (
	DefaultTimeout     = 2 * time.Second  // Config.Timeout
	DefaultParallel    = 2                // Config.Parallel
	DefaultMaxInflight = 16               // Config.MaxInflight
	DefaultMinInterval = 5 * time.Second  // Config.MinInterval
	DefaultMaxInterval = 60 * time.Second // Config.MaxInterval
	DefaultEmptyRetry  = 1 * time.Second  // Config.EmptyRetry
	DefaultBackoffMin  = 1 * time.Second  // Config.BackoffMin
	DefaultBackoffMax  = 30 * time.Second // Config.BackoffMax
	DefaultJitter      = 0.1              // Config.Jitter
	DefaultUDPSize     = 1232             // Config.UDPSize: DNS Flag Day 2020's buffer, no IP fragmentation
	DefaultMaxCNAME    = 8                // Config.MaxCNAME
	DefaultMaxTargets  = 256              // Config.MaxTargets
)

// Config tunes a [Resolver]. Zero fields take the defaults given in their
// documentation; a field out of range is an error from [New], never a
// silent fix.
type Config struct {
	// Port is the port of the backends when the service name has no SRV
	// records: the name's own A and AAAA records are then used with this
	// port (plain mode by fallback), asked of the DNS servers. 0, the
	// default, turns the fallback off. A service given as "host:port" is
	// always resolved in plain mode with that port, and Port is not used.
	Port uint16

	// LookupNetIP resolves the host of a "host:port" service when New is
	// given no DNS servers, with the signature of
	// [net.Resolver.LookupNetIP] (network "ip", or "ip4" or "ip6" as
	// Family says): a resolver of your own (&net.Resolver{PreferGo: true,
	// ...}), or a stand-in in tests. Default: net.DefaultResolver's, the
	// system resolver (/etc/hosts, then DNS). "No such host" is an error
	// that is a *net.DNSError with IsNotFound set; any other error is a
	// failed lookup, retried with backoff. It runs off the pool's core and
	// must return when its context ends (Stop). It is not used for an SRV
	// name or when servers are given.
	LookupNetIP func(ctx context.Context, network, host string) ([]netip.Addr, error)

	// Family chooses the address records asked for: A, AAAA or both.
	// Default BothFamilies.
	Family Family

	// Timeout bounds one exchange with one server, in time.Duration: a
	// UDP query and its answer, or the TCP retry of a truncated answer
	// (which gets a Timeout of its own). Default 2s. A lookup through the
	// system resolver (Config.LookupNetIP) is bounded by that resolver's
	// own timeouts instead, as for net.Dial: it may ask several servers in
	// turn (resolv.conf's timeout and attempts).
	Timeout time.Duration

	// Parallel is how many servers are asked the same question at once.
	// When one fails the next server in order is asked; the first good
	// answer wins and the others are cancelled. Servers that failed last
	// time come last in the order, so a server that keeps failing is
	// asked only when the others fail. Default 2.
	Parallel int

	// MaxInflight is the most DNS exchanges this resolver has in flight at
	// once, across the SRV query and the address queries of all targets.
	// Default 16.
	MaxInflight int

	// MinInterval is the floor of the re-query interval after a good
	// answer, in time.Duration, whatever the records' TTL: a TTL of 0
	// re-queries every MinInterval. Default 5s.
	MinInterval time.Duration

	// MaxInterval is the cap of the re-query interval after a good answer,
	// and of the empty-answer retry as it doubles, in time.Duration
	// (jitter comes on top). Default 60s.
	MaxInterval time.Duration

	// EmptyRetry is the first re-query interval after an answer with no
	// backends (NXDOMAIN, NODATA, or no target with an address), in
	// time.Duration. It doubles with each consecutive empty answer up to
	// MaxInterval, so records that appear just after an empty answer are
	// found soon. Default 1s.
	EmptyRetry time.Duration

	// BackoffMin and BackoffMax bound the retry after a failed round
	// (every server timed out, refused, or sent a bad answer), in
	// time.Duration: the first retry waits BackoffMin, each further
	// failure doubles it up to BackoffMax. A good answer resets it.
	// Defaults 1s and 30s.
	BackoffMin, BackoffMax time.Duration

	// Jitter is the fraction added at random to every interval, drawn from
	// the loop's seeded source: an interval d becomes d × (1 + Jitter × u)
	// with u uniform in [0, 1). Range (0, 1]; default 0.1. It cannot be
	// turned off: the clients of one service must not query in lockstep.
	Jitter float64

	// UDPSize is the EDNS0 buffer size advertised in every query, in
	// bytes. A UDP answer longer than this is rejected as oversized; a
	// truncated answer is retried over TCP. Range 512..65535; default
	// 1232.
	UDPSize uint16

	// MaxCNAME is the most CNAME records followed from a name to its
	// records, within answers and across the queries that chase them.
	// Default 8.
	MaxCNAME int

	// MaxTargets is the most SRV records accepted in one answer; an answer
	// with more is rejected as oversized. Default 256.
	MaxTargets int

	// TrustNegative lets an answer with no backends (NXDOMAIN, NODATA, or
	// targets without addresses) empty the backend set, and a negative
	// answer to one target's address lookup drop that target. By default
	// such an answer is treated as a failure that keeps the last good set
	// (a zone being reloaded or a registry restarting often answers empty
	// for a moment): the other servers are asked, a target keeps its
	// addresses, and an empty answer is retried after EmptyRetry.
	TrustNegative bool
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	setDur := func(d *time.Duration, def time.Duration) {
		if *d == 0 {
			*d = def
		}
	}
	setDur(&c.Timeout, DefaultTimeout)
	setDur(&c.MinInterval, DefaultMinInterval)
	setDur(&c.MaxInterval, DefaultMaxInterval)
	setDur(&c.EmptyRetry, DefaultEmptyRetry)
	setDur(&c.BackoffMin, DefaultBackoffMin)
	setDur(&c.BackoffMax, DefaultBackoffMax)
	if c.Parallel == 0 {
		c.Parallel = DefaultParallel
	}
	if c.MaxInflight == 0 {
		c.MaxInflight = DefaultMaxInflight
	}
	if c.Jitter == 0 {
		c.Jitter = DefaultJitter
	}
	if c.UDPSize == 0 {
		c.UDPSize = DefaultUDPSize
	}
	if c.MaxCNAME == 0 {
		c.MaxCNAME = DefaultMaxCNAME
	}
	if c.MaxTargets == 0 {
		c.MaxTargets = DefaultMaxTargets
	}
	return c
}

// validate checks a Config after defaults were applied.
func (c Config) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("dns: config: "+format, args...)) }
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"Timeout", c.Timeout}, {"MinInterval", c.MinInterval}, {"MaxInterval", c.MaxInterval},
		{"EmptyRetry", c.EmptyRetry}, {"BackoffMin", c.BackoffMin}, {"BackoffMax", c.BackoffMax},
	} {
		if d.v < 0 {
			bad("%s is negative (%v)", d.name, d.v)
		}
	}
	if c.MinInterval > c.MaxInterval {
		bad("MinInterval %v is above MaxInterval %v", c.MinInterval, c.MaxInterval)
	}
	if c.BackoffMin > c.BackoffMax {
		bad("BackoffMin %v is above BackoffMax %v", c.BackoffMin, c.BackoffMax)
	}
	if c.Parallel < 1 {
		bad("Parallel is %d, want at least 1", c.Parallel)
	}
	if c.MaxInflight < 1 {
		bad("MaxInflight is %d, want at least 1", c.MaxInflight)
	}
	if !(c.Jitter > 0 && c.Jitter <= 1) { // also refuses NaN
		bad("Jitter is %v, want a fraction in (0, 1]", c.Jitter)
	}
	if c.UDPSize < 512 {
		bad("UDPSize is %d bytes, want 512..65535", c.UDPSize)
	}
	if c.MaxCNAME < 1 {
		bad("MaxCNAME is %d, want at least 1", c.MaxCNAME)
	}
	if c.MaxTargets < 1 {
		bad("MaxTargets is %d, want at least 1", c.MaxTargets)
	}
	if c.Family < BothFamilies || c.Family > IPv6Only {
		bad("unknown Family %v", c.Family)
	}
	return errors.Join(errs...)
}
