package sim

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// palette colours the backends' lines (Tableau 10, then repeated).
var palette = []string{"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"}

const (
	svgW      = 960
	svgLeft   = 70
	svgRight  = 70
	plotWidth = svgW - svgLeft - svgRight
	laneY     = 56  // the first lane of fault labels, above the panels
	laneH     = 12  // the height of a lane
	maxLanes  = 8   // labels that fit in no lane are counted, not drawn
	topH      = 240 // top panel: connections per backend
	panelGap  = 50  // between the panels (the bottom panel's title)
	botH      = 170 // bottom panel: claim waits and failures
	footH     = 60  // below the bottom panel: time axis and totals
	labelFont = 10  // font size of the fault labels
)

// WriteSVG draws the run: the connections open to each backend over time
// (top), the longest and mean claim wait in each interval on a log scale
// with the failed claims as red bars (bottom), and the faults as shaded
// bands across both, labelled above them. A panel with nothing to draw
// says why.
func (r *Result) WriteSVG(w io.Writer) {
	se := r.series
	total := float64(r.Virtual)
	x := func(t int64) float64 { return svgLeft + float64(t)/max(total, 1)*plotWidth }

	// Fault labels, in lanes above the panels: each label goes to the
	// first lane where it overlaps no other.
	type label struct {
		x    float64
		lane int
		text string
	}
	var labels []label
	var lanes [][][2]float64 // per lane, the spans taken
	hidden := 0
	faults := slices.Clone(r.Faults)
	slices.SortStableFunc(faults, func(a, b FaultResult) int { return cmp.Compare(a.At, b.At) })
	for _, f := range faults {
		text := fmt.Sprintf("%d %s", f.Index, truncate(f.What, 48))
		width := textWidth(text, labelFont)
		lx := min(x(int64(f.At))+2, svgW-4-width)
		span := [2]float64{lx, lx + width + 6}
		lane := -1
		for i, taken := range lanes {
			if !slices.ContainsFunc(taken, func(s [2]float64) bool { return s[0] < span[1] && span[0] < s[1] }) {
				lane = i
				break
			}
		}
		if lane < 0 && len(lanes) < maxLanes {
			lane = len(lanes)
			lanes = append(lanes, nil)
		}
		if lane < 0 {
			hidden++
			continue
		}
		lanes[lane] = append(lanes[lane], span)
		labels = append(labels, label{x: lx, lane: lane, text: text})
	}
	nl := len(lanes)
	if hidden > 0 {
		nl++
	}
	topY := laneY + nl*laneH + 18
	botY := topY + topH + panelGap
	svgH := botY + botH + footH

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n", svgW, svgH, svgW, svgH)
	b.WriteString(`<rect width="100%" height="100%" fill="white"/>` + "\n")
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", svgLeft, esc(fmt.Sprintf("%s — seed %d", r.Scenario, r.Seed)))
	verdict, colour := "invariants ok", "#2a7"
	if err := r.Err(); err != nil {
		verdict, colour = err.Error(), "#c33"
	}
	fmt.Fprintf(&b, `<text x="%d" y="40" fill="%s">%s</text>`+"\n", svgLeft, colour, esc(truncate(verdict, 140)))
	for _, l := range labels {
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" fill="#a33" font-size="%d">%s</text>`+"\n", l.x, laneY+l.lane*laneH+laneH-2, labelFont, esc(l.text))
	}
	if hidden > 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#a33" font-size="%d">%d more faults: see the summary</text>`+"\n", svgLeft, laneY+len(lanes)*laneH+laneH-2, labelFont, hidden)
	}

	// Faults: bands from start to end (a thin line for instant ones).
	for _, f := range r.Faults {
		x0, x1 := x(int64(f.At)), x(int64(min(f.End, r.Virtual)))
		if x1-x0 < 2 {
			x1 = x0 + 2
		}
		fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="#e15759" fill-opacity="0.12"><title>%s</title></rect>`+"\n",
			x0, topY, x1-x0, botY+botH-topY, esc(fmt.Sprintf("%d %s", f.Index, f.What)))
	}
	axes(&b, topY, topH, "connections open per backend")
	axes(&b, botY, botH, "claim wait per interval: longest (dark), mean (light); failed claims (red bars, right axis)")
	empty := func(y, h int, why string) {
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" fill="#555">%s</text>`+"\n", svgLeft+plotWidth/2, y+h/2, esc(why))
	}
	var points []point
	if se != nil {
		points = se.points
	}
	stopped := ""
	stopAt := Duration(-1)
	switch {
	case r.Violation != nil:
		stopped = fmt.Sprintf("the run stopped at %s: invariant %s violated", short(r.Violation.At), r.Violation.Invariant)
		stopAt = r.Violation.At
	case r.Budget != nil:
		stopped = fmt.Sprintf("the run stopped at %s over its budget of %s", short(r.Budget.At), r.Budget.Budget)
		stopAt = r.Budget.At
	}
	if stopAt >= 0 && stopAt <= r.Virtual {
		xv := x(int64(stopAt))
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#c33" stroke-dasharray="4 3"/>`+"\n", xv, xv, topY, botY+botH)
	}
	if total <= 0 || len(points) == 0 {
		why := "no sample: the run ended before the first interval"
		if stopped != "" {
			why = "no sample: " + stopped
		}
		empty(topY, topH, why)
		empty(botY, botH, why)
		r.footer(&b, botY, svgH, x)
		io.WriteString(w, b.String())
		return
	}

	// Top panel: connections per backend.
	maxHeld := 0
	for _, p := range points {
		for _, h := range p.held {
			maxHeld = max(maxHeld, int(h))
		}
	}
	step := countStep(maxHeld)
	yMax := max(int(math.Ceil(float64(maxHeld)/float64(step)))*step, step)
	yTop := func(v float64) float64 { return float64(topY+topH) - v/float64(yMax)*topH }
	for v := 0; v <= yMax; v += step {
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#eee"/><text x="%d" y="%.1f" text-anchor="end">%d</text>`+"\n",
			svgLeft, svgLeft+plotWidth, yTop(float64(v)), yTop(float64(v)), svgLeft-4, yTop(float64(v))+4, v)
	}
	if maxHeld == 0 {
		why := "no connection was open at any sample: no backend accepted one"
		if stopped != "" {
			why = "no connection was open before " + stopped
		}
		empty(topY, topH, why)
	}
	// One line per backend, the widest drawn first: a line that runs
	// exactly on another (two backends with the same connections) leaves
	// the one under it showing on both sides.
	styles := lineStyles(len(r.Backends))
	order := make([]int, len(r.Backends))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(styles[b].width, styles[a].width) })
	for _, i := range order {
		br := r.Backends[i]
		var pts []string
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(0), yTop(0)))
		for _, p := range points {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p.at), yTop(float64(p.held[i]))))
		}
		fmt.Fprintf(&b, `<polyline class="conns" fill="none" stroke="%s" stroke-width="%.2f"%s stroke-linejoin="round" points="%s"><title>%s</title></polyline>`+"\n",
			palette[i%len(palette)], styles[i].width, styles[i].dashAttr(), strings.Join(pts, " "), esc(br.Name))
	}
	// Legend, right of the top panel, each line as drawn.
	for i, br := range r.Backends {
		if i == 16 {
			fmt.Fprintf(&b, `<text x="%d" y="%d">… %d more</text>`+"\n", svgLeft+plotWidth+8, topY+12+14*i, len(r.Backends)-16)
			break
		}
		y := topY + 8 + 14*i
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="%.2f"%s/><text x="%d" y="%d">%s</text>`+"\n",
			svgLeft+plotWidth+6, svgLeft+plotWidth+20, y+1, y+1, palette[i%len(palette)], styles[i].width, styles[i].dashAttr(), svgLeft+plotWidth+22, y+5, esc(truncate(br.Name, 8)))
	}

	// Bottom panel: waits on a log scale, failures as bars.
	lo, hi := 3.0, 3.0 // log10 of 1µs in nanoseconds
	var maxFail, served uint64
	for _, p := range points {
		if p.maxW > 0 {
			hi = max(hi, math.Log10(float64(p.maxW)))
		}
		maxFail = max(maxFail, p.failed)
		served += p.served
	}
	hi = max(math.Ceil(hi), lo+1)
	yWait := func(ns int64) float64 {
		v := lo
		if ns > 0 {
			v = max(math.Log10(float64(ns)), lo)
		}
		return float64(botY+botH) - (v-lo)/(hi-lo)*botH
	}
	for e := lo; e <= hi; e++ {
		d := time.Duration(math.Round(math.Pow(10, e)))
		y := yWait(int64(d))
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#eee"/><text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n",
			svgLeft, svgLeft+plotWidth, y, y, svgLeft-4, y+4, tickLabel(d))
	}
	if maxFail > 0 {
		bw := max(plotWidth/float64(len(points)), 1)
		for _, p := range points {
			if p.failed == 0 {
				continue
			}
			h := float64(p.failed) / float64(maxFail) * botH
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#e15759" fill-opacity="0.7"/>`+"\n", x(p.at)-bw, float64(botY+botH)-h, bw, h)
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#c33">%d failed</text><text x="%d" y="%d" fill="#c33">0</text>`+"\n",
			svgLeft+plotWidth+4, botY+4, maxFail, svgLeft+plotWidth+4, botY+botH+4)
	}
	// The waits of the intervals that served a claim: an interval that
	// served none has no wait, and breaks the line.
	served0 := func(p point) bool { return p.served > 0 }
	maxPath := segments(points, served0, func(p point) (float64, float64) { return x(p.at), yWait(p.maxW) })
	meanPath := segments(points, served0, func(p point) (float64, float64) { return x(p.at), yWait(p.meanW) })
	switch {
	case served == 0 && maxFail == 0:
		why := "no claim was made: the workload issued none"
		if stopped != "" {
			why = "no claim was made before " + stopped
		}
		empty(botY, botH, why)
	case served == 0:
		empty(botY, botH, "no claim was served: every claim failed")
	case r.Fleet.Waits.Max == 0:
		empty(botY, botH, "no claim waited: every claim was served at once")
	}
	if maxPath != "" {
		// The mean under the longest, wider: where they are equal (one
		// claim in the interval) the mean shows on both sides.
		fmt.Fprintf(&b, `<path class="wait-mean" fill="none" stroke="#9ecae1" stroke-width="3.5" stroke-linecap="round" stroke-linejoin="round" d="%s"><title>mean wait</title></path>`+"\n", meanPath)
		fmt.Fprintf(&b, `<path class="wait-max" fill="none" stroke="#08519c" stroke-width="1.3" stroke-linecap="round" stroke-linejoin="round" d="%s"><title>longest wait</title></path>`+"\n", maxPath)
	}
	r.footer(&b, botY, svgH, x)
	io.WriteString(w, b.String())
}

