package dns

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/resolver"
)

// resolvConf is where the system's DNS servers are read from when New is
// given none.
var resolvConf = "/etc/resolv.conf"

// Resolver finds the backends of a service through DNS. It implements
// [resolver.Resolver]: each round of queries ends in an answer (the full
// set) or an error reported to the pool's [resolver.Host], and a re-query
// timer starts the next round, until stopped.
//
// Concurrency contract: as for every [resolver.Resolver], Start, Stop and
// Stats are called on the pool's core. DNS exchanges run off the core
// through Host.Go, each bounded by Config.Timeout; their answers come back
// as completions on the core. After Stop every exchange in flight is
// cancelled, its late answer is dropped, and the host hears nothing more.
type Resolver struct {
	// Fixed by New.
	service  string // as given
	name     string // the name asked: the SRV name, or the host in plain mode
	plain    bool
	port     uint16 // plain mode: the backends' port
	cfg      Config
	lim      limits
	servers  []*server
	tr       exchanger
	lookup   lookupFunc // plain mode without servers: the system resolver
	hostname string     // what lookup is asked: the host as given, lowercased

	// On the pool's core, once started.
	host    resolver.Host
	timer   resolver.Timer
	started bool
	stopped bool
	ctx     context.Context // cancelled by Stop: ends every exchange
	cancel  context.CancelFunc

	rd       *round      // the round in progress, or nil
	inflight int         // exchanges spawned and not completed
	queue    []*exchange // exchanges waiting for a place under MaxInflight

	set        []backend.Backend // the last set delivered
	delivered  bool
	known      map[string]known // each target's addresses in the last set delivered
	lastErr    error
	lastAnswer time.Time
	queries    uint64
	errs       uint64
	failures   int  // consecutive failed rounds: the error backoff's exponent
	empties    int  // consecutive empty answers: the empty retry's exponent
	fromSRV    bool // the last SRV answer had records (not plain mode)
}

var _ resolver.Resolver = (*Resolver)(nil)

// server is one DNS server and its record.
type server struct {
	addr  netip.AddrPort
	fails int // consecutive failed exchanges; the order of asking sorts on it
}

// known is what a target resolved to in the last set, kept for when its
// next lookup fails.
type known struct{ v4, v6 []netip.Addr }

// lookupFunc resolves a host name to addresses, as
// [net.Resolver.LookupNetIP] does: network is "ip", "ip4" or "ip6".
type lookupFunc = func(ctx context.Context, network, host string) ([]netip.Addr, error)

// New returns a resolver for service, asking servers (port 0 means 53), or
// when servers is empty, the name servers of /etc/resolv.conf.
//
// service is either a name whose SRV records list the backends, such as
// "_db._tcp.example.com", or "host:port" for plain mode: the host's
// addresses with that port. Names asked of DNS servers are taken as fully
// qualified; search domains are not applied.
//
// A "host:port" service with no servers given, such as "localhost:5432" or
// "db.internal:5432", is resolved as net.Dial resolves it: through the
// system resolver (net.DefaultResolver.LookupNetIP: /etc/hosts, then DNS as
// the system is configured, search domains included), or through
// Config.LookupNetIP when it is set; /etc/resolv.conf is not read by New
// then. That resolver gives no TTL, so the host is resolved again every
// Config.MinInterval; a failed lookup is retried with backoff, and "no such
// host" is an empty answer, retried after Config.EmptyRetry, whose error
// wraps [ErrNoBackends] and the *net.DNSError. With servers given, plain
// mode asks them for the host's A and AAAA records, as for SRV targets, and
// /etc/hosts is not read.
//
// Each address of each target is one backend, named "target@addr:port",
// for example "db-1.example.com.@10.0.0.7:5432" or
// "db-1.example.com.@[2001:db8::7]:5432"; through the system resolver the
// target is the host as given, lowercased: "localhost@127.0.0.1:5432". The
// name stays the same across queries as long as the record does, so the
// pool keeps that backend's connections; an address that moves is a new
// backend. When two targets share an address and port, the backend is
// named after the target that sorts first. SRV priority and weight are not
// used: every target is a backend, and the pool spreads the load.
func New(service string, servers []netip.AddrPort, cfg Config) (*Resolver, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	r := &Resolver{
		service: service,
		cfg:     cfg,
		tr:      netExchanger{},
		lim: limits{
			udpSize:    int(cfg.UDPSize),
			maxCNAME:   cfg.MaxCNAME,
			maxTargets: cfg.MaxTargets,
			family:     cfg.Family,
		},
	}
	var err error
	if r.name, r.port, r.plain, err = parseService(service); err != nil {
		return nil, err
	}
	if r.plain && len(servers) == 0 {
		// A host name, resolved as net.Dial resolves it.
		r.lookup = cfg.LookupNetIP
		if r.lookup == nil {
			r.lookup = net.DefaultResolver.LookupNetIP
		}
		host, _, _ := net.SplitHostPort(service)
		r.hostname = strings.ToLower(host)
		return r, nil
	}
	if len(servers) == 0 {
		if servers, err = systemServers(resolvConf); err != nil {
			return nil, err
		}
	}
	for _, s := range servers {
		if !s.Addr().IsValid() {
			return nil, fmt.Errorf("dns: invalid server address %v", s)
		}
		if s.Port() == 0 {
			s = netip.AddrPortFrom(s.Addr(), 53)
		}
		r.servers = append(r.servers, &server{addr: s})
	}
	return r, nil
}

