package pool

import (
	"context"
	"fmt"

	"github.com/qorbgo/qorb/backend"
)

// The scripted connector of the datadriven scripts (datadriven_test.go):
// its calls return what the command running the job says.

// ddConn is a connection of the scripted connector.
type ddConn struct {
	id   int
	slot string // the slot whose connect opened it
}

// ddConnector opens and closes connections as the running job's outcome
// says. Its variants below add the optional hooks.
type ddConnector struct{ h *ddHarness }

func (c ddConnector) Connect(ctx context.Context, b backend.Backend) (*ddConn, error) {
	h := c.h
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lateCall("Connect")
	if h.outcome.connErr != nil {
		return nil, h.outcome.connErr
	}
	h.nconns++
	conn := &ddConn{id: h.nconns, slot: h.outcome.slot}
	h.open[conn] = true
	return conn, nil
}

func (c ddConnector) Close(conn *ddConn) error {
	h := c.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.open[conn] {
		h.doubles++
	}
	delete(h.open, conn)
	return nil
}

type ddValidate struct{ h *ddHarness }

func (v ddValidate) Validate(ctx context.Context, conn *ddConn) error {
	if name, ok := ctx.Value(ddClaimerKey{}).(string); ok {
		// A check on claim, in the claimer's goroutine: the script ends
		// it (check-ok, check-err with the claim's name).
		return v.h.claimerHook(name, "check on claim", conn)
	}
	v.h.mu.Lock()
	defer v.h.mu.Unlock()
	v.h.lateCall("Validate")
	return v.h.outcome.checkErr
}

type ddRecycle struct{ h *ddHarness }

func (r ddRecycle) OnRecycle(context.Context, *ddConn) error {
	r.h.mu.Lock()
	defer r.h.mu.Unlock()
	r.h.lateCall("OnRecycle")
	return r.h.outcome.checkErr
}

// ddAcquire's hook blocks until a command (acquire-ok, acquire-err) says
// how it ends. It ignores its context: the script decides.
type ddAcquire struct{ h *ddHarness }

func (a ddAcquire) OnAcquire(ctx context.Context, conn *ddConn) error {
	name, _ := ctx.Value(ddClaimerKey{}).(string)
	return a.h.claimerHook(name, "acquire hook", conn)
}

// claimerHook blocks claimer name in a hook (what) on conn until a command
// ends it.
func (h *ddHarness) claimerHook(name, what string, conn *ddConn) error {
	ch := make(chan error)
	h.mu.Lock()
	if what == "acquire hook" {
		h.lateCall("OnAcquire")
	} else {
		h.lateCall("Validate")
	}
	cl := h.claimer(name)
	if cl == nil {
		h.mu.Unlock()
		return fmt.Errorf("%s: no claimer %q", what, name)
	}
	cl.hook, cl.hookOn, cl.hookWhat = ch, conn.slot, what
	h.mu.Unlock()
	return <-ch
}

type (
	ddConnV struct {
		ddConnector
		ddValidate
	}
	ddConnR struct {
		ddConnector
		ddRecycle
	}
	ddConnA struct {
		ddConnector
		ddAcquire
	}
	ddConnVR struct {
		ddConnector
		ddValidate
		ddRecycle
	}
	ddConnVA struct {
		ddConnector
		ddValidate
		ddAcquire
	}
	ddConnRA struct {
		ddConnector
		ddRecycle
		ddAcquire
	}
	ddConnVRA struct {
		ddConnector
		ddValidate
		ddRecycle
		ddAcquire
	}
)

func (h *ddHarness) connector(validate, recycle, acquire bool) backend.Connector[*ddConn] {
	c, v, r, a := ddConnector{h}, ddValidate{h}, ddRecycle{h}, ddAcquire{h}
	switch {
	case validate && recycle && acquire:
		return ddConnVRA{c, v, r, a}
	case validate && recycle:
		return ddConnVR{c, v, r}
	case validate && acquire:
		return ddConnVA{c, v, a}
	case recycle && acquire:
		return ddConnRA{c, r, a}
	case validate:
		return ddConnV{c, v}
	case recycle:
		return ddConnR{c, r}
	case acquire:
		return ddConnA{c, a}
	}
	return c
}

// lateCall records a connector call, other than Close, made after the
// pool's Close returned. h.mu must be held.
func (h *ddHarness) lateCall(op string) {
	if h.closeReturned {
		h.late = append(h.late, op)
	}
}
