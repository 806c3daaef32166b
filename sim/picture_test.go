package sim

import (
	"bytes"
	"flag"
	"fmt"
	"html"
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
