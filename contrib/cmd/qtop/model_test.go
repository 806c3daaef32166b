package main

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"github.com/qorbgo/qorb/statshttp"
)

var (
	t0     = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	bounds = []statshttp.Duration{0, statshttp.Duration(100 * time.Microsecond), statshttp.Duration(time.Millisecond),
		statshttp.Duration(10 * time.Millisecond), statshttp.Duration(100 * time.Millisecond),
		statshttp.Duration(time.Second), statshttp.Duration(10 * time.Second)}
)

// be is a backend with claims, failures and slots (connecting, idle,
// checking, claimed, failed).
func be(name, state string, claims, failures uint64, slots ...int) statshttp.Backend {
	s := statshttp.Slots{}
	for i, p := range []*int{&s.Connecting, &s.Connected, &s.Checking, &s.Claimed, &s.Failed} {
		if i < len(slots) {
			*p = slots[i]
			s.Total += slots[i]
		}
	}
	return statshttp.Backend{Name: name, Addr: name, State: state, Claims: claims, Failures: failures, Slots: s}
}

// snap is a pool snapshot taken at t0+at.
func snap(name string, at time.Duration, claims uint64, waits []uint64, bs ...statshttp.Backend) statshttp.Pool {
	p := statshttp.Pool{Name: name, PoolName: name, At: t0.Add(at), State: "running", Claims: claims,
		Waits: statshttp.Histogram{Bounds: bounds, Counts: waits}, Backends: bs,
		Resolver: statshttp.Resolver{State: "resolved", Queries: 1}}
	for _, b := range bs {
		p.Slots.Total += b.Slots.Total
		p.Slots.Connected += b.Slots.Connected
		p.Slots.Claimed += b.Slots.Claimed
	}
	return p
}

func pools(at time.Duration, ps ...statshttp.Pool) snapshotMsg {
	return snapshotMsg{statshttp.Pools{At: t0.Add(at), Pools: ps}}
}

// feed sends msgs to m in order and returns the model.
func feed(t *testing.T, m tea.Model, msgs ...tea.Msg) model {
	t.Helper()
	for _, msg := range msgs {
		m, _ = m.Update(msg)
	}
	return m.(model)
}

func key(s string) tea.KeyMsg {
	switch s {
	case "tab":
		return tea.KeyMsg{Type: tea.KeyTab}
	case "shift+tab":
		return tea.KeyMsg{Type: tea.KeyShiftTab}
	case "left":
		return tea.KeyMsg{Type: tea.KeyLeft}
	case "ctrl+c":
		return tea.KeyMsg{Type: tea.KeyCtrlC}
	}
	return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(s)}
}

// screen renders m as plain text.
func screen(m model) string { return ansi.Strip(m.View()) }

