package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"github.com/qorbgo/qorb/statshttp"
)

const (
	minWidth  = 40 // narrower windows are drawn 40 columns wide
	nameWidth = 20 // the BACKEND column at least; longer names widen it while the window allows, and are cut beyond
	// restWidth is the width of the columns after BACKEND, up to LAST
	// ERROR, and errRoom what BACKEND leaves to LAST ERROR at the least.
	restWidth = 45
	errRoom   = 16
)

var (
	titleStyle = lipgloss.NewStyle().Bold(true)
	headStyle  = lipgloss.NewStyle().Reverse(true)
	tabStyle   = lipgloss.NewStyle().Reverse(true).Bold(true)
	badStyle   = lipgloss.NewStyle().Foreground(lipgloss.Color("1")).Bold(true) // red
	goodStyle  = lipgloss.NewStyle().Foreground(lipgloss.Color("2"))            // green
	faintStyle = lipgloss.NewStyle().Faint(true)
)

// columnsHead is the table's header for a BACKEND column nw wide.
func columnsHead(nw int) string {
	return fmt.Sprintf("%-*s %-8s %7s %4s %4s %3s %4s %4s %3s %s",
		nw, "BACKEND", "STATE", "CLAIM/S", "CONN", "IDLE", "CHK", "CLMD", "FAIL", "TOT", "LAST ERROR")
}

// backendWidth is the BACKEND column's width for rows in a window w wide:
// the longest name, at least nameWidth, and at most what leaves errRoom
// to LAST ERROR.
func backendWidth(rows []row, w int) int {
	longest := 0
	for _, r := range rows {
		longest = max(longest, ansi.StringWidth(r.b.Name))
	}
	return max(nameWidth, min(longest, w-restWidth-errRoom))
}

// View renders the screen: a title, the pools as tabs, the shown pool's
// header, a row per backend, and the keys. Every line fits the width.
func (m model) View() string {
	w := max(m.width, minWidth)
	var lines []string
	add := func(s string) { lines = append(lines, ansi.Truncate(s, w, "…")) }

	title := "qtop " + m.endpoint
	if !m.at.IsZero() {
		title += "  " + m.at.Local().Format("15:04:05")
	}
	every := fmt.Sprintf("  every %v", m.interval)
	if m.paused {
		every += "  PAUSED (p to resume)"
	}
	add(titleStyle.Render(title) + faintStyle.Render(every))
	if m.help {
		for _, l := range helpLines {
			add(l)
		}
		return strings.Join(lines, "\n")
	}
	if m.err != nil {
		prefix := "! " + m.errAt.Local().Format("15:04:05") + ": "
		add(badStyle.Render(prefix + shortError(m.err.Error(), w-len(prefix))))
		if m.fetches > 0 {
			add(badStyle.Render("  (showing the last snapshot read)"))
		}
	}
	if m.fetches == 0 {
		if m.err == nil {
			add("reading " + m.endpoint + " …")
		}
		return strings.Join(lines, "\n")
	}
	if len(m.names) == 0 {
		add("the endpoint serves no pool")
		return strings.Join(lines, "\n")
	}
	add(m.tabs())
	p := m.last[m.cur]
	prev, hasPrev := m.prev[m.cur]
	for _, l := range poolHeader(p, prev, hasPrev, w) {
		add(l)
	}
	add("")
	rows := m.sortedBackends(p, prev, hasPrev)
	if m.filter != "" {
		f := strings.ToLower(m.filter)
		rows = slices.DeleteFunc(rows, func(r row) bool { return !strings.Contains(strings.ToLower(r.b.Name), f) })
	}
	nw := backendWidth(rows, w)
	add(headStyle.Render(fmt.Sprintf("%-*s", w, columnsHead(nw))))
	room := max(m.height-len(lines)-2, 1) // keep the keys' line on screen
	var table []string
	for i, b := range rows {
		r := b.render(w, nw)
		if len(table)+len(r) > room || (i < len(rows)-1 && len(table)+len(r) == room) {
			// Keep a line to say how many rows are hidden.
			table = append(table, fmt.Sprintf("… %d more backends (sorted by %s)", len(rows)-i, m.sortBy))
			break
		}
		table = append(table, r...)
	}
	for _, l := range table {
		add(l)
	}
	add("")
	order := m.sortBy.String()
	if m.reverse {
		order += ", reversed"
	}
	switch {
	case m.filtering:
		add(fmt.Sprintf("filter: %s_   (enter keeps it, esc drops it)", m.filter))
	case m.filter != "":
		add(faintStyle.Render(fmt.Sprintf("filter %q (%d backends)   sort: %s   keys: / filter, esc clear, ? help", m.filter, len(rows), order)))
	default:
		add(faintStyle.Render(fmt.Sprintf("sort: %s   keys: n c f s sort, r reverse, tab pool, / filter, p pause, ? help, q quit", order)))
	}
	return strings.Join(lines, "\n")
}

