// Package tcp is a ready [backend.Connector] for plain TCP connections
// (net.Conn): it dials a backend's address with a timeout and, when
// configured with a validation function, checks connections for the pool.
//
// A minimal pool over two loopback backends:
//
//	conn, err := tcp.New(tcp.Config{DialTimeout: time.Second})
//	if err != nil { ... }
//	p, err := pool.New(resolver.NewFixed(addr1, addr2), conn, pool.Policy{})
//
// # Validation
//
// With [Config.Validate] set, the connector also implements
// [backend.Validator], so the pool runs the function on every new
// connection, periodically on idle ones (Policy.HealthInterval), on one
// claimed after it stayed idle longer than Policy.CheckIdleAfter, and, only
// with Policy.CheckOnRelease, on every released one. Without it the
// connector does not implement Validator at all, and the pool checks
// nothing.
package tcp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/qorbgo/qorb/backend"
)

// DefaultDialTimeout is the dial timeout used when [Config.DialTimeout] is
// zero.
const DefaultDialTimeout = 5 * time.Second

// Config configures a TCP connector. The zero Config is valid: it dials
// with [DefaultDialTimeout], Go's default keep-alive and no validation.
type Config struct {
	// DialTimeout bounds one dial, in addition to the pool's context
	// (whichever ends first wins). Zero means DefaultDialTimeout (5s); it
	// must not be negative.
	DialTimeout time.Duration

	// KeepAlive is the interval between TCP keep-alive probes on an idle
	// connection, as in net.Dialer.KeepAlive: zero enables keep-alives
	// with Go's default (15s), a negative value disables them.
	KeepAlive time.Duration

	// Validate, when set, checks that a connection still works (for
	// example a short request and its answer). The pool calls it on every
	// new connection, periodically on idle ones, and on one claimed after
	// it stayed idle longer than Policy.CheckIdleAfter (with
	// Policy.CheckOnRelease, on every released one too); an error closes
	// the connection. A failed check of an open connection is a lost
	// connection (pool.Stats.Lost), not a failed connect: it never makes
	// the backend dead. A failed first check, with no other connection
	// to the backend open, counts as a failed connect.
	//
	// Validate runs with the connection's deadline set to ctx's deadline
	// (none when ctx has none), and when ctx is cancelled a blocked read
	// or write on the connection returns at once with an error. (The pool
	// cancels ctx when Policy.HealthTimeout passes on its clock, or when
	// it closes.) Afterwards
	// the deadline is cleared, whatever Validate set it to. Validate must
	// not close the connection nor keep it after it returns; it may be
	// called concurrently for different connections.
	Validate func(ctx context.Context, c net.Conn) error
}

// validate checks a Config after defaults are applied.
func (c Config) validate() error {
	if c.DialTimeout < 0 {
		return fmt.Errorf("tcp: invalid config: DialTimeout is %v; it must not be negative (zero takes the default %v)",
			c.DialTimeout, DefaultDialTimeout)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	return c
}

// New returns a connector of net.Conn for cfg, or an error when cfg is
// invalid. It reports a bad Config as an error, like pool.New does for a
// bad Policy, instead of panicking or silently fixing it.
//
// Connect dials the backend's address; Close closes the connection. The
// connector implements [backend.Validator] only when cfg.Validate is set,
// and no other hook. It is safe for concurrent use.
func New(cfg Config) (backend.Connector[net.Conn], error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	d := &connector{dialer: net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: cfg.KeepAlive}}
	if cfg.Validate == nil {
		return d, nil
	}
	return &validating{connector: d, validate: cfg.Validate}, nil
}

// connector dials TCP. It does not implement backend.Validator.
type connector struct {
	dialer net.Dialer
}

// Connect dials b's address. ctx bounds the dial together with the dial
// timeout.
func (d *connector) Connect(ctx context.Context, b backend.Backend) (net.Conn, error) {
	if !b.Addr.IsValid() {
		return nil, fmt.Errorf("tcp: backend %q has no address", b.Name)
	}
	return d.dialer.DialContext(ctx, "tcp", b.Addr.String())
}

// Close closes c.
func (d *connector) Close(c net.Conn) error {
	if c == nil {
		return nil
	}
	return c.Close()
}

// validating is a connector with a validation function. It is a distinct
// type so that the pool's type assertion finds a Validator only when one
// is configured.
type validating struct {
	*connector
	validate func(ctx context.Context, c net.Conn) error
}

// longAgo is a deadline in the past: setting it makes blocked I/O return.
var longAgo = time.Unix(1, 0)

// Validate implements backend.Validator: it runs the configured function
// with c's deadline tied to ctx, then clears the deadline. When ctx ends
// during the call, the error wraps ctx's cause (errors.Is finds
// context.Canceled or context.DeadlineExceeded) and the function's error.
func (v *validating) Validate(ctx context.Context, c net.Conn) (err error) {
	if c == nil {
		return errors.New("tcp: validate: nil connection")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("tcp: validate: %w", context.Cause(ctx))
	}
	dl, _ := ctx.Deadline() // zero when ctx has none: clears a stale deadline
	if err := c.SetDeadline(dl); err != nil {
		return fmt.Errorf("tcp: validate: %w", err)
	}
	interrupted := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(interrupted)
		_ = c.SetDeadline(longAgo)
	})
	defer func() {
		if !stop() {
			// ctx ended while validating: let the interruption finish
			// before clearing the deadline.
			<-interrupted
			if err == nil {
				err = fmt.Errorf("tcp: validate: %w", context.Cause(ctx))
			} else {
				err = fmt.Errorf("tcp: validate interrupted: %w: %w", context.Cause(ctx), err)
			}
		}
		if derr := c.SetDeadline(time.Time{}); derr != nil && err == nil {
			err = fmt.Errorf("tcp: validate: %w", derr)
		}
	}()
	return v.validate(ctx, c)
}
