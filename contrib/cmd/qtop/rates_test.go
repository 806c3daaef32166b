package main

import (
	"slices"
	"testing"
	"time"

	"github.com/qorbgo/qorb/statshttp"
)

func TestRate(t *testing.T) {
	for _, tc := range []struct {
		name       string
		prev, now  uint64
		prevAt, at time.Time
		want       float64
		wantOK     bool
	}{
		{"two seconds", 100, 1100, t0, t0.Add(2 * time.Second), 500, true},
		{"half a second", 0, 1, t0, t0.Add(500 * time.Millisecond), 2, true},
		{"no change", 7, 7, t0, t0.Add(time.Second), 0, true},
		{"no earlier snapshot", 0, 10, time.Time{}, t0, 0, false},
		{"same stamp", 1, 10, t0, t0, 0, false},
		{"stamps backwards", 1, 10, t0.Add(time.Second), t0, 0, false},
		{"counter went down", 10, 1, t0, t0.Add(time.Second), 0, false},
	} {
		got, ok := rate(tc.prev, tc.now, tc.prevAt, tc.at)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("%s: %v %v, want %v %v", tc.name, got, ok, tc.want, tc.wantOK)
		}
	}
}

func TestPercentile(t *testing.T) {
	for _, tc := range []struct {
		counts []uint64
		q      float64
		want   string
	}{
		{[]uint64{0, 6, 2026, 1673, 13, 0, 0, 0}, 0.5, "≤1ms"},   // rank 1859 falls in the third bucket
		{[]uint64{0, 6, 2026, 1673, 13, 0, 0, 0}, 0.99, "≤10ms"}, // rank 3681 of 3718
		{[]uint64{0, 6, 2026, 1673, 13, 0, 0, 0}, 1, "≤100ms"},
		{[]uint64{10, 0, 0, 0, 0, 0, 0, 0}, 0.99, "0s"},
		{[]uint64{1, 0, 0, 0, 0, 0, 0, 1}, 0.5, "0s"},    // rank 1 of 2
		{[]uint64{1, 0, 0, 0, 0, 0, 0, 1}, 0.99, ">10s"}, // rank 2 of 2: past every bound
		{[]uint64{0, 0, 0, 0, 0, 0, 0, 0}, 0.5, "-"},
		{nil, 0.5, "-"},
		{[]uint64{0, 0, 0, 0, 0, 1, 0, 0}, 0.01, "≤1s"},
	} {
		if got := percentile(bounds, tc.counts, tc.q); got != tc.want {
			t.Errorf("p%v of %v = %s, want %s", tc.q*100, tc.counts, got, tc.want)
		}
	}
}

func TestWaitsSince(t *testing.T) {
	h := func(counts ...uint64) statshttp.Histogram { return statshttp.Histogram{Bounds: bounds, Counts: counts} }
	cur := h(5, 5, 5, 5, 5, 5, 5, 5)
	for _, tc := range []struct {
		name      string
		prev      *statshttp.Histogram
		want      []uint64
		wantSince bool
	}{
		{"difference", &statshttp.Histogram{Bounds: bounds, Counts: []uint64{1, 2, 3, 4, 5, 0, 0, 0}}, []uint64{4, 3, 2, 1, 0, 5, 5, 5}, true},
		{"no earlier", nil, cur.Counts, false},
		{"a count went down", &statshttp.Histogram{Bounds: bounds, Counts: []uint64{9, 0, 0, 0, 0, 0, 0, 0}}, cur.Counts, false},
		{"other bounds", &statshttp.Histogram{Bounds: bounds[:6], Counts: []uint64{0, 0, 0, 0, 0, 0, 0}}, cur.Counts, false},
	} {
		got, since := waitsSince(tc.prev, cur)
		if !slices.Equal(got, tc.want) || since != tc.wantSince {
			t.Errorf("%s: %v %v, want %v %v", tc.name, got, since, tc.want, tc.wantSince)
		}
	}
}

func TestShortError(t *testing.T) {
	e := "connect 127.0.0.1:45733: dial tcp 127.0.0.1:45733: connect: connection refused"
	for _, tc := range []struct {
		in    string
		width int
		want  string
	}{
		{e, 100, e},
		{e, 60, "dial tcp 127.0.0.1:45733: connect: connection refused"},
		{e, 40, "connect: connection refused"},
		{e, 20, "connection refused"},
		{"dead: " + e, 30, "dead: connection refused"},
		{"dead: " + e, 10, "dead: con…"},
		{"no parts to drop here at all", 10, "no parts …"},
	} {
		if got := shortError(tc.in, tc.width); got != tc.want {
			t.Errorf("shortError(%q, %d) = %q, want %q", tc.in, tc.width, got, tc.want)
		}
	}
}
