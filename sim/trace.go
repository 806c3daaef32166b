package sim

import (
	"bytes"
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
//
// Lines are built in a chunk of at least chunkSize bytes and ringSize
// lines, which is hashed whole when full (SHA-256 of a byte stream does
// not depend on how it is cut); the chunk before it is kept, so that the
// last ringSize lines are always at hand. A machine transition's line is
// built from pieces encoded once per machine kind: the machine's name,
// and the tail from the from state to the end of the line, per (from,
// event, to).
type tracer struct {
	h     hash.Hash
	w     io.Writer
	werr  error
	cur   []byte // lines not hashed yet
	prev  []byte // the chunk hashed last
	ncur  int    // lines in cur
	lines uint64
	kinds []*kindEnc
	// at is the start of a line at virtual second atSec: `{"at":S.`.
	at    []byte
	atSec int64
}

const (
	ringSize  = 40
	chunkSize = 64 << 10
)

// kindEnc holds the encoded pieces of one machine kind's lines.
type kindEnc struct {
	m       *fsm.Machine
	machine []byte   // `,"machine":"slot","id":`
	tails   [][]byte // by (from, event, to): `,"from":F,"event":E,"to":T}` and the newline; nil until used
	created [][]byte // by to: the tail of a creation
	nst     int
	nev     int
}

func newTracer(w io.Writer) *tracer {
	return &tracer{h: sha256.New(), w: w, cur: make([]byte, 0, 2*chunkSize), prev: make([]byte, 0, 2*chunkSize), atSec: -1}
}

// appendAt appends the start of a line at ns nanoseconds: `{"at":`, and
// the seconds with nine decimals.
func (t *tracer) appendAt(b []byte, ns int64) []byte {
	if ns < 0 {
		return appendSeconds(append(b, `{"at":`...), ns)
	}
	if sec := ns / 1e9; sec != t.atSec {
		t.atSec = sec
		t.at = append(strconv.AppendInt(append(t.at[:0], `{"at":`...), sec, 10), '.')
	}
	return appendFrac(append(b, t.at...), ns%1e9)
}

// kind returns the encoded pieces of m's lines.
func (t *tracer) kind(m *fsm.Machine) *kindEnc {
	for _, k := range t.kinds {
		if k.m == m {
			return k
		}
	}
	k := &kindEnc{m: m, nst: len(m.States()), nev: len(m.Events())}
	k.machine = appendString(append([]byte(nil), `,"machine":`...), m.Name())
	k.machine = append(k.machine, `,"id":`...)
	k.tails = make([][]byte, k.nst*k.nev*k.nst)
	k.created = make([][]byte, k.nst)
	t.kinds = append(t.kinds, k)
	return k
}

func appendTail(b []byte, from, event, to string, impossible bool) []byte {
	b = append(b, `,"from":`...)
	b = appendString(b, from)
	b = append(b, `,"event":`...)
	b = appendString(b, event)
	b = append(b, `,"to":`...)
	b = appendString(b, to)
	if impossible {
		b = append(b, `,"impossible":true`...)
	}
	return append(b, "}\n"...)
}

func (t *tracer) record(at int64, machine, id, from, event, to string, impossible bool) {
	b := t.appendAt(t.cur, at)
	b = append(b, `,"machine":`...)
	b = appendString(b, machine)
	b = append(b, `,"id":`...)
	b = appendString(b, id)
	t.end(appendTail(b, from, event, to, impossible))
}

// transition records tr. id is tr.ID encoded as a JSON string, or nil.
func (t *tracer) transition(at int64, tr *fsm.Transition, id []byte) {
	k := t.kind(tr.Machine)
	var tail []byte
	switch f, e, to := int(tr.From), int(tr.Event), int(tr.To); {
	case f < 0 || f >= k.nst || e < 0 || e >= k.nev || to < 0 || to >= k.nst || tr.Impossible:
		// rare: an impossible transition, or a value outside the kind's
	case tr.Created:
		if tail = k.created[to]; tail == nil {
			tail = appendTail(nil, tr.FromName(), tr.EventName(), tr.ToName(), false)
			k.created[to] = tail
		}
	default:
		i := (f*k.nev+e)*k.nst + to
		if tail = k.tails[i]; tail == nil {
			tail = appendTail(nil, tr.FromName(), tr.EventName(), tr.ToName(), false)
			k.tails[i] = tail
		}
	}
	if tail == nil {
		t.record(at, tr.Kind(), tr.ID, tr.FromName(), tr.EventName(), tr.ToName(), tr.Impossible)
		return
	}
	b := t.appendAt(t.cur, at)
	b = append(b, k.machine...)
	if id != nil {
		b = append(b, id...)
	} else {
		b = appendString(b, tr.ID)
	}
	t.end(append(b, tail...))
}

// end takes b, cur with one more line at its end.
func (t *tracer) end(b []byte) {
	if t.w != nil && t.werr == nil {
		_, t.werr = t.w.Write(b[len(t.cur):])
	}
	t.cur = b
	t.ncur++
	t.lines++
	if len(b) >= chunkSize && t.ncur >= ringSize {
		t.h.Write(b)
		t.prev, t.cur = b, t.prev[:0]
		t.ncur = 0
	}
}

// last returns up to the last ringSize lines, oldest first, without their
// newlines.
func (t *tracer) last() []string {
	out := make([]string, 0, ringSize)
	for _, c := range [][]byte{t.cur, t.prev} {
		for len(c) > 0 && len(out) < ringSize {
			c = c[:len(c)-1] // the newline
			i := bytes.LastIndexByte(c, '\n') + 1
			out = append(out, string(c[i:]))
			c = c[:i]
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func (t *tracer) sum() string {
	t.h.Write(t.cur)
	t.prev, t.cur = t.cur, t.prev[:0]
	t.ncur = 0
	return hex.EncodeToString(t.h.Sum(nil))
}

// appendSeconds appends ns nanoseconds as seconds with nine decimals.
func appendSeconds(b []byte, ns int64) []byte {
	if ns < 0 {
		b = append(b, '-')
		ns = -ns
	}
	b = strconv.AppendInt(b, ns/1e9, 10)
	return appendFrac(append(b, '.'), ns%1e9)
}

// appendFrac appends f, below 1e9, as nine digits.
func appendFrac(b []byte, f int64) []byte {
	var d [9]byte
	for i := 7; i > 0; i -= 2 {
		q := f / 100
		r := f - q*100
		d[i], d[i+1] = digitPairs[2*r], digitPairs[2*r+1]
		f = q
	}
	d[0] = byte('0' + f)
	return append(b, d[:]...)
}

const digitPairs = "00010203040506070809" + "10111213141516171819" + "20212223242526272829" + "30313233343536373839" + "40414243444546474849" +
	"50515253545556575859" + "60616263646566676869" + "70717273747576777879" + "80818283848586878889" + "90919293949596979899"

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
