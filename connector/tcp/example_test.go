package tcp_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/qorbgo/qorb/connector/tcp"
	"github.com/qorbgo/qorb/pool"
	"github.com/qorbgo/qorb/resolver"
)

// Example runs a pool of TCP connections to a loopback echo server, with a
// one-byte echo round trip as the health check.
func Example() {
	// A loopback echo server.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	var served sync.WaitGroup
	served.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // the listener is closed
			}
			served.Go(func() {
				defer c.Close()
				_, _ = io.Copy(c, c) // until the pool closes its end
			})
		}
	})
	addr := ln.Addr().(*net.TCPAddr).AddrPort()

	conn, err := tcp.New(tcp.Config{
		DialTimeout: time.Second,
		Validate: func(ctx context.Context, c net.Conn) error {
			// The connector ties c's deadline to ctx.
			if _, err := c.Write([]byte{'.'}); err != nil {
				return err
			}
			var b [1]byte
			_, err := io.ReadFull(c, b[:])
			return err
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	p, err := pool.New(resolver.NewFixed(addr), conn, pool.Policy{SparesWanted: 1, MaxSlots: 2})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	h, err := p.Claim(ctx)
	if err != nil {
		fmt.Println("claim:", err)
	} else {
		c := h.Conn()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, len("hello"))
		if _, err := c.Write([]byte("hello")); err != nil {
			h.Discard(err)
		} else if _, err := io.ReadFull(c, buf); err != nil {
			h.Discard(err)
		} else {
			fmt.Printf("echoed %q\n", buf)
			h.Release()
		}
	}

	// Close closes every connection; the server's handlers then see EOF.
	if err := p.Close(ctx); err != nil {
		fmt.Println("close:", err)
	}
	ln.Close()
	served.Wait()
	fmt.Println("closed")
	// Output:
	// echoed "hello"
	// closed
}
