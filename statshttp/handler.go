package statshttp

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/qorbgo/qorb/pool"
)

// Source is anything that reports a pool's Stats: a *pool.Pool[C] for any
// connection type C, so pools of different types are served together.
// Stats is called from the handler's request goroutines and must be safe
// for concurrent use, as pool.Pool's is.
type Source interface {
	Stats() pool.Stats
}

// Config sets up a [Handler]. The zero value is usable.
type Config struct {
	// Interval is how often a stream sends a snapshot when the request does
	// not choose with ?interval=. Zero means one second.
	Interval time.Duration
	// MinInterval is the shortest interval a request may choose with
	// ?interval=; a shorter one is refused with 400 Bad Request, so that a
	// client cannot make the handler spin. Zero means 100 milliseconds.
	MinInterval time.Duration
	// WriteTimeout bounds each write of a stream to a client that does not
	// read: the stream ends when one write takes longer. Zero means 10
	// seconds. It is set on the connection through http.ResponseController
	// and ignored by a ResponseWriter that cannot set deadlines.
	WriteTimeout time.Duration
	// MaxStreams bounds the streams open at once: one more is refused
	// with 503 Service Unavailable and Retry-After: 1, so that clients
	// that open streams and never read cannot pile up goroutines and
	// socket buffers without bound (each holds up to its kernel send
	// buffer until WriteTimeout cuts it). Zero means 64; a negative value,
	// no bound.
	MaxStreams int
	// MaxStream bounds how long one stream lasts: it ends by itself after
	// that, and the client opens a new one (a browser's EventSource does so
	// on its own). Zero means one hour.
	MaxStream time.Duration
	// Now is the clock that stamps the snapshots (the At fields). Nil means
	// time.Now. It is the handler's clock, not the pool's.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.Interval <= 0 {
		c.Interval = time.Second
	}
	if c.MinInterval <= 0 {
		c.MinInterval = 100 * time.Millisecond
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.MaxStreams == 0 {
		c.MaxStreams = 64
	}
	if c.MaxStream <= 0 {
		c.MaxStream = time.Hour
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Errors returned by [Handler.Add].
var (
	// ErrBadName is returned for a name that is empty or holds a '/'.
	ErrBadName = errors.New("statshttp: a pool's name must be non-empty and hold no '/'")
	// ErrDuplicate is returned when a pool is already served under the name.
	ErrDuplicate = errors.New("statshttp: a pool is already served under this name")
	// ErrNilSource is returned when the source is nil.
	ErrNilSource = errors.New("statshttp: nil source")
)

// Handler is an http.Handler that serves the Stats of named pools as JSON,
// once or as a stream of server-sent events. Routes, relative to where it
// is mounted (use http.StripPrefix to mount it under a prefix):
//
//	GET /             an [Index]: the pools' names and states
//	GET /pools        a [Pools]: a snapshot of every pool
//	GET /pools/{name} a [Pool]: a snapshot of one pool (404 when unknown)
//
// Any of them streams instead when the request has ?stream=1 or an Accept
// header naming text/event-stream: see docs/statshttp.md. Errors are JSON
// objects {"error": "..."} with a 4xx or 5xx status.
//
// All methods are safe for concurrent use. Pools may be added and removed
// while requests are served.
type Handler struct {
	cfg Config
	mux *http.ServeMux

	mu      sync.Mutex
	sources map[string]Source
	done    chan struct{}  // closed by Close
	streams sync.WaitGroup // running streams
	open    int            // streams running now
	closed  bool
	// ended, when set (by tests), is told of each stream's end.
	ended chan struct{}
}

// New returns a handler that serves no pool yet; add them with
// [Handler.Add].
func New(cfg Config) *Handler {
	h := &Handler{cfg: cfg.withDefaults(), mux: http.NewServeMux(), sources: map[string]Source{}, done: make(chan struct{})}
	h.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { h.serve(w, r, h.index) })
	h.mux.HandleFunc("GET /pools", func(w http.ResponseWriter, r *http.Request) { h.serve(w, r, h.all) })
	h.mux.HandleFunc("GET /pools/{name}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		h.serve(w, r, func() (any, error) { return h.one(name) })
	})
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, fmt.Errorf("statshttp: method %s not allowed; use GET", r.Method))
			return
		}
		writeError(w, http.StatusNotFound, fmt.Errorf("statshttp: no route %s %s; routes: GET /, GET /pools, GET /pools/{name}", r.Method, r.URL.Path))
	})
	return h
}

