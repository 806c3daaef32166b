package toml

import (
	"strings"
	"testing"
	"time"
)

type dur time.Duration

func (d *dur) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	*d = dur(v)
	return err
}

func (d dur) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

type inner struct {
	Rate  float64 `toml:"rate"`
	Hold  dur     `toml:"hold"`
	Flags []bool  `toml:"flags"`
}

type item struct {
	Name  string   `toml:"name"`
	Count int      `toml:"count"`
	Tags  []string `toml:"tags"`
	In    inner    `toml:"in"`
	Opt   *int     `toml:"opt"`
}

type doc struct {
	Title string  `toml:"title"`
	Desc  string  `toml:"desc"`
	Seed  uint64  `toml:"seed"`
	Items []item  `toml:"items"`
	Top   inner   `toml:"top"`
	Ratio float64 `toml:"ratio"`
}

const good = `# a comment
title = "hello \"world\"" # trailing comment
desc = """
two
lines"""
seed = 1_000
ratio = 0.5

[top]
rate = 3
hold = "5ms"
flags = [true, false,
  true, # comment in an array
]

[[items]]
name = 'literal\path'
count = -2
tags = ["a", "b"]
[items.in]
rate = 1.5e2

[[items]]
name = "second"
in = { rate = 1, hold = "1s" }
opt = 0
`

func TestUnmarshal(t *testing.T) {
	var d doc
	pos, err := Unmarshal("good.toml", []byte(good), &d)
	if err != nil {
		t.Fatal(err)
	}
	if d.Title != `hello "world"` || d.Desc != "two\nlines" || d.Seed != 1000 || d.Ratio != 0.5 {
		t.Errorf("scalars: %+v", d)
	}
	if d.Top.Rate != 3 || time.Duration(d.Top.Hold) != 5*time.Millisecond || len(d.Top.Flags) != 3 {
		t.Errorf("top: %+v", d.Top)
	}
	if len(d.Items) != 2 || d.Items[0].Name != `literal\path` || d.Items[0].Count != -2 || d.Items[0].In.Rate != 150 {
		t.Errorf("items[0]: %+v", d.Items)
	}
	if d.Items[1].In.Rate != 1 || time.Duration(d.Items[1].In.Hold) != time.Second || d.Items[1].Opt == nil || *d.Items[1].Opt != 0 {
		t.Errorf("items[1]: %+v", d.Items[1])
	}
	if l := pos.Line("items[1].in.hold"); l != 25 {
		t.Errorf("line of items[1].in.hold: %d", l)
	}
	if l := pos.Line("items[0].in.rate"); l != 21 {
		t.Errorf("line of items[0].in.rate: %d", l)
	}
	// Round trip.
	out, err := Marshal(&d)
	if err != nil {
		t.Fatal(err)
	}
	var d2 doc
	if _, err := Unmarshal("out.toml", out, &d2); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	out2, _ := Marshal(&d2)
	if string(out) != string(out2) {
		t.Errorf("round trip differs:\n%s\n---\n%s", out, out2)
	}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"title = 5", "f.toml:1: title: want a string, found an integer"},
		{"\n\nbogus = 1", "f.toml:3: bogus: unknown field; known here: desc, items, ratio, seed, title, top"},
		{"[top]\nhold = \"5 parsecs\"", `f.toml:2: top.hold: time: unknown unit " parsecs" in duration "5 parsecs"`},
		{"[top]\nhold = 5m", `f.toml:2: hold: value 5m: not a number; strings (durations such as "5m" too) need quotes: "5m"`},
		{"[[items]]\ncount = 1.5", "f.toml:2: items[0].count: want an integer, found a float"},
		{"title = \"a\"\ntitle = \"b\"", "f.toml:2: title: defined twice (first at line 1)"},
		{"[top]\n[top]", "f.toml:2: table [top] defined twice (first at line 1)"},
		{"title = \"open", "f.toml:1: title: string not closed on its line (use \"\"\" for several lines)"},
		{"top.rate = 1", "f.toml:1: dotted key top.rate = 1: not supported; use a [top] table"},
		{"seed = -1", "f.toml:1: seed: -1 is out of range"},
		{"title = \"x\" junk", `f.toml:1: unexpected "junk" after the value; one key = value per line`},
		{"[top]\nflags = [true, 1]", "f.toml:2: flags: array mixes a boolean and an integer"},
		{"ratio = 0x10", "f.toml:1: ratio: number 0x10: hex, octal and binary are not supported"},
	} {
		var d doc
		_, err := Unmarshal("f.toml", []byte(tc.src), &d)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%q:\n got %v\nwant %s", tc.src, err, tc.want)
		}
	}
}

func TestMarshalOmitsZero(t *testing.T) {
	out, err := Marshal(doc{Title: "t", Items: []item{{Name: "x"}}})
	if err != nil {
		t.Fatal(err)
	}
	want := "title = \"t\"\n\n[[items]]\nname = \"x\"\n"
	if string(out) != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
	if strings.Contains(string(out), "top") {
		t.Error("zero table written")
	}
}

// FuzzUnmarshal checks that no input panics the parser or the decoder,
// and that what decodes also writes and reads back.
func FuzzUnmarshal(f *testing.F) {
	f.Add(good)
	f.Add("a = [1, 2\n")
	f.Add("[[items]]\n[items.in]\nrate = 1e400")
	f.Add("desc = '''x\n'''")
	f.Fuzz(func(t *testing.T, src string) {
		var d doc
		if _, err := Unmarshal("fuzz.toml", []byte(src), &d); err != nil {
			return
		}
		out, err := Marshal(&d)
		if err != nil {
			return // NaN or Inf floats cannot be written
		}
		var d2 doc
		if _, err := Unmarshal("out.toml", out, &d2); err != nil {
			t.Fatalf("written document does not read back: %v\n%s", err, out)
		}
	})
}
