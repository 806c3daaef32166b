package sim

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/qorbgo/qorb/resolver/dns"
)

// The clients' resolver, DNSSpec.Resolver.
const (
	// ResolverStandIn is the stand-in for resolver/dns: one query returns
	// the listed backends, the re-query interval is the TTL itself.
	ResolverStandIn = "stand-in"
	// ResolverDNS is the real resolver/dns, asking simulated DNS servers.
	ResolverDNS = "dns"
)

// How a simulated DNS server answers, DNSServerSpec.Answer and
// DNSChange.Answer.
const (
	// DNSAnswerOK answers from the records.
	DNSAnswerOK = "ok"
	// DNSAnswerServFail answers SERVFAIL to every question.
	DNSAnswerServFail = "servfail"
	// DNSAnswerRefused answers REFUSED to every question.
	DNSAnswerRefused = "refused"
	// DNSAnswerNXDomain answers NXDOMAIN to every question: the name does
	// not exist (a zone being reloaded, a registry that lost its data).
	DNSAnswerNXDomain = "nxdomain"
	// DNSAnswerNoData answers NOERROR with no records to every question.
	DNSAnswerNoData = "nodata"
	// DNSAnswerTruncate sets the TC bit, with no records, on every UDP
	// answer (a server under load, or rate limiting that "slips"): the
	// resolver asks again over TCP, where the server answers well.
	DNSAnswerTruncate = "truncate"
	// DNSAnswerDrop never answers: every query times out, over UDP and
	// TCP, as with a server that is down.
	DNSAnswerDrop = "drop"
)

var dnsAnswers = []string{DNSAnswerOK, DNSAnswerServFail, DNSAnswerRefused, DNSAnswerNXDomain,
	DNSAnswerNoData, DNSAnswerTruncate, DNSAnswerDrop}

// DNSServerSpec is one simulated DNS server (real resolver only). Servers
// get the addresses 10.53.0.1:53, 10.53.0.2:53, … in order.
type DNSServerSpec struct {
	// Name of the server, for changes and traces. Letters, digits, '-',
	// '_' and '.'.
	Name string `toml:"name,omitempty"`
	// Latency of one answer over UDP; over TCP an exchange takes two (the
	// connection's handshake, then the question). Default: the [dns]
	// latency.
	Latency Dist `toml:"latency,omitempty,omitzero"`
	// Loss is the probability that a UDP query gets no answer (the
	// resolver waits out its timeout). Default 0.
	Loss float64 `toml:"loss,omitempty"`
	// Answer is how the server answers: ok (the default), servfail,
	// refused, nxdomain, nodata, truncate or drop.
	Answer string `toml:"answer,omitempty"`
	// MaxUDP truncates UDP answers longer than this many bytes (a server
	// that ignores EDNS0 truncates at 512). Default 0: the buffer the
	// query advertises (512 without EDNS0).
	MaxUDP int `toml:"max_udp,omitempty"`
}

// DNSRecordSpec says how the records of some backends look (real resolver
// only). Each backend listed in DNS has an SRV record under the service
// name "_svc._tcp.sim." with port 5432 and target "<backend>.sim.", and
// that target has an A record with the backend's address (10.0.0.N). A
// backend takes the settings of the last group that names it.
type DNSRecordSpec struct {
	// Backends are the backends' names or globs ("db-*").
	Backends []string `toml:"backends,omitempty"`
	// TTL of their SRV, CNAME and A records, in whole seconds (rounded
	// down); "0s" is a TTL of 0. Default: the [dns] ttl.
	TTL *Duration `toml:"ttl,omitempty"`
	// CNAME makes each target an alias: "<backend>.sim." is a CNAME of
	// "<backend>.sim-hosts.", which has the A record. The servers follow
	// it in their answers.
	CNAME bool `toml:"cname,omitempty"`
	// Additional puts each target's A record in the additional section of
	// the SRV answer, so that the resolver asks no further question for
	// it. Default true; false makes the resolver ask A and AAAA of each
	// target (without it, a CNAME target is always asked).
	Additional *bool `toml:"additional,omitempty"`
}

// DNSChange changes servers or records at a moment of the run, for a
// while or to the end (real resolver only). A change that sets servers'
// fields needs Servers; one that sets records' fields needs Backends; one
// entry may do both. Changes in force apply in the order they began (in
// file order when at the same moment), the later over the earlier; one
// that ends leaves the servers and records as if it had never been made.
// Listing and unlisting backends are faults: dns_add, dns_remove, replace.
type DNSChange struct {
	// At is when the change happens.
	At Duration `toml:"at,omitempty"`
	// For is how long it lasts; At+For is at most the run's duration.
	// Default 0: to the end.
	For Duration `toml:"for,omitempty"`

	// Servers are the servers it changes, names or globs.
	Servers []string `toml:"servers,omitempty"`
	// Answer is their new way of answering (see DNSServerSpec.Answer).
	Answer string `toml:"answer,omitempty"`
	// Loss is their new probability of losing a UDP query.
	Loss *float64 `toml:"loss,omitempty"`
	// Latency is their new latency.
	Latency Dist `toml:"latency,omitempty,omitzero"`

	// Backends are the backends whose records it changes, names or globs.
	Backends []string `toml:"backends,omitempty"`
	// TTL is their records' new TTL.
	TTL *Duration `toml:"ttl,omitempty"`
	// Address names the backend whose address their names now resolve to:
	// the same target at a new address, which the resolver sees as a new
	// backend (the old one drains).
	Address string `toml:"address,omitempty"`
}

