package sim

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
)

// storyFaults bounds the faults WriteStory lists one by one, and
// storyGroups the groups of backends and of clients.
const (
	storyFaults = 20
	storyGroups = 8
)

// WriteStory writes the scenario for people, before it runs: its story
// (the description), what happens when in virtual time (the backends,
// the clients and their load, each fault and its end, the end of the
// run), and what to look at in the summary of a run, the scenario's
// expectations among it.
func (sc *Scenario) WriteStory(w io.Writer) {
	d := sc.withDefaults()
	fmt.Fprintf(w, "%s\n", d.Name)
	for _, l := range strings.Split(strings.TrimSpace(d.Description), "\n") {
		if d.Description == "" {
			break
		}
		if l = strings.TrimRight(l, " \t"); l != "" {
			fmt.Fprintf(w, "  %s\n", l)
		} else {
			fmt.Fprintln(w)
		}
	}
	fmt.Fprintf(w, "\nwhat happens, in virtual time (%s of it):\n", short(d.Duration))
	type entry struct {
		at   Duration
		text string
	}
	var tl []entry
	add := func(at Duration, format string, a ...any) { tl = append(tl, entry{at, fmt.Sprintf(format, a...)}) }

	var down, unlisted, groups []string
	for _, b := range d.Backends {
		names := expand(b.Name, b.Count, "%s-%d")
		groups = append(groups, nameSpan(names))
		if b.Down {
			down = append(down, names...)
		}
		if b.Unlisted {
			unlisted = append(unlisted, names...)
		}
	}
	if len(groups) > storyGroups {
		groups = append(groups[:storyGroups], fmt.Sprintf("and %d more groups", len(groups)-storyGroups))
	}
	bs := fmt.Sprintf("%d backends: %s", len(d.BackendNames()), strings.Join(groups, ", "))
	if len(d.BackendNames()) == 1 {
		bs = "one backend, " + d.BackendNames()[0]
	}
	if len(down) > 0 {
		bs += fmt.Sprintf("; %s down until a fault starts them", nameSpan(down))
	}
	if len(unlisted) > 0 {
		bs += fmt.Sprintf("; %s not in DNS yet", nameSpan(unlisted))
	}
	add(0, "%s", bs)
	for n, c := range d.Clients {
		if n == storyGroups {
			add(c.Start, "… and %d more groups of clients (qsim -describe prints them all)", len(d.Clients)-storyGroups)
			break
		}
		names := expand(c.Name, c.Count, "%s-%03d")
		who := fmt.Sprintf("%d clients (%s) start, each", len(names), nameSpan(names))
		if len(names) == 1 {
			who = "client " + names[0] + " starts,"
		}
		switch {
		case c.ConnSet > 0:
			add(c.Start, "%s keeping a connection set of %d (one connection per backend), with no claims", who, c.ConnSet)
		case c.Workload.Rate == 0:
			add(c.Start, "%s with a pool and no claims", who)
		default:
			how := "claim"
			switch {
			case c.Workload.TryClaim:
				how = "TryClaim"
			case c.Workload.Do:
				how = "Do claim"
			}
			if c.Workload.Rate != 1 {
				how += "s"
			}
			add(c.Start, "%s with a pool, making %g %s a second, each holding a connection %s", who, c.Workload.Rate, how, c.Workload.Hold)
		}
	}
	faults := slices.Clone(d.Faults)
	idx := make([]int, len(faults))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(faults[a].At, faults[b].At) })
	for n, i := range idx {
		if n == storyFaults {
			add(faults[i].At, "… and %d more faults (qsim -describe prints them all)", len(faults)-storyFaults)
			break
		}
		f := faults[i]
		add(f.At, "fault %d: %s — %s", i, f.describe(), faultStories[f.Kind])
		switch end := Duration(f.End()); {
		case f.Kind == FaultClose:
			add(f.At, "  fault %d ends when its clients are back, by %s at the latest; recovery is timed from then", i, short(end))
		case end > f.At:
			add(end, "fault %d ends; recovery is timed from here", i)
		}
	}
	slices.SortStableFunc(tl, func(a, b entry) int { return cmp.Compare(a.at, b.at) })
	for _, e := range tl {
		for i, l := range wrapWords(e.text, 90) {
			at := short(e.at)
			if i > 0 {
				at, l = "", "  "+l
			}
			fmt.Fprintf(w, "  %-8s %s\n", at, l)
		}
	}
	fmt.Fprintf(w, "  %-8s the workload stops: claims in flight finish, and every pool closes\n", short(d.Duration))

	fmt.Fprintln(w, "\nwhat to look at in the summary:")
	look := func(what, text string) {
		for i, l := range wrapWords(text, 86) {
			if i > 0 {
				what = ""
			}
			fmt.Fprintf(w, "  %-13s %s\n", what, l)
		}
	}
	if exp := sc.Expect.phrases(); len(exp) > 0 {
		look("expectations", "what this scenario promises, each ok or FAIL: "+strings.Join(exp, "; "))
	}
	if len(d.Faults) > 0 {
		look("faults", `each fault's recovery: "recovered 12s after its end" means every client was back to its target 12s after the fault ended`)
	}
	look("claims", "failed claims by kind, and how long served claims waited (p50, p90, p99, max): the fleet, then each client")
	look("backends", "for each, its connects (refused ones while it was down) and the claims it served")
	look("invariants", "ok, or the first promise of the pool that broke and the trace before it")
	look("picture", "qsim -out DIR writes it, picture.svg: the connections to each backend and the claim waits over time, the faults shaded")
}

