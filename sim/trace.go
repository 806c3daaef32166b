package sim

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"hash"
	"io"
	"strconv"

	"github.com/qorbgo/qorb/fsm"
)

// tracer writes the trace as JSON lines, one record per transition of any
// machine and per simulator event (fault, restart, failed claim), hashes
// every line, and keeps the last lines for violation reports.
//
// A line is {"at":S,"machine":M,"id":I,"from":F,"event":E,"to":T}, with S
// the virtual time in seconds since the start (nine decimals), and
// "impossible":true added for a refused transition.
type tracer struct {
	h     hash.Hash
	w     io.Writer
	werr  error
	buf   []byte
	ring  [][]byte
	next  int
	lines uint64
}

const ringSize = 40

func newTracer(w io.Writer) *tracer {
	t := &tracer{h: sha256.New(), w: w, ring: make([][]byte, ringSize)}
	return t
}

func (t *tracer) record(at int64, machine, id, from, event, to string, impossible bool) {
	b := t.buf[:0]
	b = append(b, `{"at":`...)
	b = appendSeconds(b, at)
	b = append(b, `,"machine":`...)
	b = appendString(b, machine)
	b = append(b, `,"id":`...)
	b = appendString(b, id)
	b = append(b, `,"from":`...)
	b = appendString(b, from)
	b = append(b, `,"event":`...)
	b = appendString(b, event)
	b = append(b, `,"to":`...)
	b = appendString(b, to)
	if impossible {
		b = append(b, `,"impossible":true`...)
	}
	b = append(b, "}\n"...)
	t.buf = b
	t.h.Write(b)
	if t.w != nil && t.werr == nil {
		_, t.werr = t.w.Write(b)
	}
	r := t.ring[t.next]
	t.ring[t.next] = append(r[:0], b...)
	t.next = (t.next + 1) % ringSize
	t.lines++
}

func (t *tracer) transition(at int64, tr *fsm.Transition) {
	t.record(at, tr.Kind(), tr.ID, tr.FromName(), tr.EventName(), tr.ToName(), tr.Impossible)
}

// last returns up to the last ringSize lines, oldest first, without their
// newlines.
func (t *tracer) last() []string {
	var out []string
	for i := range ringSize {
		l := t.ring[(t.next+i)%ringSize]
		if len(l) > 0 {
			out = append(out, string(l[:len(l)-1]))
		}
	}
	return out
}

func (t *tracer) sum() string { return hex.EncodeToString(t.h.Sum(nil)) }

// appendSeconds appends ns nanoseconds as seconds with nine decimals.
func appendSeconds(b []byte, ns int64) []byte {
	if ns < 0 {
		b = append(b, '-')
		ns = -ns
	}
	b = strconv.AppendInt(b, ns/1e9, 10)
	b = append(b, '.')
	frac := ns % 1e9
	var d [9]byte
	for i := 8; i >= 0; i-- {
		d[i] = byte('0' + frac%10)
		frac /= 10
	}
	return append(b, d[:]...)
}

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			q, _ := json.Marshal(s) // rare: names are checked
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