// Add serves src under name. It fails with [ErrBadName], [ErrDuplicate] or
// [ErrNilSource].
func (h *Handler) Add(name string, src Source) error {
	if name == "" || strings.Contains(name, "/") {
		return fmt.Errorf("%w: %q", ErrBadName, name)
	}
	if src == nil {
		return ErrNilSource
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.sources[name]; ok {
		return fmt.Errorf("%w: %q", ErrDuplicate, name)
	}
	h.sources[name] = src
	return nil
}

// Remove stops serving the pool named name; a stream of that pool alone
// sends an error event and ends. It reports whether the name was served.
func (h *Handler) Remove(name string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.sources[name]
	delete(h.sources, name)
	return ok
}

// Close ends every stream and waits for their goroutines to return; later
// requests get 503 Service Unavailable. It does not close the pools.
// Close is idempotent.
func (h *Handler) Close() {
	h.mu.Lock()
	if !h.closed {
		h.closed = true
		close(h.done)
	}
	h.mu.Unlock()
	h.streams.Wait()
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mux.ServeHTTP(w, r)
}

// ErrUnknownPool is the error, served with 404 Not Found, for a pool name
// that the handler does not serve.
var ErrUnknownPool = errors.New("statshttp: no pool named")

// snapshotSources returns the served names, sorted, and their sources.
func (h *Handler) snapshotSources() ([]string, map[string]Source) {
	h.mu.Lock()
	defer h.mu.Unlock()
	names := make([]string, 0, len(h.sources))
	srcs := make(map[string]Source, len(h.sources))
	for n, s := range h.sources {
		names = append(names, n)
		srcs[n] = s
	}
	slices.Sort(names)
	return names, srcs
}

func (h *Handler) index() (any, error) {
	names, srcs := h.snapshotSources()
	ix := Index{At: h.cfg.Now(), Pools: make([]IndexEntry, 0, len(names))}
	for _, n := range names {
		ix.Pools = append(ix.Pools, IndexEntry{Name: n, State: srcs[n].Stats().State, Path: "pools/" + url.PathEscape(n)})
	}
	return ix, nil
}

func (h *Handler) all() (any, error) {
	names, srcs := h.snapshotSources()
	ps := Pools{At: h.cfg.Now(), Pools: make([]Pool, 0, len(names))}
	for _, n := range names {
		st := srcs[n].Stats()
		ps.Pools = append(ps.Pools, FromStats(n, h.cfg.Now(), st))
	}
	return ps, nil
}

func (h *Handler) one(name string) (any, error) {
	h.mu.Lock()
	src, ok := h.sources[name]
	h.mu.Unlock()
	if !ok {
		names, _ := h.snapshotSources()
		return nil, fmt.Errorf("%w %q; pools: %s", ErrUnknownPool, name, strings.Join(names, ", "))
	}
	st := src.Stats()
	return FromStats(name, h.cfg.Now(), st), nil
}

// serve answers r with what get returns, once or as a stream.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, get func() (any, error)) {
	select {
	case <-h.done:
		writeError(w, http.StatusServiceUnavailable, errors.New("statshttp: the handler is closed"))
		return
	default:
	}
	stream, interval, err := h.streamParams(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if stream {
		h.stream(w, r, interval, get)
		return
	}
	v, err := get()
	if err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(append(b, '\n'))
}

// streamParams reads ?stream=, the Accept header and ?interval=.
func (h *Handler) streamParams(r *http.Request) (stream bool, interval time.Duration, err error) {
	q := r.URL.Query()
	switch s := q.Get("stream"); s {
	case "":
		stream = acceptsEventStream(r.Header.Values("Accept"))
	case "1", "true":
		stream = true
	case "0", "false":
	default:
		return false, 0, fmt.Errorf("statshttp: ?stream=%q: want 1, true, 0 or false", s)
	}
	interval = h.cfg.Interval
	if s := q.Get("interval"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			return false, 0, fmt.Errorf("statshttp: ?interval=%q: %w", s, err)
		}
		if d < h.cfg.MinInterval {
			return false, 0, fmt.Errorf("statshttp: ?interval=%v is shorter than the minimum, %v", d, h.cfg.MinInterval)
		}
		interval = d
	}
	return stream, interval, nil
}

// acceptsEventStream reports whether an Accept header names
// text/event-stream.
func acceptsEventStream(accept []string) bool {
	for _, v := range accept {
		for part := range strings.SplitSeq(v, ",") {
			mt, _, _ := strings.Cut(part, ";")
			if strings.EqualFold(strings.TrimSpace(mt), "text/event-stream") {
				return true
			}
		}
	}
	return false
}

func statusOf(err error) int {
	if errors.Is(err, ErrUnknownPool) {
		return http.StatusNotFound
	}
	return http.StatusInternalServerError
}

// Error is the body of every error answer.
type Error struct {
	// Error says what went wrong, and for an unknown pool, which pools
	// are served.
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, err error) {
	b, _ := json.Marshal(Error{Error: err.Error()})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}