// The simulated zone.
const (
	dnsService  = "_svc._tcp.sim."
	dnsZone     = "sim."       // SRV targets: "<backend>.sim."
	dnsHostZone = "sim-hosts." // CNAME targets: "<backend>.sim-hosts."
)

// realDNS reports whether the clients run the real resolver.
func (d *DNSSpec) realDNS() bool { return d.Resolver == ResolverDNS }

// zeroHint adds to the error of a zero duration written in [dns] how to
// write a TTL of 0 with the real resolver.
func (d *DNSSpec) zeroHint(key string) string {
	if key == "ttl" && d.realDNS() {
		return `; a TTL of 0 is written per record: [[dns.records]] backends = ["*"], ttl = "0s"`
	}
	return ""
}

// dnsServerAddr is the address of the i-th server (from 0).
func dnsServerAddr(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 53, byte(i >> 8), byte(i + 1)}), 53)
}

// resolverConfig is the real resolver's configuration, from a scenario
// with its defaults applied.
func (d *DNSSpec) resolverConfig() dns.Config {
	return dns.Config{
		Timeout:       d.Timeout.D(),
		BackoffMin:    d.RetryMin.D(),
		BackoffMax:    d.RetryMax.D(),
		MinInterval:   d.MinInterval.D(),
		MaxInterval:   d.MaxInterval.D(),
		EmptyRetry:    d.EmptyRetry.D(),
		Parallel:      d.Parallel,
		UDPSize:       uint16(d.UDPSize),
		TrustNegative: d.TrustNegative,
	}
}

// ttlSeconds turns a scenario TTL into a record's TTL.
func ttlSeconds(d Duration) uint32 {
	return uint32(min(d.D()/time.Second, 1<<31-1))
}

