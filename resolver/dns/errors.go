package dns

import "errors"

// The errors a resolver keeps as its last error (shown in Stats) wrap one of
// these, so a caller can tell them apart with errors.Is. None of them stops
// the resolver: it keeps the last good backend set and asks again later.
var (
	// ErrMalformed: an answer could not be parsed as a DNS message, or
	// was truncated over TCP. The server (or something on the path) is
	// broken; the next server is asked.
	ErrMalformed = errors.New("dns: malformed answer")

	// ErrMismatch: an answer does not belong to the query: it is not a
	// response, or its ID or question differs. It may be spoofed or
	// stale; it is dropped and the next server is asked.
	ErrMismatch = errors.New("dns: answer does not match the query")

	// ErrOversized: a UDP answer is longer than the EDNS0 buffer the query
	// advertised (Config.UDPSize), or an answer holds more SRV records
	// than Config.MaxTargets. Raise the limit if the service is that big.
	ErrOversized = errors.New("dns: answer too large")

	// ErrServerFailure: the server answered with an error code (SERVFAIL,
	// REFUSED, NOTIMP, FORMERR, ...). The next server is asked.
	ErrServerFailure = errors.New("dns: server failure")

	// ErrCNAMEChain: a name's CNAME chain is longer than Config.MaxCNAME
	// (or loops).
	ErrCNAMEChain = errors.New("dns: CNAME chain too long")

	// ErrNoBackends: an answer listed no backend (NXDOMAIN, NODATA, or no
	// target with an address), or a server answered NXDOMAIN or NODATA for
	// a name the last set has records of. Unless Config.TrustNegative is
	// set, the last good set is kept and the query retried after
	// Config.EmptyRetry (or, for one target, with backoff).
	ErrNoBackends = errors.New("dns: no backends in the answer")

	// ErrNoServers: no DNS server was given and none was found in
	// /etc/resolv.conf. Returned by New.
	ErrNoServers = errors.New("dns: no DNS servers")
)
