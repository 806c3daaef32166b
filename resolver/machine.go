package resolver

import (
	lf "github.com/looplab/fsm"

	"github.com/qorbgo/qorb/fsm"
)

// State is a resolver's state. The names are part of traces and stay stable.
type State int8

const (
	// Resolving: a query is in flight.
	Resolving State = iota
	// Resolved: the last query answered; the set is current.
	Resolved
	// Failed: the last query failed; the last good set is kept and the
	// query is retried with backoff.
	Failed
	// Stopped: the resolver is stopped. Terminal.
	Stopped
)

// Event is something that happens to a resolver.
type Event int8

const (
	Query  Event = iota // a query starts (re-query timer, retry, or a change)
	Answer              // a good answer arrived
	Error               // the query failed or the answer was bad
	Stop                // the pool closes
)

var (
	stateNames = []string{"resolving", "resolved", "failed", "stopped"}
	eventNames = []string{"query", "answer", "error", "stop"}
	stateDocs  = []string{
		"a query is in flight",
		"the last query answered; the set is current",
		"the last query failed; the last good set is kept, retry with backoff",
		"stopped (terminal)",
	}
	eventDocs = []string{
		"a query starts: re-query timer, retry, or a change",
		"a good answer arrived",
		"the query failed or its answer was bad (also just after a partial answer whose set was kept)",
		"the pool closes",
	}
)

// Kind is the resolver machine's declaration, compiled and typed: a machine's
// fsm.State[State, Event] changes only through Kind.Fire with one of its
// [Event]s.
var Kind = fsm.MustDeclare[State, Event]("resolver", stateNames, eventNames, lf.Events{
	{Name: "query", Src: []string{"resolved", "failed"}, Dst: "resolving"},
	{Name: "answer", Src: []string{"resolving"}, Dst: "resolved"},
	{Name: "error", Src: []string{"resolving", "resolved"}, Dst: "failed"},
	{Name: "stop", Src: []string{"resolving", "resolved", "failed"}, Dst: "stopped"},
})

// String returns the state's trace name.
func (s State) String() string { return Kind.StateName(s) }

// String returns the event's trace name.
func (e Event) String() string { return Kind.EventName(e) }

// Markdown renders docs/resolver.md.
func Markdown() string {
	return Kind.Machine().Markdown("The pool runs this machine for its resolver (Fixed, DNS, or a custom one) from what the resolver reports through its host: a query started, an answer with the full backend set, an error.", stateDocs, eventDocs) +
		whichResolver
}

// whichResolver ends docs/resolver.md.
const whichResolver = `
## Addresses, names, SRV records

| the backends are | resolver | it resolves |
|---|---|---|
| addresses the program gives (and may replace) | ` + "`resolver.NewFixed(addrs...)`" + ` | nothing: it lists them |
| a host name and a port, such as ` + "`localhost:5432`" + ` | ` + "`dns.New(\"localhost:5432\", nil, dns.Config{})`" + ` | the name, through the system resolver (` + "`net.DefaultResolver.LookupNetIP`" + `: /etc/hosts, then DNS), as ` + "`net.Dial`" + ` does |
| a service's SRV records | ` + "`dns.New(\"_db._tcp.example.com\", servers, dns.Config{})`" + ` | SRV, then each target's A and AAAA records |

A host name is resolved again every ` + "`MinInterval`" + ` (5 s; the system resolver gives
no TTL). A name that does not exist puts the machine in ` + "`failed`" + ` with
"no such host" in ` + "`Stats().Resolver.LastError`" + `, and is asked again after
` + "`EmptyRetry`" + ` (1 s, doubling); the last good set is kept. See
[dns.md](dns.md#services-and-backends).
`
