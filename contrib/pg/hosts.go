package pg

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/resolver"
)

// How the hosts of a connection string are looked up when [New] is given
// no resolver.
const (
	// HostRequery is how often the host names of the connection string
	// are looked up again, so that a changed address is followed.
	HostRequery = 30 * time.Second
	// HostLookupTimeout bounds one round of lookups of every host name.
	HostLookupTimeout = 5 * time.Second
	// hostBackoffMin is the delay before looking up again after a failed
	// round, doubling with each failure in a row up to HostRequery.
	hostBackoffMin = time.Second
)

// hostPort is one host of a connection string.
type hostPort struct {
	host string
	port uint16
}

// configHosts returns the hosts of cc, its primary then its fallbacks, each
// once, in their order: libpq's multi-host syntax ("host=a,b port=5432,5433"
// or "postgres://a:5432,b:5433/db") gives several. A Unix socket is an
// error: a pool's backends are TCP addresses.
func configHosts(cc *pgx.ConnConfig) ([]hostPort, error) {
	all := []hostPort{{cc.Host, cc.Port}}
	for _, fb := range cc.Fallbacks {
		all = append(all, hostPort{fb.Host, fb.Port})
	}
	var hosts []hostPort
	for _, hp := range all {
		if strings.HasPrefix(hp.host, "/") {
			return nil, fmt.Errorf("%w: host %q is a Unix socket; without a resolver, the pool's backends are the "+
				"connection string's TCP hosts (give host=NAME or an address)", ErrConfig, hp.host)
		}
		if hp.host == "" {
			return nil, fmt.Errorf("%w: the connection string names no host, and New was given no resolver", ErrConfig)
		}
		if !slices.Contains(hosts, hp) {
			hosts = append(hosts, hp)
		}
	}
	return hosts, nil
}

// hostResolver is the resolver of a pool made without one: the hosts of
// its connection string, each address of each host one backend. An address
// is used as it is; a name is looked up with the configuration's
// LookupFunc (pgx's default: the system's resolver, so /etc/hosts and
// DNS), again every HostRequery, so that the pool follows a changed
// address. A name that resolves to several addresses gives one backend per
// address.
//
// Concurrency contract: every method and completion runs on the pool's
// core (resolver.Host), so its fields need no lock; the lookups run off it,
// through Host.Go, and touch none of them.
type hostResolver struct {
	hosts  []hostPort
	lookup func(ctx context.Context, host string) ([]string, error)

	h       resolver.Host
	timer   resolver.Timer
	last    map[hostPort][]backend.Backend // each host's last good answer
	set     []backend.Backend
	stats   resolver.Stats
	fails   int // failed rounds in a row
	stopped bool
}

// newHostResolver returns the resolver of the hosts of cc.
func newHostResolver(cc *pgx.ConnConfig) (*hostResolver, error) {
	hosts, err := configHosts(cc)
	if err != nil {
		return nil, err
	}
	lookup := cc.LookupFunc
	if lookup == nil {
		lookup = net.DefaultResolver.LookupHost
	}
	return &hostResolver{hosts: hosts, lookup: lookup, last: map[hostPort][]backend.Backend{}}, nil
}

// hostBackends returns the backends of one host: its address, or the
// addresses its name resolves to, each named "NAME@ADDR:PORT" (as
// resolver/dns names them, so that [SRVTarget] gives the name back).
func hostBackends(ctx context.Context, lookup func(context.Context, string) ([]string, error), hp hostPort) ([]backend.Backend, error) {
	if a, err := netip.ParseAddr(hp.host); err == nil {
		return []backend.Backend{backend.FromAddr(netip.AddrPortFrom(a.Unmap(), hp.port))}, nil
	}
	addrs, err := lookup(ctx, hp.host)
	if err != nil {
		return nil, fmt.Errorf("pg: look up host %q: %w", hp.host, err)
	}
	var bs []backend.Backend
	for _, s := range addrs {
		a, err := netip.ParseAddr(s)
		if err != nil {
			continue // not an address (the lookup function's own business)
		}
		ap := netip.AddrPortFrom(a.Unmap(), hp.port)
		b := backend.Backend{Name: backend.Name(hp.host + "@" + ap.String()), Addr: ap}
		if !slices.Contains(bs, b) {
			bs = append(bs, b)
		}
	}
	if len(bs) == 0 {
		return nil, fmt.Errorf("pg: look up host %q: no address (the lookup gave %q)", hp.host, addrs)
	}
	return bs, nil
}

// literal reports whether every host is an address, so that nothing is
// ever looked up.
func (r *hostResolver) literal() bool {
	for _, hp := range r.hosts {
		if _, err := netip.ParseAddr(hp.host); err != nil {
			return false
		}
	}
	return true
}

// Start implements resolver.Resolver: addresses are delivered at once,
// names after their first lookup.
func (r *hostResolver) Start(h resolver.Host) {
	r.h = h
	if r.literal() {
		res := make([][]backend.Backend, len(r.hosts))
		errs := make([]error, len(r.hosts))
		for i, hp := range r.hosts {
			res[i], errs[i] = hostBackends(context.Background(), nil, hp)
		}
		r.stats.Queries++
		r.h.Querying()
		r.answer(res, errs, false)
		return
	}
	r.timer = h.NewTimer(r.query)
	r.query()
}

// query looks every host up, off the core.
func (r *hostResolver) query() {
	r.stats.Queries++
	r.h.Querying()
	hosts, lookup := r.hosts, r.lookup
	r.h.Go(func() func() {
		ctx, cancel := context.WithTimeout(context.Background(), HostLookupTimeout)
		defer cancel()
		res := make([][]backend.Backend, len(hosts))
		errs := make([]error, len(hosts))
		for i, hp := range hosts {
			res[i], errs[i] = hostBackends(ctx, lookup, hp)
		}
		return func() { r.answer(res, errs, true) }
	})
}

// answer takes a round's results, on the core: each host's backends, or
// its error, for which the host keeps what it last resolved to.
func (r *hostResolver) answer(res [][]backend.Backend, errs []error, again bool) {
	if r.stopped {
		return
	}
	var set []backend.Backend
	for i, hp := range r.hosts {
		if errs[i] == nil {
			r.last[hp] = res[i]
		}
		for _, b := range r.last[hp] {
			if !slices.ContainsFunc(set, func(o backend.Backend) bool { return o.Name == b.Name }) {
				set = append(set, b)
			}
		}
	}
	err := errors.Join(errs...)
	if len(set) > 0 || err == nil {
		r.set = set
		r.h.Update(set)
	}
	if err != nil {
		r.stats.Errors++
		r.stats.LastError = err.Error()
		r.fails++
		r.h.ReportError(err)
		if again {
			r.timer.Reset(min(hostBackoffMin<<min(r.fails-1, 16), HostRequery))
		}
		return
	}
	r.fails = 0
	r.stats.LastError = ""
	r.stats.LastAnswer = r.h.Now()
	if again {
		r.timer.Reset(HostRequery)
	}
}

// Stop implements resolver.Resolver.
func (r *hostResolver) Stop() {
	r.stopped = true
	if r.timer != nil {
		r.timer.Stop()
	}
}

// Stats implements resolver.Resolver.
func (r *hostResolver) Stats() resolver.Stats {
	st := r.stats
	st.Backends = slices.Clone(r.set)
	return st
}

// hostServerName is the TLS server name of a backend of a hostResolver:
// its host's name, or its address for a host given as one, as pgx would
// verify for that host.
func hostServerName(b backend.Backend) string {
	if name := SRVTarget(b); name != "" {
		return name
	}
	return b.Addr.Addr().String()
}
