package main

import (
	"fmt"
	"time"

	"github.com/qorbgo/qorb/statshttp"
)

// rate is the growth of a counter per second between two snapshots
// stamped prevAt and at: (now - prev) / (at - prevAt). It is not known
// (ok false) without an earlier snapshot, when the stamps do not advance,
// or when the counter went down (the pool behind the name was replaced).
func rate(prev, now uint64, prevAt, at time.Time) (perSec float64, ok bool) {
	dt := at.Sub(prevAt)
	if prevAt.IsZero() || dt <= 0 || now < prev {
		return 0, false
	}
	return float64(now-prev) / dt.Seconds(), true
}

// waitsSince returns the histogram of the waits counted between prev and
// cur: cur's counts less prev's. With no usable prev (none, other bounds,
// or a count that went down) it returns cur's counts since the pool
// started, and since is false.
func waitsSince(prev *statshttp.Histogram, cur statshttp.Histogram) (counts []uint64, since bool) {
	if prev == nil || len(prev.Counts) != len(cur.Counts) || len(prev.Bounds) != len(cur.Bounds) {
		return cur.Counts, false
	}
	for i, b := range cur.Bounds {
		if prev.Bounds[i] != b {
			return cur.Counts, false
		}
	}
	d := make([]uint64, len(cur.Counts))
	for i, n := range cur.Counts {
		if n < prev.Counts[i] {
			return cur.Counts, false
		}
		d[i] = n - prev.Counts[i]
	}
	return d, true
}

// percentile returns the label of the bucket holding the q-quantile
// (0 < q ≤ 1) of counts over bounds: the smallest bucket whose cumulative
// count reaches ⌈q·total⌉. The label is the bucket's bound ("≤10ms"; "0s"
// for the zero bucket, since waits are never negative), or "> B" past the
// last bound; "-" when counts hold nothing. No value inside a bucket is
// invented.
func percentile(bounds []statshttp.Duration, counts []uint64, q float64) string {
	var total uint64
	for _, n := range counts {
		total += n
	}
	if total == 0 {
		return "-"
	}
	rank := uint64(q * float64(total))
	if float64(rank) < q*float64(total) {
		rank++ // ceiling
	}
	rank = max(rank, 1)
	var cum uint64
	for i, n := range counts {
		cum += n
		if cum >= rank {
			return bucketLabel(bounds, i)
		}
	}
	return bucketLabel(bounds, len(counts)-1)
}

// bucketLabel names bucket i of a histogram with bounds.
func bucketLabel(bounds []statshttp.Duration, i int) string {
	switch {
	case i >= len(bounds) && len(bounds) > 0:
		return ">" + bounds[len(bounds)-1].String()
	case i >= len(bounds):
		return "?"
	case bounds[i] == 0:
		return "0s"
	}
	return "≤" + bounds[i].String()
}

// formatRate prints a rate per second for a column: one decimal below
// 100, none above; "-" when it is not known.
func formatRate(r float64, ok bool) string {
	switch {
	case !ok:
		return "-"
	case r < 100:
		return fmt.Sprintf("%.1f", r)
	}
	return fmt.Sprintf("%.0f", r)
}