// checkDNS checks the parts of [dns] that are not plain durations.
func (sc *Scenario) checkDNS(bad func(path, format string, a ...any), finite func(path string, v float64) bool, backends map[string]bool) {
	d := &sc.DNS
	switch d.Resolver {
	case "", ResolverStandIn, ResolverDNS:
	default:
		bad("dns.resolver", "%q: want %q (the real resolver/dns) or %q (the default)", d.Resolver, ResolverDNS, ResolverStandIn)
		return
	}
	if !d.realDNS() {
		for _, f := range []struct {
			key string
			set bool
		}{
			{"min_interval", d.MinInterval != 0}, {"max_interval", d.MaxInterval != 0}, {"empty_retry", d.EmptyRetry != 0},
			{"parallel", d.Parallel != 0}, {"udp_size", d.UDPSize != 0}, {"trust_negative", d.TrustNegative},
			{"servers", len(d.Servers) > 0}, {"records", len(d.Records) > 0}, {"changes", len(d.Changes) > 0},
		} {
			if f.set {
				bad("dns."+f.key, `only the real resolver takes %s: add resolver = "dns" to [dns]`, f.key)
			}
		}
		return
	}
	for _, f := range []struct {
		key string
		v   Duration
	}{{"min_interval", d.MinInterval}, {"max_interval", d.MaxInterval}, {"empty_retry", d.EmptyRetry}} {
		if f.v == 0 && sc.pos.written("dns."+f.key) {
			bad("dns."+f.key, "0s: want a positive duration (leave %s out for the resolver's default)", f.key)
		}
	}
	if d.UDPSize != 0 && (d.UDPSize < 512 || d.UDPSize > 65535) {
		bad("dns.udp_size", "%d: want 512 to 65535 bytes", d.UDPSize)
	}
	if d.Parallel < 0 {
		bad("dns.parallel", "must not be negative")
	}
	lower := map[string]string{}
	for i, n := range sc.BackendNames() {
		l := strings.ToLower(n)
		if first, dup := lower[l]; dup {
			bad("backends", "%s and %s are the same name in DNS, which ignores case", first, n)
		}
		lower[l] = n
		if !dnsLabels(l + "." + dnsHostZone) {
			bad("backends", "backend %d, %q, is no DNS name: want labels of 1 to 63 characters between dots, 240 in all", i+1, n)
		}
	}
	servers := map[string]bool{}
	for i, sv := range d.Servers {
		p := fmt.Sprintf("dns.servers[%d]", i)
		if !validName(sv.Name) {
			bad(p+".name", "%q: want letters, digits, '-', '_' or '.'", sv.Name)
		} else if servers[sv.Name] {
			bad(p+".name", "server %s defined twice", sv.Name)
		}
		servers[sv.Name] = true
		if finite(p+".loss", sv.Loss) && (sv.Loss < 0 || sv.Loss > 1) {
			bad(p+".loss", "%v: want a probability, 0 to 1", sv.Loss)
		}
		if sv.Answer != "" && !containsStr(dnsAnswers, sv.Answer) {
			bad(p+".answer", "%q: want one of %s", sv.Answer, strings.Join(dnsAnswers, ", "))
		}
		if sv.MaxUDP != 0 && (sv.MaxUDP < 512 || sv.MaxUDP > 65535) {
			bad(p+".max_udp", "%d: want 512 to 65535 bytes", sv.MaxUDP)
		}
	}
	if len(d.Servers) == 0 {
		servers["ns1"] = true
	}
	matchAll := func(path string, patterns []string, names map[string]bool, what string) {
		for j, pat := range patterns {
			if matchCount(pat, names) == 0 {
				bad(fmt.Sprintf("%s[%d]", path, j), "%q matches no %s", pat, what)
			}
		}
	}
	for i, r := range d.Records {
		p := fmt.Sprintf("dns.records[%d]", i)
		if len(r.Backends) == 0 {
			bad(p+".backends", "a group of records needs backends (names or globs, \"*\" for all)")
		}
		matchAll(p+".backends", r.Backends, backends, "backend")
	}
	for i, c := range d.Changes {
		p := fmt.Sprintf("dns.changes[%d]", i)
		if c.At > sc.Duration {
			bad(p+".at", "%v is after the end of the run (%v)", c.At, sc.Duration)
		} else if c.At+c.For > sc.Duration {
			bad(p+".for", "the change lasts past the end of the run: at %v + for %v ends at %v, after %v; without for, it stays", c.At, c.For, c.At+c.For, sc.Duration)
		}
		serverPart := c.Answer != "" || c.Loss != nil || !c.Latency.IsZero()
		recordPart := c.TTL != nil || c.Address != ""
		switch {
		case !serverPart && !recordPart:
			bad(p, "a change changes nothing: set answer, loss or latency (with servers), or ttl or address (with backends)")
		case serverPart && len(c.Servers) == 0:
			bad(p+".servers", "a change of answer, loss or latency needs servers (names or globs)")
		case recordPart && len(c.Backends) == 0:
			bad(p+".backends", "a change of ttl or address needs backends (names or globs)")
		}
		if len(c.Servers) > 0 && !serverPart {
			bad(p+".servers", "the change sets nothing of its servers: answer, loss or latency")
		}
		if len(c.Backends) > 0 && !recordPart {
			bad(p+".backends", "the change sets nothing of its backends' records: ttl or address")
		}
		matchAll(p+".servers", c.Servers, servers, "server")
		matchAll(p+".backends", c.Backends, backends, "backend")
		if c.Answer != "" && !containsStr(dnsAnswers, c.Answer) {
			bad(p+".answer", "%q: want one of %s", c.Answer, strings.Join(dnsAnswers, ", "))
		}
		if c.Loss != nil && finite(p+".loss", *c.Loss) && (*c.Loss < 0 || *c.Loss > 1) {
			bad(p+".loss", "%v: want a probability, 0 to 1", *c.Loss)
		}
		if c.Address != "" && !backends[c.Address] {
			bad(p+".address", "%q is no backend", c.Address)
		}
	}
	if _, err := dns.New(dnsService, []netip.AddrPort{dnsServerAddr(0)}, sc.withDefaults().DNS.resolverConfig()); err != nil {
		bad("dns", "%v", err)
	}
}

// dnsLabels reports whether name (ending in a dot) is made of labels of 1
// to 63 bytes, 250 bytes in all.
func dnsLabels(name string) bool {
	if len(name) > 250 {
		return false
	}
	for _, l := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		if len(l) == 0 || len(l) > 63 {
			return false
		}
	}
	return true
}

// describe says what the change does, for traces.
func (c DNSChange) describe() string {
	var parts []string
	if len(c.Servers) > 0 {
		s := "servers " + strings.Join(c.Servers, ",")
		if c.Answer != "" {
			s += " answer " + c.Answer
		}
		if c.Loss != nil {
			s += fmt.Sprintf(" loss %g", *c.Loss)
		}
		if !c.Latency.IsZero() {
			s += " latency " + c.Latency.String()
		}
		parts = append(parts, s)
	}
	if len(c.Backends) > 0 {
		s := "records " + strings.Join(c.Backends, ",")
		if c.TTL != nil {
			s += " ttl " + c.TTL.String()
		}
		if c.Address != "" {
			s += " address of " + c.Address
		}
		parts = append(parts, s)
	}
	out := strings.Join(parts, "; ")
	if c.For > 0 {
		out += fmt.Sprintf(" for %v", c.For)
	}
	return out
}