// faultStories says what each kind of fault does, in a few words.
var faultStories = map[string]string{
	FaultCrash:     "the process dies: its connections break, its port refuses connects",
	FaultStart:     "backends that were down start",
	FaultHang:      "connects and requests hang until their timeouts",
	FaultPartition: "the network path is cut: connects, checks and requests hang",
	FaultSlow:      "connects, checks and requests take longer by the factor",
	FaultCheckFail: "connects are accepted, but checks and requests fail",
	FaultErrors:    "requests answer with errors while connects and checks succeed",
	FaultDemote:    "a failover behind the address: connections opened before answer with errors",
	FaultReset:     "the pools' Reset: every connection is replaced",
	FaultKill:      "the clients vanish without closing their connections; the servers keep them",
	FaultDNSOutage: "every DNS query times out; resolvers keep their last answer",
	FaultDNSAdd:    "the backends are listed in DNS",
	FaultDNSRemove: "the backends leave DNS",
	FaultReplace:   "a deploy step: the new backends are listed, the old ones leave DNS and stop after the drain",
	FaultRestart:   "each pool is closed at once and created anew",
	FaultLoad:      "the claim rate is multiplied by the factor",
	FaultClose:     "a graceful shutdown: claims in flight finish, then Close returns",
	FaultPause:     "the processes stop (a GC pause): nothing of theirs runs until they resume",
}

// wrapWords breaks text into lines of at most width runes, between
// words (a longer word gets a line of its own).
func wrapWords(text string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(text) {
		switch {
		case line == "":
			line = word
		case len([]rune(line))+1+len([]rune(word)) <= width:
			line += " " + word
		default:
			lines = append(lines, line)
			line = word
		}
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}

// nameSpan names a list of names by its first and last: "db-1 … db-4".
func nameSpan(names []string) string {
	switch len(names) {
	case 0:
		return "none"
	case 1:
		return names[0]
	case 2:
		return names[0] + " and " + names[1]
	}
	return names[0] + "…" + names[len(names)-1]
}

// phrases says each expectation set in e for people.
func (e Expect) phrases() []string {
	var out []string
	add := func(format string, a ...any) { out = append(out, fmt.Sprintf(format, a...)) }
	bound := func(n int, none, some string) {
		if n == 0 {
			add("%s", none)
		} else {
			add(some, n)
		}
	}
	if e.RecoverWithin > 0 {
		add("every client back to its target within %s of the last fault's end", e.RecoverWithin)
	}
	if e.MaxClaimErrors != nil {
		bound(*e.MaxClaimErrors, "no failed claim", "at most %d failed claims")
	}
	if e.MaxErrorRatio != nil {
		add("at most %g%% of the claims failed", *e.MaxErrorRatio*100)
	}
	if e.MaxWaitP99 > 0 {
		add("99%% of the claims served within %s", e.MaxWaitP99)
	}
	if e.MaxWait > 0 {
		add("every claim served within %s", e.MaxWait)
	}
	if e.MaxFailWait > 0 {
		add("a claim that fails fails within %s", e.MaxFailWait)
	}
	if e.MinClaims > 0 {
		add("at least %d claims served", e.MinClaims)
	}
	if e.MaxConnects > 0 {
		add("at most %d connects in all", e.MaxConnects)
	}
	if e.MaxUpConnectRate > 0 {
		add("once the faults begin, no backend that is up sees more than %d connects in a second", e.MaxUpConnectRate)
	}
	if e.MaxConnectRate > 0 {
		add("no backend sees more than %d connects in a second", e.MaxConnectRate)
	}
	if e.MaxCutClaims != nil {
		bound(*e.MaxCutClaims, "no claim's connection closed under it", "at most %d claims' connections closed under them")
	}
	if e.MaxForcedCloses != nil {
		bound(*e.MaxForcedCloses, "no close forced at its drain deadline", "at most %d closes forced")
	}
	if e.MaxCloseTime > 0 {
		add("each close done within %s", e.MaxCloseTime)
	}
	if e.MaxDNSRate != nil {
		add("at most %g DNS exchanges a second per client", *e.MaxDNSRate)
	}
	if e.MaxFailedRequests != nil {
		bound(*e.MaxFailedRequests, "no failed request", "at most %d failed requests")
	}
	if e.MaxDiscards != nil {
		bound(*e.MaxDiscards, "no connection discarded", "at most %d connections discarded")
	}
	if cs := e.MaxClaimShare; cs != nil {
		add("%s serves at most %g%% of the claims", cs.Backend, cs.Share*100)
	}
	return out
}

// recoveryNote explains, under the faults of a summary, what their
// recovery times mean.
func recoveryNote(w io.Writer) {
	const note = `("recovered X after its end": X after the fault ended, every client was back to its target, ` +
		`judged by the world as it was: its pool running, every backend that DNS lists and that could serve it ` +
		`online, and at least min(spares_wanted, max_slots) connections open. "not recovered by the end": ` +
		`some client never was.)`
	for _, l := range wrapWords(note, 96) {
		fmt.Fprintf(w, "  %s\n", l)
	}
}