// helpLines is the help screen (?, F1 or h); any key closes it.
var helpLines = []string{
	"",
	"keys",
	"  ? F1 h       this help (any key closes it)",
	"  tab → l      next pool;  shift+tab ←  previous pool;  1-9  pool by number",
	"  n c f s      sort by name, claims/s, failures, state;  r  reverse",
	"  /            filter backends by name (enter keeps it, esc drops it)",
	"  p space      pause and resume reading the endpoint",
	"  + -          double, halve the interval between reads (100ms … 1m)",
	"  q ctrl+c     quit;  esc  clears the filter, else quits",
}

// tabs renders the pools' names, the shown one highlighted.
func (m model) tabs() string {
	var b strings.Builder
	b.WriteString("pools:")
	for i, n := range m.names {
		label := fmt.Sprintf("%d %s", i+1, n)
		if st := m.last[n].State; st != "running" {
			label = fmt.Sprintf("%d %s (%s)", i+1, n, st)
		}
		if n == m.cur {
			b.WriteString(" " + tabStyle.Render("["+label+"]"))
		} else {
			b.WriteString("  " + label + " ")
		}
	}
	return b.String()
}

// poolHeader renders the pool's lines: state and slots; claims/s, waiters
// and wait percentiles; claim errors by kind; connection counters and the
// resolver; the last errors, shortened to width w.
func poolHeader(p, prev statshttp.Pool, hasPrev bool, w int) []string {
	state := p.State
	switch state {
	case "running":
		state = goodStyle.Render(state)
	case "failed", "stopping", "stopped":
		state = badStyle.Render(state)
	}
	s := p.Slots
	l1 := fmt.Sprintf("%s %s  slots %d (idle %d, claimed %d)  waiters %d  oldest claim %v",
		titleStyle.Render(p.Name), state, s.Total, s.Connected, s.Claimed, p.Waiters, shortDuration(time.Duration(p.OldestClaim)))

	r, ok := 0.0, false
	var prevWaits *statshttp.Histogram
	if hasPrev {
		r, ok = rate(prev.Claims, p.Claims, prev.At, p.At)
		prevWaits = &prev.Waits
	}
	counts, since := waitsSince(prevWaits, p.Waits)
	window := "last interval"
	if !since {
		window = "since start"
	}
	l2 := fmt.Sprintf("claims/s %s  claims %d  wait p50 %s  p99 %s (%s)",
		formatRate(r, ok), p.Claims, percentile(p.Waits.Bounds, counts, 0.50), percentile(p.Waits.Bounds, counts, 0.99), window)

	e := p.ClaimErrors
	var kinds []string
	for _, k := range []struct {
		name string
		n    uint64
	}{{"no_backends", e.NoBackends}, {"no_backends_online", e.NoBackendsOnline}, {"all_claims_used", e.AllClaimsUsed},
		{"closed", e.Closed}, {"context", e.Context}, {"no_idle", e.NoIdle}, {"shed", e.Shed},
		{"queue_full", e.QueueFull}, {"circuit_open", e.CircuitOpen}} {
		if k.n > 0 {
			kinds = append(kinds, fmt.Sprintf("%s %d", k.name, k.n))
		}
	}
	l3 := "claim errors: none"
	if len(kinds) > 0 {
		l3 = badStyle.Render("claim errors: " + strings.Join(kinds, " · "))
	}
	l4 := fmt.Sprintf("connects %d  failures %d  checks %d  discards %d  closes %d",
		p.Connects, p.Failures, p.Checks, p.Discards, p.Closes)
	l5 := fmt.Sprintf("resolver %s: %d backends, %d queries, %d errors",
		p.Resolver.State, len(p.Resolver.Backends), p.Resolver.Queries, p.Resolver.Errors)
	lines := []string{l1, l2, l3, l4, l5}
	if p.LastError != "" {
		lines = append(lines, "last error: "+shortError(p.LastError, w-len("last error: ")))
	}
	if p.Resolver.LastError != "" {
		lines = append(lines, "resolver error: "+shortError(p.Resolver.LastError, w-len("resolver error: ")))
	}
	return lines
}

