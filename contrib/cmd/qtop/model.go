package main

import (
	"context"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/qorbgo/qorb/statshttp"
)

// snapshotMsg carries a snapshot of every pool.
type snapshotMsg struct{ pools statshttp.Pools }

// fetchErrMsg says a fetch failed, and when.
type fetchErrMsg struct {
	err error
	at  time.Time
}

// tickMsg asks for the next fetch.
type tickMsg struct{}

// sortKey orders the backend rows.
type sortKey int

const (
	byName     sortKey = iota // backend name, ascending
	byRate                    // claims/s, highest first
	byFailures                // failures counter, highest first
	byState                   // state name, then name
)

func (k sortKey) String() string {
	return [...]string{"name", "claims/s", "failures", "state"}[k]
}

// model is qtop's state: the last two snapshots of each pool, which pool
// is shown, the sort order, and the last fetch error.
type model struct {
	endpoint string        // shown in the title
	interval time.Duration // between the end of a fetch and the next
	fetch    func() tea.Msg

	names   []string                  // pools in the endpoint's order
	cur     string                    // the pool shown
	last    map[string]statshttp.Pool // newest snapshot by pool
	prev    map[string]statshttp.Pool // the one before, for rates
	at      time.Time                 // stamp of the newest answer
	fetches int                       // answers received

	err   error     // the last fetch's error, nil after a success
	errAt time.Time // when it failed

	sortBy  sortKey
	reverse bool

	help      bool   // the keys' help is shown (?, F1 or h)
	paused    bool   // no fetch until resumed (p or space): the screen stays
	filter    string // only backends whose name holds it (case-insensitive)
	filtering bool   // keys type the filter (after /, until enter or esc)

	width, height int
}

// newModel returns a model that reads e every interval, starting on pool
// first (the first pool when empty).
func newModel(e *endpoint, interval time.Duration, first string) model {
	m := newModelWith(e.root, interval, func() tea.Msg {
		ps, err := e.fetch(context.Background())
		if err != nil {
			return fetchErrMsg{err: err, at: time.Now()}
		}
		return snapshotMsg{ps}
	})
	m.cur = first
	return m
}

// newModelWith returns a model whose fetches call fetch; tests feed it
// messages instead.
func newModelWith(endpoint string, interval time.Duration, fetch func() tea.Msg) model {
	return model{
		endpoint: endpoint, interval: interval, fetch: fetch,
		last: map[string]statshttp.Pool{}, prev: map[string]statshttp.Pool{},
		width: 80, height: 24,
	}
}

// Init starts the first fetch.
func (m model) Init() tea.Cmd { return m.fetch }

// Update handles snapshots, fetch errors, the refresh tick, keys and the
// window's size.
func (m model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case snapshotMsg:
		m = m.withSnapshot(msg.pools)
		return m, m.next()
	case fetchErrMsg:
		m.err, m.errAt = msg.err, msg.at
		return m, m.next()
	case tickMsg:
		if m.paused {
			return m, m.next() // look again later; nothing is read meanwhile
		}
		return m, m.fetch
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		return m, nil
	case tea.KeyMsg:
		return m.key(msg)
	}
	return m, nil
}

// next schedules the next fetch.
func (m model) next() tea.Cmd {
	return tea.Tick(m.interval, func(time.Time) tea.Msg { return tickMsg{} })
}

// withSnapshot records a new answer: each pool's newest snapshot becomes
// its previous one. Pools no longer served are forgotten.
func (m model) withSnapshot(ps statshttp.Pools) model {
	last, prev := make(map[string]statshttp.Pool, len(ps.Pools)), make(map[string]statshttp.Pool, len(ps.Pools))
	names := make([]string, 0, len(ps.Pools))
	for _, p := range ps.Pools {
		names = append(names, p.Name)
		last[p.Name] = p
		if old, ok := m.last[p.Name]; ok {
			prev[p.Name] = old
		}
	}
	m.names, m.last, m.prev, m.at = names, last, prev, ps.At
	m.err = nil
	m.fetches++
	if _, ok := m.last[m.cur]; !ok && len(names) > 0 {
		m.cur = names[0]
	}
	return m
}

// Bounds of the refresh interval that + and - set.
const (
	minInterval = 100 * time.Millisecond
	maxInterval = time.Minute
)

// key handles a key press.
func (m model) key(k tea.KeyMsg) (tea.Model, tea.Cmd) {
	if m.filtering {
		return m.filterKey(k)
	}
	if m.help {
		// Any key closes the help; q and ctrl+c still quit.
		m.help = false
		if s := k.String(); s == "q" || s == "ctrl+c" {
			return m, tea.Quit
		}
		return m, nil
	}
	switch s := k.String(); s {
	case "q", "ctrl+c":
		return m, tea.Quit
	case "esc":
		if m.filter != "" {
			m.filter = "" // esc first clears the filter, then quits
			return m, nil
		}
		return m, tea.Quit
	case "?", "f1", "h":
		m.help = true
	case "p", " ":
		m.paused = !m.paused
	case "+", "=":
		m.interval = min(m.interval*2, maxInterval)
	case "-", "_":
		m.interval = max(m.interval/2, minInterval)
	case "/":
		m.filtering = true
	case "tab", "right", "l":
		m.cur = m.step(1)
	case "shift+tab", "left":
		m.cur = m.step(-1)
	case "1", "2", "3", "4", "5", "6", "7", "8", "9":
		if i := int(s[0] - '1'); i < len(m.names) {
			m.cur = m.names[i]
		}
	case "n":
		m.sortBy, m.reverse = byName, false
	case "c":
		m.sortBy, m.reverse = byRate, false
	case "f":
		m.sortBy, m.reverse = byFailures, false
	case "s":
		m.sortBy, m.reverse = byState, false
	case "r":
		m.reverse = !m.reverse
	}
	return m, nil
}

// filterKey handles a key while the filter is typed: characters add to
// it, backspace takes one off, enter keeps it, esc drops it.
func (m model) filterKey(k tea.KeyMsg) (tea.Model, tea.Cmd) {
	switch k.Type {
	case tea.KeyEnter:
		m.filtering = false
	case tea.KeyEsc:
		m.filtering, m.filter = false, ""
	case tea.KeyCtrlC:
		return m, tea.Quit
	case tea.KeyBackspace:
		if r := []rune(m.filter); len(r) > 0 {
			m.filter = string(r[:len(r)-1])
		}
	case tea.KeyRunes:
		m.filter += string(k.Runes)
	case tea.KeySpace:
		m.filter += " "
	}
	return m, nil
}

// step returns the name of the pool d places after the current one,
// wrapping around.
func (m model) step(d int) string {
	if len(m.names) == 0 {
		return m.cur
	}
	i := 0
	for j, n := range m.names {
		if n == m.cur {
			i = j
		}
	}
	return m.names[((i+d)%len(m.names)+len(m.names))%len(m.names)]
}
