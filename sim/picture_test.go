package sim

import (
	"bytes"
	"flag"
	"fmt"
	"html"
	"math"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden picture in testdata")

// TestPicture draws the default scenario's picture. With -update it
// rewrites sim/testdata/backend-dies-under-load.svg, the picture
// docs/sim.md shows (go test ./sim -run TestPicture -update). The picture
// is not compared: it changes, rightly, whenever the pool's behaviour does.
func TestPicture(t *testing.T) {
	sc, err := Load("../testdata/scenarios/backend-dies-under-load.toml")
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(sc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	r.WriteSVG(&b)
	if !strings.HasPrefix(b.String(), "<svg") || !strings.Contains(b.String(), "db-2") {
		t.Fatalf("not a picture:\n%.300s", b.String())
	}
	const golden = "testdata/backend-dies-under-load.svg"
	if *update {
		if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if _, err := os.Stat(golden); err != nil {
		t.Errorf("%s: %v", golden, err)
	}
}

func TestPictureTicksAreRound(t *testing.T) {
	for _, tc := range []struct {
		total time.Duration
		step  time.Duration
	}{
		{5 * time.Minute, 30 * time.Second}, {2*time.Minute + 30*time.Second, 15 * time.Second},
		{10 * time.Second, time.Second}, {90 * time.Second, 10 * time.Second}, {time.Hour, 10 * time.Minute},
		{7 * time.Hour, time.Hour}, {300 * time.Millisecond, 50 * time.Millisecond}, {30 * 24 * time.Hour, 3 * 24 * time.Hour},
	} {
		if got := timeStep(tc.total); got != tc.step {
			t.Errorf("timeStep(%v) = %v, want %v", tc.total, got, tc.step)
		}
	}
	for _, tc := range []struct{ max, step int }{{0, 1}, {3, 1}, {8, 1}, {9, 2}, {16, 2}, {17, 5}, {40, 5}, {41, 10}, {268, 50}, {1000, 200}} {
		if got := countStep(tc.max); got != tc.step {
			t.Errorf("countStep(%d) = %d, want %d", tc.max, got, tc.step)
		}
	}
	for d, want := range map[time.Duration]string{0: "0s", 30 * time.Second: "30s", 2 * time.Minute: "2m",
		90 * time.Second: "1m30s", time.Hour: "1h", 90 * time.Minute: "1h30m", 10 * time.Millisecond: "10ms"} {
		if got := tickLabel(d); got != want {
			t.Errorf("tickLabel(%v) = %q, want %q", d, got, want)
		}
	}
}

var svgText = regexp.MustCompile(`<text x="([0-9.]+)" y="([0-9.]+)" fill="#a33" font-size="10">([^<]*)</text>`)

// TestPictureFaultLabelsDoNotOverlap draws twelve faults, most of them
// within seconds of each other: their labels go to lanes above the
// panels, none over another.
func TestPictureFaultLabelsDoNotOverlap(t *testing.T) {
	text := "name = \"labels\"\nduration = \"2m\"\n[[backends]]\nname = \"db\"\ncount = 3\n[[clients]]\nname = \"c\"\n[clients.workload]\nrate = 5\n"
	for i := range 12 {
		text += fmt.Sprintf("[[faults]]\nat = \"%ds\"\nkind = \"slow\"\nbackends = [\"db-%d\"]\nfactor = 2\nfor = \"%ds\"\n", 20+2*i, 1+i%3, 5+i)
	}
	r, _ := runText(t, "labels.toml", text)
	var b strings.Builder
	r.WriteSVG(&b)
	type span struct{ x0, x1, y float64 }
	var spans []span
	more := 0
	for _, m := range svgText.FindAllStringSubmatch(b.String(), -1) {
		if _, err := fmt.Sscanf(m[3], "%d more faults", &more); err == nil {
			continue
		}
		x, y := mustFloat(t, m[1]), mustFloat(t, m[2])
		spans = append(spans, span{x, x + textWidth(html.UnescapeString(m[3]), labelFont), y})
	}
	if len(spans) < maxLanes || len(spans)+more != 12 {
		t.Errorf("%d fault labels and %d more; want at least %d labelled (a lane each), the others counted", len(spans), more, maxLanes)
	}
	for i, a := range spans {
		for _, c := range spans[i+1:] {
			if a.y == c.y && a.x0 < c.x1 && c.x0 < a.x1 {
				t.Errorf("labels at (%v, %v) and (%v, %v) overlap", a.x0, a.y, c.x0, c.y)
			}
		}
		if a.x1 > svgW {
			t.Errorf("label at %v runs past the right edge (%v)", a.x0, a.x1)
		}
	}
}

// TestPictureEmptyPanelsSayWhy: a run with no claims, and one where no
// backend ever accepts a connection, say so in the panel that stays
// empty.
func TestPictureEmptyPanelsSayWhy(t *testing.T) {
	for _, tc := range []struct{ name, text, want string }{
		{"no-claims", "duration = \"1m\"\n[[backends]]\nname = \"db\"\n[[clients]]\nname = \"c\"\n", "no claim was made"},
		{"all-down", "duration = \"1m\"\n[[backends]]\nname = \"db\"\ndown = true\n[[clients]]\nname = \"c\"\n[clients.workload]\nrate = 1\n",
			"no connection was open"},
		{"all-down-claims", "duration = \"1m\"\n[[backends]]\nname = \"db\"\ndown = true\n[[clients]]\nname = \"c\"\n[clients.workload]\nrate = 1\n",
			"no claim was served"},
	} {
		r, _ := runText(t, tc.name+".toml", "name = \""+tc.name+"\"\n"+tc.text)
		var b strings.Builder
		r.WriteSVG(&b)
		if !strings.Contains(b.String(), tc.want) {
			t.Errorf("%s: the picture does not say %q", tc.name, tc.want)
		}
	}
}

var (
	svgPath     = regexp.MustCompile(`<path class="(wait-max|wait-mean)"[^>]* stroke-width="([0-9.]+)"[^>]* d="([^"]*)"`)
	svgConnLine = regexp.MustCompile(`<polyline class="conns"[^>]* stroke-width="([0-9.]+)"([^>]*) points="([^"]*)"><title>([^<]*)</title>`)
)

// waitPaths returns the d of each wait line of a picture, by class, in
// the order drawn, and their widths.
func waitPaths(t *testing.T, svg string) (d map[string]string, width map[string]float64, order []string) {
	t.Helper()
	d, width = map[string]string{}, map[string]float64{}
	for _, m := range svgPath.FindAllStringSubmatch(svg, -1) {
		d[m[1]], width[m[1]] = m[3], mustFloat(t, m[2])
		order = append(order, m[1])
	}
	return d, width, order
}

// pictureOf draws a result made of the points given, over backends
// named db-1 … db-n.
func pictureOf(points []point, backends int) string {
	r := &Result{Scenario: "synthetic", Seed: 1, Virtual: Duration(time.Duration(len(points)) * time.Second), series: &series{points: points}}
	for i := range backends {
		r.Backends = append(r.Backends, BackendResult{Name: fmt.Sprintf("db-%d", i+1)})
	}
	for _, p := range points {
		r.Fleet.Claims += p.served
		r.Fleet.Waits.Max = max(r.Fleet.Waits.Max, Duration(p.maxW))
	}
	var b strings.Builder
	r.WriteSVG(&b)
	return b.String()
}

// TestPictureWaitLineBreaksAtGaps: the wait lines are not drawn across
// intervals that served no claim: a gap of three seconds in the middle
// gives each line two segments, neither of which crosses the gap; a
// lone interval with claims is a short dash of its own.
func TestPictureWaitLineBreaksAtGaps(t *testing.T) {
	var points []point
	for i := range 10 {
		p := point{at: int64(i+1) * int64(time.Second), held: []int32{2}}
		if i < 3 || i > 5 {
			p.served, p.maxW, p.meanW = 5, int64(time.Duration(i+1)*time.Millisecond), int64(time.Millisecond)
		} else {
			p.failed = 4
		}
		points = append(points, p)
	}
	d, _, _ := waitPaths(t, pictureOf(points, 1))
	x := func(sec int) float64 { return svgLeft + float64(sec)/10*plotWidth }
	for _, class := range []string{"wait-max", "wait-mean"} {
		subs := strings.Split(strings.TrimSpace(d[class]), "M")[1:]
		if len(subs) != 2 {
			t.Fatalf("%s: %d segments, want 2: %q", class, len(subs), d[class])
		}
		// The first ends at 3s, the second starts at 7s.
		last := strings.Fields(subs[0])
		if end := mustFloat(t, strings.Split(strings.TrimPrefix(last[len(last)-1], "L"), ",")[0]); end != math.Round(x(3)*10)/10 {
			t.Errorf("%s: the first segment ends at x=%v, want %v (3s)", class, end, x(3))
		}
		if start := mustFloat(t, strings.Split(subs[1], ",")[0]); start != math.Round(x(7)*10)/10 {
			t.Errorf("%s: the second segment starts at x=%v, want %v (7s)", class, start, x(7))
		}
	}
	// One interval with claims between two without: a dash.
	for i := range points {
		if i != 4 {
			points[i].served = 0
		} else {
			points[i].served, points[i].maxW, points[i].meanW = 1, int64(time.Millisecond), int64(time.Millisecond)
		}
	}
	d, _, _ = waitPaths(t, pictureOf(points, 1))
	if !regexp.MustCompile(`^M[0-9.]+,[0-9.]+ h3$`).MatchString(d["wait-max"]) {
		t.Errorf("a lone interval: %q, want a short dash", d["wait-max"])
	}
}

// TestPictureAllDownBreaksTheWaitLine: in all-down-then-back every
// claim fails while the backends are down, and the wait line has no
// point there.
func TestPictureAllDownBreaksTheWaitLine(t *testing.T) {
	sc, err := Load("../testdata/scenarios/all-down-then-back.toml")
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(sc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	r.WriteSVG(&b)
	d, _, _ := waitPaths(t, b.String())
	if n := strings.Count(d["wait-max"], "M"); n < 2 {
		t.Errorf("the longest wait is %d segment(s) across the outage (1m to 3m): %q", n, d["wait-max"])
	}
	x := func(t time.Duration) float64 { return svgLeft + float64(t)/float64(r.Virtual)*plotWidth }
	for _, seg := range strings.Split(d["wait-max"], "M")[1:] {
		pts := strings.Fields(seg)
		first := mustFloat(t, strings.Split(strings.TrimLeft(pts[0], "ML"), ",")[0])
		lastPt := strings.TrimLeft(pts[len(pts)-1], "ML")
		if lastPt == "h3" {
			continue
		}
		last := mustFloat(t, strings.Split(lastPt, ",")[0])
		// No segment runs from before the outage's first 10s to after
		// its last 10s.
		if first < x(70*time.Second) && last > x(170*time.Second) {
			t.Errorf("a segment from x=%v to x=%v crosses the outage (x %v to %v)", first, last, x(time.Minute), x(3*time.Minute))
		}
	}
}

// TestPictureEqualLinesBothVisible: two backends with the same
// connections at every sample, and a longest wait equal to the mean:
// each line drawn first is wider than the one drawn over it, by enough
// to show on both sides.
func TestPictureEqualLinesBothVisible(t *testing.T) {
	var points []point
	for i := range 20 {
		w := int64(time.Duration(i+1) * time.Millisecond)
		points = append(points, point{at: int64(i+1) * int64(time.Second), held: []int32{int32(3 + i%2), int32(3 + i%2)}, served: 1, maxW: w, meanW: w})
	}
	svg := pictureOf(points, 2)
	lines := svgConnLine.FindAllStringSubmatch(svg, -1)
	if len(lines) != 2 {
		t.Fatalf("%d connection lines, want 2", len(lines))
	}
	if lines[0][3] != lines[1][3] {
		t.Fatalf("the two lines differ: %q and %q", lines[0][3], lines[1][3])
	}
	under, over := mustFloat(t, lines[0][1]), mustFloat(t, lines[1][1])
	if under-over < 0.8 {
		t.Errorf("%s (drawn first, under) is %vpx wide, %s over it %vpx: the one under does not show", lines[0][4], under, lines[1][4], over)
	}
	d, width, order := waitPaths(t, svg)
	if d["wait-max"] != d["wait-mean"] {
		t.Fatalf("the waits differ: %q and %q", d["wait-max"], d["wait-mean"])
	}
	if len(order) != 2 || order[0] != "wait-mean" || width["wait-mean"]-width["wait-max"] < 0.8 {
		t.Errorf("waits drawn %v with widths %v: the mean must be drawn first and wider", order, width)
	}
	// Backends past the palette's ten colours are told apart by dashes,
	// and the widths fall from the first drawn to the last.
	styles := lineStyles(24)
	for i := range styles {
		for j := i + 1; j < len(styles); j++ {
			if i%len(palette) == j%len(palette) && styles[i].dash == styles[j].dash {
				t.Errorf("backends %d and %d: same colour, same dash", i, j)
			}
		}
		if i%len(palette) > 0 && styles[i-1].width-styles[i].width < 0.4 {
			t.Errorf("backend %d: %vpx, %d: %vpx", i-1, styles[i-1].width, i, styles[i].width)
		}
	}
}
