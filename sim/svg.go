package sim

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// palette colours the backends' lines (Tableau 10, then repeated).
var palette = []string{"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"}

const (
	svgW      = 960
	svgLeft   = 70
	svgRight  = 70
	topY      = 60  // top panel: connections per backend
	topH      = 240 //
	botY      = 350 // bottom panel: claim waits and failures
	botH      = 170
	svgH      = 580
	plotWidth = svgW - svgLeft - svgRight
)

// WriteSVG draws the run: the connections open to each backend over time
// (top), the longest and mean claim wait in each interval on a log scale
// with the failed claims as red bars (bottom), and the faults as shaded
// bands across both.
func (r *Result) WriteSVG(w io.Writer) {
	se := r.series
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n", svgW, svgH, svgW, svgH)
	b.WriteString(`<rect width="100%" height="100%" fill="white"/>` + "\n")
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", svgLeft, esc(fmt.Sprintf("%s — seed %d", r.Scenario, r.Seed)))
	verdict, colour := "invariants ok", "#2a7"
	if err := r.Err(); err != nil {
		verdict, colour = err.Error(), "#c33"
	}
	fmt.Fprintf(&b, `<text x="%d" y="40" fill="%s">%s</text>`+"\n", svgLeft, colour, esc(truncate(verdict, 140)))
	total := float64(r.Virtual)
	if se == nil || total <= 0 {
		b.WriteString("</svg>\n")
		io.WriteString(w, b.String())
		return
	}
	x := func(t int64) float64 { return svgLeft + float64(t)/total*plotWidth }

	// Faults: bands from start to end (a thin line for instant ones).
	for _, f := range r.Faults {
		x0, x1 := x(int64(f.At)), x(int64(f.End))
		if x1-x0 < 2 {
			x1 = x0 + 2
		}
		fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="#e15759" fill-opacity="0.12"/>`+"\n", x0, topY, x1-x0, botY+botH-topY)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" fill="#a33" font-size="10">%s</text>`+"\n", x0+2, topY+10+12*(f.Index%4), esc(fmt.Sprintf("%d %s", f.Index, truncate(f.What, 40))))
	}

	// Top panel: connections per backend.
	maxHeld := 1
	for _, p := range se.points {
		for _, h := range p.held {
			maxHeld = max(maxHeld, int(h))
		}
	}
	yTop := func(v float64) float64 { return topY + topH - v/float64(maxHeld)*topH }
	axes(&b, topY, topH, "connections open per backend")
	for _, v := range ticks(float64(maxHeld)) {
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#eee"/><text x="%d" y="%.1f" text-anchor="end">%g</text>`+"\n",
			svgLeft, svgLeft+plotWidth, yTop(v), yTop(v), svgLeft-4, yTop(v)+4, v)
	}
	for i, br := range r.Backends {
		var pts []string
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(0), yTop(0)))
		for _, p := range se.points {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p.at), yTop(float64(p.held[i]))))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"><title>%s</title></polyline>`+"\n",
			palette[i%len(palette)], strings.Join(pts, " "), esc(br.Name))
	}
	// Legend, right of the top panel.
	for i, br := range r.Backends {
		if i == 16 {
			fmt.Fprintf(&b, `<text x="%d" y="%d">… %d more</text>`+"\n", svgLeft+plotWidth+8, topY+12+14*i, len(r.Backends)-16)
			break
		}
		y := topY + 8 + 14*i
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="10" height="3" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
			svgLeft+plotWidth+8, y, palette[i%len(palette)], svgLeft+plotWidth+22, y+5, esc(truncate(br.Name, 8)))
	}

	// Bottom panel: waits on a log scale, failures as bars.
	axes(&b, botY, botH, "claim wait per interval: longest (dark), mean (light); failed claims (red bars, right axis)")
	lo, hi := math.Log10(1e3), math.Log10(1e3) // 1µs
	var maxFail uint64
	for _, p := range se.points {
		if p.maxW > 0 {
			hi = max(hi, math.Log10(float64(p.maxW)))
		}
		maxFail = max(maxFail, p.failed)
	}
	hi = math.Ceil(hi)
	if hi <= lo {
		hi = lo + 1
	}
	yWait := func(ns int64) float64 {
		v := lo
		if ns > 0 {
			v = max(math.Log10(float64(ns)), lo)
		}
		return botY + botH - (v-lo)/(hi-lo)*botH
	}
	for e := lo; e <= hi; e++ {
		y := yWait(int64(math.Pow(10, e)))
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#eee"/><text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n",
			svgLeft, svgLeft+plotWidth, y, y, svgLeft-4, y+4, time.Duration(math.Pow(10, e)))
	}
	if maxFail > 0 {
		bw := max(plotWidth/float64(len(se.points)), 1)
		for _, p := range se.points {
			if p.failed == 0 {
				continue
			}
			h := float64(p.failed) / float64(maxFail) * botH
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#e15759" fill-opacity="0.7"/>`+"\n", x(p.at)-bw, botY+botH-h, bw, h)
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#c33">%d failed</text><text x="%d" y="%d" fill="#c33">0</text>`+"\n",
			svgLeft+plotWidth+4, botY+4, maxFail, svgLeft+plotWidth+4, botY+botH+4)
	}
	var maxPts, meanPts []string
	for _, p := range se.points {
		if p.served == 0 {
			continue
		}
		maxPts = append(maxPts, fmt.Sprintf("%.1f,%.1f", x(p.at), yWait(p.maxW)))
		meanPts = append(meanPts, fmt.Sprintf("%.1f,%.1f", x(p.at), yWait(p.meanW)))
	}
	if r.Fleet.Waits.Max == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" fill="#555">no claim waited</text>`+"\n", svgLeft+plotWidth/2, botY+botH/2)
	}
	fmt.Fprintf(&b, `<polyline fill="none" stroke="#9ecae1" stroke-width="1.2" points="%s"/>`+"\n", strings.Join(meanPts, " "))
	fmt.Fprintf(&b, `<polyline fill="none" stroke="#08519c" stroke-width="1.2" points="%s"/>`+"\n", strings.Join(maxPts, " "))

	// Time axis.
	for _, v := range ticks(r.Virtual.Seconds()) {
		xx := x(int64(v * 1e9))
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#999"/><text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n",
			xx, xx, botY+botH, botY+botH+4, xx, botY+botH+16, time.Duration(v*1e9))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">virtual time</text>`+"\n", svgLeft+plotWidth/2, botY+botH+34)
	fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#555">claims %d ok, %d failed; waits p99 %v, max %v; trace %.16s…</text>`+"\n",
		svgLeft, svgH-10, r.Fleet.Claims, r.Fleet.Errors.Failed(), r.Fleet.Waits.P99, r.Fleet.Waits.Max, r.TraceHash)
	b.WriteString("</svg>\n")
	io.WriteString(w, b.String())
}

func axes(b *strings.Builder, y, h int, title string) {
	fmt.Fprintf(b, `<text x="%d" y="%d" font-weight="bold">%s</text>`+"\n", svgLeft, y-6, esc(title))
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#999"/>`+"\n", svgLeft, y, plotWidth, h)
}

// ticks returns round values from 0 to about max, 4 to 10 of them.
func ticks(maxV float64) []float64 {
	if maxV <= 0 {
		return []float64{0}
	}
	step := math.Pow(10, math.Floor(math.Log10(maxV)))
	for maxV/step < 4 {
		step /= 2
	}
	for maxV/step > 10 {
		step *= 2
	}
	var out []float64
	for v := 0.0; v <= maxV+step/1e6; v += step {
		out = append(out, v)
	}
	return out
}

func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
