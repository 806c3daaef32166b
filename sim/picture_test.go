package sim

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"
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
