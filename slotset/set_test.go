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
		if dead := s.Failed(bad, 3); dead != (i == 3) {
			t.Fatalf("failure %d: newly dead %v", i, dead)
		}
	}
	if !s.Dead() || s.Failures() != 3 || s.LastErr() != bad {
		t.Fatalf("dead %v failures %d last %v", s.Dead(), s.Failures(), s.LastErr())
	}
	if s.Failed(bad, 3) {
		t.Fatal("a dead backend became dead again")
	}
	s.Checked()
	if s.Failures() != 0 || !s.Dead() {
		t.Fatalf("after a check: failures %d, dead %v (only a connect revives)", s.Failures(), s.Dead())
	}
	var trace []string
	l := traced(&trace)
	defer l.Leave()
	s.Connected(l)
	if s.Dead() || s.Failures() != 0 {
		t.Fatal("a connect did not revive the backend")
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
