// Package dns is a [resolver.Resolver] that finds a service's backends
// through DNS, built on github.com/miekg/dns.
//
// # What it asks
//
// For a service such as "_db._tcp.example.com" it asks for the SRV records,
// then for the A and AAAA records of each target, unless the server already
// put a target's addresses in the additional section. Each address of each
// target, with the SRV record's port, is one backend named
// "target@addr:port" ("db-1.example.com.@10.0.0.7:5432"); a backend keeps
// its name, and so its connections, for as long as its records stay. CNAME
// chains are followed, within an answer and across queries, up to
// Config.MaxCNAME records. SRV priority and weight are not used.
//
// A service given as "host:port" is resolved in plain mode: the host's
// addresses with that port. With no DNS servers given to [New], the host is
// resolved as net.Dial resolves it, through the system resolver
// (net.DefaultResolver.LookupNetIP: /etc/hosts, then DNS as the system is
// configured), so "localhost:5432" and a name from /etc/hosts work;
// Config.LookupNetIP replaces that lookup. With servers given, plain mode
// asks them for the host's A and AAAA records. With Config.Port set, a name
// that has no SRV records falls back to plain mode with that port, through
// the DNS servers.
//
// # How it runs
//
// The resolver talks to the pool only through its [resolver.Host]: it
// reports each query, each good answer (the full set) and each failure, and
// the pool runs the declared resolver machine ([resolver.Kind]: resolving,
// resolved, failed, stopped) from those reports. Every DNS exchange runs
// off the pool's core through Host.Go with a timeout (Config.Timeout); its
// answer is checked and parsed there too, and comes back to the core as a
// completion. The re-query timer is a Host timer on the pool's clock, and
// its jitter comes from the resolver's own random stream (Host.Rand).
// Several servers are asked the same question at once (Config.Parallel),
// with at most Config.MaxInflight exchanges in flight; the first good
// answer wins and the others are cancelled. Servers that failed last come
// last in the order of asking. With no servers given, those of
// /etc/resolv.conf are used (a host:port service then goes to the system
// resolver instead, also off the core: one lookup per round).
//
// Queries go out over UDP with an EDNS0 buffer of Config.UDPSize bytes; a
// truncated answer is asked again over TCP. The timeout of an exchange is
// kept by the transport that carries it, on the network's clock: real
// time here; in the simulator (package sim), whose simulated servers
// replace the network, virtual time.
//
// # When
//
//   - After a good answer: when the smallest TTL of the records used ends,
//     clamped to [Config.MinInterval, Config.MaxInterval] (a TTL of 0
//     re-queries every MinInterval), plus jitter.
//   - After an answer with no backends: after Config.EmptyRetry, doubling
//     up to MaxInterval while the answers stay empty.
//   - After a failure: after Config.BackoffMin, doubling up to
//     Config.BackoffMax; a good answer resets it.
//   - Through the system resolver, which gives no TTL: as for a TTL of 0,
//     every Config.MinInterval after a good answer; "no such host" is an
//     empty answer, a failed lookup a failure.
//
// # On each failure
//
//   - A server times out, refuses, fails (SERVFAIL), or sends an answer that
//     is malformed, does not match the query (ID, question), or is too large:
//     the error is counted and kept as the last error, the server goes to the
//     back of the order, and the next server is asked. Errors wrap
//     [ErrMalformed], [ErrMismatch], [ErrOversized], [ErrServerFailure],
//     [ErrCNAMEChain] or [context.DeadlineExceeded].
//   - A server answers NXDOMAIN or NODATA for a name the last set has
//     records of (the service's SRV records, or a target's addresses of
//     that family): unless Config.TrustNegative is set, the answer is not
//     trusted while another server may have the records (a server that
//     lost the zone, or lags behind the others). It counts as that
//     server's failure ([ErrNoBackends]) and the next server is asked; when
//     no server has better, the negative answer stands, as below.
//   - Every server fails the SRV question: the round fails (state failed),
//     the last good set is kept, and the query is retried with backoff.
//   - The SRV answer is good but a target's A or AAAA lookup fails on every
//     server, or (unless Config.TrustNegative is set) is negative where the
//     last set has addresses of that family for it: a partial answer. The
//     set is updated with everything that resolved; that target keeps the
//     addresses it had (a new target is left out until it resolves); the
//     state is failed and the query is retried with backoff.
//   - NXDOMAIN, NODATA, no target with an address, or "no such host" from
//     the system resolver (the error also wraps its *net.DNSError, whose
//     IsNotFound is set): an empty answer ([ErrNoBackends]). Unless Config.TrustNegative is set, the last good
//     set is kept, with what each target resolved to in it, and the state
//     is failed; with it, the set becomes empty. Either way the query is
//     retried after Config.EmptyRetry.
//   - Stop: the timer is cancelled and every exchange in flight is
//     cancelled; answers that arrive later are dropped. No Update, timer or
//     transition follows.
//
// The last error, the time of the last good answer, the current set and
// the counts of queries and errors are in [Resolver.Stats], and so in the
// pool's Stats.
package dns