// segments returns the path data of a line through the points for which
// has is true, broken where it is false: one subpath ("M … L …") for each
// run of points that have data. A run of one point is a short dash
// around it, so that it shows.
func segments(points []point, has func(point) bool, xy func(point) (float64, float64)) string {
	var b strings.Builder
	for i := 0; i < len(points); {
		if !has(points[i]) {
			i++
			continue
		}
		j := i
		for j < len(points) && has(points[j]) {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		if j-i == 1 {
			px, py := xy(points[i])
			fmt.Fprintf(&b, "M%.1f,%.1f h3", px-1.5, py)
		} else {
			for k := i; k < j; k++ {
				px, py := xy(points[k])
				cmd := 'L'
				if k == i {
					cmd = 'M'
				}
				fmt.Fprintf(&b, "%c%.1f,%.1f", cmd, px, py)
				if k < j-1 {
					b.WriteByte(' ')
				}
			}
		}
		i = j
	}
	return b.String()
}

// lineStyle is how one backend's line is drawn.
type lineStyle struct {
	width float64 // stroke width, in pixels
	dash  string  // stroke-dasharray, "" for a solid line
}

func (ls lineStyle) dashAttr() string {
	if ls.dash == "" {
		return ""
	}
	return ` stroke-dasharray="` + ls.dash + `"`
}

// lineDashes tell apart the lines of backends whose colours repeat (the
// palette has ten).
var lineDashes = []string{"", "7 3", "2 2", "9 3 2 3"}

// lineStyles gives the lines of n backends widths that fall from the
// first to the tenth by at least 0.4 pixels (widest drawn first, so that
// each line shows around the narrower ones drawn over it), and the
// backends past the palette's ten colours dashes of their own.
func lineStyles(n int) []lineStyle {
	k := min(n, len(palette))
	step := 1.0
	if k > 1 {
		step = min(1.0, 4.0/float64(k-1))
	}
	out := make([]lineStyle, n)
	for i := range out {
		out[i] = lineStyle{width: 1.2 + step*float64(k-1-i%len(palette)), dash: lineDashes[(i/len(palette))%len(lineDashes)]}
	}
	return out
}

// footer draws the time axis under the bottom panel and the totals, and
// closes the picture.
func (r *Result) footer(b *strings.Builder, botY, svgH int, x func(int64) float64) {
	if r.Virtual > 0 {
		step := timeStep(r.Virtual.D())
		for t := time.Duration(0); t <= r.Virtual.D(); t += step {
			xx := x(int64(t))
			fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#999"/><text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n",
				xx, xx, botY+botH, botY+botH+4, xx, botY+botH+16, tickLabel(t))
		}
	}
	fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="middle">virtual time</text>`+"\n", svgLeft+plotWidth/2, botY+botH+34)
	fmt.Fprintf(b, `<text x="%d" y="%d" fill="#555">claims %d ok, %d failed; waits p99 %s, max %s; trace %.16s…</text>`+"\n",
		svgLeft, svgH-10, r.Fleet.Claims, r.Fleet.Errors.Failed(), short(r.Fleet.Waits.P99), short(r.Fleet.Waits.Max), r.TraceHash)
	b.WriteString("</svg>\n")
}

func axes(b *strings.Builder, y, h int, title string) {
	fmt.Fprintf(b, `<text x="%d" y="%d" font-weight="bold">%s</text>`+"\n", svgLeft, y-6, esc(title))
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#999"/>`+"\n", svgLeft, y, plotWidth, h)
}

// countStep returns the step of a count axis up to maxV: 1, 2 or 5 times
// a power of ten, giving at most 8 steps.
func countStep(maxV int) int {
	for step := 1; ; step *= 10 {
		for _, m := range []int{1, 2, 5} {
			if maxV <= 8*m*step {
				return m * step
			}
		}
	}
}

// timeSteps are the round steps of a time axis.
var timeSteps = []time.Duration{
	time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond,
	50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
}

// timeStep returns the round step of a time axis from 0 to total: the
// smallest of timeSteps giving at most 10 steps (whole days beyond).
func timeStep(total time.Duration) time.Duration {
	for _, s := range timeSteps {
		if total <= 10*s {
			return s
		}
	}
	day := 24 * time.Hour
	return (total + 10*day - 1) / (10 * day) * day
}

// tickLabel formats a round duration without its zero units: "2m", not
// "2m0s"; "1h30m", not "1h30m0s".
func tickLabel(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// textWidth estimates the width of text in pixels at the given font size
// (sans-serif: about 0.6 of the size per character).
func textWidth(text string, size float64) float64 {
	return float64(utf8.RuneCountInString(text)) * size * 0.6
}

func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}

// truncate shortens s to at most n runes, ending it with "…".
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
