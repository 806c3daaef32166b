package slotset_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/qorbgo/qorb/fsm"
	"github.com/qorbgo/qorb/slotset"
)

// traced returns a strict loop whose transitions are appended to *trace.
func traced(trace *[]string) *fsm.Loop {
	l := fsm.NewLoop(fsm.Config{Strict: true})
	l.Enter()
	l.AddObserver(fsm.ObserverFunc(func(t fsm.Transition) {
		*trace = append(*trace, t.FromName()+" --"+t.EventName()+"--> "+t.ToName())
	}))
	return l
}

func TestSetOnlineWhileAConnectionLives(t *testing.T) {
	var trace []string
	l := traced(&trace)
	defer l.Leave()
	s := slotset.New("db")
	if !s.Connected(l) || s.Connected(l) {
		t.Fatal("Connected reports the first connection, and only it")
	}
	if s.Lost(l) || !s.Lost(l) {
		t.Fatal("Lost reports the last connection, and only it")
	}
	if got, want := strings.Join(trace, "; "), "offline --up--> online; online --down--> offline"; got != want {
		t.Fatalf("trace %q, want %q", got, want)
	}
}

func TestSetDeadAfterFailuresInARow(t *testing.T) {
	s := slotset.New("db")
	bad := errors.New("refused")
	for i := 1; i <= 3; i++ {
		if refused, _, dead := s.Failed(nil, bad, int64(i), 3, 0); refused || dead != (i == 3) {
			t.Fatalf("failure %d: newly dead %v", i, dead)
		}
	}
	if !s.Dead() || s.Failures() != 3 || s.LastErr() != bad {
		t.Fatalf("dead %v failures %d last %v", s.Dead(), s.Failures(), s.LastErr())
	}
	if _, _, dead := s.Failed(nil, bad, 4, 3, 0); dead {
		t.Fatal("a dead backend became dead again")
	}
	if s.LastErrAt() != 4 {
		t.Fatalf("last error at %d, want 4", s.LastErrAt())
	}
	s.Checked()
	if s.Failures() != 0 || !s.Dead() {
		t.Fatalf("after a check: failures %d, dead %v (only a connect revives)", s.Failures(), s.Dead())
	}
	var trace []string
	l := traced(&trace)
	defer l.Leave()
	s.Connected(l)
	if s.Dead() || s.Failures() != 0 || s.LastErr() != nil || s.LastErrAt() != 0 {
		t.Fatal("a connect did not revive the backend and clear its last error")
	}
}

// Lost connections and connects refused while the set holds others do not
// count toward dead: a backend is dead only when connects to it fail.
func TestSetDeadOnlyWhenConnectsFail(t *testing.T) {
	var trace []string
	l := traced(&trace)
	defer l.Leave()
	s := slotset.New("db")
	for range 5 {
		s.Connected(l)
	}
	gone := errors.New("terminating connection due to administrator command")
	for i := range 5 {
		s.Lost(l)
		s.Dropped(gone, int64(i))
	}
	if s.Dead() || s.Failures() != 0 || s.LastErr() != gone {
		t.Fatalf("after five lost connections: dead %v, failures %d, last %v", s.Dead(), s.Failures(), s.LastErr())
	}
	for range 3 {
		s.Connected(l)
	}
	full := errors.New("too many clients")
	// Refused with 3 open and 2 opening: capacity 5; refused again once
	// the two opening were refused too: 3; refused at 3 again: no news.
	for i, tc := range []struct {
		opening, capacity int
		capped            bool
	}{{2, 5, true}, {1, 4, true}, {0, 3, true}, {0, 3, false}} {
		refused, capped, dead := s.Failed(nil, full, int64(i), 3, tc.opening)
		if !refused || dead || capped != tc.capped || s.Capacity() != tc.capacity {
			t.Fatalf("refusal %d with 3 open, %d opening: refused %v, capped %v, dead %v, capacity %d; want capacity %d", i, tc.opening, refused, capped, dead, s.Capacity(), tc.capacity)
		}
	}
	s.Connected(l)
	if s.Capacity() != 4 {
		t.Fatalf("a fourth connection: capacity %d, want 4", s.Capacity())
	}
	s.Probe()
	if s.Capacity() != 5 {
		t.Fatalf("a probe: capacity %d, want 5", s.Capacity())
	}
	s.Forget()
	if s.Probe(); s.Capacity() != 0 {
		t.Fatal("Forget kept the capacity, or a probe made one up")
	}
}