// line returns the screen's line that starts with prefix.
func line(t *testing.T, scr, prefix string) string {
	t.Helper()
	for l := range strings.SplitSeq(scr, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	t.Fatalf("no line starts with %q:\n%s", prefix, scr)
	return ""
}

// rowOrder returns the backend names in the order of the table's rows.
func rowOrder(scr string) []string {
	var names []string
	for l := range strings.SplitSeq(scr, "\n") {
		if strings.HasPrefix(l, "be-") {
			names = append(names, strings.Fields(l)[0])
		}
	}
	return names
}

func newTestModel() model {
	return newModelWith("http://127.0.0.1:7070", time.Second, func() tea.Msg { return nil })
}

// twoSnapshots is a pool "db" read twice, two seconds apart.
func twoSnapshots() []tea.Msg {
	return []tea.Msg{
		pools(0, snap("db", 0, 100, []uint64{10, 0, 0, 0, 0, 0, 0, 0},
			be("be-a", "online", 0, 0, 0, 2, 0, 1, 0),
			be("be-b", "online", 100, 3, 0, 1, 0, 0, 0),
			be("be-c", "offline", 0, 7, 0, 0, 0, 0, 1))),
		pools(2*time.Second, snap("db", 2*time.Second, 1100, []uint64{10, 0, 500, 400, 100, 0, 0, 0},
			be("be-a", "online", 800, 0, 1, 2, 1, 1, 0),
			be("be-b", "online", 300, 3, 0, 1, 0, 2, 0),
			be("be-c", "offline", 0, 9, 0, 0, 0, 0, 1))),
	}
}

func TestViewRatesAndRows(t *testing.T) {
	m := feed(t, newTestModel(), twoSnapshots()...)
	scr := screen(m)
	// Pool: (1100-100) claims in 2 s; the waits of the last interval are
	// 500 ≤1ms, 400 ≤10ms, 100 ≤100ms: p50 in ≤1ms, p99 in ≤100ms.
	if l := line(t, scr, "claims/s"); l != "claims/s 500  claims 1100  wait p50 ≤1ms  p99 ≤100ms (last interval)" {
		t.Errorf("rates line: %q", l)
	}
	if l := line(t, scr, "db running"); !strings.Contains(l, "slots 9 (idle 3, claimed 3)  waiters 0  oldest claim 0s") {
		t.Errorf("pool line: %q", l)
	}
	line(t, scr, "claim errors: none")
	line(t, scr, "resolver resolved: 0 backends, 1 queries, 0 errors")
	// Backends: (800-0)/2 = 400/s, (300-100)/2 = 100/s, 0/s; slots by state.
	for _, want := range []string{
		"be-a                 online       400    1    2   1    1    0   5",
		"be-b                 online       100    0    1   0    2    0   3",
		"be-c                 offline      0.0    0    0   0    0    1   1",
	} {
		line(t, scr, want)
	}
	if got := rowOrder(scr); strings.Join(got, " ") != "be-a be-b be-c" {
		t.Errorf("rows by name: %v", got)
	}
}

func TestViewFirstSnapshot(t *testing.T) {
	m := feed(t, newTestModel(), twoSnapshots()[0])
	scr := screen(m)
	// One snapshot: no rate yet, and the waits since the pool started.
	if l := line(t, scr, "claims/s"); l != "claims/s -  claims 100  wait p50 0s  p99 0s (since start)" {
		t.Errorf("rates line: %q", l)
	}
	if l := line(t, scr, "be-a"); strings.Fields(l)[2] != "-" {
		t.Errorf("backend rate before two snapshots: %q", l)
	}
}

func TestSortKeys(t *testing.T) {
	m := feed(t, newTestModel(), twoSnapshots()...)
	for _, tc := range []struct {
		keys []string
		want string
		sort string
	}{
		{[]string{"c"}, "be-a be-b be-c", "sort: claims/s "},
		{[]string{"f"}, "be-c be-b be-a", "sort: failures "},
		{[]string{"f", "r"}, "be-a be-b be-c", "sort: failures, reversed "},
		{[]string{"s"}, "be-c be-a be-b", "sort: state "},
		{[]string{"n", "r"}, "be-c be-b be-a", "sort: name, reversed "},
		{[]string{"r", "n"}, "be-a be-b be-c", "sort: name "},
	} {
		mm := m
		for _, k := range tc.keys {
			mm = feed(t, mm, key(k))
		}
		scr := screen(mm)
		if got := strings.Join(rowOrder(scr), " "); got != tc.want {
			t.Errorf("keys %v: rows %s, want %s", tc.keys, got, tc.want)
		}
		line(t, scr, tc.sort)
	}
	// The rates order holds when rates change: be-b overtakes be-a.
	m = feed(t, m, key("c"), pools(3*time.Second, snap("db", 3*time.Second, 1600, nil,
		be("be-a", "online", 810, 0), be("be-b", "online", 700, 3), be("be-c", "offline", 0, 9))))
	if got := strings.Join(rowOrder(screen(m)), " "); got != "be-b be-a be-c" {
		t.Errorf("by claims/s after a new snapshot: %s", got)
	}
}

func TestSwitchPools(t *testing.T) {
	first := pools(0, snap("cache", 0, 5, nil, be("be-x", "online", 5, 0, 0, 1)),
		snap("db", 0, 100, nil, be("be-y", "online", 100, 0, 0, 1)))
	second := pools(time.Second, snap("cache", time.Second, 6, nil, be("be-x", "online", 6, 0, 0, 1)),
		snap("db", time.Second, 300, nil, be("be-y", "online", 300, 0, 0, 1)))
	m := feed(t, newTestModel(), first, second)
	shows := func(m model, pool, backend string, rate string) {
		t.Helper()
		scr := screen(m)
		line(t, scr, pool+" running")
		if l := line(t, scr, backend); strings.Fields(l)[2] != rate {
			t.Errorf("%s row: %q, want rate %s", backend, l, rate)
		}
		if strings.Contains(scr, map[string]string{"be-x": "be-y", "be-y": "be-x"}[backend]) {
			t.Errorf("pool %s shows the other pool's backend:\n%s", pool, scr)
		}
	}
	shows(m, "cache", "be-x", "1.0")
	line(t, screen(m), "pools: [1 cache]  2 db")
	for _, k := range []string{"tab", "right", "l", "2"} {
		shows(feed(t, m, key(k)), "db", "be-y", "200")
	}
	line(t, screen(feed(t, m, key("tab"))), "pools:  1 cache  [2 db]")
	for _, k := range []string{"shift+tab", "left"} { // h is help, as in top and htop
		shows(feed(t, m, key("tab"), key(k)), "cache", "be-x", "1.0")
	}
	shows(feed(t, m, key("tab"), key("tab")), "cache", "be-x", "1.0") // wraps around
	shows(feed(t, m, key("9")), "cache", "be-x", "1.0")               // no ninth pool: no change
}

func TestQuit(t *testing.T) {
	for _, k := range []string{"q", "ctrl+c"} {
		_, cmd := newTestModel().Update(key(k))
		if cmd == nil {
			t.Fatalf("%s: no command", k)
		}
		if _, ok := cmd().(tea.QuitMsg); !ok {
			t.Errorf("%s: the command is not quit", k)
		}
	}
	if _, cmd := newTestModel().Update(key("x")); cmd != nil {
		t.Errorf("x: a command %v", cmd)
	}
}

// TestRefresh: each answer or error schedules the next read, and the
// tick reads.
func TestRefresh(t *testing.T) {
	fetched := 0
	m := newModelWith("u", time.Millisecond, func() tea.Msg { fetched++; return nil })
	m.Init()()
	if fetched != 1 {
		t.Fatalf("Init read %d times", fetched)
	}
	for _, msg := range []tea.Msg{twoSnapshots()[0], fetchErrMsg{errors.New("x"), t0}} {
		_, cmd := m.Update(msg)
		if cmd == nil {
			t.Fatalf("%T: no next read scheduled", msg)
		}
		if _, ok := cmd().(tickMsg); !ok {
			t.Fatalf("%T: the command is not the tick", msg)
		}
	}
	_, cmd := m.Update(tickMsg{})
	cmd()
	if fetched != 2 {
		t.Errorf("the tick read %d times, want once more", fetched-1)
	}
}

func TestFetchErrorKeepsData(t *testing.T) {
	m := feed(t, newTestModel(), twoSnapshots()[0], fetchErrMsg{errors.New(`Get "http://127.0.0.1:7070/pools": connection refused`), t0})
	scr := screen(m)
	if l := line(t, scr, "! "); !strings.HasSuffix(l, `: Get "http://127.0.0.1:7070/pools": connection refused`) ||
		!strings.Contains(scr, "showing the last snapshot read") {
		t.Errorf("no error shown:\n%s", scr)
	}
	line(t, scr, "be-a")
	// A long error is shortened to the width from its start.
	long := fetchErrMsg{errors.New(`Get "http://127.0.0.1:7070/pools": dial tcp 127.0.0.1:7070: connect: connection refused`), t0}
	if l := line(t, screen(feed(t, m, long)), "! "); !strings.HasSuffix(l, ": dial tcp 127.0.0.1:7070: connect: connection refused") {
		t.Errorf("long error: %q", l)
	}
	m = feed(t, m, twoSnapshots()[1])
	if strings.Contains(screen(m), "connection refused") {
		t.Errorf("the error stays after a good read:\n%s", screen(m))
	}
	// Before any data, the error alone.
	m = feed(t, newTestModel(), fetchErrMsg{errors.New("boom"), t0})
	if scr := screen(m); !strings.Contains(scr, "boom") || strings.Contains(scr, "BACKEND") {
		t.Errorf("error before data:\n%s", scr)
	}
}

// TestWidth renders long names and errors in 80 columns: every line fits,
// and a dead backend's error keeps its end.
func TestWidth(t *testing.T) {
	long := be("be-a-very-long-backend-name.example.com:5432", "offline", 0, 9, 0, 0, 0, 0, 1)
	long.Dead = true
	long.LastError = "connect 127.0.0.1:45733: dial tcp 127.0.0.1:45733: connect: connection refused"
	p := snap("db", 0, 1, nil, long, be("be-b", "online", 1, 0, 0, 1))
	p.LastError = long.LastError + " and more text to make it long enough to overflow eighty columns"
	p.ClaimErrors = statshttp.ClaimErrors{NoBackends: 1, NoBackendsOnline: 22, AllClaimsUsed: 333, Closed: 4444, Context: 55555}
	m := feed(t, newTestModel(), tea.WindowSizeMsg{Width: 80, Height: 24}, pools(0, p))
	scr := screen(m)
	for l := range strings.SplitSeq(scr, "\n") {
		if w := ansi.StringWidth(l); w > 80 {
			t.Errorf("%d columns: %q", w, l)
		}
	}
	// In 80 columns the error does not fit after the row: it goes below.
	if l := line(t, scr, "be-a-very-long-back… offline "); l != "be-a-very-long-back… offline        -    0    0   0    0    1   1" {
		t.Errorf("dead row in 80 columns: %q", l)
	}
	line(t, scr, "  └ dead: dial tcp 127.0.0.1:45733: connect: connection refused")
	if l := line(t, scr, "last error: "); l != "last error: connection refused and more text to make it long enough to overflow…" {
		t.Errorf("pool's last error: %q", l)
	}
	if l := line(t, scr, "claim errors: "); !strings.HasPrefix(l, "claim errors: no_backends 1 · no_backends_online 22 · all_claims_used 333 · c") {
		t.Errorf("claim errors: %q", l)
	}
	// Wider, BACKEND widens with the window (leaving LAST ERROR room).
	scr = screen(feed(t, m, tea.WindowSizeMsg{Width: 100, Height: 24}))
	line(t, scr, "be-a-very-long-backend-name.example.co… offline ")
	// Wide enough for the whole name and the error's end after the row.
	scr = screen(feed(t, m, tea.WindowSizeMsg{Width: 140, Height: 24}))
	if l := line(t, scr, "be-a-very-long-backend-name.example.com:5432 offline"); !strings.HasSuffix(l, "   1 dead: connect: connection refused") {
		t.Errorf("dead row in 140 columns: %q", l)
	}
	if strings.Contains(scr, "└") {
		t.Errorf("an error line below a row, in 140 columns:\n%s", scr)
	}
	line(t, scr, "BACKEND                                      STATE")
}

// TestManyBackends keeps the keys on screen when the rows do not fit.
func TestManyBackends(t *testing.T) {
	var bs []statshttp.Backend
	for i := range 40 {
		b := be("be-"+string(rune('A'+i)), "online", 0, 0, 0, 1)
		if i%2 == 1 { // a long error: the row takes two lines
			b.LastError = strings.Repeat("too long to fit after the row ", 3)
		}
		bs = append(bs, b)
	}
	m := feed(t, newTestModel(), tea.WindowSizeMsg{Width: 80, Height: 24}, pools(0, snap("db", 0, 0, nil, bs...)))
	scr := screen(m)
	if n := strings.Count(scr, "\n") + 1; n > 24 {
		t.Errorf("%d lines for 24 rows", n)
	}
	line(t, scr, "sort: name")
	if l := line(t, scr, "… "); !strings.HasSuffix(l, "more backends (sorted by name)") {
		t.Errorf("hidden rows line: %q", l)
	}
	shown := len(rowOrder(scr))
	if !strings.HasPrefix(line(t, scr, "… "), "… "+strconv.Itoa(40-shown)+" more") {
		t.Errorf("%d rows shown, but: %q", shown, line(t, scr, "… "))
	}
}

func TestNoPools(t *testing.T) {
	m := feed(t, newTestModel(), pools(0))
	line(t, screen(m), "the endpoint serves no pool")
	if scr := screen(newTestModel()); !strings.Contains(scr, "reading http://127.0.0.1:7070") {
		t.Errorf("before the first read:\n%s", scr)
	}
}

// ?, F1 and h show the keys' help; any key closes it, q still quits.
func TestHelp(t *testing.T) {
	m := feed(t, newTestModel(), twoSnapshots()...)
	for _, k := range []tea.KeyMsg{key("?"), key("h"), {Type: tea.KeyF1}} {
		h := feed(t, m, k)
		scr := screen(h)
		line(t, scr, "  ? F1 h       this help")
		if strings.Contains(scr, "be-a") {
			t.Errorf("%s: the help screen shows the backends too:\n%s", k, scr)
		}
		back := feed(t, h, key("x"))
		line(t, screen(back), "be-a")
		if _, cmd := h.Update(key("q")); cmd == nil || cmd() != tea.Quit() {
			t.Errorf("%s, then q: does not quit", k)
		}
	}
}

// p (or space) pauses the reading: a tick fetches nothing, and the title
// says so; p again resumes.
func TestPause(t *testing.T) {
	fetched := 0
	m := newModelWith("http://x", time.Second, func() tea.Msg { fetched++; return nil })
	m = feed(t, m, twoSnapshots()...)
	p := feed(t, m, key("p"))
	if !strings.Contains(screen(p), "PAUSED") {
		t.Fatalf("no PAUSED in the title:\n%s", screen(p))
	}
	_, cmd := p.Update(tickMsg{})
	if cmd == nil {
		t.Fatal("a paused tick schedules nothing: it never resumes")
	}
	if fetched != 0 {
		t.Fatalf("%d fetches before any command ran", fetched)
	}
	// The paused tick's command is the next tick, not a fetch.
	if _, ok := cmd().(tickMsg); !ok {
		t.Fatal("a paused tick fetched")
	}
	r := feed(t, p, tea.KeyMsg{Type: tea.KeySpace})
	if strings.Contains(screen(r), "PAUSED") {
		t.Fatal("space did not resume")
	}
	_, cmd = r.Update(tickMsg{})
	cmd()
	if fetched != 1 {
		t.Fatalf("after resuming, a tick made %d fetches, want 1", fetched)
	}
}

// + and - double and halve the interval, within 100ms … 1m.
func TestIntervalKeys(t *testing.T) {
	m := feed(t, newTestModel(), twoSnapshots()...)
	iv := m.interval
	if got := feed(t, m, key("+")).interval; got != min(2*iv, maxInterval) {
		t.Errorf("+: %v from %v", got, iv)
	}
	if got := feed(t, m, key("-")).interval; got != max(iv/2, minInterval) {
		t.Errorf("-: %v from %v", got, iv)
	}
	lo := m
	for range 20 {
		lo = feed(t, lo, key("-"))
	}
	hi := m
	for range 20 {
		hi = feed(t, hi, key("+"))
	}
	if lo.interval != minInterval || hi.interval != maxInterval {
		t.Errorf("bounds: %v and %v, want %v and %v", lo.interval, hi.interval, minInterval, maxInterval)
	}
	line(t, screen(feed(t, m, key("+"))), "qtop ")
}

// / types a filter: only the backends whose name holds it are listed;
// enter keeps it, esc (typing or not) drops it.
func TestFilter(t *testing.T) {
	m := feed(t, newTestModel(), twoSnapshots()...)
	typing := feed(t, m, key("/"), key("E"), key("-"), key("x"), tea.KeyMsg{Type: tea.KeyBackspace}, key("B"))
	line(t, screen(typing), "filter: E-B_")
	kept := feed(t, typing, tea.KeyMsg{Type: tea.KeyEnter})
	scr := screen(kept)
	if got := strings.Join(rowOrder(scr), " "); got != "be-b" {
		t.Errorf("rows with filter E-B: %q\n%s", got, scr)
	}
	if !strings.Contains(scr, `filter "E-B" (1 backends)`) {
		t.Errorf("the keys' line does not say the filter:\n%s", scr)
	}
	// q while typing is a character, not a quit.
	if _, cmd := typing.Update(key("q")); cmd != nil {
		t.Error("q while typing the filter quits")
	}
	cleared := feed(t, kept, tea.KeyMsg{Type: tea.KeyEsc})
	if got := strings.Join(rowOrder(screen(cleared)), " "); got != "be-a be-b be-c" {
		t.Errorf("after esc: rows %q", got)
	}
	if _, cmd := cleared.Update(tea.KeyMsg{Type: tea.KeyEsc}); cmd == nil || cmd() != tea.Quit() {
		t.Error("esc with no filter does not quit")
	}
	dropped := feed(t, m, key("/"), key("a"), tea.KeyMsg{Type: tea.KeyEsc})
	if dropped.filter != "" || dropped.filtering {
		t.Errorf("esc while typing: filter %q, typing %v", dropped.filter, dropped.filtering)
	}
}

// A backend's last error says how long ago it came.
func TestLastErrorAge(t *testing.T) {
	b := be("be-a", "offline", 0, 3, 0, 0, 0, 0, 1)
	b.LastError, b.LastErrorAge = "dial tcp: connection refused", 5*time.Second
	m := feed(t, newTestModel(), pools(0, snap("db", 0, 0, nil, b)))
	if scr := screen(m); !strings.Contains(scr, "5s ago: dial tcp: connection refused") {
		t.Errorf("no age with the error:\n%s", scr)
	}
	for d, want := range map[time.Duration]string{0: "now", 500 * time.Millisecond: "now", 59 * time.Second: "59s ago", 3 * time.Minute: "3m ago", 2 * time.Hour: "2h ago"} {
		if got := ago(d); got != want {
			t.Errorf("ago(%v) = %q, want %q", d, got, want)
		}
	}
}
