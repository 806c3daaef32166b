package sim

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/qorbgo/qorb/fsm"
	"github.com/qorbgo/qorb/slot"
)

// TestTracerChunks checks the chunked tracer against a simple reference:
// the hash is that of every line written, in order, the writer gets the
// same bytes, and last gives the last ringSize lines, whatever the lines'
// lengths and number.
func TestTracerChunks(t *testing.T) {
	for _, n := range []int{0, 1, 39, 40, 41, 1000, 5000} {
		var w bytes.Buffer
		tr := newTracer(&w)
		var want []string
		for i := range n {
			before := w.Len()
			id := strings.Repeat("x", (i*7919)%300)
			switch {
			case i%6 == 3:
				tr.transition(int64(i)*1e6+int64(i%1000), &fsm.Transition{Machine: slot.Kind.Machine(), ID: id, From: int8(slot.Claimed), Event: int8(slot.Return), To: int8(slot.Connected)}, appendString(nil, id))
			case i%3 == 0:
				tr.transition(int64(i)*1e6, &fsm.Transition{Machine: slot.Kind.Machine(), ID: id, From: int8(slot.Connected), Event: int8(slot.Claim), To: int8(slot.Claimed)}, nil)
			default:
				tr.record(int64(i)*1e6, "sim", id, "", "ev", "", i%5 == 0)
			}
			want = append(want, strings.TrimSuffix(string(w.Bytes()[before:]), "\n"))
		}
		last := tr.last()
		if wl := want[max(0, len(want)-ringSize):]; strings.Join(last, "\n") != strings.Join(wl, "\n") || len(last) != len(wl) {
			t.Fatalf("%d lines: last gives %d lines, want %d", n, len(last), len(wl))
		}
		sum := sha256.Sum256(w.Bytes())
		if got := tr.sum(); got != hex.EncodeToString(sum[:]) || tr.lines != uint64(n) {
			t.Fatalf("%d lines: hash %s over %d lines, want %x over %d", n, got, tr.lines, sum, n)
		}
	}
}

// TestAppendSeconds checks the trace's times against fmt's.
func TestAppendSeconds(t *testing.T) {
	tr := newTracer(nil)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 100000 {
		ns := rng.Int64N(int64(i+1) * 1e6)
		if i%7 == 0 {
			ns = -ns
		}
		want := fmt.Sprintf("%d.%09d", ns/1e9, ns%1e9)
		if ns < 0 {
			want = fmt.Sprintf("-%d.%09d", -ns/1e9, -ns%1e9)
		}
		if got := string(appendSeconds(nil, ns)); got != want {
			t.Fatalf("appendSeconds(%d) = %s, want %s", ns, got, want)
		}
		if got := string(tr.appendAt(nil, ns)); got != `{"at":`+want {
			t.Fatalf("appendAt(%d) = %s, want %s", ns, got, want)
		}
	}
}
