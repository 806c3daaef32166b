package statshttp

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"testing"
	"time"
)

// openStream starts a streaming GET of url with header Accept: accept (when
// not empty) and returns the reader of its body.
func openStream(t *testing.T, ctx context.Context, c *http.Client, url, accept string) *bufio.Reader {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s %s", url, resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	return bufio.NewReader(resp.Body)
}

// streamsEnd waits, at most deadline, for every stream of h to return.
func streamsEnd(t *testing.T, h *Handler) {
	t.Helper()
	done := make(chan struct{})
	go func() { h.streams.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(deadline):
		t.Fatalf("a stream still runs %v after its end was due", deadline)
	}
}

// TestStream reads a pool's stream while claims happen, sees the counter
// move, then cancels the client and checks that the stream ended.
func TestStream(t *testing.T) {
	p := memPool(t, "db", netip.MustParseAddrPort("127.0.0.1:5432"))
	h := New(Config{MinInterval: time.Millisecond})
	if err := h.Add("db", p); err != nil {
		t.Fatal(err)
	}
	srv := serve(t, h)

	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	r := openStream(t, ctx, srv.Client(), srv.URL+"/pools/db?stream=1&interval=5ms", "")

	var last Pool
	claimed := false
	for i := 1; i <= 10_000; i++ {
		ev, err := readEvent(r)
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if ev.id != strconv.Itoa(i) || ev.name != "stats" {
			t.Fatalf("event %d: id %q, name %q", i, ev.id, ev.name)
		}
		var got Pool
		if err := json.Unmarshal([]byte(ev.data), &got); err != nil {
			t.Fatalf("event %d: %v: %s", i, err, ev.data)
		}
		if got.Name != "db" || got.At.Before(last.At) {
			t.Fatalf("event %d: name %q, at %v after %v", i, got.Name, got.At, last.At)
		}
		if i == 1 && got.Claims != 0 {
			t.Fatalf("first event: %d claims before any", got.Claims)
		}
		last = got
		if got.Claims == 1 {
			break // the claim made after the first event shows
		}
		if !claimed {
			hd, err := p.Claim(ctx)
			if err != nil {
				t.Fatal(err)
			}
			hd.Release()
			claimed = true
		}
		// The loop ends when the claim shows or the context's deadline
		// ends the read.
		if i == 10_000 {
			t.Fatalf("the claim does not show after %d events", i)
		}
	}

	cancel() // the client goes away
	streamsEnd(t, h)
}

// TestStreamAccept asks for a stream of the index with an Accept header,
// reads two events, and closes the handler under it: the stream ends and
// the client sees the end of the body.
func TestStreamAccept(t *testing.T) {
	h := New(Config{Interval: 5 * time.Millisecond})
	if err := h.Add("db", memPool(t, "db", netip.MustParseAddrPort("127.0.0.1:5432"))); err != nil {
		t.Fatal(err)
	}
	srv := serve(t, h)

	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	r := openStream(t, ctx, srv.Client(), srv.URL+"/", "text/html;q=0.9, Text/Event-Stream")
	for i := 1; i <= 2; i++ {
		ev, err := readEvent(r)
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		var ix Index
		if err := json.Unmarshal([]byte(ev.data), &ix); err != nil || len(ix.Pools) != 1 || ix.Pools[0].Name != "db" {
			t.Fatalf("event %d: %v %+v", i, err, ix)
		}
	}

	h.Close() // waits for the stream to return
	for i := 0; ; i++ {
		_, err := readEvent(r)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil || i > 1000 { // events already sent may still be read
			t.Fatalf("after Close: %v after %d events", err, i)
		}
	}
}

