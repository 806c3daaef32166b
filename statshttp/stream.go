package statshttp

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// stream sends what get returns as server-sent events, one at once and one
// every interval, until the client goes away (the request's context ends),
// the handler is closed, MaxStream has passed, a write fails or takes
// longer than the write timeout, or get fails (an "error" event, then the
// end).
func (h *Handler) stream(w http.ResponseWriter, r *http.Request, interval time.Duration, get func() (any, error)) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		writeError(w, http.StatusServiceUnavailable, errors.New("statshttp: the handler is closed"))
		return
	}
	if m := h.cfg.MaxStreams; m > 0 && h.open >= m {
		h.mu.Unlock()
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, fmt.Errorf("statshttp: %d streams open, the most allowed (Config.MaxStreams)", m))
		return
	}
	h.open++
	h.streams.Add(1)
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.open--
		ended := h.ended
		h.mu.Unlock()
		if ended != nil {
			ended <- struct{}{}
		}
		h.streams.Done()
	}()

	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no") // ask proxies not to buffer
	w.WriteHeader(http.StatusOK)

	tick := time.NewTicker(interval)
	defer tick.Stop()
	end := time.NewTimer(h.cfg.MaxStream)
	defer end.Stop()
	for id := uint64(1); ; id++ {
		v, err := get()
		if err != nil {
			h.writeEvent(w, rc, id, "error", Error{Error: err.Error()})
			return
		}
		if err := h.writeEvent(w, rc, id, "stats", v); err != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-h.done:
			return
		case <-end.C:
			return
		case <-tick.C:
		}
	}
}

// writeEvent writes one event and flushes it to the client.
func (h *Handler) writeEvent(w io.Writer, rc *http.ResponseController, id uint64, event string, v any) error {
	b, err := json.Marshal(v) // one line: encoding/json writes no newline
	if err != nil {
		return err
	}
	if err := rc.SetWriteDeadline(time.Now().Add(h.cfg.WriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", id, event, b); err != nil {
		return err
	}
	return rc.Flush()
}