// parseService splits "host:port" (plain mode) from an SRV name.
func parseService(service string) (name string, port uint16, plain bool, err error) {
	name = service
	if host, p, e := net.SplitHostPort(service); e == nil {
		n, e := strconv.ParseUint(p, 10, 16)
		if e != nil || n == 0 {
			return "", 0, false, fmt.Errorf("dns: service %q: bad port %q", service, p)
		}
		name, port, plain = host, uint16(n), true
	}
	if _, ok := mdns.IsDomainName(name); !ok || name == "" || name == "." || strings.ContainsFunc(name, badNameRune) {
		return "", 0, false, fmt.Errorf("dns: service %q: not a domain name (want an SRV name or host:port)", service)
	}
	if _, e := netip.ParseAddr(name); e == nil {
		return "", 0, false, fmt.Errorf("dns: service %q: an address, not a name (use resolver.NewFixed)", service)
	}
	return strings.ToLower(mdns.Fqdn(name)), port, plain, nil
}

// badNameRune reports a character that has no place in a service or host
// name (miekg/dns accepts any bytes in a label).
func badNameRune(c rune) bool {
	return c <= ' ' || c >= 0x7f || strings.ContainsRune(`:;()"\\@$`, c)
}

// systemServers reads the name servers of a resolv.conf file.
func systemServers(path string) ([]netip.AddrPort, error) {
	cc, err := mdns.ClientConfigFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoServers, err)
	}
	port, err := strconv.ParseUint(cc.Port, 10, 16)
	if err != nil {
		port = 53
	}
	var out []netip.AddrPort
	for _, s := range cc.Servers {
		a, err := netip.ParseAddr(s)
		if err != nil {
			continue // a name server given by name cannot be used
		}
		out = append(out, netip.AddrPortFrom(a, uint16(port)))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w in %s", ErrNoServers, path)
	}
	return out, nil
}

// Start implements [resolver.Resolver]: it sends the first query at once.
func (r *Resolver) Start(h resolver.Host) {
	if r.started || r.stopped {
		return
	}
	r.started = true
	r.host = h
	r.timer = h.NewTimer(r.onTimer)
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.startRound()
}

// Stop implements [resolver.Resolver]: it cancels the re-query timer and
// every exchange in flight. Answers that arrive later are dropped.
func (r *Resolver) Stop() {
	if r.stopped {
		return
	}
	r.stopped = true
	if !r.started {
		return
	}
	r.timer.Stop()
	r.cancel()
	r.rd = nil
	r.queue = nil
}

// Stats implements [resolver.Resolver]. LastError is the most recent error
// of any exchange (a bad answer from one server is shown even when another
// server answered well); State says whether the resolver is failing now.
// Queries counts the DNS exchanges sent (a TCP retry is part of its
// exchange), or the system resolver's lookups, Errors those that failed.
func (r *Resolver) Stats() resolver.Stats {
	st := resolver.Stats{
		LastAnswer: r.lastAnswer,
		Backends:   slices.Clone(r.set),
		Queries:    r.queries,
		Errors:     r.errs,
	}
	if r.lastErr != nil {
		st.LastError = r.lastErr.Error()
	}
	return st
}

// onTimer is the re-query timer: a new round.
func (r *Resolver) onTimer() {
	if r.stopped || r.rd != nil {
		return
	}
	r.host.Querying()
	r.startRound()
}

// schedule arms the re-query timer d from now, plus jitter.
func (r *Resolver) schedule(d time.Duration) {
	d += time.Duration(float64(d) * r.cfg.Jitter * r.host.Rand().Float64())
	r.timer.Reset(d)
}

// ttlInterval is the re-query interval for a TTL in seconds, clamped to
// [MinInterval, MaxInterval].
func (r *Resolver) ttlInterval(ttl uint32) time.Duration {
	return min(max(time.Duration(ttl)*time.Second, r.cfg.MinInterval), r.cfg.MaxInterval)
}

// doubling returns base doubled n-1 times, capped at limit.
func doubling(base, limit time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// deliver hands a good answer's set to the pool, and logs it when it differs
// from the last one (or is the first). known is what each target resolved
// to in it: a target whose lookup fails later keeps those addresses. An
// answer that is not delivered (an empty one not trusted) changes neither.
func (r *Resolver) deliver(set []backend.Backend, known map[string]known) {
	r.known = known
	if !r.delivered || !slices.Equal(set, r.set) {
		r.set = set
		r.delivered = true
		r.host.Log(slog.LevelInfo, "dns: backend set changed", "service", r.service, "backends", len(set))
	}
	r.host.Update(set)
}