func TestSetDrainsWhenNothingIsLeft(t *testing.T) {
	var trace []string
	l := traced(&trace)
	defer l.Leave()
	s := slotset.New("db")
	s.Connected(l)
	s.Remove(l)
	s.Remove(l) // draining already: no move
	s.Restore(l)
	if s.State() != slotset.Online {
		t.Fatalf("restored with a live connection: %s", s.State())
	}
	s.Remove(l)
	s.Orphans = 1
	if s.Drain(l, 1) || s.Drain(l, 0) {
		t.Fatal("drained with a slot or a running connection left")
	}
	s.Orphans = 0
	s.Lost(l)
	if !s.Drain(l, 0) || s.State() != slotset.Stopped {
		t.Fatalf("not drained: %s", s.State())
	}
	want := "offline --up--> online; online --remove--> draining; draining --restore--> offline; offline --up--> online; online --remove--> draining; draining --drained--> stopped"
	if got := strings.Join(trace, "; "); got != want {
		t.Fatalf("trace %q\nwant  %q", got, want)
	}
}

// A refusal under load never makes the backend dead, held connections or
// not; with connections held it teaches the capacity, as a refusal does.
func TestSetOverloadedIsNeverDead(t *testing.T) {
	s := slotset.New("a")
	overloaded := errors.New("too many clients")
	for i := range 10 {
		if capped := s.Overloaded(overloaded, int64(i), 0); capped {
			t.Fatalf("refusal %d with nothing held: capped", i)
		}
	}
	if s.Dead() || s.Failures() != 0 || s.LastErr() != overloaded || s.LastErrAt() != 9 {
		t.Fatalf("after 10 refusals under load: dead %v, failures %d, last %v at %d", s.Dead(), s.Failures(), s.LastErr(), s.LastErrAt())
	}
	s.Connected(nil)
	s.Connected(nil)
	if capped := s.Overloaded(overloaded, 10, 1); !capped || s.Capacity() != 3 {
		t.Fatalf("refused while holding 2 with 1 connecting: capped %v, capacity %d; want true, 3", capped, s.Capacity())
	}
	if capped := s.Overloaded(overloaded, 11, 1); capped || s.Capacity() != 3 {
		t.Fatalf("the same refusal again: capped %v, capacity %d; want false, 3", capped, s.Capacity())
	}
}

// A connect that fails while the set holds nothing makes it failing; the
// first connection makes it online again; a refusal while it holds others
// does not.
func TestSetFailing(t *testing.T) {
	var trace []string
	l := traced(&trace)
	defer l.Leave()
	s := slotset.New("a")
	boom := errors.New("refused")
	s.Failed(l, boom, 1, 5, 0)
	if s.State() != slotset.Failing {
		t.Fatalf("after a failed connect with nothing held: %s, want failing", s.State())
	}
	s.Failed(l, boom, 2, 5, 0) // stays failing
	s.Connected(l)
	if s.State() != slotset.Online {
		t.Fatalf("after a connection: %s, want online", s.State())
	}
	s.Failed(l, boom, 3, 5, 0) // a refusal: it holds one
	if s.State() != slotset.Online {
		t.Fatalf("after a refusal while holding one: %s, want online", s.State())
	}
	if got, want := strings.Join(trace, "; "), "offline --fail--> failing; failing --up--> online"; got != want {
		t.Fatalf("trace %q, want %q", got, want)
	}
}
