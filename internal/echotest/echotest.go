// Package echotest holds the client side of the echo protocol that the
// examples and the TCP tests speak to their loopback echo servers.
package echotest

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"
)

// Check is a health check for the tcp connector: a one-byte echo round
// trip. The connector ties the connection's deadline to ctx.
func Check(_ context.Context, c net.Conn) error {
	if _, err := c.Write([]byte{'?'}); err != nil {
		return err
	}
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return err
	}
	if b[0] != '?' {
		return fmt.Errorf("echo check: got %q", b[0])
	}
	return nil
}

// RoundTrip writes msg and reads it back within timeout.
func RoundTrip(c net.Conn, msg []byte, timeout time.Duration) error {
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	if _, err := c.Write(msg); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if string(got) != string(msg) {
		return fmt.Errorf("echoed %q, want %q", got, msg)
	}
	return nil
}