// TestStreamRemoved removes the pool under its stream: the stream sends an
// error event and ends.
func TestStreamRemoved(t *testing.T) {
	h := New(Config{MinInterval: time.Millisecond})
	if err := h.Add("db", memPool(t, "db", netip.MustParseAddrPort("127.0.0.1:5432"))); err != nil {
		t.Fatal(err)
	}
	srv := serve(t, h)

	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	r := openStream(t, ctx, srv.Client(), srv.URL+"/pools/db?interval=2ms", "text/event-stream")
	if ev, err := readEvent(r); err != nil || ev.name != "stats" {
		t.Fatalf("first event: %+v %v", ev, err)
	}
	h.Remove("db")
	for i := 0; ; i++ {
		ev, err := readEvent(r)
		if err != nil || i > 1000 {
			t.Fatalf("no error event after Remove: %v after %d events", err, i)
		}
		if ev.name == "error" {
			var e Error
			if err := json.Unmarshal([]byte(ev.data), &e); err != nil || e.Error != `statshttp: no pool named "db"; pools: ` {
				t.Errorf("error event: %v %q", err, ev.data)
			}
			break
		}
	}
	if _, err := readEvent(r); !errors.Is(err, io.EOF) {
		t.Errorf("after the error event: %v, want EOF", err)
	}
	streamsEnd(t, h)
}

// TestStreamClientGone cancels the client while its stream waits for a
// long interval: only the request's context can end the stream then, and
// it must end at once.
func TestStreamClientGone(t *testing.T) {
	h := New(Config{})
	if err := h.Add("db", memPool(t, "db", netip.MustParseAddrPort("127.0.0.1:5432"))); err != nil {
		t.Fatal(err)
	}
	srv := serve(t, h)

	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	r := openStream(t, ctx, srv.Client(), srv.URL+"/pools/db?stream=true&interval=1h", "")
	if ev, err := readEvent(r); err != nil || ev.id != "1" {
		t.Fatalf("first event: %+v %v", ev, err)
	}
	cancel()
	streamsEnd(t, h)
}

// TestStreamMaxStream: a stream ends by itself after Config.MaxStream.
func TestStreamMaxStream(t *testing.T) {
	h := New(Config{MinInterval: time.Millisecond, MaxStream: 50 * time.Millisecond})
	if err := h.Add("db", memPool(t, "db", netip.MustParseAddrPort("127.0.0.1:5432"))); err != nil {
		t.Fatal(err)
	}
	srv := serve(t, h)

	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	r := openStream(t, ctx, srv.Client(), srv.URL+"/pools?stream=1&interval=5ms", "")
	n := 0
	for ; n <= 10_000; n++ {
		if _, err := readEvent(r); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("after %d events: %v", n, err)
		}
	}
	if took := time.Since(start); n < 2 || took < 50*time.Millisecond {
		t.Errorf("the stream ended after %d events and %v, want at least 50ms", n, took)
	}
	streamsEnd(t, h)
}

// TestMaxStreams: with two streams open, a third is refused with 503 and
// Retry-After; once one ends, a new one is served.
func TestMaxStreams(t *testing.T) {
	p := memPool(t, "db", netip.MustParseAddrPort("127.0.0.1:5432"))
	h := New(Config{MinInterval: time.Millisecond, MaxStreams: 2})
	h.ended = make(chan struct{}, 8)
	if err := h.Add("db", p); err != nil {
		t.Fatal(err)
	}
	srv := serve(t, h)
	ctx, cancel := context.WithTimeout(t.Context(), deadline)
	defer cancel()
	url := srv.URL + "/pools/db?stream=1"
	first, closeFirst := context.WithCancel(ctx)
	a := openStream(t, first, srv.Client(), url, "")
	b := openStream(t, ctx, srv.Client(), url, "")
	for _, r := range []*bufio.Reader{a, b} {
		if _, err := readEvent(r); err != nil {
			t.Fatal(err)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var e Error
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" || json.Unmarshal(body, &e) != nil || e.Error == "" {
		t.Fatalf("third stream: %d, Retry-After %q, %s; want 503, 1, an error", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	// The first ends: its slot is free again.
	closeFirst()
	select {
	case <-h.ended:
	case <-ctx.Done():
		t.Fatal("the cancelled stream did not end")
	}
	c := openStream(t, ctx, srv.Client(), url, "")
	if _, err := readEvent(c); err != nil {
		t.Fatal(err)
	}
}