// row is one backend's line.
type row struct {
	b      statshttp.Backend
	rate   float64
	rateOK bool
}

// sortedBackends returns the pool's backends with their claims/s, in the
// model's order.
func (m model) sortedBackends(p, prev statshttp.Pool, hasPrev bool) []row {
	rows := make([]row, 0, len(p.Backends))
	for _, b := range p.Backends {
		r := row{b: b}
		if hasPrev {
			for _, pb := range prev.Backends {
				if pb.Name == b.Name {
					r.rate, r.rateOK = rate(pb.Claims, b.Claims, prev.At, p.At)
				}
			}
		}
		rows = append(rows, r)
	}
	cmp := func(a, b row) int { return strings.Compare(a.b.Name, b.b.Name) }
	desc := func(x, y float64) int {
		switch {
		case x > y:
			return -1
		case x < y:
			return 1
		}
		return 0
	}
	byKey := cmp
	switch m.sortBy {
	case byRate:
		byKey = func(a, b row) int {
			if c := desc(rateOrMinus(a), rateOrMinus(b)); c != 0 {
				return c
			}
			return cmp(a, b)
		}
	case byFailures:
		byKey = func(a, b row) int {
			if c := desc(float64(a.b.Failures), float64(b.b.Failures)); c != 0 {
				return c
			}
			return cmp(a, b)
		}
	case byState:
		byKey = func(a, b row) int {
			if c := strings.Compare(a.b.State, b.b.State); c != 0 {
				return c
			}
			return cmp(a, b)
		}
	}
	slices.SortStableFunc(rows, byKey)
	if m.reverse {
		slices.Reverse(rows)
	}
	return rows
}

func rateOrMinus(r row) float64 {
	if !r.rateOK {
		return -1
	}
	return r.rate
}

// render formats the row in the columns of columnsHead. The last error
// takes what is left of the width when it fits there whole (after
// dropping leading "context: " parts); otherwise it goes on a line of its
// own below the row.
func (r row) render(w, nw int) []string {
	b := r.b
	name := b.Name
	if ansi.StringWidth(name) > nw {
		name = ansi.Truncate(name, nw, "…")
	}
	s := b.Slots
	line := fmt.Sprintf("%-*s %-8s %7s %4d %4d %3d %4d %4d %3d",
		nw, name, b.State, formatRate(r.rate, r.rateOK), s.Connecting, s.Connected, s.Checking, s.Claimed, s.Failed, s.Total)
	errText := b.LastError
	if errText == "" {
		return []string{line}
	}
	if b.LastErrorAge > 0 {
		errText = ago(b.LastErrorAge) + ": " + errText
	}
	if b.Dead {
		errText = "dead: " + errText
	}
	style := faintStyle
	if b.State != "online" || b.Dead {
		style = badStyle
	}
	rest := w - ansi.StringWidth(line) - 1
	if short := shortError(errText, rest); !strings.HasSuffix(short, "…") && rest > 0 {
		return []string{line + " " + style.Render(short)}
	}
	return []string{line, style.Render("  └ " + shortError(errText, w-4))}
}

// shortError fits an error's text in width columns: it drops leading
// "context: " parts (keeping a "dead: " mark) until the rest fits, then
// truncates.
func shortError(s string, width int) string {
	mark := ""
	if rest, ok := strings.CutPrefix(s, "dead: "); ok {
		mark, s = "dead: ", rest
	}
	for range 20 { // an error has few parts; bound the loop all the same
		if ansi.StringWidth(mark+s) <= width {
			break
		}
		_, rest, ok := strings.Cut(s, ": ")
		if !ok {
			break
		}
		s = rest
	}
	return ansi.Truncate(mark+s, width, "…")
}

// shortDuration rounds a duration for reading: to 1µs below a
// millisecond, to 0.1ms below a second, to 10ms above.
func shortDuration(d time.Duration) time.Duration {
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond)
	case d < time.Second:
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(10 * time.Millisecond)
}

// ago says how long ago something came, as a short "5s ago": whole
// seconds, minutes or hours as the age grows.
func ago(d time.Duration) string {
	switch {
	case d < time.Second:
		return "now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d/time.Minute))
	}
	return fmt.Sprintf("%dh ago", int(d/time.Hour))
}
