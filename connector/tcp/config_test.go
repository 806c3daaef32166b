package tcp

import (
	"strings"
	"testing"
	"time"
)

func TestConfigDefaultsAndValidation(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     Config
		timeout time.Duration // the dialer's, when valid
		keep    time.Duration
		err     string // part of the error, when invalid
	}{
		{name: "zero", cfg: Config{}, timeout: DefaultDialTimeout},
		{name: "set", cfg: Config{DialTimeout: time.Second, KeepAlive: 3 * time.Second}, timeout: time.Second, keep: 3 * time.Second},
		{name: "keepalive off", cfg: Config{KeepAlive: -1}, timeout: DefaultDialTimeout, keep: -1},
		{name: "negative timeout", cfg: Config{DialTimeout: -time.Second}, err: "DialTimeout is -1s; it must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(tc.cfg)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.HasPrefix(err.Error(), "tcp: ") {
					t.Fatalf("New(%+v) = %v, %v; want an error containing %q", tc.cfg, c, err, tc.err)
				}
				if c != nil {
					t.Fatalf("New returned a connector with an error: %v", c)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			d := c.(*connector)
			if d.dialer.Timeout != tc.timeout || d.dialer.KeepAlive != tc.keep {
				t.Fatalf("dialer timeout %v keep-alive %v, want %v %v", d.dialer.Timeout, d.dialer.KeepAlive, tc.timeout, tc.keep)
			}
		})
	}
}
