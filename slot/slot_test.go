package slot_test

import (
	"testing"

	"pgregory.net/rapid"

	"github.com/qorbgo/qorb/fsm"
	"github.com/qorbgo/qorb/slot"
)

// model is the slot machine written the dumb way: a switch on what each
// event means, independent of the declaration.
func model(s slot.State, e slot.Event) (slot.State, bool) {
	if s == slot.Stopped {
		return s, false
	}
	switch e {
	case slot.Stop:
		return slot.Stopped, true
	case slot.ConnectOK, slot.ConnectErr:
		if s != slot.Connecting {
			return s, false
		}
		if e == slot.ConnectOK {
			return slot.Connected, true
		}
		return slot.Failed, true
	case slot.Claim, slot.CheckDue, slot.Expire:
		if s != slot.Connected {
			return s, false
		}
		return map[slot.Event]slot.State{slot.Claim: slot.Claimed, slot.CheckDue: slot.Checking, slot.Expire: slot.Connecting}[e], true
	case slot.Release, slot.Return, slot.Giveback, slot.Discard:
		if s != slot.Claimed {
			return s, false
		}
		return map[slot.Event]slot.State{slot.Release: slot.Recycling, slot.Return: slot.Connected, slot.Giveback: slot.Connected, slot.Discard: slot.Failed}[e], true
	case slot.Wait:
		if s != slot.Connecting {
			return s, false
		}
		return slot.Waiting, true
	case slot.Ready:
		if s != slot.Waiting {
			return s, false
		}
		return slot.Connecting, true
	case slot.RecycleOK, slot.RecycleErr:
		if s != slot.Recycling {
			return s, false
		}
		if e == slot.RecycleOK {
			return slot.Connected, true
		}
		return slot.Failed, true
	case slot.CheckOK, slot.CheckErr:
		if s != slot.Checking {
			return s, false
		}
		if e == slot.CheckOK {
			return slot.Connected, true
		}
		return slot.Failed, true
	case slot.BackoffElapsed:
		if s != slot.Failed {
			return s, false
		}
		return slot.Connecting, true
	}
	return s, false
}

// TestSlotAgainstModel drives one slot through random events on a loop and
// checks, after each, that it agrees with the model, that it holds a
// connection exactly in the states that do, and that stopped is terminal.
func TestSlotAgainstModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		l := fsm.NewLoop(fsm.Config{Seed: 1})
		l.Enter()
		defer l.Leave()
		var real fsm.State[slot.State, slot.Event]
		want := slot.Connecting
		conns := 0 // connections the slot holds, by the model's bookkeeping
		t.Repeat(map[string]func(*rapid.T){
			"event": func(t *rapid.T) {
				e := slot.Event(rapid.IntRange(0, len(slot.Kind.Machine().Events())-1).Draw(t, "event"))
				next, ok := model(want, e)
				fired := slot.Kind.Fire(l, &real, "s", e)
				if fired != ok {
					t.Fatalf("%s in %s: machine fired %v, model %v", e, want, fired, ok)
				}
				if ok {
					switch {
					case e == slot.ConnectOK:
						conns++
					case want.HasConn() && !next.HasConn():
						conns--
					}
					want = next
				}
			},
			"": func(t *rapid.T) {
				if real.Get() != want {
					t.Fatalf("machine in %s, model in %s", real.Get(), want)
				}
				if (conns == 1) != want.HasConn() || conns < 0 || conns > 1 {
					t.Fatalf("%d connections in %s", conns, want)
				}
			},
		})
	})
}
