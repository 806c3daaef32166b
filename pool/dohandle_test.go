package pool_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/pool"
	"github.com/qorbgo/qorb/resolver"
)

// DoHandle ends its claims as Do does (release, discard on a bad
// connection, discard and panic again on a panic), and the function's
// reports reach the backend's feedback.
func TestDoHandle(t *testing.T) {
	r := resolver.NewFixed(netip.MustParseAddrPort("127.0.0.1:5432"))
	p, err := pool.New(r, backend.Connector[*session](sessions{}), pool.Policy{MaxSlots: 1, SparesWanted: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	ctx := context.Background()

	appErr := errors.New("no such row")
	if err := p.DoHandle(ctx, func(h *pool.Handle[*session]) error {
		h.Report(2*time.Millisecond, appErr)
		return appErr
	}); err != appErr {
		t.Fatalf("DoHandle returned %v, want the function's error", err)
	}
	bad := fmt.Errorf("protocol: %w", pool.ErrBadConn)
	if err := p.DoHandle(ctx, func(h *pool.Handle[*session]) error { return bad }); err != bad {
		t.Fatalf("DoHandle returned %v, want the function's error", err)
	}
	func() {
		defer func() {
			if v := recover(); v != "boom" {
				t.Fatalf("recovered %v, want the function's panic", v)
			}
		}()
		_ = p.DoHandle(ctx, func(h *pool.Handle[*session]) error { panic("boom") })
	}()
	st := p.Stats()
	b := st.Backends[0]
	if st.Discards != 2 || b.Reports != 1 || b.BackendErrors != 1 || st.Slots.Claimed != 0 {
		t.Fatalf("discards %d (want 2), reports %d and backend errors %d (want 1 and 1), claimed %d (want 0)",
			st.Discards, b.Reports, b.BackendErrors, st.Slots.Claimed)
	}
}
