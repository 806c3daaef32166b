package dns

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/qorbgo/qorb/internal/dnshook"
)

// exchanger is the part of miekg/dns the resolver uses for I/O: one query
// sent to one server, one raw answer read back. Everything else (packing,
// parsing, checking the answer) is done by the resolver on the bytes, so a
// fake exchanger can hand it anything, broken answers included.
type exchanger interface {
	// Exchange sends q to server over network ("udp" or "tcp") and returns
	// the answer's bytes, unchecked. It gives up after timeout with an
	// error wrapping context.DeadlineExceeded, and honours ctx's
	// cancellation. The exchanger owns the timeout because it owns the
	// clock the exchange runs on: the network's real time here, the
	// virtual time of a simulated network in package sim.
	Exchange(ctx context.Context, network string, server netip.AddrPort, q *mdns.Msg, timeout time.Duration) ([]byte, error)
}

// The simulator replaces a resolver's exchanger with simulated servers
// (internal/dnshook); users cannot.
func init() {
	dnshook.SetExchanger = func(r any, x dnshook.Exchanger) { r.(*Resolver).tr = x }
}

// netExchanger exchanges over the network with miekg/dns connections.
type netExchanger struct{}

// readBuf is the UDP read buffer: large enough for any datagram, so that an
// answer longer than the advertised EDNS0 size is seen whole and rejected
// as oversized instead of arriving cut.
const readBuf = mdns.MaxMsgSize

func (netExchanger) Exchange(ctx context.Context, network string, server netip.AddrPort, q *mdns.Msg, timeout time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := &mdns.Client{Net: network}
	co, err := c.DialContext(ctx, server.String())
	if err != nil {
		return nil, ctxErr(ctx, err)
	}
	defer co.Close()
	if dl, ok := ctx.Deadline(); ok {
		co.SetDeadline(dl)
	}
	// Cancellation (Stop, or another server answered first) unblocks the
	// read at once.
	stop := context.AfterFunc(ctx, func() { co.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := co.WriteMsg(q); err != nil {
		return nil, ctxErr(ctx, err)
	}
	buf := make([]byte, readBuf)
	n, err := co.Read(buf)
	if err != nil {
		return nil, ctxErr(ctx, err)
	}
	return buf[:n], nil
}

// ctxErr turns the error of a connection whose context ended into
// the context's error, so callers see context.DeadlineExceeded or
// context.Canceled rather than an i/o timeout.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	// The connection's deadline may pass a moment before the context's
	// own timer fires.
	if dl, ok := ctx.Deadline(); ok && errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return err
}
