package dns

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"time"

	mdns "github.com/miekg/dns"
)

// fakeExchanger stands in for the network: it passes exchanges to inner
// (when set), and can fail chosen questions, hold every exchange until
// released, answer with given bytes, and count how many run at once.
type fakeExchanger struct {
	inner exchanger

	mu          sync.Mutex
	fail        func(q mdns.Question) error
	answer      func(q *mdns.Msg) []byte
	hold        chan struct{} // when set, exchanges wait for it to close (or for ctx)
	started     chan struct{} // when set, receives once per exchange started
	calls       int
	networks    map[string]int // exchanges by network
	running     int
	maxRunning  int
	ctxCanceled int // exchanges that ended because ctx ended
}

func (f *fakeExchanger) Exchange(ctx context.Context, network string, server netip.AddrPort, q *mdns.Msg, timeout time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	f.mu.Lock()
	f.calls++
	if f.networks == nil {
		f.networks = map[string]int{}
	}
	f.networks[network]++
	f.running++
	f.maxRunning = max(f.maxRunning, f.running)
	hold, started, fail, answer := f.hold, f.started, f.fail, f.answer
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.running--
		f.mu.Unlock()
	}()
	if started != nil {
		started <- struct{}{}
	}
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			f.mu.Lock()
			f.ctxCanceled++
			f.mu.Unlock()
			return nil, ctx.Err()
		}
	}
	if fail != nil {
		if err := fail(q.Question[0]); err != nil {
			return nil, err
		}
	}
	if answer != nil {
		return answer(q), nil
	}
	if f.inner == nil {
		return nil, errors.New("fake: no answer")
	}
	return f.inner.Exchange(ctx, network, server, q, timeout)
}

func (f *fakeExchanger) stats() (calls, maxRunning, canceled int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls, f.maxRunning, f.ctxCanceled
}

func (f *fakeExchanger) count(network string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.networks[network]
}
